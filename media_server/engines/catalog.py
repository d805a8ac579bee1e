"""Which engine serves what: the speech recogniser (itself a failover chain when
several are configured), a chain of providers per language pair and per voice
language, in the order configured (the preferred first), with failover along the
chain and the translation cache in front of it. A pair nobody serves is refused
with a clear error, never answered with the untranslated text.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from cache.base import TranslationCache
from cache.translations import in_memory_cache
from media_server.engines.health import Deadlines, HealthBoard, ProviderHealth
from media_server.engines.stt.base import SpeechToText
from media_server.engines.translate.base import Translator
from media_server.engines.translate.cached import CachedTranslator
from media_server.engines.translate.fallback import FallbackTranslator
from media_server.engines.tts.base import TextToSpeech
from media_server.engines.tts.fallback import FallbackTts
from media_server.errors import BadRequest
from media_server.settings import Settings


def _default_deadlines(kind: str) -> Deadlines:
    return Deadlines(*Settings().deadlines(kind))


def _translator_probe(translator: Translator) -> Callable[[], Awaitable[None]]:
    async def probe() -> None:
        source, target = min(translator.pairs())
        await translator.translate(["Hello."], source, target)
    return probe


def _voice_probe(voice: TextToSpeech) -> Callable[[], Awaitable[None]]:
    async def probe() -> None:
        async for _ in voice.synthesize("Hello.", min(voice.voices())):
            pass
    return probe


@dataclass
class EngineCatalog:
    stt: SpeechToText
    translators: list[Translator]
    voices: list[TextToSpeech]
    board: HealthBoard = field(default_factory=HealthBoard)
    cache: TranslationCache = field(default_factory=in_memory_cache)
    translate_deadlines: Deadlines = field(default_factory=lambda: _default_deadlines("translate"))
    tts_deadlines: Deadlines = field(default_factory=lambda: _default_deadlines("tts"))

    def __post_init__(self) -> None:
        self._health: dict[int, ProviderHealth] = {}
        for translator in self.translators:
            self._health[id(translator)] = self.board.register(
                "translate", translator.name, _translator_probe(translator))
        for voice in self.voices:
            self._health[id(voice)] = self.board.register("tts", voice.name, _voice_probe(voice))
        self._translator_chains: dict[tuple[str, str], Translator] = {}
        self._voice_chains: dict[str, TextToSpeech] = {}

    @functools.cached_property
    def speech_languages(self) -> frozenset[str]:
        """What the recogniser hears (fixed once loaded: asked once, not per pair)."""
        return self.stt.languages()

    def translator_for(self, source: str, target: str) -> Translator | None:
        chain = self._translator_chains.get((source, target))
        if chain is None:
            serving = [t for t in self.translators if (source, target) in t.pairs()]
            if not serving:
                return None
            fallback = FallbackTranslator([(t, self._health[id(t)]) for t in serving],
                                          self.translate_deadlines)
            chain = self._translator_chains[(source, target)] = CachedTranslator(
                fallback, self.cache)
        return chain

    def use_cache(self, cache: TranslationCache) -> None:
        """Put another cache in front of every translator (the process's Redis, say)."""
        self.cache = cache
        self._translator_chains.clear()  # rebuilt on next use, with this cache

    def voice_for(self, language: str) -> TextToSpeech | None:
        chain = self._voice_chains.get(language)
        if chain is None:
            serving = [v for v in self.voices if language in v.voices()]
            if not serving:
                return None
            chain = self._voice_chains[language] = FallbackTts(
                [(v, self._health[id(v)]) for v in serving], self.tts_deadlines)
        return chain

    def check_pair(self, source: str, target: str) -> None:
        if source not in self.speech_languages:
            raise BadRequest("unsupported_language",
                             f"speech recognition does not support {source!r}")
        if source != target and self.translator_for(source, target) is None:
            targets = ", ".join(sorted(self.targets(source))) or "none"
            raise BadRequest("unsupported_language_pair",
                             f"no translation from {source!r} to {target!r} on this server "
                             f"(from {source!r}: {targets})")

    def check_languages(self, source: str, target: str, speak: bool) -> None:
        """A speaker reads their own words in `target` too, so the pair must exist; a
        listener only needs `target` to be something this server produces."""
        if speak:
            self.check_pair(source, target)
            return
        readable = set(self.speech_languages).union(
            *(self.targets(s) for s in self.speech_languages))
        if target not in readable:
            raise BadRequest("unsupported_language",
                             f"nothing on this server produces captions in {target!r}")

    def targets(self, source: str) -> set[str]:
        return {t for translator in self.translators for s, t in translator.pairs()
                if s == source}

    def describe(self) -> dict[str, Any]:
        """What `GET /api/languages` and `live-interpreter languages` show: per spoken
        language, the languages it translates into and the preferred provider."""
        translation: dict[str, dict[str, str]] = {}
        for translator in reversed(self.translators):  # the preferred provider wins
            for source, target in translator.pairs():
                if source in self.speech_languages:
                    translation.setdefault(source, {})[target] = translator.name
        voices: dict[str, dict[str, str]] = {}
        for provider in reversed(self.voices):
            for lang, voice in provider.voices().items():
                voices[lang] = {"provider": provider.name, "voice": voice}
        return {
            "speech": sorted(self.speech_languages),
            "translation": {s: dict(sorted(t.items())) for s, t in sorted(translation.items())},
            "voices": dict(sorted(voices.items())),
        }
