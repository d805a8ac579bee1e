"""VAD + a batch recogniser -> a streaming recogniser (the SpeechToText Protocol).

Whisper only transcribes whole clips. A stream turns it into live captions:
- the VAD opens an utterance at speech start (with a little audio before it);
- while speech goes on, the growing utterance is re-decoded every
  `interim_interval_ms` (latest-wins in the scheduler) and LocalAgreement keeps the
  agreed words of interims stable; as interim passes grow costlier (long
  utterances, a busy decoder) they are spaced further apart, so that a final never
  waits long behind one;
- at the first quiet chunk (VAD PAUSE) the utterance so far is decoded at once, as
  a final candidate (or, when the last interim already heard all of the speech and
  a final would decode it the same way, that interim is the candidate); if the
  quiet lasts to the VAD END the candidate is the final, so decoding overlaps the
  end-of-speech wait instead of following it; if speech resumes, the candidate's
  text serves as an interim;
- an utterance longer than `max_utterance_ms` is cut and a new one opens;
- while its utterance is open the stream is one of the voices the scheduler hears;
  when more speak at once than the recogniser carries, its due interims are thinned
  or paused as the scheduler says (`pacing.py`), counted, and a PACE event tells the
  speaker; finals are never left out.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from media_server.audio import STT_SAMPLE_RATE, ms_to_samples, pcm_to_float, samples_to_ms
from media_server.engines.stt.base import (
    DecodeRequest,
    InterimPace,
    SpeechEvent,
    SpeechEventKind,
    Transcript,
)
from media_server.engines.stt.decode_scheduler import DecodeScheduler
from media_server.engines.stt.local_agreement import LocalAgreement
from media_server.engines.vad.base import VadEvent, VadEventKind, VoiceActivityDetector
from media_server.metrics import INTERIMS_SKIPPED

log = logging.getLogger(__name__)

CONTEXT_CHARS = 400
# The VAD reports a START up to four 32 ms chunks after the onset it names (it waits
# for the minimum speech): the pre-roll kept between utterances must cover that.
_VAD_LAG_SAMPLES = 2048
# Interims at least this many of their recent passes apart: one stream's interims
# then keep the decoder busy at most a third of the time.
INTERIM_SPACING = 3


@dataclass(frozen=True)
class AdapterConfig:
    interim_interval_ms: int = 700
    max_utterance_ms: int = 15000
    speech_pad_ms: int = 200  # audio kept before speech start and after its end
    min_interim_ms: int = 400  # the first interim once there is this much speech


@dataclass(frozen=True)
class _Pending:
    """A result the stream yields in order: an event now, or a decode to await."""

    kind: SpeechEventKind
    start_sample: int
    end_sample: int = 0
    future: asyncio.Future[Transcript] | None = None
    pace: InterimPace | None = None  # PACE: the stream's interims from now on


class StreamAdapter:
    def __init__(
        self,
        scheduler: DecodeScheduler,
        vad_factory: Callable[[], VoiceActivityDetector],
        config: AdapterConfig,
    ) -> None:
        self.scheduler = scheduler
        self._vad_factory = vad_factory
        self._config = config
        self._ids = itertools.count(1)
        self.name = f"{scheduler.recognizer.name}+vad"

    def languages(self) -> frozenset[str]:
        return self.scheduler.recognizer.languages()

    def open_stream(
        self, language: str, sample_rate: int = STT_SAMPLE_RATE, *, model: str = "",
        failover: bool = False,
    ) -> AdaptedStream:
        """`model` and `failover` are ignored: one local recogniser serves every session,
        and it does not hang."""
        if sample_rate != STT_SAMPLE_RATE:
            raise ValueError(f"this recogniser takes {STT_SAMPLE_RATE} Hz audio")
        if language not in self.languages():
            raise ValueError(f"language {language!r} is not supported by {self.name}")
        return AdaptedStream(self.scheduler, self._vad_factory(), language=language,
                             config=self._config, key=next(self._ids))


class AdaptedStream:
    def __init__(
        self,
        scheduler: DecodeScheduler,
        vad: VoiceActivityDetector,
        *, language: str,
        config: AdapterConfig,
        key: int,
    ) -> None:
        self._scheduler = scheduler
        self._vad = vad
        self._language = language
        self._key = key
        self._interval = ms_to_samples(config.interim_interval_ms)
        self._max_utterance = ms_to_samples(config.max_utterance_ms)
        self._pad = ms_to_samples(config.speech_pad_ms)
        self._min_interim = ms_to_samples(config.min_interim_ms)
        self._audio = bytearray()
        self._audio_start = 0  # stream sample of self._audio[0]
        self._total = 0  # samples pushed so far
        self._speech_start: int | None = None  # open utterance, if any
        self._last_interim = 0
        # The open utterance's latest interim: its decode, the stream sample its audio
        # ends at, and its length in seconds.
        self._interim: tuple[asyncio.Future[Transcript], int, float] | None = None
        self._candidate: _Pending | None = None  # speculative final since the last PAUSE
        self._pending: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._context = ""  # the last finals' text, to condition the next decodes
        self._ended = False
        self._pace = InterimPace.LIVE
        self._skipped_last = False  # thinned: every other due interim is left out

    # -- audio in ---------------------------------------------------------------

    def push(self, pcm: bytes) -> None:
        if self._ended:
            return
        self._audio += pcm
        self._total += len(pcm) // 2
        for event in self._vad.feed(pcm):
            self._on_vad(event)
        if self._speech_start is None:
            self._trim()
            return
        if self._total - self._speech_start >= self._max_utterance:
            self._finish_utterance(self._total)
            self._open_utterance(self._total)
        elif self._candidate is None and self._interim_due():
            self._last_interim = self._total
            if not self._interim_allowed():
                return
            request = self._request(self._total, False)
            future = self._scheduler.submit_interim(self._key, request)
            self._interim = (future, self._total, len(request.audio) / STT_SAMPLE_RATE)
            self._queue(SpeechEventKind.INTERIM, self._total, future)

    def _interim_due(self) -> bool:
        """The first interim once there is `min_interim_ms` of speech, then every interval
        (or every few recent passes, if they take longer)."""
        assert self._speech_start is not None
        if self._last_interim <= self._speech_start:
            return self._total - self._speech_start >= self._min_interim
        spacing = ms_to_samples(round(INTERIM_SPACING * self._scheduler.interim_pass_s * 1000))
        return self._total - self._last_interim >= max(self._interval, spacing)

    def _interim_allowed(self) -> bool:
        """Whether a due interim is decoded at the pace the scheduler gives now."""
        self._set_pace(self._scheduler.interim_pace(self._key))
        if self._pace is InterimPace.LIVE:
            return True
        if self._pace is InterimPace.THINNED:
            self._skipped_last = not self._skipped_last
            if not self._skipped_last:
                return True
        INTERIMS_SKIPPED.labels(self._pace.value).inc()
        return False

    def _set_pace(self, pace: InterimPace) -> None:
        if pace is not self._pace:
            self._pace = pace
            self._skipped_last = False
            self._pending.put_nowait(_Pending(SpeechEventKind.PACE, self._total, pace=pace))

    def end(self) -> None:
        if self._ended:
            return
        if self._speech_start is not None:
            self._finish_utterance(self._total)
        self._ended = True
        self._pending.put_nowait(None)

    async def aclose(self) -> None:
        self._scheduler.cancel_stream(self._key)
        while not self._pending.empty():
            item = self._pending.get_nowait()
            if item is not None and item.future is not None:
                item.future.cancel()
        self._ended = True
        self._pending.put_nowait(None)

    # -- utterances ---------------------------------------------------------------

    def _on_vad(self, event: VadEvent) -> None:
        if event.kind is VadEventKind.START:
            self._open_utterance(event.sample)
        elif self._speech_start is None:
            return  # the utterance was cut at the length bound; its VAD tail follows
        elif event.kind is VadEventKind.PAUSE:
            self._candidate = _Pending(SpeechEventKind.FINAL, self._speech_start, event.sample,
                                       self._final_candidate(event.sample))
        elif event.kind is VadEventKind.RESUME:
            candidate = self._candidate.future if self._candidate is not None else None
            reused = self._interim is not None and candidate is self._interim[0]
            if candidate is not None and not reused:  # a reused interim is queued already
                self._queue(SpeechEventKind.INTERIM, self._total, candidate)
            self._candidate = None
            self._last_interim = self._total
        elif event.kind is VadEventKind.END:
            self._finish_utterance(event.sample)

    def _final_candidate(self, speech_end: int) -> asyncio.Future[Transcript]:
        """The last interim's decode if it heard all the speech as a final would, else a
        final's."""
        if self._interim is not None:
            future, audio_end, audio_s = self._interim
            if audio_end >= speech_end and not future.cancelled() \
                    and self._scheduler.recognizer.final_like_interim(audio_s):
                self._scheduler.keep_interim(self._key, future)
                return future
        return self._scheduler.submit_final(self._key, self._request(self._total, True))

    def _open_utterance(self, speech_start: int) -> None:
        self._scheduler.voices.started(self._key)
        self._speech_start = speech_start
        self._last_interim = speech_start  # no interim yet
        self._interim = None
        self._pending.put_nowait(_Pending(SpeechEventKind.START, speech_start))

    def _finish_utterance(self, speech_end: int) -> None:
        candidate, self._candidate = self._candidate, None
        self._scheduler.cancel_interim(self._key)
        if candidate is not None and candidate.end_sample == speech_end:
            future = candidate.future
        else:
            if candidate is not None and candidate.future is not None:
                candidate.future.cancel()
            future = self._scheduler.submit_final(self._key, self._request(speech_end, True))
        self._queue(SpeechEventKind.FINAL, speech_end, future)
        self._speech_start = None
        self._scheduler.voices.ended(self._key)
        self._set_pace(InterimPace.LIVE)  # nothing of this voice waits on the others now
        self._trim()

    def _queue(
        self, kind: SpeechEventKind, end_sample: int, future: asyncio.Future[Transcript] | None
    ) -> None:
        assert self._speech_start is not None
        self._pending.put_nowait(_Pending(kind, self._speech_start, end_sample, future))

    def _request(self, end_sample: int, final: bool) -> DecodeRequest:
        assert self._speech_start is not None
        first = max(self._speech_start - self._pad, self._audio_start)
        last = min(end_sample + self._pad, self._total)
        pcm = self._audio[(first - self._audio_start) * 2 : (last - self._audio_start) * 2]
        return DecodeRequest(pcm_to_float(bytes(pcm)), self._language, final, self._context)

    def _trim(self) -> None:
        """Between utterances keep only the pre-roll the next START may need."""
        keep = self._pad + _VAD_LAG_SAMPLES
        excess = len(self._audio) // 2 - 2 * keep
        if excess > 0:
            del self._audio[: excess * 2]
            self._audio_start += excess

    # -- events out -----------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[SpeechEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[SpeechEvent]:
        agreement = LocalAgreement()
        while (item := await self._pending.get()) is not None:
            start_ms = samples_to_ms(item.start_sample)
            end_ms = samples_to_ms(item.end_sample)
            if item.kind is SpeechEventKind.START:
                agreement = LocalAgreement()
                yield SpeechEvent(SpeechEventKind.START, start_ms=start_ms, end_ms=start_ms)
                continue
            if item.kind is SpeechEventKind.PACE:
                yield SpeechEvent(SpeechEventKind.PACE, start_ms=start_ms, end_ms=start_ms,
                                  pace=item.pace)
                continue
            assert item.future is not None
            try:
                transcript = await item.future
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # our consumer is being cancelled, not just this decode
                if item.kind is SpeechEventKind.INTERIM:
                    continue  # superseded by a newer interim or by the final
                transcript = Transcript("")  # the stream closed: end the utterance empty
            except Exception:
                log.exception("decode failed", extra={"kind": str(item.kind)})
                transcript = Transcript("")
            if item.kind is SpeechEventKind.INTERIM:
                if transcript.text:
                    text, stable = agreement.update(transcript.text)
                    yield SpeechEvent(SpeechEventKind.INTERIM, text, start_ms, end_ms,
                                      stable / max(len(text), 1), stable)
            else:
                if transcript.text:
                    # The last few sentences: enough for the 64 tokens the decoder takes.
                    self._context = f"{self._context} {transcript.text}"[-CONTEXT_CHARS:].lstrip()
                yield SpeechEvent(SpeechEventKind.FINAL, transcript.text, start_ms, end_ms, 1.0,
                                  len(transcript.text))
        yield SpeechEvent(SpeechEventKind.END, start_ms=samples_to_ms(self._total),
                          end_ms=samples_to_ms(self._total))
