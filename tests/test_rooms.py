"""Rooms with real aiortc peers: everyone reads and hears everyone else, each in their
own language; translation and synthesis happen once per language; joining late,
leaving mid-sentence and a full room behave."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import numpy as np
import srt
import webvtt

from media_server.engines.loader import Engines
from media_server.metrics import REGISTRY
from media_server.settings import Settings
from tests.conftest import JFK_TEXT, MORNING_TEXT, Server, start_server, wer
from tests.rtc_client import CaptionClient

ROOM = "meeting"


async def _join(server: Server, http: aiohttp.ClientSession, *, name: str, target: str,
                audio: np.ndarray | None = None, lead_s: float = 0.3, **body: Any
                ) -> CaptionClient:
    client = CaptionClient(server.url, http)
    # Consecutive: a clip per final, which these tests count (simultaneous interpretation
    # in a room: tests/test_simultaneous_rtc.py).
    await client.start(audio, lead_s, room=ROOM, name=name, target_lang=target,
                       speak=audio is not None, interpretation="consecutive", **body)
    return client


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _by(client: CaptionClient, speaker: str) -> list[dict[str, Any]]:
    return [f for f in client.finals() if f["speaker"] == speaker]


def _said(client: CaptionClient, speaker: str) -> str:
    return " ".join(f["text"] for f in _by(client, speaker))


async def _until(condition: Callable[[], bool], within: float, *, what: str,
                 client: CaptionClient) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, \
            f"not within {within} s: {what}; got {[r.message for r in client.received]}"
        await asyncio.sleep(0.2)


async def _clips_played_out(client: CaptionClient, quiet_s: float = 2.0) -> None:
    """Wait until the last announced clip has played and no new one came for `quiet_s`."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        clips = [(r.at, r.message["duration_ms"] / 1000) for r in client.received
                 if r.message["type"] == "speech"]
        last_end = max((at + duration for at, duration in clips), default=0.0)
        last_start = max((at for at, _ in clips), default=0.0)
        now = time.monotonic()
        if now > last_end + 0.5 and now > last_start + quiet_s:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("clips kept coming for a minute")


async def _participant_id(client: CaptionClient) -> str:
    present = await client.wait_for(lambda m: m["type"] == "participant"
                                    and m["event"] == "present", within=5)
    session = await client.http.get(f"{client.base_url}/api/sessions/{client.session_id}")
    own: str = (await session.json())["participant_id"]
    assert present["participant"]["id"]  # the roster came with the join
    return own


