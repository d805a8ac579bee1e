"""The suite's own guard: a test stuck in the event loop fails at its bound with every
thread's and task's stack printed, and the run goes on to its summary."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

STUCK = '''
import asyncio

async def test_waits_for_ever() -> None:
    await asyncio.Event().wait()  # nothing will set it

def test_after_it() -> None:
    pass
'''


async def test_a_test_stuck_in_the_event_loop_fails_with_its_tasks_stacks(
        tmp_path: Path) -> None:
    (tmp_path / "test_stuck.py").write_text(STUCK)
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-p", "tests.watchdog", "-p", "no:cacheprovider",
        "-o", "timeout=8", "-o", "asyncio_mode=auto",
        "-o", "asyncio_default_fixture_loop_scope=session",
        "-o", "asyncio_default_test_loop_scope=session", "--rootdir", str(tmp_path),
        str(tmp_path / "test_stuck.py"), cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    async with asyncio.timeout(120):
        output, _ = await process.communicate()
    text = output.decode()
    assert process.returncode == 1, text
    assert time.monotonic() - started < 60, text
    assert "test_waits_for_ever has run 3 s: every thread" in text, text
    assert "asyncio tasks" in text and "test_waits_for_ever" in text, text
    assert "Timeout" in text and "1 failed, 1 passed" in text, text
