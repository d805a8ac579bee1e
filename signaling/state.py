"""What the application holds, under typed keys."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from history.archive import Archive
from history.records import StoreRecord
from media_server.engines.loader import Engines
from media_server.registry import SessionRegistry
from media_server.room import Publisher, publish_nothing
from media_server.settings import Settings


@dataclass
class Runtime:
    """Filled once the engines have loaded (start-up does not wait for them)."""

    engines: Engines | None = None
    registry: SessionRegistry | None = None
    archive: Archive | None = None  # the store, once the app has started
    publish: Publisher = publish_nothing  # captions to other processes (media nodes)

    def keep(self, record: StoreRecord) -> None:
        if self.archive is not None:
            self.archive.submit(record)


SETTINGS = web.AppKey("settings", Settings)
RUNTIME = web.AppKey("runtime", Runtime)
