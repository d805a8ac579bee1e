"""Speech-to-Text v2 `StreamingRecognize` as Google serves it, for tests.

It enforces what Google enforces (a config first, at most 25,600 bytes of audio per
request, audio no faster than real time, a stream duration limit) and recognises
for real: Silero finds speech (voice activity events, endpointing by the requested
sensitivity), Whisper turns it into interim and final results with offsets from
the stream's start. Faults are injected through `faults`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import grpc
from google.cloud.speech_v2.types import cloud_speech as speech

from media_server.audio import pcm_to_float
from media_server.engines.stt.base import BatchRecognizer, DecodeRequest
from media_server.engines.vad.silero_onnx import SileroOnnx, load_session
from tests.google_fake.hang import Hang

MAX_REQUEST_BYTES = 25600
TOO_FAST_TOLERANCE_MS = 2500  # a stream may start with this much buffered audio
# Speech-to-Text v2's models; the Chirp ones exist in regional locations only.
MODELS = frozenset({"long", "short", "telephony", "latest_long", "latest_short",
                    "medical_dictation", "medical_conversation", "chirp_2", "chirp_3"})
RATE = 16000
VAD_CHUNK = 512
INTERIM_EVERY_MS = 1000  # Whisper on 2 shared cores: more would fall behind
_Sensitivity = speech.StreamingRecognitionFeatures.EndpointingSensitivity
ENDPOINT_SILENCE_MS = {_Sensitivity.ENDPOINTING_SENSITIVITY_SUPERSHORT: 300,
                       _Sensitivity.ENDPOINTING_SENSITIVITY_SHORT: 500}
STANDARD_SILENCE_MS = 900
_Event = speech.StreamingRecognizeResponse.SpeechEventType


@dataclass
class SpeechFaults:
    abort_streams: int = 0  # the next N streams are aborted with `abort_code`...
    abort_after_ms: int = 0  # ...once they have heard this much audio (0: at once)
    abort_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    stall_after_ms: int = 0  # once: stop answering after this much audio (0: never)
    hang: Hang = field(default_factory=Hang)  # on: streams answer nothing and never end
    max_stream_s: float = 305.0


@dataclass
class StreamRecord:
    recognizer: str
    config: speech.StreamingRecognitionConfig
    audio_ms: int = 0
    max_request_bytes: int = 0
    max_ahead_ms: float = 0.0
    outcome: str = "open"
    finals: list[str] = field(default_factory=list)
    final_sent_at: list[float] = field(default_factory=list)  # time.monotonic()


def _ms(samples: int) -> timedelta:
    return timedelta(milliseconds=samples * 1000 // RATE)


class FakeSpeech:
    def __init__(self, recognizer: BatchRecognizer) -> None:
        self._recognizer = recognizer
        self._vad_session = load_session()
        self.faults = SpeechFaults()
        self.streams: list[StreamRecord] = []
        self.refused = 0  # streams refused for their model, as Google does

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler("google.cloud.speech.v2.Speech", {
            "StreamingRecognize": grpc.stream_stream_rpc_method_handler(
                self.streaming_recognize,
                request_deserializer=speech.StreamingRecognizeRequest.deserialize,
                response_serializer=speech.StreamingRecognizeResponse.serialize)})

    async def _decode(self, audio: bytes, language: str, final: bool) -> str:
        [result] = await asyncio.to_thread(self._recognizer.transcribe, [
            DecodeRequest(pcm_to_float(audio), language.split("-")[0], final)])
        return result.text.strip()

    async def streaming_recognize(
        self, requests: AsyncIterator[speech.StreamingRecognizeRequest],
        context: grpc.aio.ServicerContext[speech.StreamingRecognizeRequest,
                                          speech.StreamingRecognizeResponse],
    ) -> AsyncIterator[speech.StreamingRecognizeResponse]:
        first = await anext(aiter(requests))
        config = first.streaming_config
        decoding = config.config.explicit_decoding_config
        if not first.recognizer.startswith("projects/") or "/recognizers/" not in \
                first.recognizer or decoding.sample_rate_hertz != RATE or \
                decoding.encoding != speech.ExplicitDecodingConfig.AudioEncoding.LINEAR16 \
                or not config.config.language_codes:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "the first request must name a recognizer and a LINEAR16 16 kHz "
                                "config with a language")
        model = config.config.model
        if model not in MODELS or (model.startswith("chirp")
                                   and "/locations/global/" in first.recognizer):
            # What Google says of a model it does not have (there): the caller's error.
            self.refused += 1
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f'The model "{model}" does not exist in the location named '
                                f'"{first.recognizer.split("/")[3]}".')
        record = StreamRecord(first.recognizer, config)
        self.streams.append(record)
        faults = self.faults
        abort_at_ms: int | None = None
        if faults.abort_streams > 0:
            faults.abort_streams -= 1
            abort_at_ms = faults.abort_after_ms
        stall_at_ms, faults.stall_after_ms = faults.stall_after_ms or None, 0
        if abort_at_ms == 0:
            record.outcome = f"aborted {faults.abort_code.name}"
            await context.abort(faults.abort_code, "injected failure")

        opened = time.monotonic()
        received: asyncio.Queue[bytes | tuple[grpc.StatusCode, str] | None] = asyncio.Queue()

        async def read() -> None:
            """Check each request as it arrives (decoding may lag behind)."""
            async for request in requests:
                size = len(request.audio)
                record.max_request_bytes = max(record.max_request_bytes, size)
                record.audio_ms += size // 2 * 1000 // RATE
                age = time.monotonic() - opened
                record.max_ahead_ms = max(record.max_ahead_ms, record.audio_ms - age * 1000)
                if size > MAX_REQUEST_BYTES:
                    await received.put((grpc.StatusCode.INVALID_ARGUMENT, (
                        f"Request audio can be a maximum of {MAX_REQUEST_BYTES} bytes")))
                    return
                if record.audio_ms - age * 1000 > TOO_FAST_TOLERANCE_MS:
                    await received.put((grpc.StatusCode.INVALID_ARGUMENT, (
                        "Audio data is being streamed too fast. Please stream audio data "
                        "approximately at real time.")))
                    return
                if age > faults.max_stream_s:
                    await received.put((grpc.StatusCode.OUT_OF_RANGE, (
                        "Exceeded maximum allowed stream duration of "
                        f"{faults.max_stream_s:g} seconds.")))
                    return
                if abort_at_ms is not None and record.audio_ms >= abort_at_ms:
                    await received.put((faults.abort_code, "injected failure"))
                    return
                await received.put(request.audio)
            await received.put(None)

        reader = asyncio.create_task(read())
        language = config.config.language_codes[0]
        endpoint = ENDPOINT_SILENCE_MS.get(config.streaming_features.endpointing_sensitivity,
                                           STANDARD_SILENCE_MS) * RATE // 1000
        interims = config.streaming_features.interim_results
        vad = SileroOnnx(self._vad_session)
        audio = bytearray()
        scanned = 0  # samples the VAD has looked at
        utterance: int | None = None  # first sample of the open utterance
        speech_end = 0
        last_interim = 0
        interim: asyncio.Future[tuple[str, int]] | None = None
        try:
            while True:
                item = await received.get()
                if isinstance(item, tuple):
                    code, message = item
                    record.outcome = f"aborted {code.name}"
                    await context.abort(code, message)
                if item is None:
                    break
                audio += item
                if faults.hang.on:
                    record.outcome = "hung"
                    continue
                if stall_at_ms is not None and record.audio_ms >= stall_at_ms:
                    record.outcome = "stalled"
                    continue  # keeps reading, never answers again
                while scanned + VAD_CHUNK <= len(audio) // 2:
                    chunk = pcm_to_float(bytes(audio[scanned * 2:(scanned + VAD_CHUNK) * 2]))
                    voiced = vad.probability(chunk) >= SileroOnnx.default_threshold
                    scanned += VAD_CHUNK
                    if voiced:
                        speech_end = scanned
                        if utterance is None:
                            utterance = last_interim = max(0, scanned - 2 * VAD_CHUNK)
                            yield speech.StreamingRecognizeResponse(
                                speech_event_type=_Event.SPEECH_ACTIVITY_BEGIN,
                                speech_event_offset=_ms(utterance))
                    elif utterance is not None and scanned - speech_end >= endpoint:
                        yield speech.StreamingRecognizeResponse(
                            speech_event_type=_Event.SPEECH_ACTIVITY_END,
                            speech_event_offset=_ms(speech_end))
                        if interim is not None:
                            interim.cancel()
                            interim = None
                        yield await self._final(record, audio, start=utterance, end=speech_end,
                                                language=language)
                        utterance = None
                if interim is not None and interim.done():  # sent once decoded
                    text, end = interim.result()
                    interim = None
                    if text and utterance is not None:
                        yield _interim(text, end)
                if interims and interim is None and utterance is not None and \
                        scanned - last_interim >= INTERIM_EVERY_MS * RATE // 1000:
                    # Decoded aside, so that voice activity is reported without delay.
                    last_interim = scanned
                    interim = asyncio.ensure_future(self._decode_until(
                        bytes(audio[utterance * 2:scanned * 2]), language, scanned))
            if record.outcome in ("stalled", "hung"):  # what it was stays on the record
                await faults.hang.wait()  # not even the end of the audio gets an answer
                return
            if utterance is not None:  # half-closed mid-utterance
                yield await self._final(record, audio, start=utterance, end=len(audio) // 2,
                                        language=language)
            record.outcome = "completed"
        finally:
            reader.cancel()
            if interim is not None:
                interim.cancel()

    async def _decode_until(self, audio: bytes, language: str, end: int) -> tuple[str, int]:
        return await self._decode(audio, language, final=False), end

    async def _final(self, record: StreamRecord, audio: bytearray, *, start: int, end: int,
                     language: str) -> speech.StreamingRecognizeResponse:
        text = await self._decode(bytes(audio[start * 2:end * 2]), language, final=True)
        record.finals.append(text)
        record.final_sent_at.append(time.monotonic())
        return speech.StreamingRecognizeResponse(results=[speech.StreamingRecognitionResult(
            alternatives=[speech.SpeechRecognitionAlternative(transcript=text, confidence=0.9)],
            is_final=True, stability=0.0, result_end_offset=_ms(end), language_code="en-us")])


def _interim(text: str, end: int) -> speech.StreamingRecognizeResponse:
    """Like Google: a settled part (high stability) and a part still moving."""
    words = text.split()
    settled = len(words) * 2 // 3
    parts = [(" ".join(words[:settled]), 0.9), (" " + " ".join(words[settled:]), 0.05)]
    return speech.StreamingRecognizeResponse(results=[
        speech.StreamingRecognitionResult(
            alternatives=[speech.SpeechRecognitionAlternative(transcript=part)],
            stability=stability, result_end_offset=_ms(end))
        for part, stability in parts if part.strip()])
