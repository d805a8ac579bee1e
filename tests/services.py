"""Private PostgreSQL and Redis servers on spare loopback ports, for tests that stop,
start and cut them off without disturbing the machine's shared services."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import asyncpg

PG_BIN = Path("/usr/lib/postgresql")


def spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _postgres_tool(name: str) -> str:
    found = sorted(PG_BIN.glob(f"*/bin/{name}"))
    if not found:
        raise FileNotFoundError(f"PostgreSQL's {name} is missing: apt-get install postgresql")
    return str(found[-1])


class PrivatePostgres:
    """A cluster of its own (trust auth, loopback only). PostgreSQL refuses to run as
    root, so under root it runs as the `postgres` user, in a directory of its own
    under /tmp (pytest's are closed to other users)."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="live-interpreter-pg-"))
        self.port = spare_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    async def _run(self, *command: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *self._as_owner, *command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        async with asyncio.timeout(60):
            output, _ = await process.communicate()
        if process.returncode:
            raise RuntimeError(f"{command[0]} failed: {output.decode(errors='replace')}")

    async def create(self) -> None:
        if self._as_owner:
            shutil.chown(self.directory, "postgres", "postgres")
        await self._run(_postgres_tool("initdb"), "-D", str(self.directory / "data"), "-A", "trust",
                  "-U", "postgres", "--no-sync")
        await self.start()

    async def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.directory} -c fsync=off")
        await self._run(_postgres_tool("pg_ctl"), "-D", str(self.directory / "data"), "-o", options,
                  "-l", str(self.directory / "log"), "-w", "start")

    async def stop(self) -> None:
        await self._run(_postgres_tool("pg_ctl"), "-D", str(self.directory / "data"), "-m",
                  "immediate", "-w", "stop")

    async def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            await self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    async def terminate_backends(self) -> int:
        """Cut every other connection, as a failover or an admin would."""
        admin = await asyncpg.connect(self.url)
        try:
            cut: int = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND datname IS NOT NULL")
            return cut
        finally:
            await admin.close()


class PrivateRedis:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = spare_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise FileNotFoundError("redis-server is missing: apt-get install redis-server")
        self.directory.mkdir(parents=True, exist_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.directory),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    async def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            await self._process.wait()
            self._process = None
