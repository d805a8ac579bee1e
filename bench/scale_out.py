"""Scale-out on this machine: speech streams carried by 1 and by 3 media-node processes
behind one signaling process, and what placement adds to creating a session.

Media nodes here use scripted recognition (the voice-activity detector and every
other engine are real; see tests/scripted_speech.py): local Whisper saturates this
machine's cores with one node, which would say nothing about the nodes. Each stream
is one speaker alone in a room, reading Portuguese (translation, no speech back),
speaking phrases with pauses. A stream count is carried while the translated finals'
p95 (end of speech -> arrival) stays <= 1.5 s. Placement: sessions created through
signaling (Redis lookups + one forwarded request) against the same request made to
a node directly.

    .venv/bin/python bench/scale_out.py [--streams 2,4,8,12] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ESPEAK_PHRASES, cpu_seconds, percentile, phrases
from bench.rooms import program
from media_server.engines.loader import load_engines
from media_server.settings import Settings
from signaling.clients import NODE_SECRET_HEADER
from tests.rtc_client import CaptionClient
from tests.scripted_speech import scripted_engines
from tests.services import PrivateRedis, spare_port

CLI = str(Path(sys.executable).parent / "live-interpreter")
NODE_SECRET = "bench-node-secret-6d0a3f8c2e9b1754d7c3"
CARRIED_P95_S = 1.5


async def serve_node(port: int) -> None:
    """A media node with scripted recognition (the benchmark starts these)."""
    from aiohttp import web

    from signaling.app import create_app

    settings = Settings.load().replace(max_speakers=1000, max_sessions=1000)
    real = await load_engines(settings)
    app = create_app(settings, engines=scripted_engines(real, ESPEAK_PHRASES), dev=True,
                     node=True)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def wait_ready(http: aiohttp.ClientSession, url: str, nodes: int) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            async with http.get(url + "/readyz") as resp:
                if resp.status == 200 and (await resp.json())["media_nodes"] == nodes:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.5)
    raise RuntimeError("the cluster did not become ready")


async def stream(url: str, http: aiohttp.ClientSession, *, room: str, audio: np.ndarray
                 ) -> list[float]:
    """One speaker's translated finals: end of speech -> arrival, seconds each."""
    speaker = CaptionClient(url, http)
    await speaker.start(audio, lead_silence_s=0.5, room=room, target_lang="pt", monitor=False)
    await asyncio.sleep(len(audio) / 48000 + 3)
    assert speaker.track is not None and speaker.track._t0 is not None
    t0 = speaker.track._t0
    lags = [r.at - (t0 + r.message["end_ms"] / 1000) for r in speaker.received
            if r.message["type"] == "caption" and r.message["status"] == "final"
            and r.message["text"] and r.message.get("translation")]
    await speaker.close()
    return lags


async def placement(http: aiohttp.ClientSession, signaling: str, *, node: str,
                    count: int = 60) -> tuple[float, float]:
    """Median time to create (and delete) a listener session: via signaling, direct."""
    async def create(url: str, n: int, headers: dict[str, str]) -> float:
        started = time.perf_counter()
        async with http.post(url + "/api/sessions", json={"room": f"placed-{n}",
                                                          "speak": False},
                             headers=headers) as resp:
            body = await resp.json()
        elapsed = time.perf_counter() - started
        async with http.delete(f"{url}/api/sessions/{body['session_id']}", headers=headers):
            pass
        return elapsed

    via = [await create(signaling, n, {}) for n in range(count)]
    # Straight to the node, as signaling calls it (with the node secret).
    direct = [await create(node, count + n, {NODE_SECRET_HEADER: NODE_SECRET})
              for n in range(count)]
    return percentile(via, 50), percentile(direct, 50)


