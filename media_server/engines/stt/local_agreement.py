"""LocalAgreement-2: show a word as stable once two consecutive passes agree on it.

Each interim pass re-decodes the whole growing utterance, and Whisper may change
its mind about the last words. The longest common prefix of two consecutive
hypotheses is confirmed and never taken back (for interims; the final decides),
so the stable part of an interim never flickers.

A word is confirmed as spelled in a hypothesis that goes on past it: Whisper ends
every clip as a sentence ("...listens to people."), and two passes over the same
speech (the speaker pausing for breath) agree on that full stop too; confirmed, it
would stay in the interim mid-sentence, cut a simultaneous chunk there and make
its translation a sentence ("... as pessoas. Falando ...").
"""

from __future__ import annotations

from media_server.words import word_key


class LocalAgreement:
    def __init__(self) -> None:
        self._confirmed: list[str] = []
        self._previous: list[str] = []

    def update(self, hypothesis: str) -> tuple[str, int]:
        """Take a new hypothesis; return (text to show, number of stable leading characters)."""
        words = hypothesis.split()
        agreed = 0
        for a, b in zip(self._previous, words, strict=False):
            if word_key(a) != word_key(b):
                break
            agreed += 1
        agreed = min(agreed, len(words) - 1)  # this hypothesis' last word: see above
        if agreed > len(self._confirmed):
            # Append only: a word once confirmed keeps its shown spelling.
            self._confirmed += words[len(self._confirmed):agreed]
        self._previous = words
        stable = " ".join(self._confirmed)
        tail = words[len(self._confirmed):]
        text = " ".join([*self._confirmed, *tail])
        return text, len(stable)
