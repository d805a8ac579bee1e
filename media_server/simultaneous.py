"""The spoken side of one speaker's interpretation: what listeners hear, and when.

Consecutive: each final's translation is spoken once the sentence is over.
Simultaneous, as a conference interpreter works: the stable prefix of the utterance
(the words recognition has confirmed, `stable_chars`) is cut into chunks at clause
boundaries (punctuation, or a bound on words), and each chunk is spoken while the
speaker goes on. A chunk is translated with the sentence so far as its context: the
whole stable prefix is translated and only what is new against what was already
spoken is said. (A clause translated alone loses what it depends on: "ask not" on its
own comes out as "is not"; and comparing with what was said never says a word twice.)
The final closes the utterance: only the part of its translation that no chunk
covered is spoken. Whoever listens consecutively hears the final whole, as before;
when no chunk was spoken yet, one clip serves both.

Each listener's mode is fixed per utterance when its speech starts being spoken
(`Participant.mode_for`), so a switch mid-sentence neither repeats nor skips it.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from media_server.engines.translate.base import Translator
from media_server.metrics import SPEECH_CHUNKS
from media_server.protocol import CaptionMessage, Interpretation
from media_server.speech_output import BOTH_MODES, SpokenPart
from media_server.tasks import cancel_and_wait
from media_server.words import word_key

log = logging.getLogger(__name__)

# A word ending like this closes a clause: a chunk may end after it.
_CLAUSE_END = re.compile(r"[,;:.!?…]['\")\]]*$")
_SENTENCE_END = re.compile(r"[.!?…]['\")\]]*$")
MIN_CHUNK_WORDS = 3  # a shorter clause ("So,") waits to be spoken with what follows
# A clause this long without punctuation is cut anyway; the first chunk of an utterance
# sooner, as an interpreter starts after a few words rather than a whole clause.
FIRST_CHUNK_WORDS = 4
MAX_CHUNK_WORDS = 8


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Where a chunk is cut on a bound, not after a function word: "we saw that | the sales"
# translates, "we saw that the | sales" does not. For the languages the offline
# engines speak; others are cut on the bound itself.
_FUNCTION_WORDS = {
    "en": _word_set(
        "a an the of to in on at for with by from into about as than and or but nor so "
        "if that which who whom whose what when where while because is are was were be "
        "been being am has have had will would shall should can could may might must do "
        "does did not no my your our their his her its this these those i you he she we "
        "they it very more most some any all each every"),
    "es": _word_set(
        "el la los las un una unos unas lo de del al a en con por para sin sobre entre y "
        "e o u ni pero que como cuando donde si porque es son fue era ser está están ha "
        "han había se le les me te nos no mi tu su sus nuestro nuestra este esta estos "
        "estas muy más"),
    "pt": _word_set(
        "o a os as um uma uns umas de do da dos das no na nos nas em com por pelo pela "
        "para sem sobre entre e ou nem mas que como quando onde se porque é são foi era "
        "ser está estão tem têm há lhe me te não meu minha seu sua seus suas nosso nossa "
        "este esta estes estas muito mais"),
}
_SIMULTANEOUS: frozenset[Interpretation] = frozenset({"simultaneous"})
_CONSECUTIVE: frozenset[Interpretation] = frozenset({"consecutive"})


def next_cut(stable: list[str], cut: int, lang: str = "") -> int | None:
    """Where the next chunk of the stable words ends (a word count), given that the
    first `cut` words were cut already; None: wait for more words."""
    for end in range(len(stable), cut + MIN_CHUNK_WORDS - 1, -1):
        if _CLAUSE_END.search(stable[end - 1]):
            return end
    if len(stable) - cut < (FIRST_CHUNK_WORDS if cut == 0 else MAX_CHUNK_WORDS):
        return None
    weak = _FUNCTION_WORDS.get(lang.split("-")[0], frozenset())
    for end in range(len(stable), cut + MIN_CHUNK_WORDS - 1, -1):
        if word_key(stable[end - 1]) not in weak:
            return end
    # Only function words to end on ("our team has"): wait for the word they lead to.
    return len(stable) if len(stable) - cut >= 2 * MAX_CHUNK_WORDS else None


def ending_like(words: list[str], source_word: str) -> list[str]:
    """A chunk's words ending as a clause inside a sentence: a translator ends every
    prefix as a sentence ("... than the old one," -> "... que a antiga."), and so does
    Whisper's interim ("the last six months." while the speaker goes on); a full stop
    in the middle of an utterance makes the voice pause and drop its pitch. A question
    or an exclamation keeps its mark."""
    if not words or re.search(r"[?!]\W*$", source_word) or not _SENTENCE_END.search(words[-1]):
        return words
    bare = words[-1].rstrip(".!?…")
    ending = "," if _CLAUSE_END.search(source_word) else ""
    return [*words[:-1], bare + ending] if bare else words[:-1]


def unspoken(translation: str, spoken: list[str]) -> list[str]:
    """The words of `translation` that what was already `spoken` of it does not cover.

    What was spoken is aligned with the new translation word by word; the new part
    starts where the spoken words end in it (spoken words that found no partner at the
    end count one for one). A reworded earlier part is not said again."""
    words = translation.split()
    if not spoken:
        return words
    matcher = SequenceMatcher(None, [word_key(w) for w in spoken], [word_key(w) for w in words],
                              autojunk=False)
    blocks = [block for block in matcher.get_matching_blocks() if block.size]
    if not blocks:
        return words[len(spoken):]
    last = blocks[-1]
    trailing = len(spoken) - (last.a + last.size)  # said after the last agreement
    return words[last.b + last.size + trailing:]


@dataclass
class _Progress:
    """An utterance in one language, spoken so far in chunks."""

    cut: int = 0  # stable source words handed to chunks
    spoken: list[str] = field(default_factory=list)  # the translated words said
    covered: list[str] = field(default_factory=list)  # the source words they translate


@dataclass(frozen=True)
class _Final:
    caption: CaptionMessage
    translations: dict[str, str]
    ends_at: float


class SpokenTranslation:
    """Chunks of a speaker's utterances as they become stable, and each final's rest.

    One task does the work in the order it came, so a final is spoken after every
    chunk of its utterance; of the interims waiting, only the latest matters (the
    stable prefix only grows)."""

    def __init__(self, speaker_id: str, *, translator_for: Callable[[str, str], Translator | None],
                 heard_in: Callable[[Interpretation, str, str], set[str]],
                 speak: Callable[[SpokenPart], None],
                 wall_time: Callable[[int], float]) -> None:
        self._speaker_id = speaker_id
        self._translator_for = translator_for
        self._heard_in = heard_in  # (mode, speaker, utterance) -> languages heard in that mode
        self._speak = speak
        self._wall_time = wall_time
        self._utterance = ""  # the utterance being chunked
        self._progress: dict[str, _Progress] = {}  # its languages
        self._latest: CaptionMessage | None = None
        self._last_ends_at = 0.0  # of the last part spoken
        self._finals: deque[_Final] = deque()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="spoken-translation")

    def interim(self, caption: CaptionMessage) -> None:
        if caption.stable_chars:
            self._latest = caption
            self._wake.set()

    def final(self, caption: CaptionMessage, translations: dict[str, str],
              ends_at: float) -> None:
        if self._latest is not None and self._latest.utterance_id == caption.utterance_id:
            self._latest = None  # the final covers it
        self._finals.append(_Final(caption, translations, ends_at))
        self._wake.set()

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._finals or self._latest is not None:
                try:
                    if self._finals:
                        await self._close(self._finals.popleft())
                    elif self._latest is not None:
                        interim, self._latest = self._latest, None
                        await self._chunk(interim)
                except Exception:  # one part lost, not the speaker's spoken translation
                    log.exception("spoken translation failed",
                                  extra={"speaker_id": self._speaker_id})

    async def _chunk(self, interim: CaptionMessage) -> None:
        if interim.utterance_id != self._utterance:
            self._utterance, self._progress = interim.utterance_id, {}
        stable = interim.text[: interim.stable_chars].split()
        langs = self._heard_in("simultaneous", self._speaker_id, interim.utterance_id)
        await asyncio.gather(*(self._chunk_one(interim, stable, lang)
                               for lang in sorted(langs - {interim.lang})))

    async def _chunk_one(self, interim: CaptionMessage, stable: list[str], lang: str) -> None:
        progress = self._progress.setdefault(lang, _Progress())
        cut = next_cut(stable, progress.cut, interim.lang)
        translator = self._translator_for(interim.lang, lang)
        if cut is None or translator is None:
            return
        try:  # (the chain owns the deadline)
            [prefix] = await translator.translate([" ".join(stable[:cut])], interim.lang, lang)
        except Exception as exc:  # the final will speak what this chunk would have
            log.warning("chunk translation failed", extra={
                "error": repr(exc), "target": lang, "utterance_id": interim.utterance_id})
            return
        new = ending_like(unspoken(prefix, progress.spoken), stable[cut - 1])
        source = stable[progress.cut:cut]
        progress.cut = cut
        if new:
            progress.spoken += new
            progress.covered += source
            SPEECH_CHUNKS.labels("chunk").inc()
            self._say(interim, lang, text=" ".join(new), source=" ".join(source),
                      modes=_SIMULTANEOUS, ends_at=self._wall_time(interim.end_ms))

    async def _close(self, final: _Final) -> None:
        caption = final.caption
        chunked = self._progress if caption.utterance_id == self._utterance else {}
        self._utterance, self._progress = "", {}
        for lang, text in final.translations.items():
            progress = chunked.get(lang)
            if progress is None or not progress.spoken:
                self._say(caption, lang, text=text, source=caption.text, modes=BOTH_MODES,
                          ends_at=final.ends_at)
                continue
            self._say(caption, lang, text=text, source=caption.text, modes=_CONSECUTIVE,
                      ends_at=final.ends_at)
            rest = unspoken(text, progress.spoken)
            uncovered = unspoken(caption.text, progress.covered)
            if not rest and uncovered:
                # The final's translation put its new words among those already said
                # (the word order moved): the words not yet covered go alone.
                rest = await self._translate_alone(" ".join(uncovered), caption.lang, lang)
            if rest:
                SPEECH_CHUNKS.labels("rest").inc()
                self._say(caption, lang, text=" ".join(rest), source=" ".join(uncovered),
                          modes=_SIMULTANEOUS, ends_at=final.ends_at)

    async def _translate_alone(self, words: str, source: str, target: str) -> list[str]:
        translator = self._translator_for(source, target)
        if translator is None:
            return []
        try:  # (the chain owns the deadline)
            [translated] = await translator.translate([words], source, target)
        except Exception as exc:  # the caption has it; this part goes unspoken
            log.warning("rest translation failed", extra={"error": repr(exc), "target": target})
            return []
        return translated.split()

    def _say(self, caption: CaptionMessage, lang: str, *, text: str, source: str,
             modes: frozenset[Interpretation], ends_at: float) -> None:
        # Listeners hear clips in the order their speech ended; an interim's audio runs
        # past the speech its final ends with, so a chunk could seem to end after the
        # rest of its sentence. A speaker's parts keep the order they were made in.
        ends_at = self._last_ends_at = max(ends_at, self._last_ends_at)
        self._speak(SpokenPart(caption.utterance_id, caption.speaker_id, lang=lang, text=text,
                               source_text=source, ends_at=ends_at, modes=modes))
