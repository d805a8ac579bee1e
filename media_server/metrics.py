"""Prometheus metrics of this process (`GET /metrics`). Names follow Prometheus
conventions: a `live_interpreter_` prefix, units in names, small label sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

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
