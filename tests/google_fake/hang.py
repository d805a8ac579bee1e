"""A switch that makes a fake service hang as a real one can: no error, no answer."""

from __future__ import annotations

import asyncio


class Hang:
    def __init__(self) -> None:
        self._released = asyncio.Event()
        self._released.set()

    @property
    def on(self) -> bool:
        return not self._released.is_set()

    @on.setter
    def on(self, hung: bool) -> None:
        if hung:
            self._released.clear()
        else:
            self._released.set()

    async def wait(self) -> None:
        """Return at once, or once the service stops hanging."""
        await self._released.wait()
