"""Caption latency as a user feels it, through WebRTC to a server process on loopback.

For each phrase: end of speech in the sent audio -> the phrase's final caption, and
start of speech -> its first interim. Prints p50/p95 against the targets.

    .venv/bin/python bench/latency.py [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import aiohttp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, phrases, server_process, speech_bounds, wait_ready
from tests.rtc_client import RATE, CaptionClient

GAP_S = 2.5  # silence between phrases
PORT = 8097


async def one_round(url: str, clips: list[np.ndarray]) -> tuple[list[float], list[float]]:
    gap = np.zeros(int(GAP_S * RATE), dtype=np.int16)
    audio_parts, bounds, cursor = [gap], [], len(gap)
    for clip in clips:
        start, end = speech_bounds(clip)
        bounds.append((cursor + start, cursor + end))
        audio_parts += [clip, gap]
        cursor += len(clip) + len(gap)
    audio = np.concatenate(audio_parts)
    async with aiohttp.ClientSession() as http:
        client = CaptionClient(url, http)
        await client.start(audio, lead_silence_s=0)
        await asyncio.sleep(len(audio) / RATE + 2)
        await client.close()
    assert client.track is not None and client.track.audio_t0 is not None
    t0 = client.track.audio_t0
    finals, interims = [], []
    for i, (start, end) in enumerate(bounds):
        window_end = bounds[i + 1][0] if i + 1 < len(bounds) else len(audio) + RATE * 2
        in_window = [r for r in client.received if r.message["type"] == "caption"
                     and t0 + start / RATE <= r.at < t0 + window_end / RATE]
        phrase_finals = [r for r in in_window if r.message["status"] == "final"
                         and r.message["text"]]
        phrase_interims = [r for r in in_window if r.message["status"] == "interim"]
        if phrase_finals:
            finals.append(phrase_finals[-1].at - (t0 + end / RATE))
        else:
            print(f"  phrase {i}: no final caption", file=sys.stderr)
        if phrase_interims:
            interims.append(phrase_interims[0].at - (t0 + start / RATE))
    return finals, interims


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    clips = phrases()
    url = f"http://127.0.0.1:{PORT}"
    finals: list[float] = []
    interims: list[float] = []
    with server_process(PORT):
        await wait_ready(url)
        for _ in range(args.rounds):
            f, i = await one_round(url, clips)
            finals += f
            interims += i
    print(f"phrases: {len(clips)} x {args.rounds} rounds "
          f"({len(finals)} finals, {len(interims)} first interims measured)")
    print(f"end of speech -> final caption:     p50 {percentile(finals, 50):.2f} s   "
          f"p95 {percentile(finals, 95):.2f} s   (target p50 <= 1.0 s)")
    print(f"start of speech -> first interim:   p50 {percentile(interims, 50):.2f} s   "
          f"p95 {percentile(interims, 95):.2f} s   (target <= 1.0 s)")


if __name__ == "__main__":
    asyncio.run(main())
