"""Scale-out on loopback: one `live-interpreter signaling` and three `live-interpreter
media` processes with a private Redis. New rooms go to the least-loaded node, every
peer of a room to the node that holds it, requests are forwarded, captions fan out
through Redis to a consumer on the signaling process; a killed node leaves placement
within the heartbeat bound while the others serve on; SIGTERM drains a node without
losing its session's finals."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection

from history.sqlite import SqliteStore
from media_server.socket_audio import SocketAudio
from signaling import tokens
from signaling.sockets import MAX_FRAME_BYTES
from tests.conftest import JFK_TEXT, wer
from tests.rtc_client import CaptionClient
from tests.services import PrivateRedis, spare_port
from tests.socket_client import SocketClient, socket_url
from tests.test_twilio import start_message as twilio_start

CLI = str(Path(sys.executable).parent / "live-interpreter")
SECRET = b"scale-out-secret-3b9f0e6a2c7d1845f0a9"
NODE_SECRET = "node-secret-8c1e5a3f9b2d7046c5d2"
HEARTBEAT_S, NODE_TTL_S = 0.5, 1.5


def bearer(room: str, role: str = "speaker") -> dict[str, str]:
    """A fresh token each time, for one subject: the sessions it creates are theirs."""
    token = tokens.mint(SECRET, room, role=role, ttl_s=600, subject="tester")
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Process:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    data_dir: Path


@dataclass
class Cluster:
    signaling: Process
    media: dict[str, Process]


def _start(command: str, name: str, *, env: dict[str, str], data_dir: Path,
           port: int) -> Process:
    log = (data_dir.parent / f"{name}.log").open("w")
    process = subprocess.Popen([CLI, command, "--port", str(port)], stdout=log,
                               stderr=subprocess.STDOUT,
                               env={**os.environ, **env,
                                    "LIVE_INTERPRETER_DATA_DIR": str(data_dir)})
    return Process(name, f"http://127.0.0.1:{port}", process, data_dir)


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    redis = PrivateRedis(tmp_path_factory.mktemp("redis"))
    await redis.start()
    common = {"LIVE_INTERPRETER_REDIS_URL": redis.url,
              "LIVE_INTERPRETER_AUTH_SECRET": SECRET.decode(),
              "LIVE_INTERPRETER_NODE_SECRET": NODE_SECRET,
              "LIVE_INTERPRETER_ICE_HOST_ADDRESSES": "127.0.0.1",
              "LIVE_INTERPRETER_ICE_ALLOWED_NETWORKS": "127.0.0.0/8",
              "LIVE_INTERPRETER_MAX_SPEAKERS": "4",
              "LIVE_INTERPRETER_HEARTBEAT_INTERVAL_S": str(HEARTBEAT_S),
              "LIVE_INTERPRETER_NODE_TTL_S": str(NODE_TTL_S),
              "LIVE_INTERPRETER_DRAIN_TIMEOUT_S": "60",
              "LIVE_INTERPRETER_LOG_LEVEL": "INFO"}
    root = tmp_path_factory.mktemp("cluster")
    media = {}
    for name in ("m1", "m2", "m3"):
        port = spare_port()
        media[name] = _start("media", name, env={**common, "LIVE_INTERPRETER_NODE_ID": name,
                                             "LIVE_INTERPRETER_NODE_URL":
                                             f"http://127.0.0.1:{port}"},
                             data_dir=root / name, port=port)
    signaling = _start("signaling", "signaling", env=common, data_dir=root / "signaling",
                       port=spare_port())
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 180
            while True:
                try:
                    async with http.get(signaling.url + "/readyz") as resp:
                        body = await resp.json()
                        if resp.status == 200 and body["media_nodes"] == 3:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "the cluster never became ready"
                await asyncio.sleep(0.5)
            for node in media.values():  # engines loaded everywhere
                while True:
                    async with http.get(node.url + "/readyz") as resp:
                        if resp.status == 200:
                            break
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.5)
        yield Cluster(signaling, media)
    finally:
        for process in [signaling, *media.values()]:
            if process.process.poll() is None:
                process.process.terminate()
        for process in [signaling, *media.values()]:
            try:
                process.process.wait(30)
            except subprocess.TimeoutExpired:
                process.process.kill()
        await redis.stop()


async def _create(http: aiohttp.ClientSession, cluster: Cluster, *, room: str,
                  speak: bool = False) -> dict[str, str]:
    async with http.post(f"{cluster.signaling.url}/api/sessions",
                         json={"room": room, "speak": speak, "source_lang": "en"},
                         headers=bearer(room, "speaker" if speak else "listener")) as resp:
        body = await resp.json()
        assert resp.status == 201, body
        return dict(body)


def _node(session_id: str) -> str:
    return session_id.split(".", 1)[0]


async def test_rooms_spread_over_nodes_and_a_room_stays_on_one(cluster: Cluster) -> None:
    async with aiohttp.ClientSession() as http:
        firsts = {room: await _create(http, cluster, room=room) for room in ("ra", "rb", "rc")}
        assert {_node(s["session_id"]) for s in firsts.values()} == {"m1", "m2", "m3"}
        for room, first in firsts.items():
            for _ in range(2):
                again = await _create(http, cluster, room=room)
                assert _node(again["session_id"]) == _node(first["session_id"]), room
        for room, first in firsts.items():  # calls on a session reach its node
            session = f"{cluster.signaling.url}/api/sessions/{first['session_id']}"
            async with http.get(session, headers=bearer(room, "listener")) as resp:
                assert resp.status == 200 and (await resp.json())["room"] == room
            async with http.get(session, headers=bearer("elsewhere", "listener")) as resp:
                assert resp.status == 403  # the node checks the token
            async with http.delete(session, headers=bearer(room, "listener")) as resp:
                assert resp.status == 204


async def test_a_speaker_through_signaling_is_captioned_and_fanned_out(
        cluster: Cluster, jfk48: np.ndarray) -> None:
    headers = bearer("stage")
    async with aiohttp.ClientSession(headers=headers) as http:
        events: list[dict[str, object]] = []

        async def consume() -> None:  # a consumer on another process than the room's
            async with http.get(f"{cluster.signaling.url}/api/rooms/stage/captions") as resp:
                assert resp.status == 200
                async for line in resp.content:
                    if line.startswith(b"data: "):
                        events.append(json.loads(line[6:]))

        consumer = asyncio.create_task(consume())
        client = CaptionClient(cluster.signaling.url, http)
        try:
            await client.start(jfk48, room="stage", target_lang="pt")
            await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                                  and "for your country" in str(m["text"]).lower(), within=60)
            said = " ".join(str(m["text"]) for m in client.finals())
            assert wer(JFK_TEXT, said) <= 0.15, said
            deadline = time.monotonic() + 5
            while not any(e["status"] == "final" and "for your country" in str(e["text"]).lower()
                          for e in events):
                assert time.monotonic() < deadline, events
                await asyncio.sleep(0.1)
            finals = [e for e in events if e["status"] == "final" and e["text"]]
            assert [e["utterance_id"] for e in finals] == [m["utterance_id"]
                                                           for m in client.finals()]
            assert all("pt" in e["translations"] for e in finals)  # type: ignore[operator]
            assert any(e["status"] == "interim" for e in events)
        finally:
            consumer.cancel()
            await client.close()


async def _roster(http: aiohttp.ClientSession, cluster: Cluster, room: str) -> set[str]:
    async with http.get(f"{cluster.signaling.url}/api/rooms/{room}",
                        headers=bearer(room, "listener")) as resp:
        return {p["name"] for p in (await resp.json())["participants"]}


async def test_websocket_participants_go_through_signaling_to_the_rooms_node(
        cluster: Cluster) -> None:
    async with aiohttp.ClientSession() as http:
        await _create(http, cluster, room="calls")  # the room now has a node
        url = socket_url(cluster.signaling.url, "calls", name="Bot")
        with pytest.raises(websockets.InvalidStatus) as refused:  # by the node, no token
            await websockets.connect(url)
        assert refused.value.response.status_code == 401
        # A browser's way: the token as a subprotocol, which the node picks.
        token = bearer("calls")["Authorization"].removeprefix("Bearer ")
        bot = await SocketClient.open(url, SocketAudio(),
                                      subprotocols=["live-interpreter", f"bearer.{token}"])
        assert bot.ws.subprotocol == "live-interpreter"
        await bot.ws.send(b"\x00")  # half a sample: the node's answer comes back through
        await bot.until(lambda: bot.of_type("error") and bot.of_type("pong"), 10, "answers")
        assert bot.of_type("error")[0]["code"] == "bad_audio"
        phone = await websockets.connect(
            f"{cluster.signaling.url.replace('http://', 'ws://')}/twilio/calls")
        await phone.send(twilio_start(token=token, name="Phone", source_lang="en"))
        deadline = time.monotonic() + 10
        while await _roster(http, cluster, "calls") < {"Bot", "Phone"}:
            assert time.monotonic() < deadline, "the sockets never joined the room's node"
            await asyncio.sleep(0.2)
        # The node's close code comes back through signaling too.
        await bot.ws.send(bytes(MAX_FRAME_BYTES + 2))
        await bot.until(lambda: bot.ws.close_code is not None, 10, "closed")
        assert bot.ws.close_code == 1009
        await bot.close()
        await phone.close()
        while "Phone" in await _roster(http, cluster, "calls"):
            assert time.monotonic() < deadline + 10, "a call hung up is still in the room"
            await asyncio.sleep(0.2)


async def test_a_killed_node_leaves_placement_and_the_others_serve_on(cluster: Cluster) -> None:
    async with aiohttp.ClientSession() as http:
        keeper = await _create(http, cluster, room="survivor")
        victim = next(n for n in ("m1", "m2", "m3") if n != _node(keeper["session_id"]))
        cluster.media[victim].process.kill()
        killed_at = time.monotonic()
        while True:
            async with http.get(cluster.signaling.url + "/readyz") as resp:
                if (await resp.json()).get("media_nodes") == 2:
                    break
            assert time.monotonic() - killed_at < NODE_TTL_S + 2 * HEARTBEAT_S + 1.0
            await asyncio.sleep(0.1)
        gone_after = time.monotonic() - killed_at
        placed = [_node((await _create(http, cluster, room=f"after-{n}"))["session_id"])
                  for n in range(6)]
        assert victim not in placed and len(set(placed)) == 2, placed
        session = f"{cluster.signaling.url}/api/sessions/{keeper['session_id']}"
        async with http.get(session, headers=bearer("survivor", "listener")) as resp:
            assert resp.status == 200  # the others serve on
        assert gone_after <= NODE_TTL_S + 2 * HEARTBEAT_S + 1.0


async def test_sigterm_drains_a_node_without_losing_finals(
        cluster: Cluster, jfk48: np.ndarray) -> None:
    async with aiohttp.ClientSession(headers=bearer("drained")) as http:
        client = CaptionClient(cluster.signaling.url, http)
        await client.start(jfk48, room="drained", target_lang="pt")
        node = cluster.media[_node(client.session_id)]
        await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final",
                              within=30)
        node.process.send_signal(signal.SIGTERM)  # mid-speech
        await asyncio.sleep(2 * HEARTBEAT_S + 0.5)
        other = await _create(http, cluster, room="while-draining")
        assert _node(other["session_id"]) != _node(client.session_id)  # no new rooms
        await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                              and "for your country" in str(m["text"]).lower(), within=60)
        said = [str(m["text"]) for m in client.finals()]
        assert node.process.poll() is None  # still there while its session lives
        await client.close(delete=False)  # the client leaves; the node may go
        exit_code = await asyncio.to_thread(node.process.wait, 30)
        assert exit_code == 0
    store = await SqliteStore.open(node.data_dir / "live-interpreter.db")
    try:
        kept = [r.text for r in await store.transcript("drained")]
    finally:
        await store.close()
    assert kept == said and wer(JFK_TEXT, " ".join(kept)) <= 0.15


async def test_whep_goes_through_signaling_to_the_rooms_node(cluster: Cluster) -> None:
    async with aiohttp.ClientSession() as http:
        listener = await _create(http, cluster, room="broadcast")  # the room now has a node
        player = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        player.addTransceiver("audio", direction="recvonly")
        await player.setLocalDescription(await player.createOffer())
        try:
            async with http.post(f"{cluster.signaling.url}/whep/broadcast?lang=pt",
                                 data=player.localDescription.sdp,
                                 headers={"Content-Type": "application/sdp",
                                          **bearer("broadcast", "listener")}) as resp:
                assert resp.status == 201, await resp.text()
                assert resp.headers["Content-Type"] == "application/sdp"
                location = resp.headers["Location"]
                assert resp.headers["ETag"]
            session_id = location.rsplit("/", 1)[1]
            assert _node(session_id) == _node(listener["session_id"])  # the room's node
            async with http.delete(cluster.signaling.url + location,
                                   headers=bearer("broadcast", "listener")) as resp:
                assert resp.status == 200
        finally:
            await player.close()
