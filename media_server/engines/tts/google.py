"""Google Cloud Text-to-Speech v1 through the shared async client.

Voices that stream (Chirp 3 HD) use `StreamingSynthesize`, so the first audio comes
while the rest of the sentence is still being synthesised (headerless 24 kHz PCM);
others use `SynthesizeSpeech` to LINEAR16 at the return track's rate (a WAV).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import cast

import grpc
from google.api_core import exceptions
from google.cloud import texttospeech_v1 as tts
from google.cloud.texttospeech_v1 import TextToSpeechAsyncClient

from media_server.engines.google_languages import locale_for
from media_server.engines.tts.base import PcmChunk, SynthesisFailed, pcm_from_wav

log = logging.getLogger(__name__)

STREAMING_RATE = 24000
# Best first: the first family a language has is its default voice.
_FAMILIES = ("Chirp3-HD", "Neural2", "Wavenet", "Standard")


def streams(voice: str) -> bool:
    return "Chirp3-HD" in voice


def pick_voices(available: list[tts.Voice], overrides: Mapping[str, str]) -> dict[str, str]:
    """A voice per language: the override, else the best family in the language's locale."""
    by_locale: dict[str, list[str]] = {}
    for voice in available:
        for code in voice.language_codes:
            by_locale.setdefault(code, []).append(voice.name)
    languages = {code.split("-")[0] for code in by_locale} | set(overrides)
    chosen: dict[str, str] = {}
    for lang in sorted(languages):
        if lang in overrides:
            chosen[lang] = overrides[lang]
            continue
        locale = locale_for(lang)
        names = by_locale.get(locale) or next(
            (v for k, v in sorted(by_locale.items()) if k.split("-")[0] == lang), [])
        ranked = sorted(names, key=lambda n: next(
            (i for i, family in enumerate(_FAMILIES) if family in n), len(_FAMILIES)))
        if ranked:
            chosen[lang] = ranked[0]
    return chosen


class GoogleTts:
    name = "google"

    def __init__(
        self, client: TextToSpeechAsyncClient, overrides: Mapping[str, str],
        *, sample_rate: int = 48000, timeout_s: float = 5.0,
    ) -> None:
        self._client = client
        self._overrides = dict(overrides)
        self._rate = sample_rate
        self._timeout = timeout_s
        self._voices: dict[str, str] = {}

    async def load_voices(self) -> None:
        response = await self._client.list_voices(timeout=self._timeout)
        self._voices = pick_voices(list(response.voices), self._overrides)
        log.info("Google voices loaded", extra={"languages": len(self._voices)})

    def voices(self) -> dict[str, str]:
        return dict(self._voices)

    def _selection(self, language: str) -> tts.VoiceSelectionParams:
        name = self._voices[language]
        return tts.VoiceSelectionParams(language_code="-".join(name.split("-")[:2]), name=name)

    async def synthesize(self, text: str, language: str) -> AsyncIterator[PcmChunk]:
        voice = self._selection(language)
        try:
            if streams(voice.name):
                async for chunk in self._streaming(text, voice):
                    yield chunk
            else:
                yield await self._whole(text, voice)
        except (exceptions.GoogleAPICallError, TimeoutError) as exc:
            raise SynthesisFailed(f"Google synthesis failed: {exc!r}") from exc

    async def _whole(self, text: str, voice: tts.VoiceSelectionParams) -> PcmChunk:
        response = await self._client.synthesize_speech(
            input=tts.SynthesisInput(text=text), voice=voice,
            audio_config=tts.AudioConfig(audio_encoding=tts.AudioEncoding.LINEAR16,
                                         sample_rate_hertz=self._rate),
            timeout=self._timeout)
        return pcm_from_wav(response.audio_content)

    async def _streaming(
        self, text: str, voice: tts.VoiceSelectionParams
    ) -> AsyncIterator[PcmChunk]:
        async def requests() -> AsyncIterator[tts.StreamingSynthesizeRequest]:
            yield tts.StreamingSynthesizeRequest(streaming_config=tts.StreamingSynthesizeConfig(
                voice=voice, streaming_audio_config=tts.StreamingAudioConfig(
                    audio_encoding=tts.AudioEncoding.PCM, sample_rate_hertz=STREAMING_RATE)))
            yield tts.StreamingSynthesizeRequest(input=tts.StreamingSynthesisInput(text=text))

        responses = await self._client.streaming_synthesize(requests=requests())
        iterator = aiter(responses)
        carry = b""
        try:
            while True:
                try:  # the deadline is per chunk: a long sentence may take longer in all
                    async with asyncio.timeout(self._timeout):
                        response = await anext(iterator)
                except StopAsyncIteration:
                    return
                pcm = carry + response.audio_content
                cut = len(pcm) - len(pcm) % 2  # chunks may split a sample
                carry = pcm[cut:]
                if cut:
                    yield PcmChunk(pcm[:cut], STREAMING_RATE)
        finally:
            cast(grpc.aio.Call, responses).cancel()  # a timeout or an early stop ends the call