async def test_three_people_each_in_their_own_language(
        server: Server, http: aiohttp.ClientSession, jfk48: np.ndarray,
        morning48: np.ndarray) -> None:
    translations = _metric("live_interpreter_caption_translations_total", status="final")
    syntheses = _metric("live_interpreter_speech_syntheses_total")
    lia = await _join(server, http, name="Lia", target="pt")  # listens only, in Portuguese
    ana = await _join(server, http, name="Ana", target="pt", audio=jfk48, monitor=False)
    bruno = await _join(server, http, name="Bruno", target="es", audio=morning48, lead_s=4.0,
                        monitor=True)
    ids = {name: await _participant_id(c) for name, c in
           (("Lia", lia), ("Ana", ana), ("Bruno", bruno))}

    await _until(lambda: wer(JFK_TEXT, _said(lia, "Ana")) <= 0.15
                 and wer(MORNING_TEXT, _said(lia, "Bruno")) <= 0.2, 30,
                 what="both speakers captioned for the listener", client=lia)
    await _clips_played_out(lia)

    # Everyone reads everyone, in their own language, with the speaker's name and id;
    # the original is always there.
    for reader, lang in ((lia, "pt"), (ana, "pt"), (bruno, "es")):
        for speaker in ("Ana", "Bruno"):
            finals = _by(reader, speaker)
            assert finals, f"{speaker} not captioned for a {lang} reader"
            for final in finals:
                assert final["speaker_id"] == ids[speaker] and final["lang"] == "en"
                assert final["translation"]["lang"] == lang and final["translation"]["text"]
    assert wer(JFK_TEXT, _said(bruno, "Ana")) <= 0.15  # the speaker's own words confirmed
    assert [f["text"] for f in _by(ana, "Ana")] == [f["text"] for f in _by(lia, "Ana")]

    # Translation once per final and language (pt and es), however many read it;
    # synthesis once per final and language someone hears.
    ana_finals, bruno_finals = len(_by(lia, "Ana")), len(_by(lia, "Bruno"))
    assert _metric("live_interpreter_caption_translations_total", status="final") \
        - translations == 2 * (ana_finals + bruno_finals)
    # Ana's words: pt (Lia) and es (Bruno); Bruno's: pt (Ana, Lia) and es (himself: monitor).
    assert _metric("live_interpreter_speech_syntheses_total") - syntheses \
        == 2 * ana_finals + 2 * bruno_finals

    # Nobody hears their own words unless they asked to.
    def speakers_heard(client: CaptionClient) -> set[str]:
        return {s["speaker_id"] for s in client.of_type("speech")}

    assert speakers_heard(ana) == {ids["Bruno"]}
    assert speakers_heard(bruno) == {ids["Ana"], ids["Bruno"]}  # monitor on
    assert speakers_heard(lia) == {ids["Ana"], ids["Bruno"]}
    # A listener's clips from several speakers play one after another, never mixed.
    clips = lia.of_type("speech")
    for first, second in itertools.pairwise(clips):
        assert first["start_ms"] + first["duration_ms"] <= second["start_ms"] + 40
    # Each clip is heard: loud for most of its length (espeak-ng's pauses and the
    # receiver's jitter buffer aside), in the window the speech message announced.
    heard = [(r.at, r.message["duration_ms"] / 1000) for r in lia.received
             if r.message["type"] == "speech"]
    loud = [sum(rms > 0.01 for t, rms in lia.return_audio if at - 0.1 <= t < at + duration + 0.2)
            * 0.02 / duration for at, duration in heard]  # loud time / clip length
    texts = {f["utterance_id"]: f["translation"]["text"] for f in lia.finals()}
    assert all(share > 0.4 for share in loud), [
        (round(share, 2), m["duration_ms"], texts.get(m["utterance_id"]))
        for share, m in zip(loud, lia.of_type("speech"), strict=True)]

    await _check_transcript(server, http, lia)

    # Joining was announced, and each got the roster on arrival.
    joined = [m["participant"]["name"] for m in lia.of_type("participant")
              if m["event"] == "joined"]
    assert joined == ["Ana", "Bruno"]
    present = [m["participant"]["name"] for m in bruno.of_type("participant")
               if m["event"] == "present"]
    assert sorted(present) == ["Ana", "Bruno", "Lia"]
    for client in (lia, ana, bruno):
        await client.close()


async def _check_transcript(server: Server, http: aiohttp.ClientSession,
                            reader: CaptionClient) -> None:
    """The room's transcript, from the store, in every format: what the reader read."""
    finals = reader.finals()
    url = f"{server.url}/api/rooms/{ROOM}/transcript"
    async with http.get(url, params={"lang": "pt"}) as resp:
        assert resp.status == 200
        utterances = (await resp.json())["utterances"]
    assert [(u["speaker"], u["original"], u["text"], u["start_ms"]) for u in utterances] == \
        sorted([(f["speaker"], f["text"], f["translation"]["text"], f["start_ms"])
                for f in finals], key=lambda row: row[3])
    async with http.get(url, params={"format": "vtt", "lang": "pt"}) as resp:
        assert resp.status == 200 and resp.content_type == "text/vtt"
        cues = webvtt.from_string(await resp.text()).captions
    assert [(c.voice, c.text) for c in cues] == [(u["speaker"], u["text"]) for u in utterances]
    async with http.get(url, params={"format": "srt"}) as resp:  # the original
        assert resp.status == 200
        subtitles = list(srt.parse(await resp.text()))
    assert [s.content for s in subtitles] == [f"{u['speaker']}: {u['original']}"
                                              for u in utterances]
    assert [round(s.start.total_seconds() * 1000) for s in subtitles] == \
        [u["start_ms"] for u in utterances]
    for bad, code in (({"format": "doc"}, 400), ({"lang": "x y"}, 400)):
        async with http.get(url, params=bad) as resp:
            assert resp.status == code
    async with http.get(f"{server.url}/api/rooms/nobody/transcript") as resp:
        assert resp.status == 404


