"""The aiohttp application: API routes, health, the web client, engine start-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from cache import open_key_value
from cache.translations import KeyValueTranslationCache
from history.archive import Archive
from media_server.engines import loader
from media_server.engines.loader import Engines
from media_server.errors import NotFound
from media_server.ice_addresses import restrict_host_addresses
from media_server.registry import SessionRegistry
from media_server.remote_candidates import LOCAL_NETWORKS
from media_server.resumable import ResumableSessions
from media_server.settings import Settings, SettingsError
from media_server.tasks import cancel_and_wait
from signaling import sessions, sockets, transcripts, twilio, whip
from signaling.access import ACCESS, Access
from signaling.clients import CLIENT, behind_proxies, forwarded_by_signaling, node_guard
from signaling.cluster import media_node
from signaling.cors import cors_middleware
from signaling.errors import error_middleware
from signaling.metrics_listener import serve_metrics
from signaling.page_safety import loopback_host_only, protect
from signaling.rate_limit import RateLimiter
from signaling.state import RUNTIME, SETTINGS, Runtime
from signaling.tokens import auth_secret

log = logging.getLogger(__name__)

WEB_ROOT = Path(__file__).resolve().parent.parent / "web_client"
EngineLoader = Callable[[Settings], Awaitable[Engines]]

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    if request.app[RUNTIME].registry is None:
        return web.json_response({"status": "loading"}, status=503)
    return web.json_response({"status": "ready"})


def web_client_routes() -> web.RouteTableDef:
    """Serve the files of web_client/ by exact path, from a map built once at start-up:
    no path ever reaches the filesystem unchecked, and a miss is a JSON 404."""
    files = {str(p.relative_to(WEB_ROOT)): p for p in WEB_ROOT.rglob("*") if p.is_file()}
    for index in WEB_ROOT.rglob("index.html"):  # a directory serves its index.html
        folder = str(index.parent.relative_to(WEB_ROOT))
        files["" if folder == "." else folder + "/"] = index
    table = web.RouteTableDef()

    @table.get("/{path:.*}")
    async def web_client(request: web.Request) -> web.FileResponse:
        target = files.get(request.match_info["path"])
        if target is None:
            raise NotFound("not_found", f"no such page: {request.path}")
        if target.suffix == ".ts":  # TypeScript declarations, not an MPEG transport stream
            return web.FileResponse(target, headers={
                "Content-Type": "application/typescript; charset=utf-8"})
        return web.FileResponse(target)

    return table


def create_app(
    settings: Settings,
    engines: Engines | None = None,
    *, load_engines: EngineLoader = loader.load_engines,
    dev: bool = False,
    node: bool = False,
) -> web.Application:
    """Build the app. Given `engines`, it is ready at once and the caller owns them;
    otherwise it loads its own in the background and closes them on shutdown. `dev`
    turns room tokens off (`serve --dev`, loopback only, loopback and LAN ICE candidates
    allowed); `node` makes it a media node behind `live-interpreter signaling`, which
    answers only calls showing the node secret."""
    restrict_host_addresses(settings.ice_host_addresses)
    if dev:  # a developer's own machine: its browsers offer loopback and LAN candidates
        settings = settings.replace(
            ice_allowed_networks=settings.ice_allowed_networks + LOCAL_NETWORKS)
    if node and not settings.node_secret:
        raise SettingsError("a media node needs node_secret (signaling shows it)")
    if engines is None:  # a model directory a user gave that is broken stops us now
        loader.check_model_dirs(settings)
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=_middlewares(settings, dev=dev, node=node))
    protect(app)
    app[SETTINGS] = settings
    app[ACCESS] = Access(None if dev else auth_secret(settings))
    app[CLIENT] = forwarded_by_signaling if node else behind_proxies(settings.trusted_proxies)
    runtime = app[RUNTIME] = Runtime()
    if node:
        media_node.attach(app, settings, runtime)
    _run_sessions(app, settings, runtime=runtime, engines=engines, load_engines=load_engines)
    app.add_routes(routes)
    serve_metrics(app, settings)
    app.add_routes(sessions.routes)
    app.add_routes(whip.routes)
    app.add_routes(sockets.routes)
    app.add_routes(twilio.routes)
    app.add_routes(transcripts.routes)
    app.add_routes(web_client_routes())  # last: it matches every GET path
    return app


def _middlewares(settings: Settings, *, dev: bool, node: bool) -> list[Middleware]:
    limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    middlewares = [error_middleware, cors_middleware(settings.allowed_origins),
                   limiter.middleware()]
    if node:  # only signaling may call; it says whose call it forwards
        middlewares.insert(1, node_guard(settings.node_secret))
    if dev:
        middlewares.insert(1, loopback_host_only)
    return middlewares


def _run_sessions(app: web.Application, settings: Settings, *, runtime: Runtime,
                  engines: Engines | None, load_engines: EngineLoader) -> None:
    """The sessions' life in the app: the store and the cache open with it, the engines
    (given, or loaded in the background), sessions closed on shutdown before the store
    writes its last finals."""
    # The process's one cache backend (memory, or a Redis pool): translations and the
    # state that lets a dropped session resume.
    ephemeral = open_key_value(settings.redis_url)
    states = ResumableSessions(ephemeral, settings.session_grace_s)

    def start_sessions(engines: Engines) -> None:
        engines.catalog.use_cache(
            KeyValueTranslationCache(ephemeral, settings.translation_cache_ttl_s))
        runtime.registry = SessionRegistry(settings, engines, archive=runtime.keep,
                                           states=states, publish=runtime.publish)

    async def engines_context(app: web.Application) -> AsyncIterator[None]:
        async def load() -> None:
            try:
                engines = await load_engines(settings)
            except Exception:
                log.exception("engines failed to load; /readyz stays 503")
                return
            runtime.engines = engines
            start_sessions(engines)

        # Load in the background: /healthz answers at once, /readyz once loaded.
        loading = asyncio.create_task(load(), name="load-engines")
        yield
        await cancel_and_wait(loading)
        if runtime.engines is not None:
            await runtime.engines.close()

    async def close_sessions(app: web.Application) -> None:
        if runtime.registry is not None:
            await runtime.registry.close_all()

    async def state_context(app: web.Application) -> AsyncIterator[None]:
        archive = Archive(settings)
        await archive.start()
        runtime.archive = archive
        yield
        runtime.archive = None
        await archive.close()  # after the sessions: their last finals are written
        await ephemeral.close()

    if engines is not None:
        start_sessions(engines)
    app.on_shutdown.append(close_sessions)
    app.cleanup_ctx.append(state_context)
    if engines is None:
        app.cleanup_ctx.append(engines_context)
