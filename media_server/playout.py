"""The return audio track: synthesised clips, one after another, paced in real time.

Frames are 20 ms of 48 kHz mono, timed from the track's first frame by their
sample count (`t0 + pts / rate`), so the track never drifts however long it runs.
When the event loop stalls, the frames due meanwhile are not sent in a burst to catch
up: a receiver would play the backlog faster and eat the silence between clips.
The sample clock slips by the stall instead (counted), and the audio goes on paced.
A clip's start is reported with the time its first frame is due on that clock, so
what a listener is told matches what they hear, whenever the frame was made.
Between clips there is silence (`gap_ms`); clips never overlap. Clips from several
speakers wait in the order their speech ended (not the order synthesis finished),
and a clip that would start more than `max_delay_s` after its speech ended is
dropped rather than played ever later, and reported: a listener hears the room a
bounded time behind, however busy it gets.
"""

from __future__ import annotations

import asyncio
import bisect
import fractions
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from media_server.metrics import PLAYOUT_SLIPPED, PLAYOUT_SLIPS

RATE = 48000
FRAME_SAMPLES = 960  # 20 ms
FRAME_BYTES = FRAME_SAMPLES * 2
_SILENCE = bytes(FRAME_BYTES)
MAX_LATE_S = 0.06  # later than this behind the sample clock, the clock slips


@dataclass
class Clip:
    pcm: bytes  # 48 kHz mono s16
    utterance_id: str
    lang: str
    source_text: str = ""  # the sentence this clip is a translation of
    speaker_id: str = ""
    ends_at: float = field(default_factory=time.monotonic)  # when its speech ended

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) // 2 * 1000 // RATE


class PlayoutTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(
        self,
        on_start: Callable[[Clip, float], None],
        on_idle: Callable[[], None],
        on_drop: Callable[[Clip], None],
        on_frame: Callable[[bytes], None],
        gap_ms: int = 300,
        max_delay_s: float = 10.0,
    ) -> None:
        super().__init__()
        self._on_start = on_start  # (clip, the monotonic time its first frame is due)
        self._on_idle = on_idle
        self._on_drop = on_drop
        self._on_frame = on_frame  # each frame's PCM as it goes out (for the echo guard)
        self._gap_frames = gap_ms * RATE // 1000 // FRAME_SAMPLES
        self._max_delay = max_delay_s
        self._queue: list[Clip] = []  # by `ends_at`
        self._current: Clip | None = None
        self._offset = 0  # bytes of the current clip already sent
        self._silent_frames = self._gap_frames  # ready to start a clip at once
        self._idle = True  # reported idle since the last clip
        self._pts = 0
        self._t0: float | None = None

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
        self._on_frame(pcm)
        frame = av.AudioFrame.from_ndarray(
            np.frombuffer(pcm, dtype="<i2").reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += FRAME_SAMPLES
        return frame

    def _due(self) -> float:
        """When the next frame is due on the track's sample clock (monotonic)."""
        assert self._t0 is not None
        return self._t0 + self._pts / RATE

    def _next_pcm(self) -> bytes:
        if self._current is None and self._silent_frames >= self._gap_frames:
            self._start_next()
        if self._current is None:
            self._silent_frames += 1
            if not self._idle and not self._queue and self._silent_frames >= self._gap_frames:
                self._idle = True
                self._on_idle()
            return _SILENCE
        chunk = self._current.pcm[self._offset : self._offset + FRAME_BYTES]
        self._offset += FRAME_BYTES
        if self._offset >= len(self._current.pcm):
            self._current = None
            self._silent_frames = 0
        return chunk.ljust(FRAME_BYTES, b"\0")

    def _start_next(self) -> None:
        starts_at = self._due()
        while self._queue:
            clip = self._queue.pop(0)
            if starts_at - clip.ends_at > self._max_delay:
                self._on_drop(clip)
                continue
            self._current, self._offset, self._idle = clip, 0, False
            self._on_start(clip, starts_at)
            return
