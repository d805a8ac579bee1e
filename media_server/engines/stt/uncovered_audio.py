"""The audio no final covers yet, by absolute sample position: what a restarted or
substitute stream must hear again, so that no word is lost or said twice.

Audio is *covered* once a final reaches past it (or it is known to be quiet); it is
never heard again. Of the rest, a `ReplayWindow` says how much a new stream hears:
with an utterance open, all of it (up to a bound); outside one, a little, in case the
old stream left speech unreported.
"""

from __future__ import annotations

from dataclasses import dataclass

from media_server.audio import ms_to_samples

BYTES_PER_SAMPLE = 2


@dataclass(frozen=True)
class ReplayWindow:
    quiet_ms: int  # no utterance open: speech the old stream may not have reported yet
    speaking_ms: int  # an utterance open: all of it, but never more than this


class UncoveredAudio:
    def __init__(self, window: ReplayWindow) -> None:
        self.window = window
        self._pcm = bytearray()
        self.start = 0  # stream sample of the first byte kept
        self.covered = 0  # audio before this sample is final or known quiet

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

    def cover(self, sample: int) -> None:
        """Audio before `sample` is final (or quiet): it is never heard again."""
        self.covered = max(self.covered, sample)
        self._drop_before(self.covered)

    def keep_window(self, *, utterance_open: bool) -> None:
        """Forget what is older than the window lets a new stream hear again."""
        keep = self.window.speaking_ms if utterance_open else self.window.quiet_ms
        self.cover(self.end - ms_to_samples(keep))

    def replay_from(self, wanted: int) -> int:
        """Where a new stream starts hearing: `wanted`, but not before what is covered,
        nor more than the window allows; older audio is forgotten."""
        origin = max(self.covered, wanted, self.start,
                     self.end - ms_to_samples(self.window.speaking_ms))
        self._drop_before(origin)
        return origin

    def _drop_before(self, sample: int) -> None:
        cut = min(max(0, sample - self.start), len(self._pcm) // BYTES_PER_SAMPLE)
        del self._pcm[: cut * BYTES_PER_SAMPLE]
        self.start += cut
