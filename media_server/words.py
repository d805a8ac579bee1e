"""Words as the pipeline compares them: case and punctuation aside, apostrophes kept
("it's" is not "its"; "d'água" stays one word)."""

from __future__ import annotations

import re

_NOT_WORD = re.compile(r"[^\w']+")


def word_key(word: str) -> str:
    return _NOT_WORD.sub("", word.lower())


def words(text: str) -> list[str]:
    return [key for key in map(word_key, text.split()) if key]
