"""`live-interpreter` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import sys
from typing import Any

from aiohttp import web

from history import export
from history.archive import open_store
from history.base import StoreUnavailable
from history.meetings import of_meeting
from history.records import SessionRecord, UtteranceRecord
from media_server import log as logsetup
from media_server.engines.google_clients import find_credentials
from media_server.engines.loader import load_engines
from media_server.settings import Settings, SettingsError
from signaling import tokens
from signaling.access_log import AccessLog
from signaling.app import create_app
from signaling.cluster.front import create_signaling_app
from signaling.turn_check import check_turn

log = logging.getLogger("live_interpreter")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    settings = settings.replace(
        host=args.host or settings.host, port=args.port or settings.port
    )
    if args.dev:
        if settings.host not in LOOPBACK:
            sys.stderr.write("live-interpreter: --dev serves on loopback only "
                             f"(not {settings.host}): room tokens are off\n")
            return 2
        log.warning("DEVELOPMENT MODE: room tokens are NOT checked; anyone who can reach "
                    "%s:%s can join any room. Never expose this.", settings.host, settings.port)
    app = create_app(settings, dev=args.dev)
    log.info("serving", extra={"url": f"http://{settings.host}:{settings.port}/"})
    web.run_app(app, host=settings.host, port=settings.port, print=None,
                handle_signals=True, shutdown_timeout=5, access_log_class=AccessLog)
    return 0


def _scale_out_ready(settings: Settings) -> bool:
    """Separate processes share Redis, one token secret (a secret file per process
    would make tokens work on some nodes only) and the node secret (media nodes answer
    only calls that carry it, which only signaling has)."""
    for name in ("redis_url", "auth_secret", "node_secret"):
        if not getattr(settings, name):
            sys.stderr.write(f"live-interpreter: set LIVE_INTERPRETER_{name.upper()}, the "
                             "same for signaling and every media node\n")
            return False
    return True


def _media(args: argparse.Namespace, settings: Settings) -> int:
    """A media node: engines and WebRTC, placed on by `live-interpreter signaling`."""
    settings = settings.replace(host=args.host or settings.host, port=args.port or settings.port)
    if not _scale_out_ready(settings):
        return 2
    name = settings.node_id or socket.gethostname().replace(".", "-")
    reachable = settings.host if settings.host not in ("0.0.0.0", "::") else socket.gethostname()
    settings = settings.replace(node_id=name,
                                node_url=settings.node_url or f"http://{reachable}:{settings.port}")
    app = create_app(settings, node=True)
    log.info("media node", extra={"node": settings.node_id, "url": settings.node_url})
    web.run_app(app, host=settings.host, port=settings.port, print=None,
                handle_signals=True, shutdown_timeout=5, access_log_class=AccessLog)
    return 0


def _signaling(args: argparse.Namespace, settings: Settings) -> int:
    """The public front: pages, tokens' origins and rates, placement, forwarding."""
    settings = settings.replace(host=args.host or settings.host, port=args.port or settings.port)
    if not _scale_out_ready(settings):
        return 2
    log.info("signaling", extra={"url": f"http://{settings.host}:{settings.port}/"})
    web.run_app(create_signaling_app(settings), host=settings.host, port=settings.port,
                print=None, handle_signals=True, shutdown_timeout=5, access_log_class=AccessLog)
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    """Print a room token signed with the server's secret."""
    token = tokens.mint(tokens.auth_secret(settings), args.room, role=args.role,
                        ttl_s=args.ttl, subject=args.name,
                        transcript=args.transcript or bool(args.meeting), meeting=args.meeting)
    sys.stdout.write(token + "\n")
    return 0


def _turn_check(settings: Settings, peer: str | None, transport: str) -> int:
    if not settings.turn_host:
        sys.stderr.write("live-interpreter: set LIVE_INTERPRETER_TURN_HOST and _TURN_SECRET\n")
        return 2
    target = None
    if peer:
        address, _, peer_port = peer.rpartition(":")
        target = (address.strip("[]"), int(peer_port))
    port = settings.turn_tls_port if transport == "tls" else settings.turn_port
    try:
        result = asyncio.run(check_turn(settings.turn_host, port, secret=settings.turn_secret,
                                        transport=transport, peer=target))
    except Exception as exc:  # refused credentials, unreachable server: say which
        sys.stderr.write(f"turn-check: allocation FAILED: {exc!r}\n")
        return 1
    sys.stdout.write(f"turn-check: allocation OK over {transport}, relayed address "
                     f"{result.relayed[0]}:{result.relayed[1]}\n")
    if target is not None:
        verdict = (f"refused ({result.peer_refused})" if result.peer_refused
                   else "allowed (no refusal within 2 s)")
        sys.stdout.write(f"turn-check: relay to {peer}: {verdict}\n")
    return 0


