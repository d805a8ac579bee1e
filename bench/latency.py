"""Caption latency as a user feels it, through WebRTC and through a WebSocket
(`/ws/{room}`, PCM16 at 16 kHz: a phone bridge or a server), to a server process on
loopback.

For each phrase: end of speech in the sent audio -> the phrase's final caption, and
start of speech -> its first interim. With a target language, also end of speech ->
the translated final, and -> the first audible sample of the spoken translation on
the return track as the receiving peer gets it. Prints p50/p95 in seconds and as
ratios to the machine's yardstick (a plain faster-whisper decode, timed in the run).

    .venv/bin/python bench/latency.py [--rounds 2] [--pairs en:en,en:pt,en:es,es:en]
        [--transports webrtc,socket] [--each]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    percentile,
    phrases,
    server_process,
    speech_bounds,
    wait_ready,
    yardstick,
)
from media_server.socket_audio import SocketAudio
from tests.rtc_client import RATE, CaptionClient
from tests.socket_client import SocketClient, encoded, socket_url

GAP_S = 2.5  # silence between phrases
PORT = 8097


LOUD = 0.01


Heard = tuple[float, dict[str, Any]]  # a message and when it arrived


async def over_webrtc(url: str, audio: np.ndarray, *, source: str, target: str
                      ) -> tuple[float, list[Heard], list[tuple[float, float]]]:
    """(when the audio started, the messages, the return audio as (time, RMS))."""
    async with aiohttp.ClientSession() as http:
        client = CaptionClient(url, http)
        await client.start(audio, lead_silence_s=0, source_lang=source, target_lang=target)
        await asyncio.sleep(len(audio) / RATE + 2)
        await client.close()
    assert client.track is not None and client.track.audio_t0 is not None
    return (client.track.audio_t0, [(r.at, r.message) for r in client.received],
            client.return_audio)


async def over_socket(url: str, audio: np.ndarray, *, source: str, target: str
                      ) -> tuple[float, list[Heard], list[tuple[float, float]]]:
    pcm16 = SocketAudio("pcm16", 16000)
    client = await SocketClient.open(socket_url(url, "bench", source_lang=source,
                                                target_lang=target), pcm16)
    await client.speak(encoded(audio, pcm16), silence_after_s=2.0)
    await client.close()
    assert client.audio_t0 is not None
    return_audio = [(t, float(np.sqrt(np.mean(
        (np.frombuffer(p, dtype="<i2").astype(np.float64) / 32768) ** 2))))
        for t, p in client.clips]
    return client.audio_t0, list(zip(client.arrivals, client.messages, strict=True)), \
        return_audio


TRANSPORTS = {"webrtc": over_webrtc, "socket": over_socket}


async def one_round(url: str, clips: list[np.ndarray], *, source: str, target: str,
                    transport: str) -> tuple[list[float], list[float], list[float]]:
    gap = np.zeros(int(GAP_S * RATE), dtype=np.int16)
    audio_parts, bounds, cursor = [gap], [], len(gap)
    for clip in clips:
        start, end = speech_bounds(clip)
        bounds.append((cursor + start, cursor + end))
        audio_parts += [clip, gap]
        cursor += len(clip) + len(gap)
    audio = np.concatenate(audio_parts)
    t0, received, return_audio = await TRANSPORTS[transport](
        url, audio, source=source, target=target)
    finals, interims, audible = [], [], []
    for i, (start, end) in enumerate(bounds):
        window_end = bounds[i + 1][0] if i + 1 < len(bounds) else len(audio) + RATE * 2
        in_window = [(at, m) for at, m in received if m["type"] == "caption"
                     and t0 + start / RATE <= at < t0 + window_end / RATE]
        phrase_finals = [(at, m) for at, m in in_window if m["status"] == "final"
                         and m["text"]]
        phrase_interims = [(at, m) for at, m in in_window if m["status"] == "interim"]
        if phrase_finals:
            finals.append(phrase_finals[-1][0] - (t0 + end / RATE))
        else:
            print(f"  phrase {i}: no final caption", file=sys.stderr)
        if phrase_interims:
            interims.append(phrase_interims[0][0] - (t0 + start / RATE))
        # This phrase's clip: the first loud frame after its `speech` message.
        speech_end = t0 + end / RATE
        utterances = {m["utterance_id"] for _, m in phrase_finals}
        clip_starts = [at for at, m in received if m["type"] == "speech"
                       and m["utterance_id"] in utterances]
        sound = [t for t, rms in return_audio
                 if clip_starts and rms > LOUD and t >= clip_starts[0] - 0.1]
        if sound:
            audible.append(sound[0] - speech_end)
    return finals, interims, audible


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pairs", default="en:en,en:pt,en:es,es:en")
    parser.add_argument("--transports", default="webrtc,socket")
    parser.add_argument("--each", action="store_true",
                        help="also print each phrase's end of speech -> final, per round")
    args = parser.parse_args()
    url = f"http://127.0.0.1:{PORT}"
    stick = yardstick(phrases("en"))
    print(f"yardstick: one plain 30 s-window faster-whisper decode of these phrases, "
          f"p50 {stick:.2f} s (this machine, this run); ratios below are to it")
    with server_process(PORT):
        await wait_ready(url)
        async with aiohttp.ClientSession() as http:
            described = await (await http.get(url + "/api/languages")).json()
        providers = {(source, target): provider
                     for source, targets in described["translation"].items()
                     for target, provider in targets.items()}
        for pair in args.pairs.split(","):
            for transport in args.transports.split(","):
                await _pair(url, pair, transport=transport, rounds=args.rounds,
                            each=args.each, stick=stick, described=described,
                            providers=providers)


async def _pair(url: str, pair: str, *, transport: str, rounds: int, each: bool,
                stick: float, described: dict[str, Any],
                providers: dict[tuple[str, str], str]) -> None:
    source, target = pair.split(":")
    clips = phrases(source)
    finals: list[float] = []
    interims: list[float] = []
    audible: list[float] = []
    for _ in range(rounds):
        f, i, a = await one_round(url, clips, source=source, target=target,
                                  transport=transport)
        if each:
            print(f"  {source}:{target} finals: " + " ".join(f"{x:.2f}" for x in f))
        finals += f
        interims += i
        audible += a
    runs = f"{len(clips)} phrases x {rounds} rounds, over {transport}"
    if source == target:
        print(f"captions only ({source}), {runs}")
        print(f"  end of speech -> final caption:    {_p(finals, stick)}  "
              "(target p50 <= 0.6x)")
        print(f"  start of speech -> first interim:  {_p(interims, stick)}  "
              "(target p50 <= 0.6x)")
        return
    voice = described["voices"].get(target, {}).get("provider", "none")
    print(f"{source} -> {target} ({providers.get((source, target))} + {voice}), {runs}")
    print(f"  end of speech -> translated final:    {_p(finals, stick)}")
    print(f"  end of speech -> first audible sample: {_p(audible, stick)}  "
          f"({len(audible)} clips heard)")


def _p(values: list[float], stick: float) -> str:
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return (f"p50 {p50:.2f} s ({p50 / stick:.2f}x)  p95 {p95:.2f} s ({p95 / stick:.2f}x)")


if __name__ == "__main__":
    asyncio.run(main())
