"""Ending background tasks."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

log = logging.getLogger(__name__)

# A task still running this long after its cancel is cancelled again (it took the
# first for a failure: a retry loop's `except`); one still running after
# `GIVE_UP_AFTER_S` is left behind with its stack logged, so that no close waits for
# ever on a task that will not end.
RECANCEL_EVERY_S = 1.0
GIVE_UP_AFTER_S = 5.0


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel the tasks (None: not started) and wait until each has finished, whatever
    it raised on the way out. The calling task itself may be among them: it is left
    alone, and a cancellation of the caller still propagates."""
    current = asyncio.current_task()
    pending = {t for t in tasks if t is not None and t is not current}
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + GIVE_UP_AFTER_S
    while pending:
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=RECANCEL_EVERY_S)
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved: whatever it raised on the way out
        if pending and loop.time() >= give_up_at:
            for task in pending:
                log.error("%r did not end when cancelled; left running", task,
                          extra={"stack": _stack(task)})
            return


def _stack(task: asyncio.Future[Any]) -> str:
    if not isinstance(task, asyncio.Task):
        return ""
    out = io.StringIO()
    task.print_stack(file=out)
    return out.getvalue()
