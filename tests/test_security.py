"""What an outside review found a deployment open to, each closed: known or weak
secrets, an empty secret file, one rate-limit bucket behind a proxy, media nodes open
to anyone, forwarding to any path of a node, tokens leaking from page addresses and
logs, DNS rebinding of a dev server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web
from ruamel.yaml import YAML

from media_server.engines.loader import Engines
from media_server.settings import Settings, SettingsError
from signaling import tokens
from signaling.app import create_app
from signaling.clients import NODE_SECRET_HEADER
from signaling.cluster.front import create_signaling_app
from signaling.cluster.heartbeat import NODE_KEY, ROOM_KEY, NodeInfo
from tests.conftest import start_server
from tests.services import PrivateRedis, spare_port
from tests.test_deploy import K8S, REPO, load_yaml

SECRET = "security-test-secret-1c7e9a4b2f5d8036a1e7"
NODE_SECRET = "security-node-secret-4d2a8f6c1e9b3057b8c4"
CLI = str(Path(sys.executable).parent / "live-interpreter")


def bearer(room: str, role: str = "speaker", **claims: Any) -> dict[str, str]:
    token = tokens.mint(SECRET.encode(), room, role=role, ttl_s=600, **claims)
    return {"Authorization": f"Bearer {token}"}


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_INTERPRETER_")}
    environ.update({f"LIVE_INTERPRETER_{k}": v for k, v in env.items()})
    return subprocess.run([CLI, *args], env=environ, capture_output=True, text=True,
                          timeout=60)


# -- secrets ----------------------------------------------------------------------------


def test_known_and_short_secrets_stop_the_server_at_start(tmp_path: Path) -> None:
    data = str(tmp_path)
    for name, value in (("AUTH_SECRET", "change-me-auth-secret"),  # compose's old default
                        ("AUTH_SECRET", "replace-with-32-random-bytes"),  # the k8s example
                        ("AUTH_SECRET", "short"),
                        ("AUTH_SECRET", "a" * 40),
                        ("TURN_SECRET", "change-me-turn-secret"),
                        ("NODE_SECRET", "x" * 31)):
        result = _cli("serve", DATA_DIR=data, **{name: value})
        assert result.returncode == 2, (name, value, result.stderr)
        assert name.lower() in result.stderr and "openssl rand -hex 32" in result.stderr


def test_an_empty_or_short_secret_file_is_refused_not_used(tmp_path: Path) -> None:
    for content in ("", "\n", "abc"):
        (tmp_path / "auth-secret").write_text(content)
        settings = Settings(data_dir=str(tmp_path))
        with pytest.raises(SettingsError, match="auth-secret"):
            tokens.auth_secret(settings)
        result = _cli("token", "standup", DATA_DIR=str(tmp_path))
        assert result.returncode == 2 and "delete the file" in result.stderr
        assert not result.stdout  # no token signed with an empty key
        result = _cli("serve", DATA_DIR=str(tmp_path))
        assert result.returncode == 2 and "auth-secret" in result.stderr


def test_the_secret_file_is_made_whole_and_private_even_by_racing_processes(
        tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path / "data"))
    seen: list[bytes] = []
    start = threading.Barrier(16)

    def read() -> None:
        start.wait()
        seen.append(tokens.auth_secret(settings))

    threads = [threading.Thread(target=read) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1 and re.fullmatch(rb"[0-9a-f]{64}", seen[0])
    files = list((tmp_path / "data").iterdir())
    assert [f.name for f in files] == ["auth-secret"]  # no draft left behind
    assert files[0].stat().st_mode & 0o777 == 0o600


def test_no_secret_ships_in_the_deployment_files() -> None:
    compose = (REPO / "docker-compose.yml").read_text()
    assert "change-me" not in compose
    for name in ("AUTH_SECRET", "TURN_SECRET", "POSTGRES_PASSWORD", "GRAFANA_PASSWORD"):
        uses = re.findall(r"(?<!\$)\$\{" + name + r"([^}]*)\}", compose)  # ($$: escaped)
        assert uses and all(use.startswith(":?") for use in uses), (name, uses)
    grafana = load_yaml(REPO / "docker-compose.yml")["services"]["grafana"]
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]
    kustomization = load_yaml(K8S / "kustomization.yaml")
    applied = "".join((K8S / name).read_text() for name in kustomization["resources"])
    assert "kind: Secret" not in applied and "replace-with" not in applied
    example = (K8S / "secret.example.yaml").read_text()
    for name in ("AUTH_SECRET", "NODE_SECRET", "METRICS_TOKEN", "TURN_SECRET"):
        assert f"LIVE_INTERPRETER_{name}" in example
    ingress = next(d for d in load_yaml_all(K8S / "signaling.yaml") if d["kind"] == "Ingress")
    assert "nginx.ingress.kubernetes.io/limit-rps" in ingress["metadata"]["annotations"]


def load_yaml_all(path: Path) -> list[dict[str, Any]]:
    return list(YAML(typ="safe").load_all(path.read_text()))


# -- who is calling: proxies, tokens ----------------------------------------------------


async def test_clients_behind_a_trusted_proxy_and_token_holders_have_their_own_buckets(
        settings: Settings, engines: Engines, http: aiohttp.ClientSession) -> None:
    configured = settings.replace(auth_secret=SECRET, rate_limit_per_s=0.01,
                                  rate_limit_burst=3, trusted_proxies=("127.0.0.1/32",))
    server, runner = await start_server(configured, engines, dev=False)
    languages = server.url + "/api/languages"

    async def statuses(headers: dict[str, str], count: int = 4) -> list[int]:
        result = []
        for _ in range(count):
            async with http.get(languages, headers=headers) as resp:
                result.append(resp.status)
        return result

    try:
        # Two clients behind the proxy: a bucket each (the proxy appends the address
        # it saw; what a client wrote before it is not believed).
        assert await statuses({"X-Forwarded-For": "203.0.113.7"}) == [200, 200, 200, 429]
        assert await statuses({"X-Forwarded-For": "203.0.113.7, 198.51.100.9"}) == \
            [200, 200, 200, 429]
        assert await statuses({"Forwarded": 'for="[2001:db8::1]:4711"'}) == \
            [200, 200, 200, 429]
        # Token holders are limited per token, wherever they call from.
        assert await statuses({"X-Forwarded-For": "203.0.113.7", **bearer("a")}) == \
            [200, 200, 200, 429]
        assert await statuses({"X-Forwarded-For": "203.0.113.7", **bearer("b")}) == \
            [200, 200, 200, 429]
        # An invalid token is no way to a fresh bucket: it counts as its address.
        invalid = {"X-Forwarded-For": "203.0.113.7", "Authorization": "Bearer x.y.z"}
        assert await statuses(invalid, 1) == [429]
    finally:
        await runner.cleanup()
    untrusted = settings.replace(auth_secret=SECRET, rate_limit_per_s=0.01, rate_limit_burst=3)
    server, runner = await start_server(untrusted, engines, dev=False)
    languages = server.url + "/api/languages"
    try:  # a header from a peer that is not a trusted proxy changes nothing
        assert await statuses({"X-Forwarded-For": "203.0.113.1"}, 3) == [200, 200, 200]
        assert await statuses({"X-Forwarded-For": "203.0.113.2"}, 1) == [429]
    finally:
        await runner.cleanup()


async def test_a_media_node_answers_only_signaling(
        settings: Settings, engines: Engines, http: aiohttp.ClientSession) -> None:
    with pytest.raises(SettingsError, match="node_secret"):
        create_app(settings.replace(auth_secret=SECRET, redis_url="redis://127.0.0.1:1"),
                   engines=engines, node=True)
    redis = PrivateRedis(Path(settings.data_dir) / "node-redis")
    await redis.start()
    configured = settings.replace(auth_secret=SECRET, node_secret=NODE_SECRET,
                                  redis_url=redis.url, node_id="n1",
                                  rate_limit_per_s=0.01, rate_limit_burst=2)
    app = create_app(configured, engines=engines, node=True)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        for path in ("/api/languages", "/api/rooms/r", "/", "/whip/r"):
            async with http.get(url + path) as resp:
                assert resp.status == 403 and (await resp.json())["error"]["code"] == "node_only"
        async with http.get(url + "/api/languages",
                            headers={NODE_SECRET_HEADER: "wrong" * 8}) as resp:
            assert resp.status == 403
        for path in ("/healthz", "/readyz"):
            async with http.get(url + path) as resp:
                assert resp.status == 200
        # Signaling's calls pass, and the node still limits each client it forwards.
        for client, expected in (("203.0.113.7", [200, 200, 429]),
                                 ("203.0.113.8", [200, 200, 429])):
            seen = []
            for _ in range(3):
                async with http.get(url + "/api/languages", headers={
                        NODE_SECRET_HEADER: NODE_SECRET, "X-Forwarded-For": client}) as resp:
                    seen.append(resp.status)
            assert seen == expected
    finally:
        await runner.cleanup()
        await redis.stop()


@pytest.fixture
async def front(settings: Settings) -> AsyncIterator[tuple[str, aioredis.Redis, list[str]]]:
    """Signaling with one registered "node": a recorder of every path it is sent."""
    redis = PrivateRedis(Path(settings.data_dir) / "front-redis")
    await redis.start()
    asked: list[str] = []

    async def record(request: web.Request) -> web.Response:
        asked.append(request.raw_path)
        return web.json_response({"ok": True, "secret": request.headers.get(
            NODE_SECRET_HEADER), "client": request.headers.get("X-Forwarded-For")})

    node = web.Application()
    node.router.add_route("*", "/{anything:.*}", record)
    node_runner = web.AppRunner(node)
    await node_runner.setup()
    await web.TCPSite(node_runner, "127.0.0.1", 0).start()
    node_url = f"http://127.0.0.1:{node_runner.addresses[0][1]}"
    configured = settings.replace(auth_secret=SECRET, node_secret=NODE_SECRET,
                                  redis_url=redis.url,
                                  node_url_pattern=r"http://127\.0\.0\.1:[0-9]+")
    front_runner = web.AppRunner(create_signaling_app(configured))
    await front_runner.setup()
    await web.TCPSite(front_runner, "127.0.0.1", 0).start()
    client = aioredis.Redis.from_url(redis.url, decode_responses=True)
    info = NodeInfo(id="n1", url=node_url, sessions=0, speakers=0, draining=False,
                    updated_at=1.0)
    await client.set(NODE_KEY + "n1", json.dumps(asdict(info)))
    yield f"http://127.0.0.1:{front_runner.addresses[0][1]}", client, asked
    await client.aclose()
    await front_runner.cleanup()
    await node_runner.cleanup()
    await redis.stop()


async def test_signaling_forwards_only_our_paths_to_allowed_node_addresses(
        front: tuple[str, aioredis.Redis, list[str]], http: aiohttp.ClientSession) -> None:
    url, client, asked = front
    session = "n1." + "A" * 24
    async with http.get(f"{url}/api/sessions/{session}", headers=bearer("r")) as resp:
        body = await resp.json()
        assert resp.status == 200 and body["secret"] == NODE_SECRET
        assert body["client"] == "127.0.0.1"
    assert asked == [f"/api/sessions/{session}"]
    for path in (f"/api/sessions/{session}/../../metrics",
                 f"/api/sessions/{session}/%2e%2e/%2e%2e/admin",
                 f"/api/sessions/{session}/anything",
                 "/api/sessions/n1.short",
                 "/api/sessions/n1..%2f..%2fx",
                 "/api/rooms/%2e%2e/transcript",
                 "/api/rooms/r/../../x",
                 "/api/rooms/r/secret-page",
                 f"/whip/%2e%2e/{session}"):
        async with http.get(url + path, headers=bearer("r")) as resp:
            assert resp.status == 404, (path, resp.status)
    assert asked == [f"/api/sessions/{session}"]  # nothing else reached the node
    # A node address outside the allowed pattern (Redis says anything) is not called.
    evil = NodeInfo(id="n2", url="http://169.254.169.254", sessions=0, speakers=0,
                    draining=False, updated_at=1.0)
    await client.set(NODE_KEY + "n2", json.dumps(asdict(evil)))
    await client.set(ROOM_KEY + "evil", "n2")
    async with http.get(f"{url}/api/rooms/evil", headers=bearer("evil")) as resp:
        assert resp.status == 503 and (await resp.json())["error"]["code"] == "node_refused"


# -- tokens in addresses and logs; dev servers ------------------------------------------


async def _served(*args: str, **env: str) -> tuple[asyncio.subprocess.Process, str]:
    port = spare_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_INTERPRETER_")}
    environ.update({f"LIVE_INTERPRETER_{k}": v for k, v in env.items()})
    process = await asyncio.create_subprocess_exec(
        CLI, "serve", "--port", str(port), *args, env=environ,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            try:
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return process, url
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not start")


async def _stop(process: asyncio.subprocess.Process) -> str:
    process.terminate()
    output, _ = await process.communicate()
    return output.decode()


async def test_tokens_never_reach_the_log_or_other_sites(tmp_path: Path) -> None:
    process, url = await _served(DATA_DIR=str(tmp_path), AUTH_SECRET=SECRET)
    token = bearer("standup")["Authorization"].removeprefix("Bearer ")
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/?room=standup&token={token}") as resp:
                assert resp.status == 200
                assert resp.headers["Referrer-Policy"] == "no-referrer"
                assert resp.headers["X-Content-Type-Options"] == "nosniff"
            async with http.get(f"{url}/api/rooms/standup",
                                headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.headers["Referrer-Policy"] == "no-referrer"
            async with http.get(f"{url}/viewer.html?access_token={token}&lang=pt") as resp:
                assert resp.status == 200
    finally:
        log = await _stop(process)
    assert "GET /?room=standup&token=… 200" in log  # the request is logged, not its token
    assert "access_token=…&lang=pt" in log
    signature = token.rsplit(".", 1)[1]
    assert signature not in log and token not in log


async def test_a_dev_server_answers_only_to_loopback_names(tmp_path: Path) -> None:
    process, url = await _served("--dev", DATA_DIR=str(tmp_path))
    try:
        async with aiohttp.ClientSession() as http:
            for host, expected in (("attacker.example", 403), ("127.0.0.1.nip.io", 403),
                                   ("localhost", 200), (url.removeprefix("http://"), 200),
                                   ("[::1]:8080", 200)):
                async with http.get(url + "/api/languages", headers={"Host": host}) as resp:
                    assert resp.status in (expected, 503), (host, resp.status)
                    if expected == 403:
                        assert resp.status == 403
                        assert (await resp.json())["error"]["code"] == "host_forbidden"
    finally:
        await _stop(process)


async def test_metrics_can_require_their_own_token(
        settings: Settings, engines: Engines, http: aiohttp.ClientSession) -> None:
    metrics_token = "metrics-token-0a9c3e7f5b1d2864e6f0"
    server, runner = await start_server(settings.replace(metrics_token=metrics_token), engines)
    try:
        async with http.get(server.url + "/metrics") as resp:
            assert resp.status == 401
        async with http.get(server.url + "/metrics",
                            headers={"Authorization": f"Bearer {metrics_token}"}) as resp:
            assert resp.status == 200 and "live_interpreter_active_sessions" in await resp.text()
    finally:
        await runner.cleanup()
