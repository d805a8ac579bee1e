"""Prometheus from Debian's package, on loopback, with the project's own configuration
(deploy/prometheus): its scrape job pointed at a server of the test's, every 0.5 s,
and its alert rules as deployed but for their hold times (`for`), which a test cannot
wait out. Queried through its HTTP API."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
from ruamel.yaml import YAML

from tests.services import spare_port

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy" / "prometheus"
INTERVAL_MS = 500


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is missing: apt-get install prometheus "
                                "(scripts/install.sh --test does)")
    return path


class Prometheus:
    def __init__(self, directory: Path, target: str) -> None:
        self.directory = directory
        self.target = target  # host:port of the server's /metrics
        self.url = f"http://127.0.0.1:{spare_port()}"
        self._process: asyncio.subprocess.Process | None = None

    def _configure(self) -> Path:
        yaml = YAML(typ="safe")
        config = yaml.load((DEPLOY / "prometheus.yml").read_text())
        config["global"].update(scrape_interval=f"{INTERVAL_MS}ms",
                                evaluation_interval=f"{INTERVAL_MS}ms")
        [job] = config["scrape_configs"]
        job["static_configs"] = [{"targets": [self.target]}]
        for name in config["rule_files"]:
            rules = yaml.load((DEPLOY / name).read_text())
            for group in rules["groups"]:
                for rule in group["rules"]:
                    rule["for"] = "0s"  # held for minutes when deployed
            yaml.dump(rules, self.directory / name)
        path = self.directory / "prometheus.yml"
        yaml.dump(config, path)
        return path

    async def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self._configure()
        self._log = (self.directory / "prometheus.log").open("w")
        self._process = await asyncio.create_subprocess_exec(
            binary("prometheus"), f"--config.file={config}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address={self.url.removeprefix('http://')}",
            stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as http:
            while True:
                assert self._process.returncode is None, self.log()
                try:
                    async with http.get(f"{self.url}/-/ready") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                assert time.monotonic() < deadline, self.log()
                await asyncio.sleep(0.1)

    def log(self) -> str:
        return (self.directory / "prometheus.log").read_text()[-3000:]

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()
        self._log.close()

    async def _api(self, path: str, **params: str) -> Any:
        async with aiohttp.ClientSession() as http, \
                http.get(f"{self.url}/api/v1/{path}", params=params) as resp:
            body = await resp.json()
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector `expr` evaluates to now."""
        data = await self._api("query", query=expr)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    async def firing(self) -> dict[str, list[dict[str, str]]]:
        """The alerts firing now: their labels, by alert name."""
        alerts: dict[str, list[dict[str, str]]] = {}
        for alert in (await self._api("alerts"))["alerts"]:
            if alert["state"] == "firing":
                alerts.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
        return alerts

    async def wait_for(self, expr: str, timeout_s: float = 30) -> list[dict[str, Any]]:
        """Until `expr` has a series (after the next scrapes have landed)."""
        deadline = time.monotonic() + timeout_s
        while not (result := await self.query(expr)):
            assert time.monotonic() < deadline, f"{expr} has no series: {self.log()}"
            await asyncio.sleep(INTERVAL_MS / 2000)
        return result
