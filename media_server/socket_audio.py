"""Audio on a WebSocket: what a phone bridge or a server sends and wants back.

`pcm16` is little-endian signed 16-bit mono; `mulaw` is G.711 µ-law (one byte a
sample), the telephone's format and Twilio's. Rates: 8, 16 or 48 kHz."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import numpy as np

from media_server.errors import BadRequest

Encoding = Literal["pcm16", "mulaw"]
ENCODINGS: tuple[Encoding, ...] = ("pcm16", "mulaw")
RATES = (8000, 16000, 48000)
_BIAS, _CLIP = 0x84, 32635


def _mulaw_table() -> np.ndarray:
    byte = ~np.arange(256) & 0xFF
    exponent, mantissa = (byte >> 4) & 0x07, byte & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(byte & 0x80, -magnitude, magnitude).astype("<i2")


_MULAW_TO_PCM = _mulaw_table()


def mulaw_decode(payload: bytes) -> bytes:
    return _MULAW_TO_PCM[np.frombuffer(payload, dtype=np.uint8)].tobytes()


def mulaw_encode(pcm: bytes) -> bytes:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    sign = (samples < 0).astype(np.int32) << 7
    magnitude = np.minimum(np.abs(samples), _CLIP) + _BIAS
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return cast(bytes, (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes())


def audio_format(encoding: object, rate: object) -> SocketAudio:
    """A client's declared format (from a query or a message), checked."""
    if encoding not in ENCODINGS:
        raise BadRequest("bad_encoding", f"encoding must be one of {', '.join(ENCODINGS)}")
    if isinstance(rate, str) and rate.isdigit():
        rate = int(rate)
    if isinstance(rate, bool) or not isinstance(rate, int) or rate not in RATES:
        raise BadRequest("bad_rate", "rate must be one of "
                         f"{', '.join(str(r) for r in RATES)} (Hz)")
    return SocketAudio(encoding, rate)


@dataclass(frozen=True)
class SocketAudio:
    encoding: Encoding = "pcm16"
    rate: int = 16000

    @property
    def sample_bytes(self) -> int:
        return 2 if self.encoding == "pcm16" else 1

    def seconds(self, payload: bytes) -> float:
        return len(payload) / self.sample_bytes / self.rate

    def decode(self, payload: bytes) -> bytes:
        """Received audio -> s16 PCM at `rate`."""
        return payload if self.encoding == "pcm16" else mulaw_decode(payload)

    def encode(self, pcm: bytes) -> bytes:
        """s16 PCM at `rate` -> the client's format."""
        return pcm if self.encoding == "pcm16" else mulaw_encode(pcm)