def _languages(settings: Settings, as_json: bool) -> int:
    """Load the engines and say which languages, pairs and voices this server offers."""

    async def describe() -> dict[str, Any]:
        engines = await load_engines(settings)
        try:
            described = engines.catalog.describe()
            if engines.calibration is not None:  # what this machine's recogniser carries
                described["capacity"] = engines.calibration.describe()
            return described
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
    if "capacity" in described:
        measured = described["capacity"]
        voices = f"{measured['voices']} voice" + ("" if measured["voices"] == 1 else "s")
        lines += ["", f"capacity: {voices} at once (people speaking at the same moment; "
                  f"everyone in a call may speak), interims every "
                  f"{measured['interim_interval_ms']} ms (a final pass of a "
                  f"{measured['phrase_s']} s phrase: {measured['final_pass_s']} s)"]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _export(settings: Settings, room: str, *, kind: str, lang: str | None,
            meeting: str | None) -> int:
    """Print a room's transcript from the store (the server need not run): every
    meeting's, or one meeting's."""

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
    if meeting is not None:
        records, sessions = of_meeting(meeting, records, sessions)
    if not records:
        sys.stderr.write(f"live-interpreter: no transcript for room {room!r}\n")
        return 1
    sys.stdout.write(export.render(kind, room, records=records, sessions=sessions, lang=lang))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="live-interpreter",
                                     description="Real-time interpretation server for WebRTC")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the signaling and media server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--dev", action="store_true",
                       help="development: no room tokens, loopback only")
    for role, text in (("media", "run a media node (engines and WebRTC) of a scaled-out "
                                  "deployment"),
                       ("signaling", "run the signaling front of a scaled-out deployment")):
        command = commands.add_parser(role, help=text)
        command.add_argument("--host", help="address to listen on (default 127.0.0.1)")
        command.add_argument("--port", type=int, help="port to listen on (default 8080)")
    languages = commands.add_parser(
        "languages", help="list the languages, translation pairs and voices available")
    languages.add_argument("--json", action="store_true", help="print JSON")
    minting = commands.add_parser("token", help="print a room token (speaker or listener)")
    minting.add_argument("room")
    minting.add_argument("--role", choices=tokens.ROLES, default="speaker")
    minting.add_argument("--ttl", type=int, default=3600, help="seconds it is valid")
    minting.add_argument("--name", default="", help="who it is for (kept in the token; "
                         "the sessions it creates are theirs)")
    minting.add_argument("--transcript", action="store_true",
                         help="it may also read the room's transcripts")
    minting.add_argument("--meeting", default="",
                         help="...of this meeting only (implies --transcript)")
    turn = commands.add_parser("turn-check", help="allocate on the configured TURN server "
                               "with fresh credentials; optionally try relaying to --peer")
    turn.add_argument("--peer", help="IP:PORT to try relaying to (a denied one must fail)")
    turn.add_argument("--transport", choices=("udp", "tcp", "tls"), default="udp")
    exporting = commands.add_parser("export", help="print a room's transcript from the store")
    exporting.add_argument("room")
    exporting.add_argument("--format", choices=sorted(export.FORMATS), default="vtt")
    exporting.add_argument("--lang", help="a translated language (default: the original)")
    exporting.add_argument("--meeting", help="one meeting only (GET /api/rooms/ROOM/meetings)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.load()
    except SettingsError as exc:
        sys.stderr.write(f"live-interpreter: {exc}\n")  # logging is not set up yet
        return 2
    logsetup.configure(settings.log_level, settings.log_format)
    try:
        return _run(args, settings)
    except SettingsError as exc:  # found as the command starts (a weak secret file...)
        sys.stderr.write(f"live-interpreter: {exc}\n")
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "export":
        return _export(settings, args.room, kind=args.format, lang=args.lang, meeting=args.meeting)
    if args.command == "token":
        return _token(settings, args)
    if args.command == "turn-check":
        return _turn_check(settings, args.peer, args.transport)
    if settings.uses_google():  # before anything starts: no engines, no use
        find_credentials(settings)
    if args.command == "serve":
        return _serve(args, settings)
    if args.command == "media":
        return _media(args, settings)
    if args.command == "signaling":
        return _signaling(args, settings)
    if args.command == "languages":
        return _languages(settings, args.json)
    return 2


if __name__ == "__main__":
    sys.exit(main())
