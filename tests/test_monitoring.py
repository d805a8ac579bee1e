"""The monitoring stack run for real: Debian's Prometheus with the project's
configuration scrapes a running server through a real session; every query of the
Grafana dashboard answers through Prometheus's HTTP API; `promtool` checks the
configuration and unit-tests the alert rules; and each alert fires under the fault it
names: a translation model's worker gone, the decoder backed up, PostgreSQL and Redis
stopped, the server itself stopped."""

from __future__ import annotations

import asyncio
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import numpy as np

from media_server.audio import pcm_to_float
from media_server.engines.catalog import EngineCatalog
from media_server.engines.health import HealthBoard
from media_server.engines.loader import Engines
from media_server.engines.stt.base import DecodeRequest
from media_server.engines.translate.model_dir import read_model_dir
from media_server.engines.translate.model_translator import ModelTranslator
from media_server.settings import Settings
from tests.conftest import JFK, start_server
from tests.prometheus import DEPLOY, REPO, Prometheus, binary
from tests.rtc_client import CaptionClient, load_pcm48
from tests.services import PrivatePostgres, PrivateRedis, spare_port
from tests.test_google_server import served
from tests.tiny_translation_models import many_to_many_model

DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "live-interpreter.json"
FIRST_TWO_S = 4.8  # JFK's first two utterances ("And so my fellow Americans, ask not")


def _first_two(jfk48: np.ndarray) -> np.ndarray:
    return jfk48[:int(FIRST_TWO_S * 48000)]


def _second_final(message: dict[str, object]) -> bool:
    end_ms = message.get("end_ms")
    return message["type"] == "caption" and message["status"] == "final" and \
        isinstance(end_ms, int) and end_ms > 3000


def _promtool(*args: str) -> str:
    result = subprocess.run([binary("promtool"), *args], cwd=DEPLOY, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_promtool_passes_the_configuration_and_the_alert_rules() -> None:
    assert "SUCCESS" in _promtool("check", "config", "prometheus.yml")
    assert "SUCCESS: 6 rules found" in _promtool("check", "rules", "alerts.yml")
    assert "SUCCESS" in _promtool("test", "rules", "alerts.test.yml")


def _dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"]
            for target in panel.get("targets", [])]


async def test_a_fresh_server_answers_every_dashboard_query_and_its_stop_alerts(
        settings: Settings, jfk48: np.ndarray, tmp_path: Path,
        http: aiohttp.ClientSession) -> None:
    """`live-interpreter serve` in a process of its own (its metrics as a deployment's
    start), one real session, then every query of the dashboard answers."""
    async with served(settings, tmp_path) as url:
        prometheus = Prometheus(tmp_path / "prometheus", url.removeprefix("http://"))
        await prometheus.start()
        try:
            await prometheus.wait_for('up{job="live-interpreter"} == 1')
            client = CaptionClient(url, http)
            try:  # JFK read (and heard) in Portuguese
                await client.start(_first_two(jfk48), target_lang="pt")
                await client.wait_for(_second_final, 60)
                await client.wait_for(lambda m: m["type"] == "speech", 20)
            finally:
                await client.close()
            await prometheus.wait_for('live_interpreter_captions_total{status="final"} > 1')
            await prometheus.wait_for("increase(live_interpreter_captions_total[1m]) > 0")
            silent = [expr for expr in _dashboard_queries() if not await prometheus.query(expr)]
            assert not silent, f"dashboard queries with no series: {silent}"
            firing = await prometheus.firing()
            assert firing == {}, f"a healthy server raised an alert: {firing}"
        except BaseException:
            await prometheus.stop()
            raise
    # The server stopped: its target is down.
    try:
        [down] = await prometheus.wait_for(
            'ALERTS{alertname="LiveInterpreterDown",alertstate="firing"}')
        assert down["metric"]["instance"] == url.removeprefix("http://")
    finally:
        await prometheus.stop()


async def test_each_alert_fires_under_the_fault_it_names(
        settings: Settings, engines: Engines, jfk48: np.ndarray, tmp_path: Path,
        http: aiohttp.ClientSession, private_postgres: PrivatePostgres,
        private_redis: PrivateRedis) -> None:
    """A translation model's worker gone (engine down, fallbacks), other speakers'
    finals backed up in the decoder (recognition lag), PostgreSQL stopped (the store's
    spool grows), Redis stopped."""
    # A translation model a user brought (tiny, NLLB-like) before the packaged ones: a
    # provider whose worker the test can take away.
    worker = ThreadPoolExecutor(1)
    nllb = await asyncio.to_thread(ModelTranslator, read_model_dir(str(many_to_many_model(
        tmp_path / "nllb-tiny", ["eng_Latn", "por_Latn", "vie_Latn"]))), worker)
    known = engines.catalog
    catalog = EngineCatalog(known.stt, [nllb, *known.translators], known.voices,
                            HealthBoard(probe_interval_s=600), known.cache,
                            translate_deadlines=known.translate_deadlines,
                            tts_deadlines=known.tts_deadlines)
    port = spare_port()
    prometheus = Prometheus(tmp_path / "prometheus", f"127.0.0.1:{port}")
    await prometheus.start()
    configured = settings.replace(data_dir=str(tmp_path / "data"),
                                  database_url=private_postgres.url,
                                  redis_url=private_redis.url, store_memory_limit=1)
    server, runner = await start_server(
        configured, Engines(catalog, engines.scheduler, engines.calibration), port=port)
    try:
        await prometheus.wait_for('up{job="live-interpreter"} == 1')
        await private_postgres.stop()
        await private_redis.stop()
        await asyncio.to_thread(worker.shutdown)
        backlog = pcm_to_float(load_pcm48(JFK, rate=16000).tobytes())
        client = CaptionClient(server.url, http)
        try:
            await client.start(_first_two(jfk48), target_lang="pt")
            assert engines.scheduler is not None
            # Other speakers' finals ahead of this one's: the decoder backed up.
            for n in range(24):
                engines.scheduler.submit_final(("backlog", n),
                                               DecodeRequest(backlog, "en", final=True))
            await client.wait_for(_second_final, 120)
        finally:
            await client.close()
        expected = {"LiveInterpreterEngineDown", "LiveInterpreterEngineFallbacks",
                    "LiveInterpreterRecognitionLagHigh", "LiveInterpreterStoreSpoolGrowing",
                    "LiveInterpreterRedisDown"}
        deadline = asyncio.get_running_loop().time() + 30
        while not expected <= set(firing := await prometheus.firing()):
            assert asyncio.get_running_loop().time() < deadline, (firing, prometheus.log())
            await asyncio.sleep(0.25)
        for name in ("LiveInterpreterEngineDown", "LiveInterpreterEngineFallbacks"):
            # (Providers earlier tests of this process took out may be there too.)
            assert any(alert["kind"] == "translate" and alert["provider"] == "nllb-tiny"
                       for alert in firing[name]), firing[name]
        assert set(firing) == expected  # and nothing else
    finally:
        await runner.cleanup()
        await prometheus.stop()
        await catalog.board.close()
