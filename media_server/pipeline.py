"""One speaker's chain: received frames -> 16 kHz PCM -> speech stream -> captions."""

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
from media_server.engines.stt.base import SpeechEventKind, SpeechStream, SpeechStreamFailed
from media_server.log import utterance_id_var
from media_server.metrics import CAPTIONS, RECOGNITION_LAG
from media_server.protocol import CaptionMessage, ErrorMessage, ServerMessage, StateMessage

log = logging.getLogger(__name__)

# A final this far behind the audio means recognition cannot keep up.
BEHIND_MS = 3000
BEHIND_WARNING_INTERVAL_S = 30.0


class CaptionSink(Protocol):
    """Where captions go: the room's interpreter, or (alone, untranslated) the speaker."""

    async def on_caption(self, caption: CaptionMessage) -> None: ...


class SpeakerPipeline:
    def __init__(
        self,
        stream: SpeechStream,
        captions: CaptionBuilder,
        send: Callable[[ServerMessage], None],
        interpreter: CaptionSink | None = None,
        echo_guard: EchoGuard | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self._stream = stream
        self._captions = captions
        self._send = send  # to the speaker: state and errors
        self._interpreter = interpreter
        self._echo_guard = echo_guard
        self._clock_ms = clock_ms  # the room's: where this speaker's audio starts on it
        self._resampler = PcmResampler()
        self._samples_in = 0
        self._last_behind_warning = 0.0

    @property
    def audio_ms(self) -> int:
        """Milliseconds of speaker audio received so far."""
        return samples_to_ms(self._samples_in)

    def push_frame(self, frame: object) -> None:
        if not isinstance(frame, av.AudioFrame):
            return  # aiortc types recv() loosely; an audio track only gives AudioFrames
        pcm = self._resampler.convert(frame)
        if self._samples_in == 0 and self._clock_ms is not None:
            self._captions.offset_ms = self._clock_ms()
        if self._echo_guard is not None:
            self._echo_guard.heard(self.audio_ms, pcm)
        self._samples_in += len(pcm) // 2
        self._stream.push(pcm)

    def end(self) -> None:
        self._stream.end()

    async def aclose(self) -> None:
        """Stop; an utterance still open (the speaker left mid-sentence) is closed on
        everyone's screen."""
        await self._stream.aclose()
        closing = self._captions.close()
        if closing is not None:
            await self._deliver(closing)

    async def _deliver(self, caption: CaptionMessage) -> None:
        if self._interpreter is None:
            self._send(caption)
        else:
            await self._interpreter.on_caption(caption)

    async def run(self) -> None:
        """Turn the stream's events into messages until the stream ends."""
        try:
            await self._follow()
        except SpeechStreamFailed as exc:
            log.error("speech recognition failed", extra={"error": str(exc)})
            self._send(ErrorMessage("stt_failed",
                                    "speech recognition failed; captions have stopped"))

    async def _follow(self) -> None:
        async for event in self._stream:
            if event.kind is SpeechEventKind.START:
                self._send(StateMessage("listening"))
                continue
            if event.kind is SpeechEventKind.END:
                break
            if self._echo_guard is not None and event.text and \
                    self._echo_guard.is_echo(event.start_ms, event.end_ms, event.text):
                log.info("our own speech heard back; not captioned (correlation %.2f at %.2f s)",
                         self._echo_guard.last_correlation or 0, self._echo_guard.last_delay_s or 0,
                         extra={"kind": str(event.kind), "text": event.text})
                if event.kind is SpeechEventKind.INTERIM:
                    continue
                event = dataclasses.replace(event, text="")  # closes what is on screen
            caption = self._captions.on_event(event)
            if caption is None:
                continue
            CAPTIONS.labels(caption.status).inc()
            await self._deliver(caption)
            if caption.status == "final" and caption.text:
                utterance_id_var.set(caption.utterance_id)
                lag_ms = self.audio_ms - event.end_ms
                RECOGNITION_LAG.observe(max(0, lag_ms) / 1000)
                guard = self._echo_guard
                log.info("final caption (echo correlation %s)",
                         None if guard is None else guard.last_correlation, extra={
                    "text": caption.text, "start_ms": caption.start_ms,
                    "end_ms": caption.end_ms, "lag_ms": lag_ms})
                self._send(StateMessage("idle"))
                self._warn_if_behind(lag_ms)

    def _warn_if_behind(self, lag_ms: int) -> None:
        now = time.monotonic()
        if lag_ms > BEHIND_MS and now - self._last_behind_warning > BEHIND_WARNING_INTERVAL_S:
            self._last_behind_warning = now
            log.warning("recognition is behind", extra={"lag_ms": lag_ms})
            self._send(ErrorMessage(
                "stt_behind",
                f"speech recognition is {lag_ms / 1000:.1f} s behind; captions are delayed",
            ))
