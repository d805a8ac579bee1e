"""Our language codes (ISO 639-1, as sessions use them) -> the locales Google's Speech
and Text-to-Speech want. A session may also name a locale itself (`pt-PT`)."""

from __future__ import annotations

LOCALES = {
    "ar": "ar-EG", "cs": "cs-CZ", "da": "da-DK", "de": "de-DE", "el": "el-GR",
    "en": "en-US", "es": "es-ES", "fi": "fi-FI", "fr": "fr-FR", "he": "iw-IL",
    "hi": "hi-IN", "hu": "hu-HU", "id": "id-ID", "it": "it-IT", "ja": "ja-JP",
    "ko": "ko-KR", "nl": "nl-NL", "no": "nb-NO", "pl": "pl-PL", "pt": "pt-BR",
    "ro": "ro-RO", "ru": "ru-RU", "sv": "sv-SE", "th": "th-TH", "tr": "tr-TR",
    "uk": "uk-UA", "vi": "vi-VN", "zh": "cmn-Hans-CN",
}


def locale_for(language: str) -> str:
    return LOCALES.get(language, language)
