"""Received audio frames -> 16 kHz mono s16 PCM, the format every engine takes."""

from __future__ import annotations

import fractions

import av
import numpy as np

STT_SAMPLE_RATE = 16000
BYTES_PER_SAMPLE = 2


class PcmResampler:
    """Converts any av.AudioFrame (aiortc gives s16 stereo 48 kHz, 20 ms) to 16 kHz mono s16.

    One instance per stream: the resampler keeps filter state between frames, so
    consecutive frames join without clicks and the output keeps the input's duration.
    """

    def __init__(self, rate: int = STT_SAMPLE_RATE) -> None:
        self.rate = rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)

    def convert(self, frame: av.AudioFrame) -> bytes:
        return b"".join(out.to_ndarray().tobytes() for out in self._resampler.resample(frame))

    def flush(self) -> bytes:
        return b"".join(out.to_ndarray().tobytes() for out in self._resampler.resample(None))


def pcm_to_float(pcm: bytes) -> np.ndarray:
    """s16 little-endian PCM -> float32 in [-1, 1)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def samples_to_ms(samples: int, rate: int = STT_SAMPLE_RATE) -> int:
    return samples * 1000 // rate


def ms_to_samples(ms: int, rate: int = STT_SAMPLE_RATE) -> int:
    return ms * rate // 1000


def mono_frame(pcm: bytes, rate: int, pts: int | None = None) -> av.AudioFrame:
    """Mono s16 PCM as an av.AudioFrame; with `pts`, timed in samples (1/rate)."""
    samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
    frame.sample_rate = rate
    if pts is not None:
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, rate)
    return frame


def resample_pcm(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Mono s16 PCM from one rate to another (a whole clip at once)."""
    if from_rate == to_rate or not pcm:
        return pcm
    frame = mono_frame(pcm, from_rate)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=to_rate)
    out = [*resampler.resample(frame), *resampler.resample(None)]
    return b"".join(f.to_ndarray().tobytes() for f in out)
