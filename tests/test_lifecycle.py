"""Sessions end cleanly however they end, and leave nothing behind."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from media_server.engines.loader import Engines
from media_server.peer import WATCHDOG_PERIOD_S
from media_server.registry import webrtc
from media_server.settings import Settings
from tests.conftest import JFK, Server, start_server
from tests.rtc_client import CaptionClient

REPO = Path(__file__).resolve().parent.parent


async def _eventually(condition: Callable[[], bool], within: float) -> float:
    """Wait until `condition()` holds; return how long it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


# Process-wide pools, started lazily and bounded: asyncio's default executor and the
# one decode thread. Anything else is per-session and must go when the session goes.
_POOL_THREADS = ("asyncio_", "stt-decode_")


def _session_threads() -> int:
    names = [t.name for t in threading.enumerate()]
    assert sum(n.startswith("stt-decode_") for n in names) <= 1
    return sum(not n.startswith(_POOL_THREADS) for n in names)


def _baseline() -> tuple[int, int]:
    return len(asyncio.all_tasks()), _session_threads()


async def _assert_nothing_left(server: Server, baseline: tuple[int, int],
                               refs: list[weakref.ref[object]]) -> None:
    assert len(server.registry) == 0
    assert server.registry.speakers.in_use == 0
    # aiortc's own transports wind down a moment after close.
    tasks, threads = baseline
    try:
        await _eventually(lambda: len(asyncio.all_tasks()) <= tasks
                          and _session_threads() <= threads, within=5)
    except AssertionError:
        left = [t.get_name() + ": " + repr(t.get_coro()) for t in asyncio.all_tasks()]
        raise AssertionError(f"left behind: {threading.enumerate()} {left}") from None

    def freed() -> bool:
        gc.collect()
        return all(ref() is None for ref in refs)

    await _eventually(freed, within=5)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """No keep-alive: an idle HTTP connection's handler task would count as left behind."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        yield s


def _audio_ms(server: Server, session_id: str) -> int:
    chain = server.registry.get(session_id).chain
    return 0 if chain is None else chain.pipeline.audio_ms


def _refs(server: Server, session_id: str) -> list[weakref.ref[object]]:
    peer = webrtc(server.registry.get(session_id))
    objects: list[object] = [peer, peer.pc]
    if peer.chain is not None:
        objects.append(peer.chain.pipeline)
    return [weakref.ref(o) for o in objects]


async def test_a_peer_that_vanishes_mid_utterance_is_noticed_and_cleaned_up(
        server: Server, caplog: pytest.LogCaptureFixture) -> None:
    baseline = _baseline()
    # A separate process, killed outright: no DTLS close, no bye, no DELETE.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.rtc_client", server.url, str(JFK),
        cwd=REPO, stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        session_id = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        # Kill it in the middle of the first utterance, while decodes are under way.
        await _eventually(lambda: _audio_ms(server, session_id) > 1800, within=15)
        refs = _refs(server, session_id)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
    await _eventually(lambda: len(server.registry) == 0, within=15)
    # Noticed by the server's own clock: silent since its last packet for no more than
    # the idle timeout and one watchdog period.
    [idle_s] = [r.__dict__["idle_s"] for r in caplog.records if r.getMessage() == "peer silent"]
    bound = server.settings.peer_idle_timeout_s + WATCHDOG_PERIOD_S
    assert idle_s <= bound + 0.1, f"a vanished peer was noticed after {idle_s} s"
    await _assert_nothing_left(server, baseline, refs)


async def test_delete_releases_everything(server: Server, http: aiohttp.ClientSession,
                                          jfk48: np.ndarray) -> None:
    baseline = _baseline()
    client = CaptionClient(server.url, http)
    await client.start(jfk48)
    await client.wait_for(lambda m: m["type"] == "caption")
    refs = _refs(server, client.session_id)
    async with http.delete(f"{server.url}/api/sessions/{client.session_id}") as resp:
        assert resp.status == 204
    async with http.delete(f"{server.url}/api/sessions/{client.session_id}") as resp:
        assert resp.status == 404
    await client.close(delete=False)
    await _assert_nothing_left(server, baseline, refs)


async def test_bye_on_the_data_channel_closes_at_once(server: Server,
                                                      http: aiohttp.ClientSession,
                                                      jfk48: np.ndarray) -> None:
    baseline = _baseline()
    client = CaptionClient(server.url, http)
    await client.start(jfk48)
    refs = _refs(server, client.session_id)
    client.send({"type": "bye"})
    took = await _eventually(lambda: len(server.registry) == 0, within=5)
    assert took < 1.0
    await client.close(delete=False)
    await _assert_nothing_left(server, baseline, refs)


async def test_a_session_never_offered_holds_no_slot_and_expires(
        settings: Settings, engines: Engines, http: aiohttp.ClientSession) -> None:
    srv, runner = await start_server(settings.replace(offer_wait_s=1.0, max_speakers=1),
                                     engines)
    try:
        for _ in range(2):  # the one speaker slot is taken by an offer, not a creation
            async with http.post(srv.url + "/api/sessions", json={"room": "r"}) as resp:
                assert resp.status == 201
        assert srv.registry.speakers.in_use == 0 and len(srv.registry) == 2
        await _eventually(lambda: len(srv.registry) == 0, within=5)
    finally:
        await runner.cleanup()


async def test_shutdown_closes_every_session(settings: Settings, engines: Engines,
                                             http: aiohttp.ClientSession,
                                             jfk48: np.ndarray) -> None:
    srv, runner = await start_server(settings, engines)
    clients = [CaptionClient(srv.url, http) for _ in range(3)]
    for c in clients:
        await c.start(None, speak=False)
    assert len(srv.registry) == 3
    await runner.cleanup()
    assert len(srv.registry) == 0
    for c in clients:
        await c.close(delete=False)
