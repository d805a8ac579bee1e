"""Ending background tasks."""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel the tasks (None: not started) and wait until each has finished, whatever
    it raised on the way out. The calling task itself may be among them: it is left
    alone, and a cancellation of the caller still propagates."""
    current = asyncio.current_task()
    pending = [t for t in tasks if t is not None and t is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
