"""Google Cloud Speech-to-Text v2 `StreamingRecognize`: one long-lived stream per speaker.

Why v2: it reports voice activity (speech begin/end, which tell us where a restart
may cut and what must be heard again) and has `endpointing_sensitivity`.
Endpointing: `short` (the default setting) finalises a sentence quickly and keeps
the stream open. `speech_end_timeout` (v2) and `single_utterance` (v1) end the whole
stream after each utterance instead, costing a reconnect per sentence.

Audio goes out in 100 ms LINEAR16 chunks (3,200 bytes; Google caps a request at
25 KB), never more than `BURST_MS` ahead of real time since the stream opened.

A stream lives at most ~5 minutes. It is restarted at a quiet point (no utterance
open) after `restart_s`; mid-speech, in the last `DIP_SEARCH_S` before `max_stream_s`,
at the first dip between words (a cut through a word loses it on both sides), or
anyhow at `max_stream_s`. The next stream first hears
again what no final covers yet, and its offsets are moved by where it starts, so
no final is lost or repeated. `UNAVAILABLE`, `ABORTED`, `INTERNAL` or a deadline
restart it with backoff; past `retries` in a row, or on any other error, the stream
fails with `SpeechStreamFailed` and the fallback adapter takes over.

A hang is told apart from an error by time: no result for `stall_timeout_s` during
speech is a stall. Loud audio unanswered twice as long (a stall before any speech
was reported, or just noise) restarts the stream without counting as a failure;
unanswered again on the new stream, it is a stall. When another provider stands by
(`failover`), the chain owns the deadline: a stall, or loud audio unanswered for
`stall_timeout_s`, fails the stream at once instead of spending more time here.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

import grpc
import numpy as np
from google.api_core import exceptions
from google.cloud.speech_v2 import SpeechAsyncClient
from google.cloud.speech_v2.types import cloud_speech as speech
from google.protobuf import duration_pb2

from media_server.audio import STT_SAMPLE_RATE, ms_to_samples, samples_to_ms
from media_server.engines.google_languages import LOCALES, locale_for
from media_server.engines.stt.base import (
    SpeechEvent,
    SpeechEventKind,
    SpeechRequestRefused,
    SpeechStreamFailed,
)
from media_server.engines.stt.recognize_stream import RecognizeStream
from media_server.engines.stt.uncovered_audio import ReplayWindow

log = logging.getLogger(__name__)

CHUNK_SAMPLES = ms_to_samples(100)
BURST_MS = 2000  # re-sent audio at a stream's start may run this far ahead of real time
# What a restarted stream hears again: outside speech, this much before what was sent
# (speech not yet reported); in an utterance, all of it from a little before its start.
RESEND = ReplayWindow(quiet_ms=1500, speaking_ms=30000)
PAD_MS = 300
STABLE = 0.8  # an interim result this stable is taken as settled
STALL_CHECK_S = 0.25
LOUD_RMS = 0.01 * 32768  # -40 dBFS: louder than room tone, quieter than speech
DIP_SEARCH_S = 1.5  # before the hard bound, a restart mid-speech waits for a dip
DIP_RATIO = 0.25  # a chunk this much quieter than the loudest of the last second is a dip
DIP_FRAME = ms_to_samples(10)  # the cut goes in the dip's quietest 10 ms
RETRYABLE = (exceptions.ServiceUnavailable, exceptions.Aborted, exceptions.InternalServerError,
             exceptions.DeadlineExceeded)
_Event = speech.StreamingRecognizeResponse.SpeechEventType
_SENSITIVITY = {
    "standard": speech.StreamingRecognitionFeatures.EndpointingSensitivity.
    ENDPOINTING_SENSITIVITY_STANDARD,
    "short": speech.StreamingRecognitionFeatures.EndpointingSensitivity.
    ENDPOINTING_SENSITIVITY_SHORT,
    "supershort": speech.StreamingRecognitionFeatures.EndpointingSensitivity.
    ENDPOINTING_SENSITIVITY_SUPERSHORT,
}


class _Stalled(Exception):
    """No result for too long while an utterance is open."""


class _Quiet(Exception):
    """Loud audio went unanswered for long: a stall before any speech was reported,
    or noise. The stream restarts; it is not counted as a failure."""


@dataclass(frozen=True)
class GoogleSpeechConfig:
    model: str = "long"
    endpointing: str = "short"
    restart_s: float = 240.0
    max_stream_s: float = 290.0
    retries: int = 3
    stall_timeout_s: float = 5.0


def _samples(offset: object) -> int:
    """An offset -> samples at 16 kHz (proto-plus hands Durations over as timedeltas)."""
    if isinstance(offset, duration_pb2.Duration):
        offset = offset.ToTimedelta()
    return round(offset.total_seconds() * STT_SAMPLE_RATE) if isinstance(offset, timedelta) else 0


def _rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


def _loud(pcm: bytes) -> bool:
    return _rms(pcm) > LOUD_RMS


def _quietest_point(pcm: bytes) -> int:
    """The middle of the quietest 10 ms frame of `pcm`, in samples."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    frames = samples[:samples.size // DIP_FRAME * DIP_FRAME].reshape(-1, DIP_FRAME)
    return int(np.argmin((frames**2).sum(axis=1))) * DIP_FRAME + DIP_FRAME // 2


