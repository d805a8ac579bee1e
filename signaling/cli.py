"""`live-interpreter` command line."""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from media_server import log as logsetup
from media_server.settings import Settings, SettingsError
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="live-interpreter",
                                     description="Real-time interpretation server for WebRTC")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the signaling and media server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.load()
    except SettingsError as exc:
        sys.stderr.write(f"live-interpreter: {exc}\n")  # logging is not set up yet
        return 2
    logsetup.configure(settings.log_level, settings.log_format)
    if args.command == "serve":
        return _serve(args, settings)
    return 2


if __name__ == "__main__":
    sys.exit(main())
