"""Faster speech at the same pitch: FFmpeg's `atempo` filter through PyAV, fed piece by
piece so that a clip still being synthesised can be sped up as it plays."""

from __future__ import annotations

import fractions

import av

from media_server.audio import mono_frame

MAX_TEMPO = 1.25  # faster than this, synthesised speech gets hard to follow


class Stretcher:
    """Mono s16 PCM in, the same speech `tempo` times faster out."""

    def __init__(self, tempo: float, rate: int) -> None:
        if not 0.5 <= tempo <= 2.0:
            raise ValueError(f"atempo takes 0.5-2.0, not {tempo}")
        self._rate = rate
        self._pts = 0
        self._graph = av.filter.Graph()
        source = self._graph.add_abuffer(format="s16", sample_rate=rate, layout="mono",
                                         time_base=fractions.Fraction(1, rate))
        stretch = self._graph.add("atempo", f"{tempo:.4f}")
        sink = self._graph.add("abuffersink")
        source.link_to(stretch)
        stretch.link_to(sink)
        self._graph.configure()

    def push(self, pcm: bytes) -> bytes:
        """Stretch more input; returns what output is ready (the filter keeps a little)."""
        self._graph.push(mono_frame(pcm, self._rate, self._pts))
        self._pts += len(pcm) // 2
        return self._pull()

    def flush(self) -> bytes:
        """The input is over: the rest of the output."""
        self._graph.push(None)
        return self._pull()

    def _pull(self) -> bytes:
        out = bytearray()
        while True:
            try:
                frame = self._graph.pull()
            except (av.BlockingIOError, av.EOFError):
                return bytes(out)
            out += frame.to_ndarray().astype("<i2").tobytes()
