"""Prometheus metrics of this process (`GET /metrics`). Names follow Prometheus
conventions: a `live_interpreter_` prefix, units in names, small label sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

ENGINE_FALLBACKS = Counter(
    "live_interpreter_engine_fallbacks_total",
    "Calls or streams moved from a failing provider to the next one.",
    ["kind", "provider"], registry=REGISTRY)
ENGINE_UP = Gauge(
    "live_interpreter_engine_up",
    "1 while a provider is in service, 0 while it is taken out.",
    ["kind", "provider"], registry=REGISTRY)
ENGINE_ERRORS = Counter(
    "live_interpreter_engine_errors_total",
    "Failed engine calls (before any fallback).",
    ["kind", "provider"], registry=REGISTRY)
TRANSLATIONS = Counter(
    "live_interpreter_caption_translations_total",
    "Captions translated for a room: one per caption revision and target language, "
    "however many listeners read that language.",
    ["status"], registry=REGISTRY)
SYNTHESES = Counter(
    "live_interpreter_speech_syntheses_total",
    "Spoken translations synthesised: one per final and language listened to.",
    registry=REGISTRY)
STALE_CLIPS = Counter(
    "live_interpreter_stale_clips_dropped_total",
    "Spoken-translation clips dropped because they would have played too late.",
    registry=REGISTRY)

# Where the time of a caption goes, stage by stage.
_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
RECOGNITION_LAG = Histogram(
    "live_interpreter_recognition_lag_seconds",
    "From the end of an utterance's audio (as received) to its final transcript.",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY)
TRANSLATION_TIME = Histogram(
    "live_interpreter_translation_seconds",
    "Time to translate a final into one language (cache hits included).",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY)
SYNTHESIS_TIME = Histogram(
    "live_interpreter_synthesis_seconds",
    "Time to synthesise a final's spoken translation in one language.",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY)
SPEECH_QUEUE_TIME = Histogram(
    "live_interpreter_speech_queue_seconds",
    "Time a final waits for its language's synthesis worker.",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY)
STORE_QUEUE = Gauge(
    "live_interpreter_store_queue_records",
    "Finals waiting in memory to be written to the database.", registry=REGISTRY)
STORE_SPOOLED = Gauge(
    "live_interpreter_store_spooled_records",
    "Finals kept in the spool file while the database was unreachable.", registry=REGISTRY)
CACHE_FALLBACKS = Counter(
    "live_interpreter_cache_fallbacks_total",
    "Cache and session-state operations served from memory because Redis failed.",
    registry=REGISTRY)
CACHE_BACKEND_UP = Gauge(
    "live_interpreter_cache_backend_up",
    "1 while the configured cache backend (Redis) answers, 0 while memory stands in.",
    registry=REGISTRY)
TURN_CREDENTIALS = Counter(
    "live_interpreter_turn_credentials_issued_total",
    "TURN credentials handed to clients.", registry=REGISTRY)
REQUESTS_REFUSED = Counter(
    "live_interpreter_http_requests_refused_total",
    "HTTP requests refused before reaching a handler: rate limit or origin.",
    ["reason"], registry=REGISTRY)
