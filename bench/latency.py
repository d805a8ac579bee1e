"""Caption latency as a user feels it, through WebRTC to a server process on loopback.

For each phrase: end of speech in the sent audio -> the phrase's final caption, and
start of speech -> its first interim. With a target language, also end of speech ->
the translated final, and -> the first audible sample of the spoken translation on
the return track as the receiving peer gets it. Prints p50/p95 in seconds and as
ratios to the machine's yardstick (a plain faster-whisper decode, timed in the run).

    .venv/bin/python bench/latency.py [--rounds 2] [--pairs en:en,en:pt,en:es,es:en] [--each]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

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
from tests.rtc_client import RATE, CaptionClient

GAP_S = 2.5  # silence between phrases
PORT = 8097


LOUD = 0.01


async def one_round(url: str, clips: list[np.ndarray], *, source: str, target: str
                    ) -> tuple[list[float], list[float], list[float]]:
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
        await client.start(audio, lead_silence_s=0, source_lang=source, target_lang=target)
        await asyncio.sleep(len(audio) / RATE + 2)
        await client.close()
    assert client.track is not None and client.track.audio_t0 is not None
    t0 = client.track.audio_t0
    finals, interims, audible = [], [], []
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
        # This phrase's clip: the first loud frame after its `speech` message.
        speech_end = t0 + end / RATE
        utterances = {r.message["utterance_id"] for r in phrase_finals}
        clip_starts = [r.at for r in client.received if r.message["type"] == "speech"
                       and r.message["utterance_id"] in utterances]
        sound = [t for t, rms in client.return_audio
                 if clip_starts and rms > LOUD and t >= clip_starts[0] - 0.1]
        if sound:
            audible.append(sound[0] - speech_end)
    return finals, interims, audible


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pairs", default="en:en,en:pt,en:es,es:en")
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
            source, target = pair.split(":")
            clips = phrases(source)
            finals: list[float] = []
            interims: list[float] = []
            audible: list[float] = []
            for _ in range(args.rounds):
                f, i, a = await one_round(url, clips, source=source, target=target)
                if args.each:
                    print(f"  {source}:{target} finals: " + " ".join(f"{x:.2f}" for x in f))
                finals += f
                interims += i
                audible += a
            runs = f"{len(clips)} phrases x {args.rounds} rounds"
            if source == target:
                print(f"captions only ({source}), {runs}")
                print(f"  end of speech -> final caption:    {_p(finals, stick)}  "
                      "(target p50 <= 0.6x)")
                print(f"  start of speech -> first interim:  {_p(interims, stick)}  "
                      "(target p50 <= 0.6x)")
                continue
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