async def test_a_listener_joining_late_gets_later_captions_only(
        server: Server, http: aiohttp.ClientSession, jfk48: np.ndarray) -> None:
    ana = await _join(server, http, name="Ana", target="en", audio=jfk48)
    first = await ana.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                               and bool(m["text"]))
    earlier = {f["utterance_id"] for f in ana.finals()}
    late = await _join(server, http, name="Lia", target="pt")
    await late.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                        and "country" in m["text"].lower(), within=20)
    seen = {c["utterance_id"] for c in late.captions()}
    assert first["utterance_id"] not in seen and not earlier & seen
    assert all(f["translation"]["lang"] == "pt" for f in late.finals())
    for client in (late, ana):
        await client.close()


async def test_a_speaker_leaving_mid_utterance_does_not_disturb_the_others(
        server: Server, http: aiohttp.ClientSession, jfk48: np.ndarray,
        morning48: np.ndarray) -> None:
    lia = await _join(server, http, name="Lia", target="pt")
    ana = await _join(server, http, name="Ana", target="pt", audio=jfk48)
    bruno = await _join(server, http, name="Bruno", target="pt", audio=morning48, lead_s=3.0)
    ana_id = await _participant_id(ana)
    # Ana is cut off in the middle of "ask not what your country can do for you".
    open_interim = await lia.wait_for(lambda m: m["type"] == "caption"
                                      and m["speaker_id"] == ana_id
                                      and m["status"] == "interim" and "ask" in m["text"].lower())
    await ana.close()
    # Her open sentence is closed on everyone's screen, her leaving announced...
    closing = await lia.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                                 and m["utterance_id"] == open_interim["utterance_id"],
                                 within=5)
    assert closing["text"] == ""
    left = await lia.wait_for(lambda m: m["type"] == "participant" and m["event"] == "left")
    assert left["participant"]["id"] == ana_id
    # ...and Bruno's speech goes on being captioned, translated and spoken.
    await _until(lambda: wer(MORNING_TEXT, _said(lia, "Bruno")) <= 0.2, 20,
                 what="Bruno captioned after Ana left", client=lia)
    assert all(f["translation"]["lang"] == "pt" for f in _by(lia, "Bruno"))
    await lia.wait_for(lambda m: m["type"] == "speech", within=10)
    assert wer(MORNING_TEXT, _said(bruno, "Bruno")) <= 0.2
    for client in (lia, bruno):
        await client.close()


async def test_participants_are_announced_and_a_room_is_bounded(
        settings: Settings, engines: Engines, http: aiohttp.ClientSession) -> None:
    server, runner = await start_server(settings.replace(max_room_participants=2), engines)
    try:
        first = await _join(server, http, name="Ana", target="en")
        second = await _join(server, http, name="Bruno", target="en")
        joined = await first.wait_for(lambda m: m["type"] == "participant"
                                      and m["event"] == "joined")
        assert joined["participant"] == {"id": joined["participant"]["id"], "name": "Bruno",
                                         "source_lang": "en", "target_lang": "en",
                                         "speak": False}
        second.send({"type": "set_language", "target": "es"})
        changed = await first.wait_for(lambda m: m["type"] == "participant"
                                       and m["event"] == "changed")
        assert changed["participant"]["target_lang"] == "es"
        async with http.get(f"{server.url}/api/rooms/{ROOM}") as resp:
            listing = await resp.json()
        assert sorted(p["name"] for p in listing["participants"]) == ["Ana", "Bruno"]

        third = await CaptionClient(server.url, http).create(room=ROOM, speak=False)
        assert third.status == 409
        assert (await third.json())["error"]["code"] == "room_full"
        other = await CaptionClient(server.url, http).create(room="elsewhere", speak=False)
        assert other.status == 201

        await second.close()
        left = await first.wait_for(lambda m: m["type"] == "participant"
                                    and m["event"] == "left")
        assert left["participant"]["name"] == "Bruno"
        await first.close()
        async with http.get(f"{server.url}/api/rooms/{ROOM}") as resp:
            assert resp.status == 404  # nobody left: the room is gone
        async with http.get(f"{server.url}/api/rooms/..%2f") as resp:
            assert resp.status == 404
    finally:
        await runner.cleanup()
