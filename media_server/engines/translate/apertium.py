"""Apertium (GPL, Debian packages `apertium` + `apertium-eng-spa`): rule-based en <-> es.

It runs in processes of its own (GPL code stays out of the server's process): one
long-lived pipeline per direction, in Apertium's null-flush mode, instead of the
`apertium` script per request (which starts a dozen programs: ~220 ms a call here,
against a few ms through a running pipeline). The pipeline is the pair's mode file
with `-z` on every stage and each stage's output unbuffered (`stdbuf -o0`: lt-proc
otherwise holds a flushed text back); the word-bound-blank stages, which do not
flush, are left out. Texts go in as the txt deformatter would write them (special
characters escaped, a closing blank) and come back one per NUL. Requests queue on
the pipe and are answered in order; a pipeline that dies or hangs is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import signal
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from media_server.engines.translate.base import TranslationFailed
from media_server.tasks import cancel_and_wait

log = logging.getLogger(__name__)

_MODES = {("en", "es"): "eng-spa", ("es", "en"): "spa-eng"}
MODES_DIR = Path("/usr/share/apertium/modes")
TIMEOUT_S = 10.0
# What the txt deformatter escapes, and the blank it closes a text with.
_SPECIAL = re.compile(r"([\\\[\]^$/@<>{}])")
_ESCAPED = re.compile(r"\\(.)")
_BLANKS = re.compile(r"(?<!\\)\[(?:\\.|[^\]\\])*\]")  # an unescaped [...]
_CLOSING = "[][\n]"


def pipeline_command(mode_file: Path) -> str:
    """The mode's pipeline, every stage in null-flush mode with unbuffered output, as
    `apertium -u` runs it (no marks on unknown words: `$1` is `-n`, `$2` empty)."""
    stages = []
    for stage in mode_file.read_text().strip().split(" | "):
        program, _, arguments = stage.partition(" ")
        arguments = arguments.replace("$1", "-n").replace("$2", "")
        stages.append(f"stdbuf -o0 {program} -z {arguments}")
    return " | ".join(stages)


def _to_stream(text: str) -> bytes:
    return (_SPECIAL.sub(r"\\\1", " ".join(text.split())) + _CLOSING).encode() + b"\0"


def _from_stream(raw: bytes) -> str:
    return _ESCAPED.sub(r"\1", _BLANKS.sub("", raw.decode())).strip()


class _Pipeline:
    """One direction's running pipeline: texts written in order, answers read in order."""

    def __init__(self, command: str) -> None:
        self._command = command
        self._process: asyncio.subprocess.Process | None = None
        self._waiting: deque[asyncio.Future[str]] = deque()
        self._reader: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()  # texts that come at once share one start

    async def _started(self) -> asyncio.subprocess.Process:
        async with self._starting:
            if self._process is None or self._process.returncode is not None:
                self._process = await asyncio.create_subprocess_exec(
                    "bash", "-c", self._command, stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
                    limit=1 << 20, start_new_session=True)  # its stages stop together
                self._reader = asyncio.create_task(self._read(self._process),
                                                   name="apertium")
            return self._process

    async def translate(self, text: str) -> str:
        process = await self._started()
        assert process.stdin is not None
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting.append(answer)
        process.stdin.write(_to_stream(text))
        try:
            async with asyncio.timeout(TIMEOUT_S):
                await process.stdin.drain()
                return await asyncio.shield(answer)
        except TimeoutError:
            await self.restart("timed out")
            raise TranslationFailed("apertium timed out") from None
        except (BrokenPipeError, ConnectionResetError) as exc:
            await self.restart("its pipe broke")
            raise TranslationFailed(f"apertium failed: {exc!r}") from exc

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while True:
            try:
                raw = await process.stdout.readuntil(b"\0")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                break  # it ended (or babbled): whoever waits is told
            if self._waiting:
                answer = self._waiting.popleft()
                if not answer.done():
                    answer.set_result(_from_stream(raw[:-1]))
        self._fail_waiting("apertium stopped")

    def _fail_waiting(self, reason: str) -> None:
        while self._waiting:
            answer = self._waiting.popleft()
            if not answer.done():
                answer.set_exception(TranslationFailed(reason))

    async def restart(self, reason: str) -> None:
        """Stop it (the next text starts a new one); what it still owed fails."""
        log.warning("apertium pipeline restarted", extra={"reason": reason})
        await self.close()

    async def close(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):  # every stage, not just bash
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        await cancel_and_wait(self._reader)
        self._reader = None
        self._fail_waiting("apertium restarted")


class Apertium:
    name = "apertium"

    def __init__(self, modes_dir: Path = MODES_DIR) -> None:
        for tool in ("apertium", "stdbuf", "bash"):
            if shutil.which(tool) is None:
                raise FileNotFoundError(f"{tool} is not installed (apt-get install apertium "
                                        "apertium-eng-spa coreutils)")
        self._pipelines: dict[tuple[str, str], _Pipeline] = {}
        for pair, mode in _MODES.items():
            mode_file = modes_dir / f"{mode}.mode"
            if not mode_file.is_file():
                raise FileNotFoundError(f"Apertium's {mode} mode is missing: {mode_file} "
                                        "(apt-get install apertium-eng-spa)")
            self._pipelines[pair] = _Pipeline(pipeline_command(mode_file))

    def pairs(self) -> frozenset[tuple[str, str]]:
        return frozenset(_MODES)

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        pipeline = self._pipelines[(source, target)]
        return list(await asyncio.gather(*(pipeline.translate(t) for t in texts)))

    async def aclose(self) -> None:
        for pipeline in self._pipelines.values():
            await pipeline.close()

