"""Shared fixtures: one event loop and one engine set for the session; a fresh
server (real aiohttp on a loopback port) for each test that needs one."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jiwer
import numpy as np
import pytest
from aiohttp import web

from media_server.audio import resample_pcm
from media_server.engines.google_clients import GoogleClients, create_clients, find_credentials
from media_server.engines.loader import Engines, load_engines
from media_server.engines.stt.decode_scheduler import DecodeScheduler
from media_server.engines.stt.stream_adapter import StreamAdapter
from media_server.ice_addresses import restrict_host_addresses
from media_server.registry import SessionRegistry
from media_server.settings import Settings
from signaling.app import create_app
from signaling.state import RUNTIME
from tests.google_fake import FakeGoogle
from tests.rtc_client import CaptionClient, load_pcm48
from tests.services import PrivatePostgres, PrivateRedis

pytest_plugins = ("tests.watchdog",)  # a hang fails fast, with every stack printed

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"
JFK = FIXTURES / "jfk.flac"
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")
JFK_SECONDS = 11.0
# The four utterances of jfk.flac (seconds), as its pauses separate them.
JFK_UTTERANCES = [(0.25, 2.35), (3.2, 4.55), (5.3, 7.8), (8.1, 10.75)]
# Within them, the speech itself, where Silero (threshold 0.3) hears it.
JFK_SPEECH = [(0.32, 2.24), (3.3, 4.35), (5.44, 7.62), (8.22, 10.53)]
# The second speaker of room tests: Piper's English voice says it (`morning48`).
MORNING_TEXT = "Good morning everyone. The meeting starts now."
# A sentence of about 20 s in clauses, for simultaneous interpretation (`long48`).
LONG_TEXT = ("Our team has spent the last six months building a system that listens to people "
             "speaking in one language, writes down what they say, translates it into another "
             "language, and reads the translation aloud while they are still talking, so that "
             "everyone in the meeting can follow without waiting for the end of each sentence "
             "or asking the speaker to slow down.")


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w' ]+", " ", text.lower()).split())


def wer(reference: str, hypothesis: str) -> float:
    return float(jiwer.wer(normalise(reference), normalise(hypothesis) or "<empty>"))


@pytest.fixture(scope="session", autouse=True)
def loopback_only() -> None:
    """Our own aiortc peers offer loopback candidates only: no test sends anything to
    the machine's other addresses."""
    restrict_host_addresses(["127.0.0.1"])


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    if not JFK.is_file():
        raise FileNotFoundError(f"test fixture missing: {JFK}")
    return Settings.load({
        "LIVE_INTERPRETER_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        "LIVE_INTERPRETER_ICE_HOST_ADDRESSES": "127.0.0.1",
        # Our peers are on loopback (servers started with dev=True allow it anyway).
        "LIVE_INTERPRETER_ICE_ALLOWED_NETWORKS": "127.0.0.0/8",
    })


@pytest.fixture(scope="session")
async def engines(settings: Settings) -> AsyncIterator[Engines]:
    loaded = await load_engines(settings)
    yield loaded
    await loaded.close()


def decoder(engines: Engines) -> DecodeScheduler:
    """The local Whisper decoder (the session's engines are the local ones)."""
    assert engines.scheduler is not None
    return engines.scheduler


def adapter(engines: Engines) -> StreamAdapter:
    assert isinstance(engines.catalog.stt, StreamAdapter)
    return engines.catalog.stt


@pytest.fixture(scope="session")
def jfk48() -> np.ndarray:
    return load_pcm48(JFK)


async def piper48(engines: Engines, text: str) -> np.ndarray:
    """English `text` in Piper's voice, at 48 kHz."""
    voice = engines.catalog.voice_for("en")
    assert voice is not None, "no English voice: Piper should be installed"
    chunks = [c async for c in voice.synthesize(text, "en")]
    pcm = b"".join(resample_pcm(c.pcm, c.sample_rate, 48000) for c in chunks)
    return np.frombuffer(pcm, dtype="<i2").copy()


@pytest.fixture(scope="session")
async def morning48(engines: Engines) -> np.ndarray:
    """A second recording, another voice than JFK's, at 48 kHz."""
    return await piper48(engines, MORNING_TEXT)


@pytest.fixture(scope="session")
async def long48(engines: Engines) -> np.ndarray:
    """`LONG_TEXT` in Piper's voice, at 48 kHz."""
    return await piper48(engines, LONG_TEXT)


@pytest.fixture
async def fake_google(engines: Engines) -> AsyncIterator[FakeGoogle]:
    """A fake Google Cloud on a loopback port; its speech recognition is Whisper's."""
    fake = FakeGoogle(decoder(engines).recognizer)
    await fake.start()
    yield fake
    await fake.stop()


def google_settings(settings: Settings, fake: FakeGoogle, **changes: Any) -> Settings:
    return settings.replace(google_endpoint=fake.address, google_project="test-project",
                            **changes)


@pytest.fixture
async def google_clients(settings: Settings, fake_google: FakeGoogle
                         ) -> AsyncIterator[GoogleClients]:
    configured = google_settings(settings, fake_google)
    clients = create_clients(configured, find_credentials(configured))
    yield clients
    await clients.close()


@dataclass
class Server:
    url: str
    registry: SessionRegistry
    settings: Settings


async def start_server(settings: Settings, engines: Engines, *, dev: bool = True,
                       port: int = 0) -> tuple[Server, web.AppRunner]:
    """The app on a loopback port (any free one unless given); `dev` (room tokens off)
    except for the access tests."""
    app = create_app(settings, engines=engines, dev=dev)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    port = runner.addresses[0][1]
    registry = app[RUNTIME].registry
    assert registry is not None
    return Server(f"http://127.0.0.1:{port}", registry, settings), runner


@pytest.fixture
async def server(settings: Settings, engines: Engines) -> AsyncIterator[Server]:
    srv, runner = await start_server(settings, engines)
    yield srv
    await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def client(server: Server, http: aiohttp.ClientSession) -> AsyncIterator[CaptionClient]:
    c = CaptionClient(server.url, http)
    yield c
    await c.close()


# Private PostgreSQL and Redis servers on spare loopback ports, for the fault tests
# that stop and start them under a live session.
@pytest.fixture
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    server = PrivatePostgres()
    await server.create()
    yield server
    await server.destroy()


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    await server.start()
    yield server
    await server.stop()
