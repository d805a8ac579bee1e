"""Ending a child process without waiting for ever."""

from __future__ import annotations

import asyncio
import contextlib


async def kill_and_reap(process: asyncio.subprocess.Process) -> None:
    """Kill `process` (if it still runs) and reap it, reading its pipes to their end on
    the way. `Process.wait()` alone returns only once every pipe has been seen to close,
    and asyncio stops reading a pipe whose reader holds more than its limit unread: a
    killed worker that left output nobody read would be waited for for ever (a Piper
    worker killed mid-clip held a whole engine shutdown). Only for a process whose
    pipes nobody else is reading."""
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.communicate()
