"""A real aiortc peer that speaks to the server through its HTTP API and data channel.

Used by the tests and the benchmarks. `PcmTrack` plays audio in real time like a
microphone (then silence, as a muted mic would), and remembers the wall-clock
time its first sample went out so that latency can be measured against the audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

RATE = 48000
FRAME = 960  # 20 ms


def load_pcm48(path: str | Path, rate: int = RATE) -> np.ndarray:
    """Decode any audio file to mono int16 at `rate` (48 kHz by default)."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    chunks: list[np.ndarray] = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(chunks).astype(np.int16)


class PcmTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, pcm: np.ndarray, lead_silence_s: float = 0.0,
                 starts_at: float | None = None) -> None:
        """`starts_at`: the monotonic time `pcm` begins (silence until then), so that
        several clients' tracks share one timeline; else `lead_silence_s` after the
        first frame is asked for."""
        super().__init__()
        self._pcm = pcm
        self._lead_s = lead_silence_s
        self._starts_at = starts_at
        self._pts = 0
        self._t0: float | None = None
        self.audio_t0: float | None = None  # wall time of the first sample of `pcm`
        self._echo = np.zeros(0, dtype=np.float64)  # sound from the loudspeaker, to mix in

    def mix_in(self, samples: np.ndarray, gain: float = 0.8) -> None:
        """Add played-back audio (48 kHz floats) to what the mic picks up next."""
        self._echo = np.concatenate([self._echo, samples * gain])

    @property
    def finished(self) -> bool:
        return self._pts >= len(self._pcm)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.monotonic()
            if self._starts_at is not None:
                self._lead_s = max(0.0, self._starts_at - self._t0)
            lead = np.zeros(int(self._lead_s * RATE), dtype=np.int16)
            self._pcm = np.concatenate([lead, self._pcm])
            self.audio_t0 = self._t0 + self._lead_s
        wait = self._t0 + self._pts / RATE - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = self._pcm[self._pts : self._pts + FRAME]
        if len(chunk) < FRAME:
            chunk = np.concatenate([chunk, np.zeros(FRAME - len(chunk), dtype=np.int16)])
        if len(self._echo):
            echo, self._echo = self._echo[:FRAME], self._echo[FRAME:]
            mixed = chunk.astype(np.float64)
            mixed[: len(echo)] += echo * 32768
            chunk = np.clip(mixed, -32768, 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += FRAME
        return frame


@dataclass
class Received:
    at: float
    message: dict[str, Any]


@dataclass
class CaptionClient:
    base_url: str
    http: aiohttp.ClientSession
    received: list[Received] = field(default_factory=list)
    session_id: str = ""
    track: PcmTrack | None = None
    pc: RTCPeerConnection | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    # The return track as received: (arrival time, RMS in [0, 1]) per 20 ms frame.
    return_audio: list[tuple[float, float]] = field(default_factory=list)
    _audio_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    echo: bool = False  # play the return track back into the mic, as a loudspeaker would
    # Keep the return track's samples too (arrival time, 48 kHz int16 per frame).
    keep_return_pcm: bool = False
    return_pcm: list[tuple[float, np.ndarray]] = field(default_factory=list)
    _pinger: asyncio.Future[None] | None = None

    async def create(self, **body: Any) -> aiohttp.ClientResponse:
        body = {"room": "test", "name": "Tester", "source_lang": "en", **body}
        return await self.http.post(f"{self.base_url}/api/sessions", json=body)

    async def start(self, audio: np.ndarray | None, lead_silence_s: float = 0.3,
                    *, starts_at: float | None = None, **body: Any) -> None:
        resp = await self.create(**body)
        data = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"session refused: {resp.status} {data}")
        await self.connect(data["session_id"], audio, lead_silence_s=lead_silence_s,
                           starts_at=starts_at)

    async def connect(self, session_id: str, audio: np.ndarray | None,
                      *, lead_silence_s: float = 0.3, starts_at: float | None = None,
                      config: RTCConfiguration | None = None) -> None:
        self.session_id = session_id
        self.pc = RTCPeerConnection(config or RTCConfiguration(iceServers=[]))
        self.pc.on("track", self._on_track)
        channel = self.pc.createDataChannel("captions")
        channel.on("message", self._on_message)
        self.channel = channel
        opened = asyncio.Event()
        channel.on("open", opened.set)
        if audio is not None:
            self.track = PcmTrack(audio, lead_silence_s, starts_at)
            self.pc.addTrack(self.track)
        else:  # a listener: no microphone, but the interpretation comes back
            self.pc.addTransceiver("audio", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        resp = await self.http.post(
            f"{self.base_url}/api/sessions/{self.session_id}/offer",
            json={"sdp": self.pc.localDescription.sdp, "type": "offer"},
        )
        answer = await resp.json()
        if resp.status != 200:
            raise RuntimeError(f"offer refused: {resp.status} {answer}")
        await self.pc.setRemoteDescription(RTCSessionDescription(**answer))
        await asyncio.wait_for(opened.wait(), 10)
        self._pinger = asyncio.ensure_future(self._ping())

    async def _ping(self) -> None:
        """As the SDK does: a listener sends nothing else, and silence means gone."""
        while self.channel.readyState == "open":
            self.send({"type": "ping"})
            await asyncio.sleep(1.0)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._return_task = asyncio.ensure_future(self._record(track))

    async def _record(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                # aiortc decodes to packed s16 stereo: take one channel.
                samples = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
                level = samples.astype(np.float64) / 32768
                now = time.monotonic()
                self.return_audio.append((now, float(np.sqrt(np.mean(level**2)))))
                self._audio_arrived.set()
                if self.keep_return_pcm:
                    self.return_pcm.append((now, samples.astype(np.int16)))
                if self.echo and self.track is not None:
                    self.track.mix_in(level)

    def _on_message(self, raw: str | bytes) -> None:
        self.received.append(Received(time.monotonic(), json.loads(raw)))
        self._arrived.set()

    def send(self, message: dict[str, Any] | str) -> None:
        self.channel.send(message if isinstance(message, str) else json.dumps(message))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [r.message for r in self.received if r.message["type"] == kind]

    def captions(self, status: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.of_type("caption") if status is None or m["status"] == status]

    def finals(self) -> list[dict[str, Any]]:
        """Finals with words (an empty final only closes an interim)."""
        return [m for m in self.captions("final") if m["text"]]

    def said_all(self) -> bool:
        """All of its audio has gone out and its recognition is idle: its last final
        is out."""
        states = [m["state"] for m in self.of_type("speaker_state")]
        return self.track is not None and self.track.finished and states[-1:] == ["idle"]

    def loud_share(self, start: float, end: float, level: float = 0.01) -> float:
        """The share of return-track frames louder than `level` between two times."""
        frames = [rms for t, rms in self.return_audio if start <= t < end]
        assert frames, f"no return audio between {start} and {end}"
        return sum(rms > level for rms in frames) / len(frames)

    async def wait_for_audio(self, level: float = 0.05, within: float = 10.0) -> None:
        """Wait until the return track has carried a frame louder than `level`."""
        deadline = time.monotonic() + within
        while not any(rms > level for _, rms in self.return_audio):
            self._audio_arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no return audio above {level} in {within} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._audio_arrived.wait(), remaining)

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool],
                       within: float = 20.0) -> dict[str, Any]:
        """Wait for a message (already received or to come) that satisfies `predicate`."""
        deadline = time.monotonic() + within
        seen = 0
        while True:
            for r in self.received[seen:]:
                if predicate(r.message):
                    return r.message
            seen = len(self.received)
            self._arrived.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching message in {within} s; got {self.received}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def close(self, delete: bool = True) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
        if delete and self.session_id:
            await self.http.delete(f"{self.base_url}/api/sessions/{self.session_id}")
        if self.pc is not None:
            await self.pc.close()


async def _main(url: str, audio_path: str) -> None:
    """Connect, speak `audio_path`, print the session id, then stay until killed."""
    async with aiohttp.ClientSession() as http:
        client = CaptionClient(url, http)
        await client.start(load_pcm48(audio_path))
        sys.stdout.write(client.session_id + "\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


if __name__ == "__main__":
    from media_server.ice_addresses import restrict_host_addresses

    restrict_host_addresses(["127.0.0.1"])
    asyncio.run(_main(sys.argv[1], sys.argv[2]))
