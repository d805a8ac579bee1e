"""A CTranslate2 translation model directory a user brings (`TRANSLATE_MODELS`): which
family it is, which languages it serves, and its tokenizer files, checked before
anything loads so that a broken directory stops start-up naming the file at fault.

- **Per pair** (Marian / OPUS-MT): `source.spm` and `target.spm`; the pair comes from
  `DIR=en-vi` if given, else `tokenizer_config.json`'s `source_lang`/`target_lang` (as
  Hugging Face's Marian models have it), else the directory's name (`opus-mt-en-vi`).
- **Many-to-many** (NLLB-200 / M2M-100): `sentencepiece.bpe.model` and language tokens
  in the vocabulary (`vie_Latn`, `__vi__`); every pair of the languages we know.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from media_server.engines.translate.language_codes import (
    is_language_token,
    ours_from_name,
    ours_from_token,
)
from media_server.settings import SettingsError

VOCABULARIES = (("shared_vocabulary.json",), ("shared_vocabulary.txt",),
                ("source_vocabulary.json", "target_vocabulary.json"),
                ("source_vocabulary.txt", "target_vocabulary.txt"))
MANY_TO_MANY_TOKENIZERS = ("sentencepiece.bpe.model", "sentencepiece.model", "spm.model")
TARGET_TOKEN = re.compile(r">>[a-z]{2,3}(?:_[A-Za-z]+)?<<")
PAIR_IN_NAME = re.compile(r"(?:^|[-_.])([a-z]{2,3}(?:_[A-Z]{2})?)-([a-z]{2,3}(?:_[A-Z]{2})?)$")


class ModelDirError(SettingsError):
    """A model directory that cannot be used; the message names the file at fault."""


@dataclass(frozen=True)
class ModelDir:
    path: Path
    family: Literal["per_pair", "many_to_many"]
    source_tokenizer: Path
    target_tokenizer: Path
    # Our language code -> the model's language token (many-to-many); for a per-pair
    # model, its two languages with no token.
    language_tokens: dict[str, str]
    pair: tuple[str, str] | None = None  # per pair only
    # Every language token of the vocabulary, ours or not: never part of a translation.
    all_language_tokens: frozenset[str] = frozenset()
    eos_token: str = "</s>"
    add_source_eos: bool = False  # the model adds it itself

    @property
    def name(self) -> str:
        return self.path.name

    def pairs(self) -> frozenset[tuple[str, str]]:
        if self.pair is not None:
            return frozenset({self.pair})
        return frozenset((s, t) for s in self.language_tokens for t in self.language_tokens
                         if s != t)


def _parsed(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelDirError(f"translation model: cannot read {path}: {exc}") from exc


def _json(path: Path) -> dict[str, object]:
    data = _parsed(path)
    if not isinstance(data, dict):
        raise ModelDirError(f"translation model: {path} is not a JSON object")
    return data


def _readable(path: Path) -> Path:
    try:
        with path.open("rb") as file:
            file.read(1)
    except FileNotFoundError as exc:
        raise ModelDirError(f"translation model: {path} is missing") from exc
    except OSError as exc:
        raise ModelDirError(f"translation model: cannot read {path}: {exc}") from exc
    return path


def _vocabulary(directory: Path) -> list[str]:
    for names in VOCABULARIES:
        if all((directory / name).exists() for name in names):
            path = _readable(directory / names[-1])  # the target's holds the language tokens
            if path.suffix == ".json":
                parsed = _parsed(path)
                if not isinstance(parsed, list):
                    raise ModelDirError(f"translation model: {path} is not a list of tokens")
                return [str(t) for t in parsed]
            try:
                return path.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                raise ModelDirError(f"translation model: cannot read {path}: {exc}") from exc
    raise ModelDirError(f"translation model: {directory / VOCABULARIES[0][0]} is missing "
                        "(no vocabulary file: is this a CTranslate2 model directory?)")


def _pair_of(directory: Path, given: str | None) -> tuple[str, str]:
    def ours(code: str, where: str) -> str:
        language = ours_from_name(code)
        if language is None:
            raise ModelDirError(f"translation model {directory}: {where} names a language "
                                f"we do not know ({code!r}); give the pair as {directory}=en-vi")
        return language

    if given is not None:
        source, _, target = given.partition("-")
        if not source or not target:
            raise ModelDirError(f"translation model {directory}: {given!r} is not a pair "
                                "like en-vi")
        return ours(source, "the setting"), ours(target, "the setting")
    tokenizer_config = directory / "tokenizer_config.json"
    if tokenizer_config.exists():
        config = _json(tokenizer_config)
        named = config.get("source_lang"), config.get("target_lang")
        if isinstance(named[0], str) and isinstance(named[1], str):
            return ours(named[0], str(tokenizer_config)), ours(named[1], str(tokenizer_config))
    if match := PAIR_IN_NAME.search(directory.name):
        return ours(match.group(1), "its name"), ours(match.group(2), "its name")
    raise ModelDirError(f"translation model {directory}: cannot tell which languages it "
                        f"translates (no source_lang/target_lang in tokenizer_config.json, no "
                        f"pair in its name): give them as {directory}=en-vi")


def read_model_dir(entry: str) -> ModelDir:
    """`entry` is a directory, or `DIR=SRC-TGT` for a per-pair model."""
    location, _, given = entry.partition("=")
    directory = Path(location).expanduser()
    if not directory.is_dir():
        raise ModelDirError(f"translation model: {directory} is not a directory")
    _readable(directory / "model.bin")
    config = _json(_readable(directory / "config.json"))
    vocabulary = _vocabulary(directory)
    eos = str(config.get("eos_token") or "</s>")
    add_eos = bool(config.get("add_source_eos"))
    tokens = {ours: token for token in vocabulary if (ours := ours_from_token(token))}
    every_token = frozenset(t for t in vocabulary if is_language_token(t))
    if len(tokens) >= 2:
        if given:
            raise ModelDirError(f"translation model {directory} translates between "
                                f"{len(tokens)} languages: give it without '={given}'")
        tokenizer = next((directory / n for n in MANY_TO_MANY_TOKENIZERS
                          if (directory / n).exists()), directory / MANY_TO_MANY_TOKENIZERS[0])
        _readable(tokenizer)
        return ModelDir(directory, "many_to_many", tokenizer, tokenizer, tokens,
                        all_language_tokens=every_token, eos_token=eos, add_source_eos=add_eos)
    if any(TARGET_TOKEN.fullmatch(token) for token in vocabulary):
        raise ModelDirError(f"translation model {directory} chooses its target with >>lang<< "
                            "tokens (a multi-target OPUS-MT model): not supported yet; use a "
                            "model per pair or a many-to-many one")
    pair = _pair_of(directory, given or None)
    if pair[0] == pair[1]:
        raise ModelDirError(f"translation model {directory}: {pair[0]} -> {pair[1]} is not a "
                            "pair of two languages")
    return ModelDir(directory, "per_pair", _readable(directory / "source.spm"),
                    _readable(directory / "target.spm"), {pair[0]: "", pair[1]: ""}, pair,
                    eos_token=eos, add_source_eos=add_eos)
