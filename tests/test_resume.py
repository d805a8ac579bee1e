"""A browser that loses its connection and comes back within the grace period goes on
as the same participant, numbering its utterances on, with nothing captioned or
stored twice; session state lives in the machine's real Redis here."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np
import redis.asyncio as aioredis
import soundfile

from media_server.engines.loader import Engines
from media_server.errors import NotFound
from media_server.settings import Settings
from tests.conftest import Server, start_server
from tests.rtc_client import CaptionClient
from tests.scripted_speech import scripted_engines
from tests.test_durability import bursts

REDIS_URL = os.environ.get("LIVE_INTERPRETER_TEST_REDIS", "redis://127.0.0.1:6379/0")
REPO = Path(__file__).resolve().parent.parent


def _number(utterance_id: str) -> int:
    return int(utterance_id.rsplit("-", 1)[1])


async def _speak(client: CaptionClient, finals: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 40
    while len(client.finals()) < finals:
        assert time.monotonic() < deadline, f"only {len(client.finals())} finals"
        await asyncio.sleep(0.05)
    return client.finals()


async def _gone(server: Server, session_id: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            server.registry.get(session_id)
        except NotFound:
            return
        assert time.monotonic() < deadline, "the dropped session was never noticed"
        await asyncio.sleep(0.1)


async def test_a_dropped_session_resumes_as_the_same_participant(
        settings: Settings, engines: Engines, jfk48: np.ndarray,
        http: aiohttp.ClientSession) -> None:
    scripted = scripted_engines(engines, ["Coming back"], min_silence_ms=250)
    server, runner = await start_server(settings.replace(redis_url=REDIS_URL), scripted)
    first, second = CaptionClient(server.url, http), CaptionClient(server.url, http)
    try:
        created = await (await first.create(room="again", target_lang="pt",
                                            interpretation="consecutive")).json()
        session_id, participant = created["session_id"], created["participant_id"]
        await first.connect(session_id, bursts(jfk48, 8))
        before = await _speak(first, 4)
        pongs = len(first.of_type("pong"))
        first.send({"type": "set_interpretation", "mode": "simultaneous"})
        first.send({"type": "ping"})  # answered after the change (a ping in flight aside)
        await first.wait_for(lambda m: len(first.of_type("pong")) > pongs + 1)
        await first.close(delete=False)  # the network goes: no goodbye
        await _gone(server, session_id)
        redis = aioredis.Redis.from_url(REDIS_URL)
        ttl = await redis.ttl(f"live-interpreter:session:{session_id}")  # waiting in Redis
        await redis.aclose()
        assert 0 < ttl <= 30

        resumed = await http.post(f"{server.url}/api/sessions", json={"resume": session_id})
        body = await resumed.json()
        assert resumed.status == 201, body
        assert body["resumed"] and body["session_id"] == session_id
        assert body["participant_id"] == participant
        state = await (await http.get(f"{server.url}/api/sessions/{session_id}")).json()
        assert state["interpretation"] == "simultaneous"  # as it was changed, not created
        await second.connect(session_id, bursts(jfk48, 8))
        after = await _speak(second, 4)
        assert all(m["speaker_id"] == participant for m in before + after)
        said_before = {str(m["utterance_id"]) for m in before}
        said_after = {str(m["utterance_id"]) for m in after}
        assert not said_before & said_after  # nothing captioned twice
        assert min(map(_number, said_after)) > max(map(_number, said_before))
        assert all(m["translation"] for m in after)  # still reading Portuguese

        # Coming back again while the old connection is still up replaces it.
        again = await http.post(f"{server.url}/api/sessions", json={"resume": session_id})
        assert again.status == 201
        assert server.registry.get(session_id).connection_state == "new"  # not yet offered
        transcript = await http.get(f"{server.url}/api/rooms/again/transcript")
        stored = await transcript.json()
        kept = [u["utterance_id"] for u in stored["utterances"]]
        assert sorted(kept) == sorted(said_before | {str(m["utterance_id"])
                                                     for m in second.finals()})
        assert [s["participant_id"] for s in stored["sessions"]] == [participant]

        gone = await http.delete(f"{server.url}/api/sessions/{session_id}")
        assert gone.status == 204
        for unknown in (session_id, "no-such-session"):  # ended by its client / never was
            refused = await http.post(f"{server.url}/api/sessions", json={"resume": unknown})
            assert refused.status == 404
            assert (await refused.json())["error"]["code"] == "unknown_session"
    finally:
        await second.close(delete=False)
        await runner.cleanup()
        await scripted.close()


async def test_a_session_lost_silently_resumes(
        settings: Settings, engines: Engines, jfk48: np.ndarray,
        http: aiohttp.ClientSession, tmp_path: Path) -> None:
    """The speaker's process is killed mid-speech: no SCTP abort, no DTLS close_notify,
    no bye. The server notices the silence, keeps the session, and a new connection
    resumes it as the same participant; a listener in the room reads every final once,
    numbered on."""
    scripted = scripted_engines(engines, ["Lost and found"], min_silence_ms=250)
    server, runner = await start_server(settings.replace(redis_url=REDIS_URL), scripted)
    listener, comeback = CaptionClient(server.url, http), CaptionClient(server.url, http)
    speech = tmp_path / "bursts.wav"
    soundfile.write(speech, bursts(jfk48, 40), 48000, subtype="PCM_16")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.rtc_client", server.url, str(speech),
        cwd=REPO, stdout=asyncio.subprocess.PIPE)
    try:
        await listener.start(None, room="test", name="Lia", target_lang="en", speak=False)
        assert proc.stdout is not None
        session_id = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        participant = (await (await http.get(
            f"{server.url}/api/sessions/{session_id}")).json())["participant_id"]
        await _speak(listener, 3)
        os.kill(proc.pid, signal.SIGKILL)  # gone without a word
        await proc.wait()
        await _gone(server, session_id)
        before = listener.finals()

        resumed = await http.post(f"{server.url}/api/sessions", json={"resume": session_id})
        body = await resumed.json()
        assert resumed.status == 201, body
        assert body["participant_id"] == participant
        await comeback.connect(session_id, bursts(jfk48, 8))
        after = (await _speak(listener, len(before) + 3))[len(before):]
        assert all(m["speaker_id"] == participant for m in before + after)
        ids = [str(m["utterance_id"]) for m in before + after]
        assert len(ids) == len(set(ids))  # nothing captioned twice
        assert list(map(_number, ids)) == sorted(map(_number, ids))  # numbered on
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await comeback.close(delete=False)
        await listener.close()
        await runner.cleanup()
        await scripted.close()
