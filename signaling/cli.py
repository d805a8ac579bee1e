"""`live-interpreter` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from aiohttp import web

from media_server import log as logsetup
from media_server.engines.google_clients import find_credentials
from media_server.engines.loader import load_engines
from media_server.settings import Settings, SettingsError
from media_server.store import export
from media_server.store.archive import open_store
from media_server.store.base import StoreUnavailable
from media_server.store.records import SessionRecord, UtteranceRecord
from signaling.app import create_app

log = logging.getLogger("live_interpreter")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings.replace(
        host=args.host or settings.host, port=args.port or settings.port
    )
    app = create_app(settings)
    log.info("serving", extra={"url": f"http://{settings.host}:{settings.port}/"})
    web.run_app(app, host=settings.host, port=settings.port, print=None,
                handle_signals=True, shutdown_timeout=5)
    return 0


def _languages(settings: Settings, as_json: bool) -> int:
    """Load the engines and say which languages, pairs and voices this server offers."""

    async def describe() -> dict[str, Any]:
        engines = await load_engines(settings)
        try:
            return engines.catalog.describe()
        finally:
            await engines.close()

    described = asyncio.run(describe())
    if as_json:
        sys.stdout.write(json.dumps(described, indent=2) + "\n")
        return 0
    lines = [f"speech recognition: {len(described['speech'])} languages: "
             + " ".join(described["speech"]), "", "translation:"]
    lines += [f"  {source} -> {', '.join(f'{t} ({p})' for t, p in targets.items())}"
              for source, targets in described["translation"].items()] or ["  none"]
    lines += ["", "voices:"]
    lines += [f"  {lang:<5} {v['provider']:<10} {v['voice']}"
              for lang, v in described["voices"].items()] or ["  none"]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _export(settings: Settings, room: str, kind: str, lang: str | None) -> int:
    """Print a room's transcript from the store (the server need not run)."""

    async def read() -> tuple[list[UtteranceRecord], list[SessionRecord]]:
        store = await open_store(settings)
        try:
            return await store.transcript(room), await store.sessions(room)
        finally:
            await store.close()

    try:
        records, sessions = asyncio.run(read())
    except StoreUnavailable as exc:
        sys.stderr.write(f"live-interpreter: {exc}\n")
        return 1
    if not records:
        sys.stderr.write(f"live-interpreter: no transcript for room {room!r}\n")
        return 1
    sys.stdout.write(export.render(kind, room, records, sessions, lang))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="live-interpreter",
                                     description="Real-time interpretation server for WebRTC")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the signaling and media server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    languages = commands.add_parser(
        "languages", help="list the languages, translation pairs and voices available")
    languages.add_argument("--json", action="store_true", help="print JSON")
    exporting = commands.add_parser("export", help="print a room's transcript from the store")
    exporting.add_argument("room")
    exporting.add_argument("--format", choices=sorted(export.FORMATS), default="vtt")
    exporting.add_argument("--lang", help="a translated language (default: the original)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.load()
    except SettingsError as exc:
        sys.stderr.write(f"live-interpreter: {exc}\n")  # logging is not set up yet
        return 2
    logsetup.configure(settings.log_level, settings.log_format)
    if args.command == "export":
        return _export(settings, args.room, args.format, args.lang)
    if settings.uses_google():
        try:  # before anything starts: a server that cannot reach its engines is no use
            find_credentials(settings)
        except SettingsError as exc:
            sys.stderr.write(f"live-interpreter: {exc}\n")
            return 2
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "languages":
        return _languages(settings, args.json)
    return 2


if __name__ == "__main__":
    sys.exit(main())