async def run_cluster(nodes: int, counts: list[int], seconds: float) -> None:
    audio = program(phrases("en"), seconds)
    with tempfile.TemporaryDirectory() as tmp:
        redis = PrivateRedis(Path(tmp) / "redis")
        await redis.start()
        env = {**os.environ, "LIVE_INTERPRETER_REDIS_URL": redis.url,
               "LIVE_INTERPRETER_AUTH_SECRET": "bench-secret-2e7c4a9f1d0b6835a4f1",
               "LIVE_INTERPRETER_NODE_SECRET": NODE_SECRET,
               "LIVE_INTERPRETER_ICE_HOST_ADDRESSES": "127.0.0.1",
               "LIVE_INTERPRETER_ICE_ALLOWED_NETWORKS": "127.0.0.0/8",
               "LIVE_INTERPRETER_MAX_SPEAKERS": "1000",
               "LIVE_INTERPRETER_LOG_LEVEL": "WARNING",
               "LIVE_INTERPRETER_PEER_IDLE_TIMEOUT_S": "10",
               "LIVE_INTERPRETER_RATE_LIMIT_PER_S": "1000",
               "LIVE_INTERPRETER_RATE_LIMIT_BURST": "1000"}
        processes, node_urls = [], []
        for index in range(nodes):
            port = spare_port()
            node_urls.append(f"http://127.0.0.1:{port}")
            processes.append(await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--node", str(port),
                env={**env, "LIVE_INTERPRETER_NODE_ID": f"n{index}",
                     "LIVE_INTERPRETER_NODE_URL": node_urls[-1],
                     "LIVE_INTERPRETER_DATA_DIR": f"{tmp}/n{index}"}))
        signaling_port = spare_port()
        signaling = f"http://127.0.0.1:{signaling_port}"
        processes.append(await asyncio.create_subprocess_exec(
            CLI, "signaling", "--port", str(signaling_port),
            env={**env, "LIVE_INTERPRETER_DATA_DIR": f"{tmp}/signaling"}))
        try:
            async with aiohttp.ClientSession() as http:
                await wait_ready(http, signaling, nodes)
                for count in counts:
                    cpu0 = sum(cpu_seconds(p.pid) for p in processes[:nodes])
                    started = time.monotonic()
                    results = await asyncio.gather(*(
                        stream(signaling, http, room=f"s{nodes}-{count}-{i}", audio=audio)
                        for i in range(count)))
                    elapsed = time.monotonic() - started
                    cpu = (sum(cpu_seconds(p.pid) for p in processes[:nodes]) - cpu0) / elapsed
                    lags = [lag for lags in results for lag in lags]
                    p95 = percentile(lags, 95)
                    print(f"{nodes:>5} {count:>7} {len(lags):>6} {percentile(lags, 50):>9.2f}s "
                          f"{p95:>5.2f}s {cpu * 100:>12.0f}%   "
                          f"{'carried' if p95 <= CARRIED_P95_S else 'behind'}", flush=True)
                if nodes == 1:
                    via, direct = await placement(http, signaling, node=node_urls[0])
                    print(f"\nplacement: session created via signaling {via * 1000:.1f} ms, "
                          f"directly on the node {direct * 1000:.1f} ms (median of 60): "
                          f"+{(via - direct) * 1000:.1f} ms, {via / direct:.2f}x\n", flush=True)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                await process.wait()
            await redis.stop()


async def main(counts: list[int], seconds: float) -> None:
    print(f"{seconds:.0f} s of speech per stream, recognition scripted; "
          f"a stream count is carried while p95 <= {CARRIED_P95_S} s")
    print(f"{'nodes':>5} {'streams':>7} {'finals':>6} {'p50':>10} {'p95':>6} "
          f"{'nodes CPU':>13}")
    for nodes in (1, 3):
        await run_cluster(nodes, counts, seconds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="2,4,8,12")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--node", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node:
        asyncio.run(serve_node(args.node))
    else:
        asyncio.run(main([int(c) for c in args.streams.split(",")], args.seconds))
