"""A real coturn (Debian's `turnserver`) on loopback, configured from our template
(`turn/turnserver.conf.template`) with a test certificate, and only these test
changes: loopback listening and relay addresses, spare ports, and (unless told
otherwise) the loopback peer 127.0.0.1, where the media server listens, allowed.
Every other deny of the template stands, 127.0.0.2 included. It can run inside a
network namespace of the test's own (`command_prefix`)."""

from __future__ import annotations

import asyncio
import shutil
import string
import subprocess
from pathlib import Path

from tests.services import spare_port

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "turn" / "turnserver.conf.template"


def render(values: dict[str, str], overrides: dict[str, list[str]]) -> str:
    """The template with its ${VARIABLES} filled in and the `overrides` keys' lines
    replaced (a key with an empty list is dropped; "" marks a flag)."""
    text = string.Template(TEMPLATE.read_text()).substitute(values)
    kept = [line for line in text.splitlines()
            if line.split("=", 1)[0].strip() not in overrides]
    for key, settings in overrides.items():
        kept += [key if value == "" else f"{key}={value}" for value in settings]
    return "\n".join(kept) + "\n"


class Coturn:
    def __init__(self, directory: Path, secret: str, *, allow_media_peer: bool = True,
                 command_prefix: tuple[str, ...] = (), old_secret: str = "") -> None:
        self.directory = directory
        self.old_secret = old_secret  # a second secret, as while rotating
        self.allow_media_peer = allow_media_peer
        self.command_prefix = command_prefix
        self.secret = secret
        self.realm = "turn.test"
        self.port = spare_port()
        self.tls_port = spare_port()
        self.log = directory / "turnserver.log"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        server = shutil.which("turnserver")
        if server is None:
            raise FileNotFoundError("turnserver is missing: apt-get install coturn")
        self.directory.mkdir(parents=True, exist_ok=True)
        cert, key = self.directory / "cert.pem", self.directory / "key.pem"
        openssl = await asyncio.create_subprocess_exec(
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
            "/CN=turn.test", "-keyout", str(key), "-out", str(cert),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if await openssl.wait():
            raise RuntimeError("openssl could not make the test certificate")
        low = 40000 + (self.port % 200) * 100  # a relay range of its own
        config = self.directory / "turnserver.conf"
        overrides = {
            "listening-ip": ["127.0.0.1"], "relay-ip": ["127.0.0.1"],
            "listening-port": [str(self.port)], "tls-listening-port": [str(self.tls_port)],
            "external-ip": [], "min-port": [str(low)], "max-port": [str(low + 99)],
            "log-file": [str(self.log)], "pidfile": [str(self.directory / "pid")],
            # coturn will not allow loopback peers without a CLI password (the CLI is off).
            "cli-password": ["unused-test-cli-password"]}
        if self.old_secret:
            overrides["static-auth-secret"] = [self.secret, self.old_secret]
        if self.allow_media_peer:
            overrides |= {"allow-loopback-peers": [""], "allowed-peer-ip": ["127.0.0.1"]}
        config.write_text(render(
            {"TURN_SECRET": self.secret, "TURN_REALM": self.realm, "EXTERNAL_IP": "127.0.0.1",
             "TLS_CERT_FILE": str(cert), "TLS_KEY_FILE": str(key)}, overrides))
        self._process = await asyncio.create_subprocess_exec(
            *self.command_prefix, server, "-c", str(config),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if self.log.exists() and "Total General servers" in self.log.read_text():
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"turnserver did not start: {self.log.read_text()[-2000:]}")

    async def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            await self._process.wait()
            self._process = None
