"""Text-to-Speech v1 `ListVoices`, `SynthesizeSpeech` and `StreamingSynthesize`, for tests.

Speech is a tone, 200 ms per word, at the requested rate: unary LINEAR16 answers
are WAV files (as Google's are), streaming answers headerless 24 kHz PCM that
arrives a chunk at a time, only for Chirp 3 HD voices (as Google's does).
"""

from __future__ import annotations

import asyncio
import io
import wave
from collections import Counter
from collections.abc import AsyncIterator

import grpc
import numpy as np
from google.cloud.texttospeech_v1.types import cloud_tts as tts

from tests.google_fake.hang import Hang

VOICES = (("en-US", "en-US-Chirp3-HD-Charon"), ("en-US", "en-US-Neural2-D"),
          ("en-US", "en-US-Standard-A"), ("pt-BR", "pt-BR-Wavenet-A"),
          ("pt-BR", "pt-BR-Standard-A"), ("pt-PT", "pt-PT-Chirp3-HD-Kore"),
          ("es-ES", "es-ES-Chirp3-HD-Charon"), ("vi-VN", "vi-VN-Standard-A"))
STREAMING_RATE = 24000
WORD_S = 0.2
CHUNK_S = 0.1
SECONDS_PER_CHUNK_SYNTHESIS = 0.03  # streaming: how long each 100 ms chunk takes to make


def tone(words: int, rate: int) -> bytes:
    t = np.arange(int(words * WORD_S * rate)) / rate
    return (np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2").tobytes()


class FakeTts:
    def __init__(self) -> None:
        self.down = False
        self.hang = Hang()  # on: calls get no answer (until the caller gives up)
        self.calls: Counter[str] = Counter()  # per method
        self.voices_used: list[str] = []

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler("google.cloud.texttospeech.v1.TextToSpeech", {
            "ListVoices": grpc.unary_unary_rpc_method_handler(
                self.list_voices, request_deserializer=tts.ListVoicesRequest.deserialize,
                response_serializer=tts.ListVoicesResponse.serialize),
            "SynthesizeSpeech": grpc.unary_unary_rpc_method_handler(
                self.synthesize_speech,
                request_deserializer=tts.SynthesizeSpeechRequest.deserialize,
                response_serializer=tts.SynthesizeSpeechResponse.serialize),
            "StreamingSynthesize": grpc.stream_stream_rpc_method_handler(
                self.streaming_synthesize,
                request_deserializer=tts.StreamingSynthesizeRequest.deserialize,
                response_serializer=tts.StreamingSynthesizeResponse.serialize)})

    async def list_voices(self, request: tts.ListVoicesRequest,
                          context: grpc.aio.ServicerContext[object, object]
                          ) -> tts.ListVoicesResponse:
        return tts.ListVoicesResponse(voices=[
            tts.Voice(language_codes=[code], name=name, natural_sample_rate_hertz=24000)
            for code, name in VOICES])

    async def _check(self, voice: str, method: str,
                     context: grpc.aio.ServicerContext[object, object]) -> None:
        self.calls[method] += 1
        self.voices_used.append(voice)
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "injected failure")
        await self.hang.wait()
        if voice not in {name for _, name in VOICES}:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown voice {voice}")

    async def synthesize_speech(self, request: tts.SynthesizeSpeechRequest,
                                context: grpc.aio.ServicerContext[object, object]
                                ) -> tts.SynthesizeSpeechResponse:
        await self._check(request.voice.name, "SynthesizeSpeech", context)
        if request.audio_config.audio_encoding != tts.AudioEncoding.LINEAR16:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "only LINEAR16 here")
        rate = request.audio_config.sample_rate_hertz or 24000
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(tone(len(request.input.text.split()), rate))
        return tts.SynthesizeSpeechResponse(audio_content=out.getvalue())

    async def streaming_synthesize(
        self, requests: AsyncIterator[tts.StreamingSynthesizeRequest],
        context: grpc.aio.ServicerContext[object, object],
    ) -> AsyncIterator[tts.StreamingSynthesizeResponse]:
        first = await anext(aiter(requests))
        voice = first.streaming_config.voice.name
        await self._check(voice, "StreamingSynthesize", context)
        if "Chirp3-HD" not in voice:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "streaming synthesis needs a Chirp 3 HD voice")
        chunk = int(CHUNK_S * STREAMING_RATE) * 2
        async for request in requests:
            pcm = tone(len(request.input.text.split()), STREAMING_RATE)
            for at in range(0, len(pcm), chunk):
                await asyncio.sleep(SECONDS_PER_CHUNK_SYNTHESIS)
                yield tts.StreamingSynthesizeResponse(audio_content=pcm[at:at + chunk])
