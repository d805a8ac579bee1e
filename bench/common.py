"""Helpers the benchmarks share: a server process on loopback, percentiles, phrases."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import numpy as np

from media_server.ice_addresses import restrict_host_addresses
from tests.conftest import JFK, JFK_UTTERANCES
from tests.rtc_client import RATE, CaptionClient, load_pcm48

REPO = Path(__file__).resolve().parent.parent
SPANISH_PHRASES = [
    "Buenos días a todos, empecemos con la revisión semanal.",
    "Los números del trimestre son mejores de lo esperado.",
    "¿Puedes compartir tu pantalla un momento?",
    "Creo que debemos mover el lanzamiento al martes.",
    "Gracias, eso fue muy útil.",
    "Tomemos cinco minutos y volvamos a las y media.",
]
ESPEAK_PHRASES = [
    "Good morning everyone, let's get started with the weekly review.",
    "The quarterly numbers look better than we expected.",
    "Could you share your screen for a moment?",
    "I think we should move the launch to next Tuesday.",
    "Thanks, that was very helpful.",
    "Let's take five minutes and come back at half past.",
]


def yardstick(clips: list[np.ndarray], rate: int = RATE) -> float:
    """The machine's yardstick, timed now: the median time of one plain faster-whisper
    decode (its 30 s window, its default beam of 5) of each clip with the packaged
    Whisper base model on two threads. Latencies are reported as ratios to it, since
    absolute times move from machine to machine. Run while the server is idle."""
    from faster_whisper import WhisperModel

    from media_server.audio import STT_SAMPLE_RATE, pcm_to_float, resample_pcm
    from media_server.engines.stt.whisper_files import whisper_base_dir
    from media_server.settings import Settings

    model = WhisperModel(str(whisper_base_dir(Settings.load().data_dir)), device="cpu",
                         compute_type="int8", cpu_threads=2)
    audio = [pcm_to_float(resample_pcm(c.astype(np.int16).tobytes(), rate, STT_SAMPLE_RATE))
             for c in clips]
    list(model.transcribe(audio[0], language="en")[0])  # warm-up
    times = []
    for clip in audio:
        started = time.perf_counter()
        segments, _ = model.transcribe(clip, language="en")
        list(segments)  # the decode happens as segments are read
        times.append(time.perf_counter() - started)
    return percentile(times, 50)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


def speech_bounds(pcm: np.ndarray, rate: int = RATE) -> tuple[int, int]:
    """First and last sample of a clip louder than -40 dBFS (10 ms windows)."""
    win = rate // 100
    frames = pcm[: len(pcm) // win * win].astype(np.float64).reshape(-1, win) / 32768
    loud = np.nonzero(np.sqrt((frames**2).mean(axis=1)) > 0.01)[0]
    return int(loud[0] * win), int((loud[-1] + 1) * win)


def phrases(language: str = "en") -> list[np.ndarray]:
    """English: real speech (the JFK utterances) and espeak-ng; Spanish: espeak-ng.
    48 kHz mono."""
    clips = []
    if language == "en":
        jfk = load_pcm48(JFK)
        clips = [jfk[int(a * RATE) : int(b * RATE)] for a, b in JFK_UTTERANCES]
    texts, voice = (ESPEAK_PHRASES, "en-us") if language == "en" else (SPANISH_PHRASES, "es")
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is missing: apt-get install espeak-ng")
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(texts):
            wav = Path(tmp) / f"{i}.wav"
            subprocess.run([espeak, "-v", voice, "-s", "165", "-w", str(wav), text],
                           check=True)
            clips.append(load_pcm48(wav))
    return clips


@contextmanager
def server_process(port: int, env: dict[str, str] | None = None,
                   args: list[str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`live-interpreter serve` (or `args`) on 127.0.0.1:port, ICE on loopback only (the
    server's candidates and our own peers')."""
    restrict_host_addresses(["127.0.0.1"])
    environ = {**os.environ, "LIVE_INTERPRETER_ICE_HOST_ADDRESSES": "127.0.0.1",
               "LIVE_INTERPRETER_LOG_LEVEL": "WARNING", **(env or {})}
    command = args or [str(Path(sys.executable).parent / "live-interpreter"), "serve", "--dev",
                       "--port", str(port)]
    proc = subprocess.Popen(command, env=environ, cwd=REPO)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


async def wait_ready(url: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} never became ready")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


async def join_listeners(url: str, http: aiohttp.ClientSession, *, room: str,
                         langs: list[str]) -> list[CaptionClient]:
    """A listener per language in `room`, reading (and hearing) that language."""
    listeners = []
    for lang in langs:
        listener = CaptionClient(url, http)
        await listener.start(None, room=room, name=f"listener-{lang}", target_lang=lang,
                             speak=False)
        listeners.append(listener)
    return listeners
