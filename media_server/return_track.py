"""The return track as WebRTC sends it: Opus packets encoded here, so that silence
costs next to nothing.

Given frames, aiortc encodes every 20 ms of a track (resampled to stereo, in a worker
thread, with its audio level measured), silence included: for a participant nobody
is interpreting to, most of its send path (measured in `bench/streams.py --idle`).
Given packets, it only packs them. So the playout's frames are encoded here: a
frame of silence is one Opus packet encoded once and sent again, a clip's frames go
through an Opus encoder of their own (a fraction of a millisecond a frame, on the
event loop), and every packet carries the playout's sample clock as its timestamp.
"""

from __future__ import annotations

import fractions
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.codecs.opus import OpusEncoder

from media_server.playout import RATE, PlayoutTrack

TIME_BASE = fractions.Fraction(1, RATE)


class EncodedReturnTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, playout: PlayoutTrack) -> None:
        super().__init__()
        self._playout = playout
        self._encoder = OpusEncoder()
        self._silence: bytes | None = None

    async def recv(self) -> av.Packet[Any]:
        frame = await self._playout.recv()
        if self._playout.last_frame_clip is None:
            payload = self._silence or self._encode_silence(frame)
        else:
            payloads, _ = self._encoder.encode(frame)
            payload = b"".join(payloads)
        packet = av.Packet(payload)
        packet.pts = frame.pts
        packet.time_base = TIME_BASE
        return packet

    def _encode_silence(self, frame: av.AudioFrame) -> bytes:
        """One packet of silence, from an encoder of its own (Opus decoders take any
        packet alone), kept for every silent frame after."""
        payloads, _ = OpusEncoder().encode(frame)
        self._silence = b"".join(payloads)
        return self._silence

    def stop(self) -> None:
        super().stop()
        self._playout.stop()
