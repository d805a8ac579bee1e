"""One speaker's chain, stage by stage, with the collecting harness in place of the
stages around it."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np

from media_server.captions import CaptionBuilder
from media_server.echo_guard import EchoGuard
from media_server.engines.loader import Engines
from media_server.interpretation import Interpreter
from media_server.pipeline import SpeakerPipeline
from media_server.protocol import ErrorMessage
from media_server.speech_output import BOTH_MODES
from media_server.tasks import cancel_and_wait
from media_server.voice_meter import VoiceMeter
from tests.collecting import Collector
from tests.conftest import JFK_TEXT, wer


def _frames(pcm48: np.ndarray) -> list[av.AudioFrame]:
    frames = []
    for i in range(0, len(pcm48) - 960 + 1, 960):
        stereo = np.repeat(pcm48[i:i + 960], 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = 48000, i, fractions.Fraction(1, 48000)
        frames.append(frame)
    return frames


def _pipeline(engines: Engines, collector: Collector,
              sink: Interpreter | Collector | None = None) -> SpeakerPipeline:
    return SpeakerPipeline(engines.catalog.stt.open_stream("en"),
                           CaptionBuilder("p1", "Ana", lang="en"), sink=sink or collector,
                           speaker=collector, echo_guard=EchoGuard(lambda: True),
                           clock_ms=lambda: 0, voice=VoiceMeter().voice("p1"))


async def test_audio_faster_than_recognition_warns_and_loses_no_final(
        engines: Engines, jfk48: np.ndarray) -> None:
    collector = Collector()
    pipeline = _pipeline(engines, collector)
    # Eleven seconds of speech arrive at once (a burst after a network stall):
    # recognition falls seconds behind the audio.
    for frame in _frames(np.concatenate([jfk48, np.zeros(48000, dtype=np.int16)])):
        pipeline.push_frame(frame)
    pipeline.end()
    await pipeline.run()
    errors = [m for m in collector.to_speaker if isinstance(m, ErrorMessage)]
    assert [e.code for e in errors] == ["stt_behind"]  # once, not once per caption
    finals = [c for c in collector.captions if c.status == "final"]
    assert wer(JFK_TEXT, " ".join(f.text for f in finals)) <= 0.10
    assert collector.states.count("listening") == len(finals)
    assert collector.states[-1] == "idle"
    await pipeline.aclose()


async def test_the_interpreter_numbers_every_caption_it_sends_and_closes_what_is_open(
        engines: Engines, jfk48: np.ndarray) -> None:
    """Interims, their translations and finals of an utterance leave with revisions
    1, 2, 3... in the order they leave, whoever reads them; a final goes out
    translated and is kept and spoken once per language; a speaker who leaves
    mid-sentence has the open caption closed with an empty final."""
    collector = Collector(readers={"en", "pt"}, hearing={"consecutive": {"pt"}})
    spoken = collector.spoken_translation(engines.catalog.translator_for)
    interpreter = Interpreter(collector, collector.outlets(),
                              translator_for=engines.catalog.translator_for, spoken=spoken,
                              interval_ms=0)
    pipeline = _pipeline(engines, collector, sink=interpreter)
    following = asyncio.create_task(pipeline.run())
    cut = len(jfk48) - 48000 * 2  # the last words are cut off: the utterance stays open
    for frame in _frames(jfk48[:cut]):
        pipeline.push_frame(frame)
    try:
        async with asyncio.timeout(60):
            await collector.wait_for(lambda: _open_and_translated(collector,
                                                                  after_ms=cut // 48 - 2500))
    except TimeoutError:
        raise AssertionError(f"not open and translated: {collector.broadcast}") from None
    await cancel_and_wait(following)
    await pipeline.aclose()
    await interpreter.aclose()
    await spoken.aclose()

    seen: dict[str, set[int]] = {}
    for lang in ("en", "pt"):
        last: dict[str, int] = {}
        for caption in collector.broadcast[lang]:
            assert caption.revision > last.get(caption.utterance_id, 0)  # in order, no repeat
            last[caption.utterance_id] = caption.revision
            seen.setdefault(caption.utterance_id, set()).add(caption.revision)
    for revisions in seen.values():
        assert sorted(revisions) == list(range(1, len(revisions) + 1))  # one counter, no gap
    finals = [c for c in collector.broadcast["pt"] if c.status == "final" and c.text]
    assert finals and all(c.translation is not None and c.translation.lang == "pt"
                          for c in finals)
    assert [k[0].utterance_id for k in collector.kept] == [c.utterance_id for c in finals]
    # Heard consecutively: each final's translation spoken whole, once.
    assert [(p.utterance_id, p.text, p.modes) for p in collector.spoken] == [
        (c.utterance_id, c.translation.text, BOTH_MODES) for c in finals if c.translation]
    closing = collector.broadcast["en"][-1]
    assert (closing.status, closing.text) == ("final", "")
    assert closing.utterance_id not in {c.utterance_id for c in finals}


def _open_and_translated(collector: Collector, after_ms: int) -> bool:
    """The latest caption is an interim reaching `after_ms`, and its utterance has had
    an interim translated."""
    originals = collector.broadcast.get("en", [])
    if not originals or originals[-1].status != "interim" or originals[-1].end_ms < after_ms:
        return False
    return any(c.utterance_id == originals[-1].utterance_id and c.status == "interim"
               and c.translation is not None for c in collector.broadcast.get("pt", []))
