"""One speaker's pipeline: received frames -> 16 kHz PCM -> speech stream -> captions,
handed to the interpreter. The speaker is told what their recognition is doing
(`speaker_state`), when its interims thin out or pause while more people speak at once
than the recogniser carries (`recognition`), and when it fails or falls behind. The
room counts the speaker's voice while an utterance is open."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Protocol

import av

from media_server.audio import PcmResampler, samples_to_ms
from media_server.captions import CaptionBuilder
from media_server.echo_guard import EchoGuard
from media_server.engines.stt.base import (
    InterimPace,
    SpeechEventKind,
    SpeechStream,
    SpeechStreamFailed,
)
from media_server.log import utterance_id_var
from media_server.metrics import CAPTIONS, RECOGNITION_LAG
from media_server.protocol import (
    CaptionMessage,
    ErrorMessage,
    RecognitionMessage,
    RecognitionState,
    ServerMessage,
    SpeakerState,
)
from media_server.voice_meter import Voice

log = logging.getLogger(__name__)

# Finals this far behind the audio, two in a row, mean recognition cannot keep up (one
# alone is a moment of several voices at once, which interims thinning absorbs).
BEHIND_MS = 3000
BEHIND_IN_A_ROW = 2
BEHIND_WARNING_INTERVAL_S = 30.0
RECOGNITION_STATES: dict[InterimPace, RecognitionState] = {
    InterimPace.LIVE: "live", InterimPace.THINNED: "thinned", InterimPace.PAUSED: "paused"}


class CaptionSink(Protocol):
    """Where captions go (the interpreter)."""

    async def on_caption(self, caption: CaptionMessage) -> None: ...


class Speaker(Protocol):
    """What the speaker is told about their own recognition."""

    def send(self, message: ServerMessage) -> None: ...

    def speaker_state(self, state: SpeakerState) -> None: ...


class SpeakerPipeline:
    def __init__(self, stream: SpeechStream, captions: CaptionBuilder, *, sink: CaptionSink,
                 speaker: Speaker, echo_guard: EchoGuard, clock_ms: Callable[[], int],
                 voice: Voice) -> None:
        self._stream = stream
        self._voice = voice  # the room's count of who speaks at once
        self._captions = captions
        self._sink = sink
        self._speaker = speaker
        self._echo_guard = echo_guard
        self._clock_ms = clock_ms  # the room's: where this speaker's audio starts on it
        self._resampler = PcmResampler()
        self._samples_in = 0
        self._last_behind_warning = 0.0
        self._behind_in_a_row = 0

    @property
    def audio_ms(self) -> int:
        """Milliseconds of speaker audio received so far."""
        return samples_to_ms(self._samples_in)

    def push_frame(self, frame: object) -> None:
        if not isinstance(frame, av.AudioFrame):
            return  # aiortc types recv() loosely; an audio track only gives AudioFrames
        pcm = self._resampler.convert(frame)
        if self._samples_in == 0:
            self._captions.offset_ms = self._clock_ms()
        self._echo_guard.heard(self.audio_ms, pcm)
        self._samples_in += len(pcm) // 2
        self._stream.push(pcm)

    def end(self) -> None:
        self._stream.end()

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def run(self) -> None:
        """Turn the stream's events into captions until the stream ends."""
        try:
            await self._follow()
        except SpeechStreamFailed as exc:
            log.error("speech recognition failed", extra={"error": str(exc)})
            self._speaker.send(ErrorMessage("stt_failed",
                                            "speech recognition failed; captions have stopped"))
        finally:
            self._voice.speaking(False)

    async def _follow(self) -> None:
        guard = self._echo_guard
        async for event in self._stream:
            if event.kind is SpeechEventKind.START:
                self._voice.speaking(True)
                self._speaker.speaker_state("listening")
                continue
            if event.kind is SpeechEventKind.PACE:
                if event.pace is not None:
                    self._speaker.send(RecognitionMessage(RECOGNITION_STATES[event.pace]))
                continue
            if event.kind is SpeechEventKind.END:
                break
            if event.kind is SpeechEventKind.FINAL:
                self._voice.speaking(False)
            if event.text and guard.is_echo(event.start_ms, event.end_ms, event.text):
                log.info("our own speech heard back; not captioned (correlation %.2f at %.2f s)",
                         guard.last_correlation or 0, guard.last_delay_s or 0,
                         extra={"kind": str(event.kind), "text": event.text})
                if event.kind is SpeechEventKind.INTERIM:
                    continue
                event = dataclasses.replace(event, text="")  # closes what is on screen
            caption = self._captions.on_event(event)
            if caption is None or not caption.text:
                if event.kind is SpeechEventKind.FINAL:
                    # Nothing said after all (our own speech heard back, a false start):
                    # recognition is idle again all the same.
                    self._speaker.speaker_state("idle")
                if caption is None:
                    continue
            CAPTIONS.labels(caption.status).inc()
            await self._sink.on_caption(caption)
            if caption.status == "final" and caption.text:
                utterance_id_var.set(caption.utterance_id)
                lag_ms = self.audio_ms - event.end_ms
                RECOGNITION_LAG.observe(max(0, lag_ms) / 1000)
                log.info("final caption (echo correlation %s)", guard.last_correlation, extra={
                    "text": caption.text, "start_ms": caption.start_ms,
                    "end_ms": caption.end_ms, "lag_ms": lag_ms})
                self._speaker.speaker_state("idle")
                self._warn_if_behind(lag_ms)

    def _warn_if_behind(self, lag_ms: int) -> None:
        now = time.monotonic()
        self._behind_in_a_row = self._behind_in_a_row + 1 if lag_ms > BEHIND_MS else 0
        if self._behind_in_a_row >= BEHIND_IN_A_ROW \
                and now - self._last_behind_warning > BEHIND_WARNING_INTERVAL_S:
            self._last_behind_warning = now
            log.warning("recognition is behind", extra={"lag_ms": lag_ms})
            self._speaker.send(ErrorMessage(
                "stt_behind",
                f"speech recognition is {lag_ms / 1000:.1f} s behind; captions are delayed",
            ))