class GoogleSpeech:
    name = "google"

    def __init__(self, client: SpeechAsyncClient, project: str, *, location: str,
                 config: GoogleSpeechConfig) -> None:
        self._client = client
        self._recognizer = f"projects/{project}/locations/{location}/recognizers/_"
        self._config = config

    def languages(self) -> frozenset[str]:
        return frozenset(LOCALES)

    def open_stream(self, language: str, sample_rate: int = STT_SAMPLE_RATE,
                    *, model: str = "", failover: bool = False) -> GoogleSpeechStream:
        if sample_rate != STT_SAMPLE_RATE:
            raise ValueError(f"this recogniser takes {STT_SAMPLE_RATE} Hz audio")
        streaming = speech.StreamingRecognitionConfig(
            config=speech.RecognitionConfig(
                explicit_decoding_config=speech.ExplicitDecodingConfig(
                    encoding=speech.ExplicitDecodingConfig.AudioEncoding.LINEAR16,
                    sample_rate_hertz=STT_SAMPLE_RATE, audio_channel_count=1),
                language_codes=[locale_for(language)],
                model=model or self._config.model,
                features=speech.RecognitionFeatures(enable_automatic_punctuation=True)),
            streaming_features=speech.StreamingRecognitionFeatures(
                interim_results=True, enable_voice_activity_events=True,
                endpointing_sensitivity=_SENSITIVITY[self._config.endpointing]))
        first = speech.StreamingRecognizeRequest(recognizer=self._recognizer,
                                                 streaming_config=streaming)
        return GoogleSpeechStream(self._client, first, config=self._config, failover=failover)


