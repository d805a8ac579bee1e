"""Recent audio by absolute sample position: what a restarted or substitute stream
must hear again (everything not yet covered by a final)."""

from __future__ import annotations

BYTES_PER_SAMPLE = 2


class AudioBacklog:
    def __init__(self) -> None:
        self._pcm = bytearray()
        self.start = 0  # stream sample of the first byte kept

    @property
    def end(self) -> int:
        """Samples received so far (the stream position after the last byte)."""
        return self.start + len(self._pcm) // BYTES_PER_SAMPLE

    def append(self, pcm: bytes) -> None:
        self._pcm += pcm

    def slice(self, first: int, last: int) -> bytes:
        """Samples [first, last); the part before `start` was dropped and is not returned."""
        first = max(first, self.start)
        return bytes(self._pcm[(first - self.start) * BYTES_PER_SAMPLE:
                               max(0, last - self.start) * BYTES_PER_SAMPLE])

    def drop_before(self, sample: int) -> None:
        cut = min(max(0, sample - self.start), len(self._pcm) // BYTES_PER_SAMPLE)
        del self._pcm[: cut * BYTES_PER_SAMPLE]
        self.start += cut
