"""TURN with a real coturn configured from `turn/turnserver.conf.template`: a client
that may only use relayed candidates reaches the media server through it and is
captioned; coturn refuses expired and forged credentials; the template's deny list
refuses private, loopback and metadata peers and lets a public one through (that
last check runs coturn and the client inside a network namespace of its own, whose
only interface is loopback)."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from aioice.stun import TransactionFailed
from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from media_server.engines.loader import Engines
from media_server.metrics import REGISTRY
from media_server.settings import Settings
from signaling.turn_check import check_turn
from tests.conftest import JFK_TEXT, start_server, wer
from tests.coturn import Coturn
from tests.rtc_client import CaptionClient

SECRET = "coturn-test-secret-9d4b2f7e1a6c3058b3e8"
CLI = str(Path(sys.executable).parent / "live-interpreter")


@pytest.fixture
async def coturn(tmp_path: Path) -> AsyncIterator[Coturn]:
    server = Coturn(tmp_path / "coturn", SECRET)
    await server.start()
    yield server
    await server.stop()


async def test_a_relay_only_client_is_captioned_through_coturn(
        settings: Settings, engines: Engines, jfk48: np.ndarray, coturn: Coturn,
        http: aiohttp.ClientSession) -> None:
    configured = settings.replace(turn_host="127.0.0.1", turn_port=coturn.port,
                                  turn_secret=SECRET)
    server, runner = await start_server(configured, engines)
    client = CaptionClient(server.url, http)
    issued = REGISTRY.get_sample_value("live_interpreter_turn_credentials_issued_total") or 0
    try:
        created = await (await client.create(room="relayed")).json()
        turn = next(s for s in created["ice_servers"] if "username" in s)
        assert REGISTRY.get_sample_value(
            "live_interpreter_turn_credentials_issued_total") == issued + 1
        udp = next(url for url in turn["urls"] if url.endswith("transport=udp"))
        config = RTCConfiguration(
            iceServers=[RTCIceServer(udp, turn["username"], turn["credential"])],
            iceTransportPolicy=RTCIceTransportPolicy.RELAY)
        await client.connect(created["session_id"], jfk48, config=config)
        assert client.pc is not None and client.pc.sctp is not None
        ice = client.pc.sctp.transport.transport._connection
        pair = ice._nominated[1]  # the pair ICE chose for the one component
        assert pair.local_candidate.type == "relay", pair  # through coturn, not direct
        assert pair.local_candidate.host == "127.0.0.1"
        await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                              and "for your country" in m["text"].lower(), within=40)
        said = " ".join(m["text"] for m in client.finals())
        assert wer(JFK_TEXT, said) <= 0.15, said
    finally:
        await client.close()
        await runner.cleanup()


async def test_coturn_refuses_expired_and_forged_credentials(coturn: Coturn) -> None:
    granted = await check_turn("127.0.0.1", coturn.port, secret=SECRET)
    assert granted.relayed[0] == "127.0.0.1"
    for refused in (check_turn("127.0.0.1", coturn.port, secret=SECRET, ttl_s=-60),  # expired
                    check_turn("127.0.0.1", coturn.port, secret="not the secret"),  # forged
                    check_turn("127.0.0.1", coturn.port, secret=SECRET, username="9999999999:x",
                               password="d3Jvbmc=")):  # a made-up pair
        with pytest.raises(TransactionFailed, match="401"):
            await refused


async def test_turn_over_tls_speaks_tls_1_2_and_up_only(coturn: Coturn) -> None:
    trusting = ssl.create_default_context(cafile=coturn.directory / "cert.pem")
    trusting.check_hostname = False  # the test certificate names turn.test
    granted = await check_turn("127.0.0.1", coturn.tls_port, secret=SECRET, transport="tls",
                               tls=trusting)
    assert granted.relayed[0] == "127.0.0.1"
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    # coturn gives a TLS 1.1 hello no answer at all; the handshake is abandoned.
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.open_connection("127.0.0.1", coturn.tls_port, ssl=old,
                                      ssl_handshake_timeout=3)


async def test_two_secrets_work_at_once_while_rotating(tmp_path: Path) -> None:
    """As turn/README.md tells admins: the new secret beside the old one, then the old
    one goes; credentials of either work in between."""
    rotating = Coturn(tmp_path / "coturn", "new-secret", old_secret=SECRET)
    await rotating.start()
    try:
        for secret in ("new-secret", SECRET):
            assert (await check_turn("127.0.0.1", rotating.port, secret=secret)).relayed
        with pytest.raises(TransactionFailed, match="401"):
            await check_turn("127.0.0.1", rotating.port, secret="a third secret")
    finally:
        await rotating.stop()


async def test_the_template_denies_loopback_and_private_peers(coturn: Coturn) -> None:
    """127.0.0.1 is allowed for the media server in this test's coturn; its neighbour
    127.0.0.2 is not. Nothing is sent to the peers: only channels are asked for."""
    allowed = await check_turn("127.0.0.1", coturn.port, secret=SECRET, peer=("127.0.0.1", 9))
    assert allowed.peer_refused is None
    for transport in ("udp", "tcp"):
        denied = await check_turn("127.0.0.1", coturn.port, secret=SECRET, transport=transport,
                                  peer=("127.0.0.2", 9))
        assert denied.peer_refused is not None and "403" in denied.peer_refused
    assert "denied in the range: 127.0.0.0-127.255.255.255" in coturn.log.read_text()


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"li-turn-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
                       check=True)
        # A public-looking address of the namespace's own, to stand for a public peer.
        subprocess.run(["ip", "netns", "exec", name, "ip", "addr", "add", "1.2.3.4/32",
                        "dev", "lo"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


async def test_turn_check_shows_the_deny_list_as_deployed(
        netns: str, tmp_path: Path, settings: Settings) -> None:
    """The template exactly as shipped (no peer allowed on loopback), with the admin's
    command `live-interpreter turn-check --peer`, all inside the namespace."""
    inside = ("ip", "netns", "exec", netns)
    coturn = Coturn(tmp_path / "coturn", SECRET, allow_media_peer=False, command_prefix=inside)
    await coturn.start()
    env = {**os.environ, "LIVE_INTERPRETER_TURN_HOST": "127.0.0.1",
           "LIVE_INTERPRETER_TURN_PORT": str(coturn.port),
           "LIVE_INTERPRETER_TURN_SECRET": SECRET,
           "LIVE_INTERPRETER_DATA_DIR": settings.data_dir}

    async def turn_check(peer: str) -> str:
        process = await asyncio.create_subprocess_exec(
            *inside, CLI, "turn-check", "--peer", peer, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output, _ = await process.communicate()
        assert process.returncode == 0, output.decode()
        return output.decode()

    try:
        public = await turn_check("1.2.3.4:9")
        assert "allocation OK" in public and "allowed" in public, public
        for peer in ("127.0.0.1:9", "127.0.0.2:9", "10.0.0.1:9", "172.16.0.1:9",
                     "192.168.1.1:9", "100.64.0.1:9", "169.254.169.254:80"):
            verdict = await turn_check(peer)
            assert "refused" in verdict and "403" in verdict, (peer, verdict)
    finally:
        await coturn.stop()
