"""The SDK's TypeScript declarations (`web_client/sdk/interpreter.d.ts`): the TypeScript
compiler (pinned in tests/typescript, installed by `scripts/install.sh --test`) accepts
an example using every call and event under `--strict` and rejects misuse; and the
declarations know every message type the server sends and every method the SDK has."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import aiohttp

from media_server import protocol
from tests.conftest import Server

ROOT = Path(__file__).resolve().parent.parent
TYPESCRIPT = ROOT / "tests" / "typescript"
TSC = TYPESCRIPT / "node_modules" / ".bin" / "tsc"
DECLARATIONS = (ROOT / "web_client" / "sdk" / "interpreter.d.ts").read_text()
STRICT = ["--noEmit", "--strict", "--target", "ES2022", "--module", "ES2022",
          "--moduleResolution", "bundler", "--lib", "ES2022,DOM"]


def _tsc(*args: str) -> subprocess.CompletedProcess[str]:
    if not TSC.exists():
        raise FileNotFoundError(f"{TSC} missing: run scripts/install.sh --test")
    return subprocess.run([str(TSC), *args], cwd=TYPESCRIPT, capture_output=True, text=True,
                          timeout=120, check=False)


def test_an_app_using_every_call_and_event_compiles_strictly() -> None:
    result = _tsc("-p", "tsconfig.json")
    assert result.returncode == 0, result.stdout + result.stderr


def test_misuse_is_refused() -> None:
    result = _tsc(*STRICT, "misuse.ts")
    assert result.returncode != 0
    refused = {int(line) for line in re.findall(r"^misuse\.ts\((\d+),", result.stdout, re.M)}
    misuse = (TYPESCRIPT / "misuse.ts").read_text().splitlines()
    meant = {n for n, line in enumerate(misuse, 1) if line.startswith("  ")}  # every one
    assert refused == meant, result.stdout


def test_every_server_message_and_sdk_method_is_declared() -> None:
    kinds = {field.default for cls in vars(protocol).values()
             if isinstance(cls, type) and dataclasses.is_dataclass(cls)
             for field in dataclasses.fields(cls)
             if field.name == "type" and cls.__name__.endswith("Message")}
    assert len(kinds) >= 9
    union = DECLARATIONS.split("export type ServerMessage =")[1].split(";")[0]
    for kind in kinds:
        assert f'type: "{kind}";' in DECLARATIONS, kind
    declared = set(re.findall(r"\| (\w+Message)", union))
    assert len(declared) == len(kinds), declared
    sdk = (ROOT / "web_client" / "sdk" / "interpreter.js").read_text()
    session = sdk.split("class Session {")[1].split("\n}\n")[0]
    methods = set(re.findall(r"^  ([a-z]\w*)\(", session, re.M)) - {"constructor"}
    assert methods
    for method in methods:
        assert re.search(rf"^  {method}[<(]", DECLARATIONS, re.M), method
    for event in set(re.findall(r'_emit\("(\w+)"', sdk)):
        assert re.search(rf"^  {event}: ", DECLARATIONS, re.M), event


async def test_the_declarations_are_served_beside_the_sdk(server: Server,
                                                          http: aiohttp.ClientSession) -> None:
    async with http.get(f"{server.url}/sdk/interpreter.d.ts") as resp:
        assert resp.status == 200
        assert resp.content_type == "application/typescript"
        assert await resp.text() == DECLARATIONS
