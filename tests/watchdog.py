"""A hang fails fast and loudly. pytest-timeout (`timeout` in pyproject.toml) fails a
test, its fixtures' set-up and teardown included, that runs longer than its bound; a
few seconds before, this prints every thread's stack and every asyncio task's, which
say what it waited on (the event loop's own thread only shows `select`). A whole run
that outlives `SESSION_LIMIT_S` prints the same and exits 3, well inside CI's 90
minutes, whatever it was stuck in."""

from __future__ import annotations

import asyncio
import faulthandler
import os
import sys
import threading
from collections.abc import AsyncIterator, Generator

import pytest

SESSION_LIMIT_S = float(os.environ.get("LIVE_INTERPRETER_TEST_SESSION_LIMIT_S", "3000"))
DUMP_BEFORE_S = 5.0  # before pytest-timeout ends a test
_loop: asyncio.AbstractEventLoop | None = None  # the session's event loop


def dump_stacks(reason: str) -> None:
    """Every thread's stack, then every task of the session's loop (read from another
    thread: a snapshot, good enough to say where each one waits)."""
    out = sys.stderr
    out.write(f"\n==== {reason}: every thread ====\n")
    out.flush()
    faulthandler.dump_traceback(file=out, all_threads=True)
    if _loop is not None:
        tasks = list(asyncio.all_tasks(_loop))
        out.write(f"==== {len(tasks)} asyncio tasks ====\n")
        for task in tasks:
            out.write(f"-- {task!r}\n")
            task.print_stack(file=out)
    out.flush()


@pytest.fixture(scope="session", autouse=True)
async def _session_loop_for_dumps() -> AsyncIterator[None]:
    global _loop
    _loop = asyncio.get_running_loop()
    yield
    _loop = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    bound = float(item.config.getini("timeout") or 0)
    timer = None
    if bound > DUMP_BEFORE_S:
        timer = threading.Timer(bound - DUMP_BEFORE_S, dump_stacks,
                                args=(f"{item.nodeid} has run {bound - DUMP_BEFORE_S:.0f} s",))
        timer.daemon = True
        timer.start()
    yield
    if timer is not None:
        timer.cancel()


def _session_over() -> None:
    dump_stacks(f"the test run has lasted {SESSION_LIMIT_S:.0f} s")
    sys.stderr.write("the test run took too long: ended\n")
    sys.stderr.flush()
    os._exit(3)


def pytest_sessionstart(session: pytest.Session) -> None:
    timer = threading.Timer(SESSION_LIMIT_S, _session_over)
    timer.daemon = True
    timer.start()