class GoogleSpeechStream(RecognizeStream):
    def __init__(self, client: SpeechAsyncClient, first: speech.StreamingRecognizeRequest,
                 *, config: GoogleSpeechConfig, failover: bool = False) -> None:
        super().__init__(RESEND, name="google-stt")
        self._client = client
        self._first = first
        self._config = config
        self._failover = failover
        self._restarted_unanswered = False  # restarted for loud audio, nothing heard since
        self._audio_ready = asyncio.Event()
        self._sent = 0  # the current stream has heard audio up to this sample
        self._utterance_start: int | None = None  # the open utterance's first sample
        self._interim = ""
        # Loud audio sent with no answer since: where it began (sample) and when (clock).
        self._unanswered: tuple[int, float] | None = None
        self.restarts = 0

    def _pushed(self, pcm: bytes) -> None:
        self._audio_ready.set()

    def _ending(self) -> None:
        self._audio_ready.set()

    async def _closing(self) -> None:
        """Nothing left: the gRPC call ended with the task."""

    # -- streams and restarts ---------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        while True:
            origin = self._audio.replay_from(self._resend_from())
            try:
                if await self._one_stream(origin):
                    break
                failures = 0
            except _Quiet as exc:  # maybe a stall, maybe noise: not a failure
                self._restarted_unanswered = True
                log.info("Google speech stream restarted", extra={"reason": str(exc)})
            except (*RETRYABLE, _Stalled) as exc:
                if isinstance(exc, _Stalled) and self._failover:
                    # A hang: the provider standing by answers sooner than a retry.
                    raise SpeechStreamFailed(f"Google speech: {exc}") from exc
                failures += 1
                if failures > self._config.retries:
                    raise SpeechStreamFailed(f"Google speech: {exc!r}") from exc
                delay = min(2.0, 0.2 * 2 ** (failures - 1)) * random.uniform(0.8, 1.2)
                log.warning("Google speech stream failed; restarting",
                            extra={"error": repr(exc), "attempt": failures,
                                   "delay_s": round(delay, 2)})
                await asyncio.sleep(delay)
            except exceptions.OutOfRange as exc:  # the stream limit came first
                log.warning("Google speech stream hit its limit; restarting",
                            extra={"error": str(exc)})
            except exceptions.InvalidArgument as exc:  # what we asked, not Google's state
                raise SpeechRequestRefused(f"Google speech refused: {exc.message}") from exc
            except exceptions.GoogleAPICallError as exc:
                raise SpeechStreamFailed(f"Google speech: {exc!r}") from exc
            self.restarts += 1
        if self._utterance_start is not None:  # no final came for the last words
            self._final(self._interim, self._audio.end)
        self._events.put(SpeechEvent(SpeechEventKind.END))

    def _resend_from(self) -> int:
        """Where the next stream would start (`replay_from` keeps it after what is final
        or known to be quiet, and within the window)."""
        pad = ms_to_samples(PAD_MS)
        if self._utterance_start is not None:
            start = self._utterance_start - pad
        else:  # (from the last final's end: words lost are worse than a word heard twice)
            start = self._sent - ms_to_samples(RESEND.quiet_ms)
        if self._unanswered is not None:  # speech the provider may not have reported yet
            start = min(start, self._unanswered[0] - pad)
        self._unanswered = None
        return start

    async def _one_stream(self, origin: int) -> bool:
        """Run one gRPC stream from `origin`; True once all audio is heard after end()."""
        self._sent = origin
        opened = time.monotonic()
        restart = finished = False
        loudness: deque[float] = deque(maxlen=10)  # the last second's chunks, RMS

        async def requests() -> AsyncIterator[speech.StreamingRecognizeRequest]:
            nonlocal restart
            yield self._first
            while not finished:  # (a call the server ended is not read from any more)
                self._audio_ready.clear()
                last = min(self._sent + CHUNK_SAMPLES, self._audio.end)
                if last - self._sent < CHUNK_SAMPLES and not self._ended:
                    await self._audio_ready.wait()
                    continue
                if last == self._sent:
                    return  # ended and all heard: half-close, the finals follow
                age = time.monotonic() - opened
                if age > self._config.max_stream_s or (
                        age > self._config.restart_s and self._utterance_start is None):
                    if self._utterance_start is not None:
                        log.warning("Google speech stream restarting at its bound, mid-speech:"
                                    " no pause between words came", extra={"stream_s": age})
                    restart = True
                    return
                ahead_ms = samples_to_ms(last - origin) - age * 1000 - BURST_MS
                if ahead_ms > 0:
                    await asyncio.sleep(ahead_ms / 1000)
                    continue
                pcm = self._audio.slice(self._sent, last)
                if self._unanswered is None and _loud(pcm):
                    self._unanswered = (self._sent, time.monotonic())
                rms = _rms(pcm)
                if (age > self._config.max_stream_s - DIP_SEARCH_S and loudness
                        and len(pcm) == CHUNK_SAMPLES * 2 and rms < DIP_RATIO * max(loudness)):
                    # Near the bound, mid-speech: end in this dip between words.
                    cut = _quietest_point(pcm)
                    log.info("Google speech stream restarting in a pause between words",
                             extra={"stream_s": age})
                    self._sent += cut
                    yield speech.StreamingRecognizeRequest(audio=pcm[:cut * 2])
                    restart = True
                    return
                loudness.append(rms)
                self._sent = last
                yield speech.StreamingRecognizeRequest(audio=pcm)

        call = await self._client.streaming_recognize(
            requests=requests(), retry=None, timeout=self._config.max_stream_s + 60)
        responses = aiter(call)
        answered = time.monotonic()
        pending: asyncio.Future[speech.StreamingRecognizeResponse] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(responses))
                done, _ = await asyncio.wait({pending}, timeout=STALL_CHECK_S)
                if not done:
                    self._check_stall(answered)
                    continue
                try:
                    response = pending.result()
                except StopAsyncIteration:
                    break
                pending = None
                answered = time.monotonic()
                self._on_response(response, origin)
        finally:
            if pending is not None:
                pending.cancel()
            cast(grpc.aio.Call, call).cancel()
            # A call the server already ended is not stopped by cancel(): grpc's task
            # feeding it would wait on our generator for ever. Wake it to end.
            finished = True
            self._audio_ready.set()
        return not restart and self._ended and self._sent >= self._audio.end

    def _check_stall(self, answered: float) -> None:
        now = time.monotonic()
        stall_s = self._config.stall_timeout_s
        if self._utterance_start is not None and now - answered > stall_s:
            raise _Stalled(f"no result for {stall_s} s during speech")
        if self._unanswered is None:
            return
        unanswered_s = now - self._unanswered[1]
        if self._failover and unanswered_s > stall_s:
            raise _Stalled(f"loud audio unanswered for {stall_s} s")
        if unanswered_s > 2 * stall_s:
            if self._restarted_unanswered:
                raise _Stalled(f"loud audio unanswered for {2 * stall_s} s, again")
            raise _Quiet(f"loud audio unanswered for {2 * stall_s} s")

    # -- responses -> events ----------------------------------------------------

    def _on_response(self, response: speech.StreamingRecognizeResponse, origin: int) -> None:
        self._restarted_unanswered = False
        reaches = origin + max([_samples(response.speech_event_offset)] + [
            _samples(r.result_end_offset) for r in response.results])
        if self._unanswered is not None and reaches >= self._unanswered[0]:
            self._unanswered = None  # answered only by news of that audio, not older
        if response.speech_event_type == _Event.SPEECH_ACTIVITY_BEGIN:
            if self._utterance_start is None:
                self._open(origin + _samples(response.speech_event_offset))
            return
        results = [r for r in response.results if r.alternatives]
        if not results:
            return
        finals = [r for r in results if r.is_final]
        if finals:
            text = " ".join(r.alternatives[0].transcript.strip() for r in finals).strip()
            self._final(text, origin + _samples(finals[-1].result_end_offset))
            return
        parts = [r.alternatives[0].transcript for r in results]
        text = " ".join("".join(parts).split())
        stable = " ".join("".join(
            p for p, r in zip(parts, results, strict=True) if r.stability >= STABLE).split())
        if self._utterance_start is None:
            self._open(self._audio.covered)
        assert self._utterance_start is not None
        self._interim = text
        self._events.put(SpeechEvent(
            SpeechEventKind.INTERIM, text, samples_to_ms(self._utterance_start),
            samples_to_ms(origin + _samples(results[-1].result_end_offset)),
            stability=results[0].stability,
            stable_chars=len(stable) if text.startswith(stable) else 0))

    def _open(self, start: int) -> None:
        self._utterance_start = max(start, self._audio.covered)
        self._interim = ""
        self._events.put(SpeechEvent(SpeechEventKind.START,
                                            start_ms=samples_to_ms(self._utterance_start)))

    def _final(self, text: str, end: int) -> None:
        if self._utterance_start is None and not text:
            self._audio.cover(end)  # nothing was said, nothing on screen
            return
        if self._utterance_start is None:
            self._open(self._audio.covered)
        assert self._utterance_start is not None
        end = max(end, self._utterance_start)
        self._events.put(SpeechEvent(
            SpeechEventKind.FINAL, text, samples_to_ms(self._utterance_start),
            samples_to_ms(end), stability=1.0, stable_chars=len(text)))
        self._audio.cover(end)
        self._utterance_start = None
        self._interim = ""
