import fractions

import av
import numpy as np

from media_server.audio import PcmResampler


def _stereo_frames(signal: np.ndarray, rate: int = 48000, size: int = 960) -> list[av.AudioFrame]:
    frames = []
    for i in range(0, len(signal), size):
        chunk = signal[i : i + size]
        interleaved = np.repeat(chunk, 2).reshape(1, -1)  # s16 packed stereo, as aiortc gives
        frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout="stereo")
        frame.sample_rate = rate
        frame.pts = i
        frame.time_base = fractions.Fraction(1, rate)
        frames.append(frame)
    return frames


def _resample(signal: np.ndarray) -> np.ndarray:
    resampler = PcmResampler()
    pcm = b"".join(resampler.convert(f) for f in _stereo_frames(signal)) + resampler.flush()
    return np.frombuffer(pcm, dtype="<i2")


def test_resampling_keeps_duration() -> None:
    seconds = 3
    out = _resample(np.zeros(48000 * seconds, dtype=np.int16))
    assert abs(len(out) - 16000 * seconds) <= 16  # within 1 ms


def test_a_440_hz_tone_stays_440_hz() -> None:
    t = np.arange(48000 * 2) / 48000
    tone = (0.5 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    out = _resample(tone).astype(np.float64)
    steady = out[1600:-1600]  # skip filter warm-up at both ends
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(len(steady))))
    peak_hz = np.argmax(spectrum) * 16000 / len(steady)
    assert abs(peak_hz - 440) < 2
    # And the level survives: RMS of a 0.5 sine is 0.354 of full scale.
    assert abs(np.sqrt(np.mean(steady**2)) / 32768 - 0.354) < 0.02
