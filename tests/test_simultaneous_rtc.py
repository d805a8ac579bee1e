"""Simultaneous interpretation through real aiortc peers: a listener hears a long
sentence's first clause translated before the speaker has finished it, every final's
translation is spoken (nothing dropped), a listener switches mode mid-session, and the
echo guard still knows our own chunks coming back through a loudspeaker."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

import aiohttp
import numpy as np
import pytest

from media_server.engines.loader import Engines
from media_server.settings import Settings
from tests.conftest import Server, normalise, piper48, start_server, wer
from tests.rtc_client import RATE, CaptionClient

# The first clause group of `LONG_TEXT`, said alone for the echo test.
ECHO_TEXT = ("Our team has spent the last six months building a system that listens to people "
             "speaking in one language.")


def coverage(said: str, reference: str) -> float:
    """The share of the reference's letters found, in order, in what was said (letters,
    not words: recognition's final may say "translate" where an interim said
    "translates")."""
    reference, said = normalise(reference), normalise(said)
    matcher = SequenceMatcher(None, reference, said, autojunk=False)
    return sum(b.size for b in matcher.get_matching_blocks()) / max(1, len(reference))


def clips(client: CaptionClient) -> dict[str, list[dict[str, Any]]]:
    """Each utterance's clips as announced (first announcement of each chunk), in the
    order they started."""
    seen: dict[str, list[dict[str, Any]]] = {}
    for message in client.of_type("speech"):
        chunks = seen.setdefault(message["utterance_id"], [])
        if all(c["chunk"] != message["chunk"] for c in chunks):
            chunks.append(message)
    return seen


def repeated_runs(words: list[str], length: int = 3) -> set[tuple[str, ...]]:
    """The runs of `length` words found more than once in `words`."""
    runs = Counter(tuple(words[i:i + length]) for i in range(len(words) - length + 1))
    return {run for run, count in runs.items() if count > 1}


def spoken_text(client: CaptionClient, utterance_id: str, field: str = "text") -> str:
    """What was said of an utterance (`text`), or the words of the original that it
    translates (`source`): its clips', in chunk order."""
    texts: dict[int, str] = {}
    for message in client.of_type("speech"):
        if message["utterance_id"] == utterance_id:
            texts[message["chunk"]] = message[field]
    return " ".join(texts[chunk] for chunk in sorted(texts))


async def until_spoken(speaker: CaptionClient, listener: CaptionClient,
                       within: float = 60) -> None:
    """Until the speaker's audio is over, their recognition idle, and every final the
    listener read has been spoken to them (the translation of 90 % of its words: a
    chunk may word it otherwise than the final's translation) and played out."""
    assert speaker.track is not None
    deadline = time.monotonic() + within

    def done() -> bool:
        playout = [m["state"] for m in listener.of_type("playout_state")]
        finals = [f for f in listener.finals() if f.get("translation")]
        return (speaker.said_all() and playout[-1:] == ["idle"]
                and bool(finals)
                and all(coverage(spoken_text(listener, f["utterance_id"], "source"),
                                 f["text"]) >= 0.9 for f in finals))

    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("not every final was spoken: " + repr(
                [(f["text"], spoken_text(listener, f["utterance_id"], "source"),
                  spoken_text(listener, f["utterance_id"]))
                 for f in listener.finals() if f.get("translation")]))
        await asyncio.sleep(0.2)


@dataclass
class Meeting:
    speaker: CaptionClient
    listener: CaptionClient
    speech_ends_at: float  # monotonic: the speaker's last sample went out


@pytest.fixture(scope="module")
async def long_sentence(settings: Settings, engines: Engines,
                        long48: np.ndarray) -> AsyncIterator[Meeting]:
    """Ana says the 20 s sentence; Bia listens in Portuguese, simultaneously."""
    server, runner = await start_server(settings, engines)
    async with aiohttp.ClientSession() as http:
        listener = CaptionClient(server.url, http)
        await listener.start(None, room="simul", name="Bia", speak=False, target_lang="pt",
                             interpretation="simultaneous")
        speaker = CaptionClient(server.url, http)
        await speaker.start(long48, room="simul", name="Ana", target_lang="en")
        await until_spoken(speaker, listener)
        assert speaker.track is not None and speaker.track.audio_t0 is not None
        yield Meeting(speaker, listener, speaker.track.audio_t0 + len(long48) / RATE)
        await listener.close()
        await speaker.close()
    await runner.cleanup()


async def test_the_first_clause_is_heard_translated_before_the_speaker_finishes(
        long_sentence: Meeting) -> None:
    listener = long_sentence.listener
    first_clip = listener.of_type("speech")[0]
    assert first_clip["chunk"] == 1 and first_clip["lang"] == "pt"
    heard = [t for t, rms in listener.return_audio if rms > 0.01]
    assert heard and heard[0] < long_sentence.speech_ends_at, \
        f"first translated audio {heard[0] - long_sentence.speech_ends_at:.1f} s after the end"
    # ...and before its own sentence's final: it was a chunk, not the final whole.
    final_at = next(r.at for r in listener.received if r.message["type"] == "caption"
                    and r.message["status"] == "final"
                    and r.message["utterance_id"] == first_clip["utterance_id"])
    started_at = next(r.at for r in listener.received if r.message["type"] == "speech")
    assert started_at < final_at


