"""Apertium (GPL, Debian packages `apertium` + `apertium-eng-spa`): rule-based en <-> es.

Runs as a separate process per request (GPL code stays out of the server's process);
all texts of a request go through one process, one per line.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Sequence

from media_server.engines.translate.base import TranslationFailed

_MODES = {("en", "es"): "eng-spa", ("es", "en"): "spa-eng"}
TIMEOUT_S = 10.0


class Apertium:
    name = "apertium"

    def __init__(self, binary: str = "apertium") -> None:
        path = shutil.which(binary)
        if path is None:
            raise FileNotFoundError("apertium is not installed (apt-get install apertium "
                                    "apertium-eng-spa)")
        self._binary = path

    def pairs(self) -> frozenset[tuple[str, str]]:
        return frozenset(_MODES)

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        lines = [" ".join(t.split()) for t in texts]  # one text per line
        proc = await asyncio.create_subprocess_exec(
            self._binary, "-u", _MODES[(source, target)],
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(TIMEOUT_S):
                out, err = await proc.communicate("\n".join(lines).encode() + b"\n")
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise TranslationFailed("apertium timed out") from None
        if proc.returncode != 0:
            raise TranslationFailed(f"apertium failed: {err.decode(errors='replace')[:200]}")
        result = out.decode().rstrip("\n").split("\n")
        if len(result) != len(lines):
            raise TranslationFailed(f"apertium returned {len(result)} lines for {len(lines)}")
        return [r.strip() for r in result]
