"""How many voices at once this machine's local recogniser carries, measured as it loads.

Whisper's cost per pass depends on the CPU, so a fixed figure is right on one machine
only. At start the decoder is timed on a spoken phrase (espeak-ng, ~4.5 s, decoded as
a final and, three quarters of it, as an interim, after a warm-up pass) in each
language given (one per model the recogniser holds: English may have a cheaper model
of its own), and the capacity follows from what one voice, speaking without pause,
costs the one decode worker:

    load per voice = interim pass / interim interval + final pass / utterance period

A voice is a participant while its VAD hears speech: a silent speaker costs the
recogniser nothing, so this bounds speech at once, never who may speak (people in a
call take turns). Finals go before interims and interims are latest-wins, so a final
waits at most for the pass in flight plus the finals ahead of it. Keeping the worker
busy at most `MAX_UTILISATION` of the time keeps that wait, at the 95th percentile,
within half of an idle final's latency (finals p95 within 1.5x idle, M/D/1 with finals
first): capacity = floor(MAX_UTILISATION / load per voice), at least 1. The interim
cadence the machine affords at that capacity is the interval at which the interims'
share of the worker stays within that budget. `capacity.VoiceCapacity` goes on
re-estimating the figure from the passes the decoder actually makes.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO

import numpy as np

from media_server.audio import STT_SAMPLE_RATE, pcm_to_float, resample_pcm
from media_server.engines.stt.base import BatchRecognizer, DecodeRequest

log = logging.getLogger(__name__)

# A language -> (espeak-ng voice, a phrase of about 4.5 s).
PHRASES = {
    "en": ("en-us", "Good morning everyone, let's get started with the weekly review of the "
                    "numbers."),
    "es": ("es", "Buenos días a todos, empecemos con la revisión semanal de los números."),
    "vi": ("vi", "Chào buổi sáng mọi người, chúng ta bắt đầu buổi họp hàng tuần về các "
                 "con số."),
}
UTTERANCE_PERIOD_S = 4.0  # one final per this long of continuous speech (speech + pause)
MAX_UTILISATION = 0.6


@dataclass(frozen=True)
class Calibration:
    phrase_s: float  # the spoken phrase's length
    final_pass_s: float  # one final of it
    interim_pass_s: float  # one interim of three quarters of it
    voices: int  # voices at once the decoder carries with finals p95 within 1.5x idle
    interim_interval_ms: int  # the interim cadence that capacity affords

    def describe(self) -> dict[str, float | int]:
        return {"phrase_s": round(self.phrase_s, 2),
                "final_pass_s": round(self.final_pass_s, 3),
                "interim_pass_s": round(self.interim_pass_s, 3),
                "voices": self.voices, "interim_interval_ms": self.interim_interval_ms}


def spoken_phrase(language: str = "en") -> np.ndarray:
    """The calibration phrase as 16 kHz float32 speech (espeak-ng, a server dependency);
    English's for a language with no phrase here (the cost is the audio's, not its words')."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise FileNotFoundError("espeak-ng is missing (apt-get install espeak-ng): it "
                                "speaks the phrase the recogniser is calibrated on")
    voice, phrase = PHRASES.get(language, PHRASES["en"])
    wav = subprocess.run([espeak, "-v", voice, "-s", "165", "--stdout", phrase],
                         check=True, capture_output=True, timeout=30).stdout
    with wave.open(BytesIO(wav)) as reader:
        pcm = reader.readframes(reader.getnframes())
        rate = reader.getframerate()
    return pcm_to_float(resample_pcm(pcm, rate, STT_SAMPLE_RATE))


def _timed(recognizer: BatchRecognizer, requests: list[DecodeRequest]) -> float:
    started = time.perf_counter()
    recognizer.transcribe(requests)
    return time.perf_counter() - started


def calibrate(recognizer: BatchRecognizer, interim_interval_ms: int,
              languages: Sequence[str] = ("en",)) -> Calibration:
    """Time the recogniser in each language (blocking: call it in a thread) and derive
    the capacity from the costliest: it then holds whatever the speakers' languages."""
    worst: tuple[float, float, float] = (0.0, 0.0, 0.0)  # (final, interim, phrase) s
    for language in languages:
        audio = spoken_phrase(language)
        final = DecodeRequest(audio, language, final=True)
        interim = DecodeRequest(audio[: len(audio) * 3 // 4], language, final=False)
        _timed(recognizer, [final])  # warm-up: the first pass allocates
        final_s = min(_timed(recognizer, [final]) for _ in range(2))
        interim_s = min(_timed(recognizer, [interim]) for _ in range(2))
        log.info("recogniser timed", extra={"language": language, "final_pass_s":
                                            round(final_s, 3), "interim_pass_s":
                                            round(interim_s, 3)})
        if final_s + interim_s > worst[0] + worst[1]:
            worst = (final_s, interim_s, len(audio) / STT_SAMPLE_RATE)
    final_s, interim_s, phrase_s = worst
    return capacity(phrase_s, final_s, interim_s=interim_s, interim_interval_ms=interim_interval_ms)


def capacity(phrase_s: float, final_s: float, *, interim_s: float,
             interim_interval_ms: int) -> Calibration:
    per_voice = interim_s / (interim_interval_ms / 1000) + final_s / UTTERANCE_PERIOD_S
    voices = max(1, int(MAX_UTILISATION / per_voice))
    # The interval at which `voices` streams' interims, with their finals, fit the budget.
    interim_budget = MAX_UTILISATION / voices - final_s / UTTERANCE_PERIOD_S
    affordable_ms = round(interim_s / interim_budget * 1000) if interim_budget > 0 else 0
    interval_ms = max(interim_interval_ms, affordable_ms)
    return Calibration(phrase_s, final_s, interim_s, voices, interval_ms)
