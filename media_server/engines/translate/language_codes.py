"""The language codes of translation models, mapped to ours (Whisper's, ISO 639-1 where
one exists): NLLB-200's FLORES-200 codes (`vie_Latn`), M2M-100's tokens (`__vi__`) and
the ISO 639-3 codes some OPUS-MT models are named with (`opus-mt-eng-vie`)."""

from __future__ import annotations

import re

# Ours -> FLORES-200, for the languages Whisper recognises that NLLB-200 translates.
FLORES = {
    "af": "afr_Latn", "am": "amh_Ethi", "ar": "arb_Arab", "as": "asm_Beng",
    "az": "azj_Latn", "ba": "bak_Cyrl", "be": "bel_Cyrl", "bg": "bul_Cyrl",
    "bn": "ben_Beng", "bo": "bod_Tibt", "bs": "bos_Latn", "ca": "cat_Latn",
    "cs": "ces_Latn", "cy": "cym_Latn", "da": "dan_Latn", "de": "deu_Latn",
    "el": "ell_Grek", "en": "eng_Latn", "es": "spa_Latn", "et": "est_Latn",
    "eu": "eus_Latn", "fa": "pes_Arab", "fi": "fin_Latn", "fo": "fao_Latn",
    "fr": "fra_Latn", "gl": "glg_Latn", "gu": "guj_Gujr", "ha": "hau_Latn",
    "he": "heb_Hebr", "hi": "hin_Deva", "hr": "hrv_Latn", "ht": "hat_Latn",
    "hu": "hun_Latn", "hy": "hye_Armn", "id": "ind_Latn", "is": "isl_Latn",
    "it": "ita_Latn", "ja": "jpn_Jpan", "jw": "jav_Latn", "ka": "kat_Geor",
    "kk": "kaz_Cyrl", "km": "khm_Khmr", "kn": "kan_Knda", "ko": "kor_Hang",
    "lb": "ltz_Latn", "ln": "lin_Latn", "lo": "lao_Laoo", "lt": "lit_Latn",
    "lv": "lvs_Latn", "mi": "mri_Latn", "mk": "mkd_Cyrl", "ml": "mal_Mlym",
    "mn": "khk_Cyrl", "mr": "mar_Deva", "ms": "zsm_Latn", "mt": "mlt_Latn",
    "my": "mya_Mymr", "ne": "npi_Deva", "nl": "nld_Latn", "nn": "nno_Latn",
    "no": "nob_Latn", "oc": "oci_Latn", "pa": "pan_Guru", "pl": "pol_Latn",
    "ps": "pbt_Arab", "pt": "por_Latn", "ro": "ron_Latn", "ru": "rus_Cyrl",
    "sa": "san_Deva", "sd": "snd_Arab", "si": "sin_Sinh", "sk": "slk_Latn",
    "sl": "slv_Latn", "sn": "sna_Latn", "so": "som_Latn", "sr": "srp_Cyrl",
    "su": "sun_Latn", "sv": "swe_Latn", "sw": "swh_Latn", "ta": "tam_Taml",
    "te": "tel_Telu", "tg": "tgk_Cyrl", "th": "tha_Thai", "tk": "tuk_Latn",
    "tl": "tgl_Latn", "tr": "tur_Latn", "tt": "tat_Cyrl", "uk": "ukr_Cyrl",
    "ur": "urd_Arab", "uz": "uzn_Latn", "vi": "vie_Latn", "yi": "ydd_Hebr",
    "yo": "yor_Latn", "zh": "zho_Hans",
}
_FROM_FLORES = {flores: ours for ours, flores in FLORES.items()}
# ISO 639-3 (the FLORES code's first part) -> ours; a few macrolanguages by their usual code.
_FROM_ISO3 = {flores[:3]: ours for ours, flores in FLORES.items()} | {
    "ara": "ar", "fas": "fa", "msa": "ms", "zho": "zh", "swa": "sw", "nor": "no",
    "est": "et", "lav": "lv", "aze": "az", "uzb": "uz", "mon": "mn", "nep": "ne",
    "pus": "ps", "yid": "yi", "jav": "jw"}
# Where M2M-100 and Whisper name a language differently.
_M2M_ALIASES = {"jv": "jw"}

NLLB_TOKEN = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}")
M2M_TOKEN = re.compile(r"__([a-z]{2,3})__")


def is_language_token(token: str) -> bool:
    return bool(NLLB_TOKEN.fullmatch(token) or M2M_TOKEN.fullmatch(token))


def ours_from_token(token: str) -> str | None:
    """Our code for a many-to-many model's language token, or None (a language we do
    not know, or no language token at all)."""
    if NLLB_TOKEN.fullmatch(token):
        return _FROM_FLORES.get(token)
    if match := M2M_TOKEN.fullmatch(token):
        code = match.group(1)
        return _M2M_ALIASES.get(code, code)
    return None


def ours_from_name(code: str) -> str | None:
    """Our code for a language as a model's name or config gives it (`vi`, `vie`,
    `pt_BR`), or None."""
    base = re.split(r"[-_]", code.lower())[0]
    if re.fullmatch(r"[a-z]{2}", base):
        return base
    return _FROM_ISO3.get(base)
