"""Settings: environment variables `LIVE_INTERPRETER_<NAME>`, optionally a TOML file.

Precedence: environment > TOML file (`LIVE_INTERPRETER_CONFIG`) > defaults.
The TOML file uses the lower-case field names, e.g. `port = 9000`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from media_server.protocol import INTERPRETATIONS

ENV_PREFIX = "LIVE_INTERPRETER_"
PROVIDERS = frozenset({"local", "google"})


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "live-interpreter")


# Secrets a setting may hold: checked at start, never a placeholder or short.
SECRETS = ("auth_secret", "turn_secret", "node_secret", "metrics_token")
MIN_SECRET_BYTES = 32
PLACEHOLDERS = ("change-me", "changeme", "change_me", "replace-with", "replace_with",
                "replace-me", "your-secret", "example", "placeholder", "password")

# Caps that may be `none` (held as 0: no cap); `auto`, their word in earlier releases,
# means the same now.
UNCAPPED = frozenset({"max_speakers"})
UNCAPPED_WORDS = frozenset({"none", "auto"})

# Settings that were replaced, with what to set instead.
RENAMED = {
    "google_timeout_s": "deadlines belong to each kind's provider chain now: set "
                        "translate_attempt_s / translate_budget_s and tts_attempt_s / tts_budget_s",
}


@dataclass(frozen=True)
class Settings:
    """Every setting of the server. Each field is documented in the README."""

    host: str = "127.0.0.1"
    port: int = 8080
    log_level: str = "INFO"
    log_format: str = "text"  # "text" or "json"
    data_dir: str = field(default_factory=_default_data_dir)

    # Providers per kind, in failover order: "local", "google" or e.g. "google,local".
    stt: tuple[str, ...] = ("local",)
    translate: tuple[str, ...] = ("local",)
    tts: tuple[str, ...] = ("local",)
    engine_probe_interval_s: float = 30.0  # how often a failed provider is tried again
    # Deadlines, owned by each kind's provider chain: one provider's try (its own
    # retries inside), then the next; the budget bounds the whole call.
    translate_attempt_s: float = 2.0
    translate_budget_s: float = 5.0
    tts_attempt_s: float = 3.0  # to a voice's first audio, and between its chunks
    tts_budget_s: float = 8.0  # to a clip's first audio, across voices

    # Google Cloud (Speech-to-Text v2, Translation v3, Text-to-Speech v1).
    google_project: str = ""
    google_location: str = "global"  # Speech and Translation location
    google_credentials: str = ""  # a service-account key file; empty: Application Default
    google_endpoint: str = ""  # host:port of a plaintext gRPC endpoint (emulators, tests)
    google_stt_model: str = "long"  # the default...
    # ...and what a session may ask for instead (`stt_model`): anything else is a 400.
    google_stt_models: tuple[str, ...] = ("long", "short", "telephony", "latest_long",
                                          "latest_short")
    google_stt_endpointing: str = "short"  # "standard", "short" or "supershort"
    google_stt_restart_s: float = 240.0  # restart streams at a quiet point after this
    google_stt_max_stream_s: float = 290.0  # ...and anyhow by this (Google stops at ~305 s)
    google_stt_retries: int = 3  # restarts after transient errors before failing over
    google_stt_stall_timeout_s: float = 5.0  # no result this long during speech: a failure
    google_voices: tuple[str, ...] = ()  # "lang=voice-name" overrides, e.g. "pt=pt-BR-Wavenet-A"

    # Speech-to-text (local Whisper through CTranslate2).
    # CTranslate2 Whisper directories: DIR serves every language (empty: the Whisper
    # base weights shipped by pip packages), LANG=DIR one language, e.g.
    # "/models/whisper-small,vi=/models/whisper-medium".
    stt_model_dir: tuple[str, ...] = ()
    # A CTranslate2 Whisper directory for `en` speakers only (an English-only model,
    # say); the same as `en=DIR` in stt_model_dir.
    stt_english_model_dir: str = ""
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

    # Translation models a user brings: CTranslate2 directories (OPUS-MT per pair, as
    # DIR or DIR=en-vi; NLLB-200 / M2M-100 many-to-many), before the packaged ones.
    translate_models: tuple[str, ...] = ()
    translate_model_threads: int = 2  # compute threads of the one worker that runs them

    # Translation and speech.
    translation_cache_ttl_s: float = 30.0
    interim_translation_interval_ms: int = 300
    tts_clip_gap_ms: int = 300
    tts_max_delay_s: float = 10.0  # a clip starting later than this is cut by the excess
    # How spoken translation is heard unless a session asks otherwise.
    interpretation: str = "simultaneous"  # or "consecutive"

    # History (finals and translations) and its retention.
    database_url: str = ""  # postgresql://...; empty: SQLite under data_dir
    store_memory_limit: int = 10_000  # finals kept in memory while the database is down
    retention_days: float = 30.0  # 0 keeps everything

    # Translation cache and ephemeral session state.
    redis_url: str = ""  # redis://...; empty: in this process's memory
    session_grace_s: float = 30.0  # a dropped session can be resumed this long

    # Scale-out (`live-interpreter media` / `signaling`; see the README).
    node_id: str = ""  # this media node's name; empty: the host name
    node_url: str = ""  # where signaling reaches this node; empty: http://<host>:<port>
    heartbeat_interval_s: float = 2.0  # how often a media node tells Redis it is alive...
    node_ttl_s: float = 6.0  # ...and how long after its last beat it counts as gone
    drain_timeout_s: float = 600.0  # on SIGTERM, how long sessions may go on before closing

    # Prometheus metrics: on the main port, or (port set) on a listener of their own.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0

    # Capacity and limits.
    # An operator's cap on speaking sessions; 0 (`none`): everyone may speak (admission
    # bounds calls by the voices the recogniser carries at once, not speakers).
    max_speakers: int = 0
    max_sessions: int = 200
    max_room_participants: int = 16
    max_body_bytes: int = 64 * 1024
    max_message_bytes: int = 4096
    max_caption_streams: int = 8  # caption streams a token may hold open at once...
    max_caption_streams_per_address: int = 64  # ...and a client address

    # Peer lifecycle.
    peer_idle_timeout_s: float = 4.0
    offer_wait_s: float = 10.0  # a session with no offer by then is closed...
    offer_timeout_s: float = 30.0  # ...and one not connected by then
    ice_host_addresses: tuple[str, ...] = ()
    # Remote ICE candidates in these networks are used too; by default only public
    # addresses are (the node never sends checks into private or metadata ranges).
    ice_allowed_networks: tuple[str, ...] = ()
    ice_announced_address: str = ""  # the public address of host candidates (NAT, containers)
    stun_urls: tuple[str, ...] = ()

    # Access control (always on, except under `serve --dev`).
    auth_secret: str = ""  # signs room tokens; empty: one kept in DATA_DIR/auth-secret
    allowed_origins: tuple[str, ...] = ()  # pages of other origins that may call the API
    rate_limit_per_s: float = 10.0  # API requests a client (token or address) may
    rate_limit_burst: int = 100  # make, sustained and at once
    trusted_proxies: tuple[str, ...] = ()  # CIDRs whose X-Forwarded-For is believed
    node_secret: str = ""  # scale-out: what signaling shows a media node on every call
    node_url_pattern: str = r"https?://[A-Za-z0-9.-]+(:[0-9]+)?"  # where it may send them
    metrics_token: str = ""  # set: /metrics needs it as a Bearer token

    # TURN (coturn with use-auth-secret; see turn/README.md).
    turn_host: str = ""  # the TURN server's public name or address; empty: no TURN
    turn_port: int = 3478  # STUN and TURN over UDP and TCP
    turn_tls_port: int = 5349  # TURN over TLS
    turn_secret: str = ""  # coturn's static-auth-secret
    turn_credential_ttl_s: int = 3600  # how long a client's TURN credentials work

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
        for name in [f.name for f in fields(cls)] + list(RENAMED):
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = raw
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if renamed := sorted(unknown & RENAMED.keys()):
            raise SettingsError(f"setting {renamed[0]} is gone: {RENAMED[renamed[0]]}")
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        parsed = {name: _coerce(name, known[name].type, value) for name, value in values.items()}
        settings = cls(**parsed)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.log_format not in ("text", "json"):
            raise SettingsError("log_format must be 'text' or 'json'")
        if self.interpretation not in INTERPRETATIONS:
            raise SettingsError(f"interpretation must be {' or '.join(INTERPRETATIONS)}")
        if self.vad_provider not in ("silero-onnx", "silero-ggml"):
            raise SettingsError("vad_provider must be 'silero-onnx' or 'silero-ggml'")
        for kind in ("stt", "translate", "tts"):
            chosen = getattr(self, kind)
            if not chosen or set(chosen) - PROVIDERS or len(set(chosen)) != len(chosen):
                raise SettingsError(
                    f"{kind} must list providers from {', '.join(sorted(PROVIDERS))}, "
                    f"each once (got {','.join(chosen) or 'nothing'})")
        for kind in ("translate", "tts"):
            attempt, budget = self.deadlines(kind)
            if not 0 < attempt < budget:
                raise SettingsError(f"need 0 < {kind}_attempt_s < {kind}_budget_s "
                                    "(the budget leaves room for the next provider)")
        if self.google_stt_endpointing not in ("standard", "short", "supershort"):
            raise SettingsError("google_stt_endpointing must be standard, short or supershort")
        if not 0 < self.google_stt_restart_s < self.google_stt_max_stream_s <= 300:
            raise SettingsError("need 0 < google_stt_restart_s < google_stt_max_stream_s <= 300")
        self.stt_models()  # its entries are well-formed
        if self.translate_models and "local" not in self.translate:
            raise SettingsError("translate_models are local engines: add 'local' to translate "
                                f"(it is {','.join(self.translate)})")
        for pair in self.google_voices:
            if "=" not in pair:
                raise SettingsError(f"google_voices: {pair!r} is not 'lang=voice-name'")
        if "." in self.node_id or "/" in self.node_id:
            raise SettingsError("node_id may not contain '.' or '/'")
        for name in SECRETS:
            value = getattr(self, name)
            if value and (weakness := secret_weakness(value.encode())):
                raise SettingsError(f"{name} {weakness}")
        for name in ("trusted_proxies", "ice_allowed_networks"):
            for network in getattr(self, name):
                try:
                    ipaddress.ip_network(network, strict=False)
                except ValueError as exc:
                    raise SettingsError(f"{name}: {network!r} is not a network") from exc
        try:
            re.compile(self.node_url_pattern)
        except re.error as exc:
            raise SettingsError(f"node_url_pattern is not a regular expression: {exc}") from exc
        if self.turn_host and not self.turn_secret:
            raise SettingsError("turn_host needs turn_secret (coturn's static-auth-secret)")
        if self.max_room_participants > 200:
            raise SettingsError("max_room_participants must be at most 200")
        if not 0.0 <= self.vad_threshold < 1.0:
            raise SettingsError("vad_threshold must be between 0 and 1")
        if self.max_speakers < 0:
            raise SettingsError("max_speakers must be 'none' or a positive number")
        for name in ("port", "stt_threads", "stt_beam_size", "stt_batch_size",
                     "translate_model_threads",
                     "max_room_participants", "max_body_bytes", "max_message_bytes",
                     "stt_interim_interval_ms", "stt_max_utterance_ms", "vad_min_silence_ms",
                     "rate_limit_per_s", "rate_limit_burst", "max_caption_streams",
                     "max_caption_streams_per_address",
                     "offer_wait_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be positive")

    def deadlines(self, kind: str) -> tuple[float, float]:
        """(attempt_s, budget_s) of a kind's provider chain: "translate" or "tts"."""
        return getattr(self, f"{kind}_attempt_s"), getattr(self, f"{kind}_budget_s")

    def stt_models(self) -> tuple[str, dict[str, str]]:
        """STT_MODEL_DIR (and STT_ENGLISH_MODEL_DIR): the model for every language ("":
        the packaged one), and the languages that have a model of their own."""
        every = [entry for entry in self.stt_model_dir if "=" not in entry]
        if len(every) > 1:
            raise SettingsError("stt_model_dir: one directory serves every language "
                                f"(got {', '.join(every)}); give the others as LANG=DIR")
        own: dict[str, str] = {}
        for entry in self.stt_model_dir:
            if "=" in entry:
                language, _, path = entry.partition("=")
                if not re.fullmatch(r"[a-z]{2,3}", language) or not path or language in own:
                    raise SettingsError(f"stt_model_dir: {entry!r} is not LANG=DIR with a "
                                        "language code given once, like vi=/models/whisper")
                own[language] = path
        if self.stt_english_model_dir:
            if "en" in own:
                raise SettingsError("stt_english_model_dir and en= in stt_model_dir both "
                                    "name English's model: keep one")
            own["en"] = self.stt_english_model_dir
        return (every[0] if every else ""), own

    def uses_google(self) -> bool:
        return "google" in self.stt + self.translate + self.tts

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def secret_weakness(secret: bytes) -> str | None:
    """Why a secret must not be used (one anybody could guess), or None."""
    if len(secret) < MIN_SECRET_BYTES:
        return (f"is shorter than {MIN_SECRET_BYTES} bytes: make one with "
                "`openssl rand -hex 32`")
    lowered = secret.decode(errors="replace").lower()
    if any(placeholder in lowered for placeholder in PLACEHOLDERS) or len(set(secret)) < 8:
        return "is a placeholder or a guessable value: make one with `openssl rand -hex 32`"
    return None


def _coerce(name: str, type_name: Any, value: Any) -> Any:
    """Turn an environment string (or a TOML value) into the field's type."""
    kind = str(type_name)
    if name in UNCAPPED and str(value).strip().lower() in UNCAPPED_WORDS:
        return 0
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
