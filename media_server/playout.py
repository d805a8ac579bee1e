"""The return audio track: synthesised clips, one after another, paced in real time.

Frames are 20 ms of 48 kHz mono, timed from the track's first frame by their
sample count (`t0 + pts / rate`), so the track never drifts however long it runs.
When the event loop stalls, the frames due meanwhile are not sent in a burst to catch
up: a receiver would play the backlog faster and eat the silence between clips.
The sample clock slips by the stall instead (counted), and the audio goes on paced.
A clip's start is reported with the time its first frame is due on that clock, so
what a listener is told matches what they hear, whenever the frame was made.
Between clips there is silence (`gap_ms`); clips never overlap. Clips from several
speakers wait in the order their speech ended (not the order synthesis finished).

A clip starts as soon as its first audio exists and grows while it plays (the voice
synthesises sentence by sentence); if playback catches up with synthesis, silence
fills in until the next audio or the clip's end. Chunks of one utterance follow each
other closer than clips of different utterances do (`CHUNK_GAP_MS`), as clauses of
one sentence. A listener who falls behind hears clips faster, at the same pitch, up
to `MAX_TEMPO`, so the interpretation closes in on the speaker instead of queueing
up; a clip that still starts more than `max_delay_s` after its speech ended is cut
short by that excess (never to less than `MIN_PLAY_S`: no clip is dropped whole),
faded out, and reported: a listener hears the room a bounded time behind, however
busy it gets, and is told what they missed.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from dataclasses import dataclass, field
from typing import Protocol

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media_server.audio import mono_frame
from media_server.metrics import (
    PLAYOUT_CUT,
    PLAYOUT_CUT_CLIPS,
    PLAYOUT_SAVED,
    PLAYOUT_SLIPPED,
    PLAYOUT_SLIPS,
    PLAYOUT_SPED_UP,
    PLAYOUT_UNDERRUNS,
)
from media_server.tempo import MAX_TEMPO, Stretcher

RATE = 48000
FRAME_SAMPLES = 960  # 20 ms
FRAME_BYTES = FRAME_SAMPLES * 2
_SILENCE = bytes(FRAME_BYTES)
MAX_LATE_S = 0.06  # later than this behind the sample clock, the clock slips
# Behind the speaker by more than this (a clip starting this long after its speech
# ended, counting the clips queued after it), clips play faster: 1/`CATCH_UP_S`
# faster per second behind, up to MAX_TEMPO.
RELAXED_LAG_S = 2.0
CATCH_UP_S = 8.0
CHUNK_GAP_MS = 120  # between clips of one utterance
MIN_PLAY_S = 1.0  # however late, a clip plays at least this long
_FADE_SAMPLES = 480  # 10 ms fade-out where a clip is cut
_READ_BYTES = FRAME_BYTES * 10  # a clip's PCM goes through the stretcher 200 ms at a time


@dataclass(eq=False)
class Clip:
    pcm: bytes  # 48 kHz mono s16, so far
    utterance_id: str
    lang: str
    source_text: str = ""  # the sentence this clip is a translation of
    speaker_id: str = ""
    ends_at: float = field(default_factory=time.monotonic)  # when its speech ended
    complete: bool = True  # False while synthesis is still adding audio
    chunk: int = 1  # which clip of its utterance (simultaneous interpretation: 1..n)
    text: str = ""  # what it says

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) // 2 * 1000 // RATE

    def append(self, pcm: bytes) -> None:
        self.pcm += pcm

    def finish(self) -> None:
        self.complete = True


class PlayoutEvents(Protocol):
    """What a track tells its owner (all called on the event loop, as frames are made)."""

    def clip_started(self, clip: Clip, starts_at: float, *, duration_ms: int,
                     cut_ms: int = 0) -> None:
        """`clip` plays from `starts_at` (monotonic: when its first frame is due) for
        `duration_ms` as far as its audio exists yet (at the tempo it plays at), with
        `cut_ms` of it left out at its end."""

    def clip_completed(self, clip: Clip, starts_at: float, *, duration_ms: int,
                       cut_ms: int = 0) -> None:
        """A clip that started while still being synthesised has all its audio now."""

    def clip_cut(self, clip: Clip, cut_ms: int) -> None:
        """A clip ended `cut_ms` early: it started too far behind the speaker."""

    def idle(self) -> None:
        """Nothing plays and nothing waits."""

    def frame_sent(self, pcm: bytes) -> None: ...


class _ClipReader:
    """One clip, frame by frame, at a tempo, while it may still grow."""

    def __init__(self, clip: Clip, tempo: float, *, starts_at: float,
                 limit_ms: int | None = None) -> None:
        self.clip = clip
        self.tempo = tempo
        self.starts_at = starts_at
        self.limit_ms = limit_ms  # play at most this much (None: all of it)
        self.reported_complete = clip.complete
        self._taken = 0  # bytes of the clip's PCM read so far
        self._ready = bytearray()
        self._stretcher = Stretcher(tempo, RATE) if tempo > 1.0 else None
        self._flushed = False
        self._played = 0  # bytes sent
        self._cut = False

    @property
    def full_ms(self) -> int:
        """The whole clip (as far as it exists) at this tempo."""
        return round(self.clip.duration_ms / self.tempo)

    @property
    def duration_ms(self) -> int:
        return self.full_ms if self.limit_ms is None else min(self.full_ms, self.limit_ms)

    @property
    def cut_ms(self) -> int:
        return self.full_ms - self.duration_ms

    @property
    def finished(self) -> bool:
        return self._cut or (self._flushed and not self._ready)

    def next_frame(self) -> bytes:
        """The next 20 ms: silence while synthesis is behind."""
        self._fill()
        if not self._ready:
            if not self._flushed:
                PLAYOUT_UNDERRUNS.inc()
            return _SILENCE
        frame = bytes(self._ready[:FRAME_BYTES]).ljust(FRAME_BYTES, b"\0")
        del self._ready[:FRAME_BYTES]
        self._played += FRAME_BYTES
        if self.limit_ms is not None and self._played * 1000 // (2 * RATE) >= self.limit_ms:
            self._cut = True
            return _fade_out(frame)
        return frame

    def _fill(self) -> None:
        while len(self._ready) < FRAME_BYTES and self._taken < len(self.clip.pcm):
            pcm = self.clip.pcm[self._taken : self._taken + _READ_BYTES]
            self._taken += len(pcm)
            self._ready += self._stretcher.push(pcm) if self._stretcher else pcm
        if self.clip.complete and self._taken >= len(self.clip.pcm) and not self._flushed:
            self._flushed = True
            if self._stretcher:
                self._ready += self._stretcher.flush()


def _fade_out(frame: bytes) -> bytes:
    """The frame with its end faded to silence (a cut without a click)."""
    samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
    samples[-_FADE_SAMPLES:] *= np.linspace(1.0, 0.0, _FADE_SAMPLES, dtype=np.float32)
    return samples.astype("<i2").tobytes()


class PlayoutTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, events: PlayoutEvents, *, gap_ms: int = 300,
                 max_delay_s: float = 10.0) -> None:
        super().__init__()
        self._owner = events  # (not `_events`: the EventEmitter base uses that name)
        self._gap_frames = gap_ms * RATE // 1000 // FRAME_SAMPLES
        self._chunk_gap_frames = min(self._gap_frames, CHUNK_GAP_MS * RATE // 1000 // FRAME_SAMPLES)
        self._last_utterance = ""  # of the clip played last
        self._max_delay = max_delay_s
        self._queue: list[Clip] = []  # by `ends_at`
        self._reader: _ClipReader | None = None  # the clip playing
        self._last_frame_clip: Clip | None = None
        self._silent_frames = self._gap_frames  # ready to start a clip at once
        self._idle = True  # reported idle since the last clip
        self._pts = 0
        self._t0: float | None = None

    @property
    def last_frame_clip(self) -> Clip | None:
        """The clip the last frame sent was of (None: silence between clips)."""
        return self._last_frame_clip

    @property
    def idle(self) -> bool:
        """Nothing playing or waiting: the track sends silence."""
        return self._idle

    def enqueue(self, clip: Clip) -> None:
        if clip.pcm:
            bisect.insort(self._queue, clip, key=lambda queued: queued.ends_at)

    def clear(self) -> None:
        self._queue.clear()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        late = now - self._due()
        if late < 0:
            await asyncio.sleep(-late)
        elif late > MAX_LATE_S:
            self._t0 += late
            PLAYOUT_SLIPS.inc()
            PLAYOUT_SLIPPED.inc(late)
        pcm = self._next_pcm()
        self._owner.frame_sent(pcm)
        frame = mono_frame(pcm, RATE, self._pts)
        self._pts += FRAME_SAMPLES
        return frame

    def _due(self) -> float:
        """When the next frame is due on the track's sample clock (monotonic)."""
        assert self._t0 is not None
        return self._t0 + self._pts / RATE

    def _gap_before_next(self) -> int:
        """Frames of silence before the next clip: shorter within an utterance."""
        if self._queue and self._queue[0].utterance_id == self._last_utterance:
            return self._chunk_gap_frames
        return self._gap_frames

    def _next_pcm(self) -> bytes:
        if self._reader is None and self._silent_frames >= self._gap_before_next():
            self._start_next()
        reader = self._reader
        self._last_frame_clip = reader.clip if reader is not None else None
        if reader is None:
            self._silent_frames += 1
            if not self._idle and not self._queue and self._silent_frames >= self._gap_frames:
                self._idle = True
                self._owner.idle()
            return _SILENCE
        pcm = reader.next_frame()
        if reader.clip.complete and not reader.reported_complete:
            reader.reported_complete = True
            self._owner.clip_completed(reader.clip, reader.starts_at,
                                       duration_ms=reader.duration_ms, cut_ms=reader.cut_ms)
        if reader.finished:
            self._reader = None
            self._silent_frames = 0
            self._last_utterance = reader.clip.utterance_id
            if reader.tempo > 1.0:
                PLAYOUT_SAVED.inc((reader.clip.duration_ms - reader.full_ms) / 1000)
            if reader.cut_ms > 0:
                PLAYOUT_CUT_CLIPS.inc()
                PLAYOUT_CUT.inc(reader.cut_ms / 1000)
                self._owner.clip_cut(reader.clip, reader.cut_ms)
        return pcm

    def _start_next(self) -> None:
        if not self._queue:
            return
        starts_at = self._due()
        clip = self._queue.pop(0)
        late = starts_at - clip.ends_at
        tempo = self._tempo(late)
        if tempo > 1.0:
            PLAYOUT_SPED_UP.inc()
        limit_ms = None
        if late > self._max_delay:  # as much shorter as it is too late, not dropped whole
            full_ms = clip.duration_ms / tempo
            limit_ms = round(max(MIN_PLAY_S * 1000, full_ms - (late - self._max_delay) * 1000))
        reader = self._reader = _ClipReader(clip, tempo, starts_at=starts_at, limit_ms=limit_ms)
        self._idle = False
        self._owner.clip_started(clip, starts_at, duration_ms=reader.duration_ms,
                                 cut_ms=reader.cut_ms)

    def _tempo(self, late_s: float) -> float:
        """Faster the further behind the speaker: this clip's lateness plus the clips
        waiting after it."""
        behind = late_s + sum(clip.duration_ms for clip in self._queue) / 1000
        return min(MAX_TEMPO, max(1.0, 1.0 + (behind - RELAXED_LAG_S) / CATCH_UP_S))
