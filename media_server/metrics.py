"""Prometheus metrics of this process (`GET /metrics`). Names follow Prometheus
conventions: a `live_interpreter_` prefix, units in names, small label sets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

REGISTRY = CollectorRegistry(auto_describe=True)
# Memory, open files, CPU of this process: what a leak shows in first.
ProcessCollector(namespace="live_interpreter", registry=REGISTRY)
EVENT_LOOP_TASKS = Gauge(
    "live_interpreter_event_loop_tasks",
    "Asyncio tasks alive in this process (counted when scraped): a leak shows here.",
    registry=REGISTRY)

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
    "Spoken translations synthesised: one per spoken part (a final, or in simultaneous "
    "interpretation a chunk of it) and language listened to.",
    registry=REGISTRY)
PLAYOUT_CUT_CLIPS = Counter(
    "live_interpreter_playout_cut_clips_total",
    "Spoken-translation clips cut short because they started more than TTS_MAX_DELAY_S "
    "behind the speaker (a clip is cut, never dropped whole).", registry=REGISTRY)
PLAYOUT_CUT = Counter(
    "live_interpreter_playout_cut_seconds_total",
    "Spoken translation left unplayed at the end of clips cut short (as it would have "
    "played).", registry=REGISTRY)
SPEECH_CHUNKS = Counter(
    "live_interpreter_speech_chunks_total",
    "Simultaneous interpretation: parts of utterances handed to synthesis, by part "
    "(chunk: while the speaker goes on; rest: what the final added).", ["part"],
    registry=REGISTRY)
SPEECH_MERGED = Counter(
    "live_interpreter_speech_merged_parts_total",
    "Parts of an utterance synthesised as one with the part before them, because "
    "synthesis was behind.", registry=REGISTRY)
PLAYOUT_SLIPS = Counter(
    "live_interpreter_playout_slips_total",
    "Times a return track fell behind its sample clock (a stalled event loop) and "
    "slipped the clock instead of sending the backlog in a burst.",
    registry=REGISTRY)
PLAYOUT_SLIPPED = Counter(
    "live_interpreter_playout_slipped_seconds_total",
    "Time return tracks' sample clocks slipped by, summed.",
    registry=REGISTRY)

PLAYOUT_SPED_UP = Counter(
    "live_interpreter_playout_sped_up_clips_total",
    "Clips of spoken translation played faster (at the same pitch) because their "
    "listener was behind the speaker.", registry=REGISTRY)
PLAYOUT_SAVED = Counter(
    "live_interpreter_playout_saved_seconds_total",
    "Listening time that playing clips faster saved, summed: how far listeners caught up.",
    registry=REGISTRY)
PLAYOUT_UNDERRUNS = Counter(
    "live_interpreter_playout_underruns_total",
    "Frames of silence inside a clip that played faster than its voice synthesised it.",
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
    "1 while the configured cache backend answers (Redis; memory, when none is "
    "configured, always does), 0 while memory stands in for Redis.",
    registry=REGISTRY)
TURN_CREDENTIALS = Counter(
    "live_interpreter_turn_credentials_issued_total",
    "TURN credentials handed to clients.", registry=REGISTRY)
REQUESTS_REFUSED = Counter(
    "live_interpreter_http_requests_refused_total",
    "HTTP requests refused before reaching a handler (rate limit, origin, host, a media "
    "node's caller) or past a client's share (caption streams).",
    ["reason"], registry=REGISTRY)
ICE_CANDIDATES_REFUSED = Counter(
    "live_interpreter_ice_candidates_refused_total",
    "Remote ICE candidates not used: a private, loopback, link-local or metadata address "
    "(address), a name such as mDNS's .local (name), past the per-session cap (too_many).",
    ["reason"], registry=REGISTRY)
CHANNEL_MESSAGES_REFUSED = Counter(
    "live_interpreter_channel_messages_refused_total",
    "Data-channel messages dropped because a client sent them faster than allowed.",
    registry=REGISTRY)
AUDIO_DROPPED = Counter(
    "live_interpreter_audio_dropped_seconds_total",
    "Seconds of speaker audio dropped for arriving faster than real time.",
    registry=REGISTRY)

# Load and traffic.
ACTIVE_ROOMS = Gauge("live_interpreter_active_rooms", "Rooms with someone in them.",
                     registry=REGISTRY)
ACTIVE_SESSIONS = Gauge("live_interpreter_active_sessions", "Sessions open on this process.",
                        registry=REGISTRY)
STT_CAPACITY_VOICES = Gauge(
    "live_interpreter_stt_capacity_voices",
    "Voices at once (participants whose speech is heard) the local recogniser carries at "
    "full quality: calibrated at start, re-estimated from the passes it makes.",
    registry=REGISTRY)
STT_VOICES_SPEAKING = Gauge(
    "live_interpreter_stt_voices_speaking",
    "Streams whose speech the local recogniser is hearing now.", registry=REGISTRY)
ROOM_VOICES = Gauge(
    "live_interpreter_room_voices_p95",
    "Voices heard at once across the rooms (each room's p95 over the last minutes, "
    "added up): a new room is refused once this fills the capacity.", registry=REGISTRY)
INTERIMS_SKIPPED = Counter(
    "live_interpreter_stt_interims_skipped_total",
    "Interim passes not made: superseded by a newer one or the final while waiting, or "
    "left out while more voices spoke than the recogniser carries (thinned, paused).",
    ["reason"], registry=REGISTRY)
STT_CALIBRATION = Gauge(
    "live_interpreter_stt_calibration_seconds",
    "The local recogniser's passes on the calibration phrase at start: a final, and an "
    "interim of three quarters of it.", ["pass"], registry=REGISTRY)
ACTIVE_SPEAKERS = Gauge("live_interpreter_active_speakers",
                        "Open sessions that send speech.", registry=REGISTRY)
AUDIO_RECEIVED = Counter(
    "live_interpreter_audio_received_seconds_total",
    "Seconds of speaker audio received.", registry=REGISTRY)
CAPTIONS = Counter(
    "live_interpreter_captions_total",
    "Captions produced, by status (interim, final).", ["status"], registry=REGISTRY)
SOCKET_AUDIO_DROPPED = Counter(
    "live_interpreter_socket_audio_dropped_seconds_total",
    "Seconds of spoken translation not sent to a WebSocket client that was not reading "
    "fast enough (stale audio; captions are kept).", registry=REGISTRY)
INTERIMS_DROPPED = Counter(
    "live_interpreter_interims_dropped_total",
    "Interim captions not sent because the client's channel was backed up (the next "
    "interim or the final replaces them).", registry=REGISTRY)
TRANSLATION_CACHE = Counter(
    "live_interpreter_translation_cache_requests_total",
    "Translation lookups by result (hit, miss).", ["result"], registry=REGISTRY)
TRANSLATION_BATCHES = Counter(
    "live_interpreter_translation_batches_total",
    "Calls of a translation model a user brought (TRANSLATE_MODELS): texts that arrive "
    "while a batch runs go together in the next...", ["provider"], registry=REGISTRY)
TRANSLATION_BATCH_TEXTS = Counter(
    "live_interpreter_translation_batch_texts_total",
    "...and the texts they translated (per batch: this over the batches).",
    ["provider"], registry=REGISTRY)
DECODE_QUEUE = Gauge(
    "live_interpreter_decode_queue_utterances",
    "Final utterances waiting for the local recogniser.", registry=REGISTRY)
FINAL_DECODE_WAIT = Histogram(
    "live_interpreter_stt_final_wait_seconds",
    "How long a final utterance waited for the local recogniser before its pass began "
    "(behind an interim in flight, or other finals).", buckets=_LATENCY_BUCKETS,
    registry=REGISTRY)
SPEECH_QUEUE = Gauge(
    "live_interpreter_speech_queue_clips",
    "Finals and chunks waiting to be synthesised, all rooms and languages.", registry=REGISTRY)
ENGINE_TIME = Histogram(
    "live_interpreter_engine_seconds",
    "Time of one engine call by kind and provider (a decode batch, a translation, a "
    "synthesis).", ["kind", "provider"], buckets=_LATENCY_BUCKETS, registry=REGISTRY)
TRANSLATED_LAG = Histogram(
    "live_interpreter_translated_caption_lag_seconds",
    "From the end of an utterance's speech to its final going out translated.",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY)
SPEECH_DELAY = Histogram(
    "live_interpreter_speech_delay_seconds",
    "From the end of an utterance's speech to the start of its spoken translation.",
    buckets=_LATENCY_BUCKETS, registry=REGISTRY)
CAPTION_OVERHEAD = Histogram(
    "live_interpreter_caption_overhead_seconds",
    "Our own time on a final between recognition and delivery, translation excluded.",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
    registry=REGISTRY)
PLACEMENT_TIME = Histogram(
    "live_interpreter_placement_seconds",
    "Signaling's time to find the media node of a new session (Redis lookups).",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5), registry=REGISTRY)

# Label values known in advance exist from the start, at 0: a dashboard's rate() of them
# draws a flat line rather than nothing, and an alert sees their first increase.
for _reason in ("rate_limit", "origin", "host", "not_signaling", "caption_streams"):
    REQUESTS_REFUSED.labels(_reason)
for _reason in ("address", "name", "too_many"):
    ICE_CANDIDATES_REFUSED.labels(_reason)
for _status in ("interim", "final"):
    CAPTIONS.labels(_status)
    TRANSLATIONS.labels(_status)
for _part in ("chunk", "rest"):
    SPEECH_CHUNKS.labels(_part)
for _reason in ("superseded", "thinned", "paused"):
    INTERIMS_SKIPPED.labels(_reason)
for _result in ("hit", "miss"):
    TRANSLATION_CACHE.labels(_result)
