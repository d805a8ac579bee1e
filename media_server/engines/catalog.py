"""Which engine serves what: a provider per language pair and a voice per language.

Providers are tried in the order given (the better first): the first that serves a
pair or a language is used. A pair nobody serves is refused with a clear error,
never answered with the untranslated text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from media_server.engines.translate.base import Translator
from media_server.engines.tts.base import TextToSpeech
from media_server.errors import BadRequest


@dataclass
class EngineCatalog:
    speech_languages: frozenset[str]
    translators: list[Translator]
    voices: list[TextToSpeech]

    def translator_for(self, source: str, target: str) -> Translator | None:
        return next((t for t in self.translators if (source, target) in t.pairs()), None)

    def voice_for(self, language: str) -> TextToSpeech | None:
        return next((v for v in self.voices if language in v.voices()), None)

    def check_pair(self, source: str, target: str) -> None:
        if source not in self.speech_languages:
            raise BadRequest("unsupported_language",
                             f"speech recognition does not support {source!r}")
        if source != target and self.translator_for(source, target) is None:
            served = ", ".join(f"{s}->{t}" for s, t in self.pairs()) or "none"
            raise BadRequest("unsupported_language_pair",
                             f"no translation from {source!r} to {target!r} on this server "
                             f"(available: {served})")

    def pairs(self) -> list[tuple[str, str]]:
        return sorted({pair for t in self.translators for pair in t.pairs()})

    def describe(self) -> dict[str, Any]:
        """What `GET /api/languages` and `live-interpreter languages` show."""
        voices: dict[str, dict[str, str]] = {}
        for provider in reversed(self.voices):  # the preferred provider wins
            for lang, voice in provider.voices().items():
                voices[lang] = {"provider": provider.name, "voice": voice}
        return {
            "speech": sorted(self.speech_languages),
            "translation": [
                {"source": s, "target": t, "provider": translator.name}
                for s, t in self.pairs()
                if (translator := self.translator_for(s, t)) is not None
            ],
            "voices": dict(sorted(voices.items())),
        }
