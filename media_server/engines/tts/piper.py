"""Piper (neural English voice `en_US-joe-medium`, CC0) through worker processes.

Each worker loads the voice once and answers one request at a time; a small pool
(sized by the recogniser's calibration: as many as the voices at once it carries, at most
`MAX_WORKERS`) lets rooms speak at once instead of queueing behind one another. A
worker that dies is started again on its next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import sys
from collections.abc import AsyncGenerator, AsyncIterator

from media_server.engines.tts.base import PcmChunk, SynthesisFailed
from media_server.processes import kill_and_reap

log = logging.getLogger(__name__)
STARTUP_TIMEOUT_S = 30.0
CHUNK_TIMEOUT_S = 20.0
MAX_WORKERS = 2  # ~250 MB each; one synthesises ~14x faster than speech


class PiperWorker:
    """One worker process."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._sample_rate = 0
        self._reading = False  # a synthesis is reading its answer

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            return
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "media_server.engines.tts.piper_worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        async with asyncio.timeout(STARTUP_TIMEOUT_S):
            header = await self._proc.stdout.readline()
        if not header:
            raise SynthesisFailed("the piper worker did not start")
        self._sample_rate = int(json.loads(header)["sample_rate"])

    async def close(self) -> None:
        """Stop the worker; a synthesis reading from it sees the end and reaps it."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if self._reading:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        else:
            await kill_and_reap(proc)

    async def synthesize(self, text: str) -> AsyncGenerator[PcmChunk, None]:
        await self.start()
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        answered = False
        self._reading = True
        try:
            proc.stdin.write(json.dumps({"text": text}).encode() + b"\n")
            await proc.stdin.drain()
            while True:
                async with asyncio.timeout(CHUNK_TIMEOUT_S):
                    header = await proc.stdout.readexactly(4)
                (size,) = struct.unpack("<I", header)
                if size == 0:
                    answered = True
                    return
                async with asyncio.timeout(CHUNK_TIMEOUT_S):
                    pcm = await proc.stdout.readexactly(size)
                yield PcmChunk(pcm, self._sample_rate)
        except (OSError, EOFError, asyncio.IncompleteReadError, TimeoutError) as exc:
            log.warning("piper worker failed; restarting it", extra={"error": repr(exc)})
            raise SynthesisFailed(f"piper worker failed: {exc!r}") from exc
        finally:
            self._reading = False
            if not answered:
                # Failed, or left mid-answer (the listener went away, the clip was cut):
                # the rest of it is still coming, so this worker is replaced rather
                # than read from again.
                if self._proc is proc:
                    self._proc = None
                await kill_and_reap(proc)


class PiperTts:
    name = "piper"

    def __init__(self, workers: int = 1) -> None:
        self.workers = [PiperWorker() for _ in range(max(1, min(workers, MAX_WORKERS)))]
        self._idle: asyncio.Queue[PiperWorker] = asyncio.Queue()
        for worker in self.workers:
            self._idle.put_nowait(worker)

    def voices(self) -> dict[str, str]:
        return {"en": "en_US-joe-medium"}

    async def start(self) -> None:
        await asyncio.gather(*(worker.start() for worker in self.workers))

    async def close(self) -> None:
        await asyncio.gather(*(worker.close() for worker in self.workers))

    async def synthesize(self, text: str, language: str) -> AsyncIterator[PcmChunk]:
        worker = await self._idle.get()
        try:
            # Closed before the worker is handed on, however this ends: a worker's
            # answer left half read is its own to end (see `PiperWorker.synthesize`).
            async with contextlib.aclosing(worker.synthesize(text)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            self._idle.put_nowait(worker)