async def test_every_final_of_a_20_s_sentence_is_spoken_in_order_and_whole(
        long_sentence: Meeting) -> None:
    listener, speaker = long_sentence.listener, long_sentence.speaker
    finals = [f for f in listener.finals() if f.get("translation")]
    assert wer(normalise(" ".join(f["text"] for f in speaker.finals())),
               normalise(" ".join(f["text"] for f in finals))) == 0  # read as said
    spoken = clips(listener)
    assert max(len(c) for c in spoken.values()) >= 2, spoken  # chunks, not whole finals
    for final in finals:  # (every final's words translated: `until_spoken` waited for it)
        chunks = spoken[final["utterance_id"]]
        assert [c["chunk"] for c in chunks] == list(range(1, len(chunks) + 1))
        # Nothing said twice. (Not "no more words than the final's translation": the
        # chunks translate the sentence as far as it went and may word it longer.)
        said = normalise(spoken_text(listener, final["utterance_id"])).split()
        translation = normalise(final["translation"]["text"]).split()
        assert repeated_runs(said) <= repeated_runs(translation), \
            (final["text"], final["translation"]["text"], said)
    messages = [m for m in listener.of_type("speech") if m["complete"]]
    assert all(m["cut_ms"] == 0 for m in messages)
    # Never two clips at once (on the track's clock), each audible.
    for earlier, later in itertools.pairwise(messages):
        assert earlier["start_ms"] + earlier["duration_ms"] <= later["start_ms"] + 40
    started: dict[tuple[str, int], float] = {}  # when each clip's first word came
    for r in listener.received:
        if r.message["type"] == "speech":
            started.setdefault((r.message["utterance_id"], r.message["chunk"]), r.at)
    for message in messages:
        at = started[(message["utterance_id"], message["chunk"])]
        if message["duration_ms"] > 600:
            assert listener.loud_share(at + 0.2, at + message["duration_ms"] / 1000 - 0.2) > 0.5


async def test_switching_to_simultaneous_mid_session(server: Server, http: aiohttp.ClientSession,
                                                     long48: np.ndarray) -> None:
    """Alone (hearing oneself), consecutive at first, simultaneous after the first
    final: the sentence in progress keeps its mode, later ones are chunked."""
    me = CaptionClient(server.url, http)
    await me.start(long48, room="switch", target_lang="pt", interpretation="consecutive")
    first = await me.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                              and bool(m["text"]), within=30)
    me.send({"type": "set_interpretation", "mode": "simultaneous"})
    await until_spoken(me, me)
    async with http.get(f"{server.url}/api/sessions/{me.session_id}") as resp:
        assert (await resp.json())["interpretation"] == "simultaneous"
    spoken = clips(me)
    [whole] = spoken[first["utterance_id"]]  # consecutive: the final, whole, once
    assert whole["text"] == first["translation"]["text"]
    later = [u for u in spoken if u != first["utterance_id"]]
    assert any(len(spoken[u]) >= 2 for u in later), spoken
    await me.close()


async def test_an_unknown_interpretation_mode_is_refused_clearly(
        server: Server, http: aiohttp.ClientSession, client: CaptionClient) -> None:
    async with http.post(f"{server.url}/api/sessions",
                         json={"room": "modes", "interpretation": "loud"}) as resp:
        assert resp.status == 400
        body = await resp.json()
        assert body["error"]["code"] == "bad_interpretation", body
        assert "simultaneous" in body["error"]["message"]
    await client.start(None, room="modes", speak=False, target_lang="pt")
    client.send({"type": "set_interpretation", "mode": 3})
    client.send({"type": "set_interpretation", "mode": "whispered"})
    await client.wait_for(lambda m: m["type"] == "error" and "whispered" in m["message"])
    codes = [m["code"] for m in client.of_type("error")]
    assert codes == ["bad_message", "bad_interpretation"]


async def test_our_own_chunks_coming_back_are_not_interpreted_again(
        client: CaptionClient, engines: Engines) -> None:
    # A loudspeaker plays the return track straight into the mic (no echo
    # cancellation): the chunks of the translation, and the rest after the speaker
    # stopped, come back while and after they speak.
    said = await piper48(engines, ECHO_TEXT)
    client.echo = True
    await client.start(np.concatenate([said, np.zeros(10 * RATE, dtype=np.int16)]),
                       target_lang="pt", interpretation="simultaneous")
    await until_spoken(client, client)  # (the silence after it included)
    assert max(rms for _, rms in client.return_audio) > 0.05  # the chunks did play
    finals = client.finals()
    got = [(m.get("type"), m.get("status"), m.get("text")) for m in
           (r.message for r in client.received) if m["type"] in ("caption", "speech")]
    # Nothing was captioned from our chunks coming back alone, after the speaker stopped
    # (offsets: 0 is the first audio, 0.3 s of silence before the words)...
    spoke_until_ms = 300 + len(said) * 1000 // RATE
    assert all(f["start_ms"] < spoke_until_ms for f in finals), got
    # ...and the speaker's words were (our playback over them may blur a few: the
    # guard drops what comes back alone, not a mixture; that is echo cancellation's).
    assert coverage(" ".join(f["text"] for f in finals), ECHO_TEXT) >= 0.8, got
    assert len(clips(client)) >= 1
    assert set(clips(client)) <= {f["utterance_id"] for f in finals}, got
