"""Settings: environment variables `LIVE_INTERPRETER_<NAME>`, optionally a TOML file.

Precedence: environment > TOML file (`LIVE_INTERPRETER_CONFIG`) > defaults.
The TOML file uses the lower-case field names, e.g. `port = 9000`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "LIVE_INTERPRETER_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "live-interpreter")


@dataclass(frozen=True)
class Settings:
    """Every setting of the server. Each field is documented in the README."""

    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    log_format: str = "text"  # "text" or "json"
    data_dir: str = field(default_factory=_default_data_dir)

    # Speech-to-text (local Whisper through CTranslate2).
    stt_model_dir: str = ""  # empty: the Whisper base weights shipped by pip packages
    stt_threads: int = 2
    stt_beam_size: int = 1
    stt_batch_size: int = 4
    stt_interim_interval_ms: int = 700
    stt_max_utterance_ms: int = 15000
    stt_default_language: str = "en"

    # Voice activity detection (Silero).
    vad_provider: str = "silero-onnx"  # or "silero-ggml"
    vad_threshold: float = 0.0  # 0: the provider's calibrated threshold
    vad_min_silence_ms: int = 300
    vad_speech_pad_ms: int = 200

    # Translation and speech.
    translation_cache_ttl_s: float = 30.0
    interim_translation_interval_ms: int = 300
    tts_clip_gap_ms: int = 300
    tts_max_delay_s: float = 10.0  # a clip that would start later than this is dropped

    # Capacity and limits.
    max_speakers: int = 4
    max_sessions: int = 200
    max_body_bytes: int = 64 * 1024
    max_message_bytes: int = 4096

    # Peer lifecycle.
    peer_idle_timeout_s: float = 4.0
    offer_timeout_s: float = 30.0
    ice_host_addresses: tuple[str, ...] = ()
    stun_urls: tuple[str, ...] = ()

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        config_path = env.get(ENV_PREFIX + "CONFIG")
        if config_path:
            try:
                values.update(tomllib.loads(Path(config_path).read_text()))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise SettingsError(f"cannot read config file {config_path}: {exc}") from exc
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = raw
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        parsed = {name: _coerce(name, known[name].type, value) for name, value in values.items()}
        settings = cls(**parsed)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.log_format not in ("text", "json"):
            raise SettingsError("log_format must be 'text' or 'json'")
        if self.vad_provider not in ("silero-onnx", "silero-ggml"):
            raise SettingsError("vad_provider must be 'silero-onnx' or 'silero-ggml'")
        if not 0.0 <= self.vad_threshold < 1.0:
            raise SettingsError("vad_threshold must be between 0 and 1")
        for name in ("port", "stt_threads", "stt_beam_size", "stt_batch_size", "max_speakers",
                     "max_body_bytes", "max_message_bytes", "stt_interim_interval_ms",
                     "stt_max_utterance_ms", "vad_min_silence_ms"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be positive")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, type_name: Any, value: Any) -> Any:
    """Turn an environment string (or a TOML value) into the field's type."""
    kind = str(type_name)
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind.startswith("tuple"):
            if isinstance(value, list | tuple):
                return tuple(str(v) for v in value)
            return tuple(part.strip() for part in str(value).split(",") if part.strip())
        return str(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name}: cannot use {value!r} ({exc})") from exc
