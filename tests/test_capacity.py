"""Admission calibrated at start: the recogniser is timed as it loads, `MAX_SPEAKERS=auto`
admits as many speakers as this machine carries, and the next one is told "no" while
those admitted keep being captioned on time."""

from __future__ import annotations

import aiohttp
import numpy as np
import pytest

from media_server.engines.loader import Engines
from media_server.engines.stt.calibration import MAX_UTILISATION, capacity
from media_server.metrics import REGISTRY
from media_server.settings import Settings
from tests.conftest import JFK_SECONDS, start_server
from tests.rtc_client import CaptionClient


def test_capacity_follows_what_a_speaker_costs_the_decoder() -> None:
    # A machine like this one: a speaker's interims alone take a third of the worker.
    slow = capacity(4.5, final_s=0.24, interim_s=0.2, interim_interval_ms=700)
    assert slow.speakers == 1 and slow.interim_interval_ms == 700
    # Four times faster: 0.6 / (0.05 / 0.7 + 0.06 / 4) = 6.9 speakers, at the
    # configured cadence.
    fast = capacity(4.5, final_s=0.06, interim_s=0.05, interim_interval_ms=700)
    assert fast.speakers == 6 and fast.interim_interval_ms == 700
    # Slower than one speaker can be served at 700 ms: one speaker, sparser interims,
    # within the utilisation budget.
    crawling = capacity(4.5, final_s=0.8, interim_s=0.6, interim_interval_ms=700)
    assert crawling.speakers == 1
    load = 0.6 / (crawling.interim_interval_ms / 1000) + 0.8 / 4.0
    assert crawling.interim_interval_ms > 700 and load == pytest.approx(MAX_UTILISATION,
                                                                         abs=0.01)


def test_the_recogniser_is_calibrated_as_it_loads(engines: Engines) -> None:
    calibration = engines.calibration
    assert calibration is not None and calibration.speakers >= 1
    assert 3.0 < calibration.phrase_s < 6.0
    assert 0 < calibration.final_pass_s < calibration.phrase_s
    for kind in ("final", "interim"):  # (the latest calibration in this process)
        assert (REGISTRY.get_sample_value("live_interpreter_stt_calibration_seconds",
                                          {"pass": kind}) or 0) > 0


async def test_past_the_calibrated_capacity_a_speaker_is_refused_and_the_others_go_on(
        settings: Settings, engines: Engines, jfk48: np.ndarray,
        http: aiohttp.ClientSession) -> None:
    assert engines.calibration is not None
    carried = engines.calibration.speakers
    server, runner = await start_server(settings.replace(max_speakers=0), engines)  # auto
    speakers = [CaptionClient(server.url, http) for _ in range(carried)]
    try:
        assert server.registry.speakers.capacity == carried
        assert REGISTRY.get_sample_value("live_interpreter_stt_capacity_speakers") == carried
        for n, speaker in enumerate(speakers):
            await speaker.start(jfk48, room=f"r{n}", target_lang="pt")
        async with http.post(server.url + "/api/sessions", json={"room": "late"}) as resp:
            assert resp.status == 503
            assert (await resp.json())["error"]["code"] == "stt_capacity"
        async with http.post(server.url + "/api/sessions",
                             json={"room": "late", "speak": False}) as resp:
            assert resp.status == 201  # a listener costs the recogniser nothing
        for speaker in speakers:
            await speaker.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                                   and m["end_ms"] > 9000, within=JFK_SECONDS + 20)
            codes = {m["code"] for m in speaker.of_type("error")}
            assert "stt_behind" not in codes, codes  # those admitted are not late
    finally:
        for speaker in speakers:
            await speaker.close()
        await runner.cleanup()
