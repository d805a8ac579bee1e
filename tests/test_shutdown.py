"""Nothing waits for ever on the way out: a Piper worker left mid-clip, engines closed
with work in flight, a task that swallows its cancellation, and the server stopped by
SIGTERM mid-utterance with a translation and a synthesis in flight."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from media_server.engines.loader import load_engines
from media_server.engines.tts.base import PcmChunk
from media_server.engines.tts.piper import PiperTts
from media_server.settings import Settings
from media_server.tasks import cancel_and_wait
from tests.conftest import JFK_SECONDS
from tests.rtc_client import CaptionClient

# Ten sentences: several seconds of audio, far more than a pipe's reader holds unread.
LONG = " ".join(["This sentence keeps the worker writing audio for a good while."] * 10)
CLOSE_BOUND_S = 10.0  # what any close may take, here


async def _closed_within(bound_s: float, closing: Awaitable[None]) -> float:
    """How long `closing` took; a TimeoutError past `bound_s` (a hang fails here)."""
    started = time.monotonic()
    async with asyncio.timeout(bound_s):
        await closing
    return time.monotonic() - started


async def test_a_piper_worker_left_mid_clip_is_restarted_and_closes_at_once() -> None:
    tts = PiperTts(1)
    await tts.start()
    try:
        clip = _abandonable(tts.synthesize(LONG, "en"))
        first = await anext(clip)
        assert first.pcm
        await clip.aclose()  # the listener left mid-clip: the rest is never read
        # The next request gets its own audio, not the rest of the last one.
        short = b"".join([c.pcm async for c in tts.synthesize("Hello.", "en")])
        assert 0 < len(short) / 2 / first.sample_rate < 2.0
        clip = _abandonable(tts.synthesize(LONG, "en"))
        await anext(clip)
        await asyncio.sleep(1.0)  # the worker fills the pipe behind the unread clip
    finally:
        seconds = await _closed_within(CLOSE_BOUND_S, tts.close())
    assert seconds < CLOSE_BOUND_S
    await clip.aclose()


async def test_a_task_that_swallows_its_cancellation_does_not_hold_up_a_close(
        caplog: pytest.LogCaptureFixture) -> None:
    cancels = 0

    async def stubborn() -> None:
        nonlocal cancels
        while True:  # as a retry loop that takes a cancellation for a failure
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancels += 1
                if cancels > 1:
                    raise

    once = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await _closed_within(CLOSE_BOUND_S, cancel_and_wait(once))
    assert once.cancelled() and cancels == 2  # cancelled again, and it ended

    released = asyncio.Event()

    async def deaf() -> None:
        while not released.is_set():  # takes every cancellation for a failure
            with contextlib.suppress(asyncio.CancelledError):
                await released.wait()

    never = asyncio.create_task(deaf(), name="deaf")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR):
        await _closed_within(CLOSE_BOUND_S, cancel_and_wait(never))
    assert "deaf" in caplog.text and not never.done()  # left behind, said loudly
    released.set()
    await never


async def test_engines_close_within_a_bound_with_work_in_flight(settings: Settings) -> None:
    engines = await load_engines(settings)
    catalog = engines.catalog
    try:
        stream = catalog.stt.open_stream("en")  # mid-utterance: speech, no end
        stream.push((np.sin(np.arange(16000 * 3) / 3) * 8000).astype("<i2").tobytes())
        voice = catalog.voice_for("en")
        assert voice is not None
        clip = _abandonable(voice.synthesize(LONG, "en"))
        await anext(clip)  # a synthesis left mid-clip
        translator = catalog.translator_for("en", "es")
        assert translator is not None
        translating = asyncio.ensure_future(translator.translate([LONG], "en", "es"))
        engines.board.register("translate", "down", _never_answers).failed("test")
        await asyncio.sleep(0.5)
    finally:
        seconds = await _closed_within(CLOSE_BOUND_S * 2, engines.close())
    assert seconds < CLOSE_BOUND_S * 2
    await asyncio.gather(translating, return_exceptions=True)
    await clip.aclose()


def _abandonable(clip: AsyncIterator[PcmChunk]) -> AsyncGenerator[PcmChunk, None]:
    """A synthesis as the providers write it: an async generator, closed by its reader."""
    assert isinstance(clip, AsyncGenerator)
    return clip


async def _never_answers() -> None:
    await asyncio.Event().wait()


async def test_sigterm_stops_the_server_mid_utterance_within_a_bound(
        settings: Settings, jfk48: np.ndarray, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "LIVE_INTERPRETER_DATA_DIR": str(tmp_path),
           "LIVE_INTERPRETER_ICE_HOST_ADDRESSES": "127.0.0.1",
           "LIVE_INTERPRETER_LOG_LEVEL": "WARNING"}
    cli = Path(sys.executable).parent / "live-interpreter"
    process = await asyncio.create_subprocess_exec(
        str(cli), "serve", "--dev", "--port", str(port), env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            await _ready(http, url)
            speaker = CaptionClient(url, http)
            await speaker.start(jfk48, room="r", target_lang="es", interpretation="consecutive")
            # The first final is out: its translation, its synthesis and the next
            # utterance are in flight.
            await speaker.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                                   and bool(m["text"]), within=JFK_SECONDS + 20)
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                returncode = await process.wait()
            seconds = time.monotonic() - started
            await speaker.close(delete=False)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert returncode == 0 and seconds < 20, (returncode, seconds)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _ready(http: aiohttp.ClientSession, url: str) -> None:
    async with asyncio.timeout(120):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.2)
