"""Everyone in a call may speak: capacity is voices at once, calibrated at start and
re-estimated from the passes the decoder makes; past it interims thin and pause
(the speaker is told, finals are all decoded, oldest first); a new room is refused
only while the voices heard across the rooms fill the recogniser."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import numpy as np
import pytest

from media_server.engines.loader import Engines
from media_server.engines.stt.base import InterimPace, SpeechEvent, SpeechEventKind
from media_server.engines.stt.calibration import MAX_UTILISATION, capacity
from media_server.engines.stt.capacity import VoiceCapacity
from media_server.engines.stt.decode_scheduler import DecodeScheduler
from media_server.engines.stt.pacing import SpeakingVoices
from media_server.engines.stt.stream_adapter import AdaptedStream, AdapterConfig, StreamAdapter
from media_server.engines.vad.base import VadEvent, VadEventKind
from media_server.metrics import REGISTRY
from media_server.settings import Settings
from media_server.voice_meter import VoiceMeter
from tests.conftest import JFK_SECONDS, JFK_UTTERANCES, Server, decoder, start_server
from tests.rtc_client import RATE, CaptionClient
from tests.test_stream_adapter import CHUNK, CountingRecognizer, ScriptedVad, _at


def _skipped(reason: str) -> float:
    return REGISTRY.get_sample_value("live_interpreter_stt_interims_skipped_total",
                                     {"reason": reason}) or 0.0


def test_voices_follow_what_a_voice_costs_the_decoder() -> None:
    # A machine like this one: a voice's interims alone take a third of the worker.
    slow = capacity(4.5, final_s=0.24, interim_s=0.2, interim_interval_ms=700)
    assert slow.voices == 1 and slow.interim_interval_ms == 700
    # Four times faster: 0.6 / (0.05 / 0.7 + 0.06 / 4) = 6.9 voices, at the configured
    # cadence.
    fast = capacity(4.5, final_s=0.06, interim_s=0.05, interim_interval_ms=700)
    assert fast.voices == 6 and fast.interim_interval_ms == 700
    # Slower than one voice can be served at 700 ms: one voice, sparser interims, within
    # the utilisation budget.
    crawling = capacity(4.5, final_s=0.8, interim_s=0.6, interim_interval_ms=700)
    assert crawling.voices == 1
    load = 0.6 / (crawling.interim_interval_ms / 1000) + 0.8 / 4.0
    assert crawling.interim_interval_ms > 700 and load == pytest.approx(MAX_UTILISATION,
                                                                         abs=0.01)


def test_the_recogniser_is_calibrated_as_it_loads(engines: Engines) -> None:
    calibration = engines.calibration
    assert calibration is not None and calibration.voices >= 1
    assert 3.0 < calibration.phrase_s < 6.0
    assert 0 < calibration.final_pass_s < calibration.phrase_s
    for kind in ("final", "interim"):  # (the latest calibration in this process)
        assert (REGISTRY.get_sample_value("live_interpreter_stt_calibration_seconds",
                                          {"pass": kind}) or 0) > 0
    scheduler = decoder(engines)
    assert scheduler.capacity is not None and scheduler.capacity.voices >= 1
    assert REGISTRY.get_sample_value("live_interpreter_stt_capacity_voices") == \
        scheduler.capacity.voices


def _passes() -> Iterator[tuple[bool, float]]:
    """A minute of speech on a machine doing what it does now: an utterance every 4 s,
    each with three interim passes and a final (single passes, final?, seconds)."""
    for _ in range(15):
        yield from [(False, 0.09), (False, 0.1), (False, 0.11), (True, 0.12)]


def test_two_starts_converge_on_what_the_machine_does_now() -> None:
    # Calibrated beside a busy process (passes three times slower) and on an idle
    # machine: different figures at start...
    busy = VoiceCapacity(capacity(4.5, final_s=0.36, interim_s=0.3, interim_interval_ms=700),
                         700)
    idle = VoiceCapacity(capacity(4.5, final_s=0.12, interim_s=0.1, interim_interval_ms=700),
                         700)
    assert (busy.voices, idle.voices) == (1, 3)
    # ...the same within a minute of speech, once both see the same passes.
    for final, seconds in _passes():
        busy.observe(final=final, elapsed_s=seconds)
        idle.observe(final=final, elapsed_s=seconds)
    expected = capacity(4.5, final_s=0.12, interim_s=0.1, interim_interval_ms=700).voices
    assert busy.voices == idle.voices == expected
    assert busy.interim_pass_s == pytest.approx(idle.interim_pass_s, rel=0.05)


def test_voices_at_once_are_measured_over_time_not_counted_as_connections() -> None:
    now = [0.0]
    meter = VoiceMeter(window_s=180, clock=lambda: now[0])

    def hold(seconds: float, *speaking: str) -> None:
        for name in ("a", "b", "c", "d"):
            meter.speaking(name, name in speaking)
        now[0] += seconds

    # Four people taking turns for three minutes, one turn in ten overlapping 1 s.
    for turn in range(40):
        hold(3.5, "abcd"[turn % 4])
        if turn % 10 == 9:
            hold(1.0, "abcd"[turn % 4], "abcd"[(turn + 1) % 4])
        hold(0.5)
    assert meter.p95() == 1  # four speakers, one voice most of the time
    hold(30, "a", "b", "c")  # then three at once for a while: 30 s of 180 s
    assert meter.p95() == 3
    hold(200)  # silence longer than the window: the room weighs nothing
    assert meter.p95() == 0 and meter.now == 0


def test_the_voice_that_started_last_degrades_first() -> None:
    voices = SpeakingVoices()
    for stream in ("a", "b", "c"):
        voices.started(stream)
    assert [voices.pace(s, voices=1, finals_behind=False) for s in "abc"] == [
        InterimPace.LIVE, InterimPace.THINNED, InterimPace.PAUSED]
    # While finals are behind every voice past capacity pauses for them.
    assert voices.pace("b", voices=1, finals_behind=True) is InterimPace.PAUSED
    voices.ended("a")  # the first voice ends: the others move up
    assert [voices.pace(s, voices=1, finals_behind=False) for s in "bc"] == [
        InterimPace.LIVE, InterimPace.THINNED]
    voices.started("a")  # speaking again, behind those who speak now
    assert voices.pace("a", voices=1, finals_behind=False) is InterimPace.PAUSED
    assert voices.pace("d", voices=1, finals_behind=False) is InterimPace.LIVE  # silent


def _utterance(chunks: int) -> dict[int, list[VadEvent]]:
    return {1: [VadEvent(VadEventKind.START, 0)],
            chunks + 1: [VadEvent(VadEventKind.PAUSE, _at(chunks))],
            chunks + 3: [VadEvent(VadEventKind.END, _at(chunks))]}


async def test_three_voices_at_once_get_every_final_in_order_and_thinned_interims() -> None:
    # A decoder whose passes cost 0.15 s (scripted): one voice at 400 ms interims keeps
    # it busy 0.15 / 0.4 + 0.15 / 4 = 41 %, so it carries one voice at once.
    recognizer = CountingRecognizer(final_pass_differs=True, pass_s=0.15)
    seed = capacity(4.5, final_s=0.15, interim_s=0.15, interim_interval_ms=400)
    assert seed.voices == 1
    scheduler = DecodeScheduler(recognizer, capacity=VoiceCapacity(seed, 400))
    scheduler.start()
    # Three people start together and stop 1 s apart (3, 4 and 5 s of speech).
    lengths = [150, 200, 250]
    scripts = iter([_utterance(n) for n in lengths])
    adapter = StreamAdapter(scheduler, lambda: ScriptedVad(next(scripts)),
                            AdapterConfig(interim_interval_ms=400, min_interim_ms=400,
                                          speech_pad_ms=0))
    streams = [adapter.open_stream("en") for _ in lengths]
    thinned, paused = _skipped("thinned"), _skipped("paused")

    async def follow(stream: AdaptedStream) -> list[SpeechEvent]:
        return [event async for event in stream]

    readers = [asyncio.ensure_future(follow(s)) for s in streams]
    try:
        for _ in range(max(lengths) + 5):
            for stream in streams:
                stream.push(bytes(CHUNK * 2))
            await asyncio.sleep(0.02)  # in real time: the decoder takes up requests
        for stream in streams:
            stream.end()
        events = await asyncio.gather(*readers)
    finally:
        await scheduler.close()

    def kinds(of: list[SpeechEvent], kind: SpeechEventKind) -> list[SpeechEvent]:
        return [e for e in of if e.kind is kind]

    first, second, third = events
    # Every final, whole: decoded at the VAD's pause, a chunk after the speech.
    heard = [f"heard {_at(n + 1)} samples" for n in lengths]
    for got, text in zip(events, heard, strict=True):
        assert [e.text for e in kinds(got, SpeechEventKind.FINAL)] == [text], got
    # Finals were decoded oldest utterance end first.
    assert [n for final, n in recognizer.heard if final] == [_at(n + 1) for n in lengths]
    # The first voice kept its pace; the second was thinned, the third paused, and
    # each was told, and told again when its pace came back.
    assert not kinds(first, SpeechEventKind.PACE)
    paces = [[e.pace for e in kinds(got, SpeechEventKind.PACE)] for got in (second, third)]
    assert paces[0] == [InterimPace.THINNED, InterimPace.LIVE], paces
    assert paces[1][0] is InterimPace.PAUSED and paces[1][-1] is InterimPace.LIVE, paces
    assert InterimPace.THINNED in paces[1]  # moved up when the first voice ended
    # The third had no interim before the first voice ended, and some after.
    first_end = kinds(first, SpeechEventKind.FINAL)[0].end_ms
    third_interims = [e.end_ms for e in kinds(third, SpeechEventKind.INTERIM)]
    assert third_interims and min(third_interims) > first_end, third_interims
    # While the first spoke, the second had interims, fewer than the first.
    counts = [sum(e.end_ms <= first_end for e in kinds(got, SpeechEventKind.INTERIM))
              for got in (first, second)]
    assert counts[0] > counts[1] > 0, counts
    assert _skipped("thinned") > thinned and _skipped("paused") > paused


async def test_a_new_room_is_refused_while_voices_at_once_fill_the_recogniser(
        settings: Settings, engines: Engines, http: aiohttp.ClientSession) -> None:
    scheduler = decoder(engines)
    assert scheduler.capacity is not None
    carried = scheduler.capacity.voices
    server, runner = await start_server(settings, engines)  # MAX_SPEAKERS: no cap
    url = server.url + "/api/sessions"
    try:
        async with http.post(url, json={"room": "busy", "name": "Ana"}) as resp:
            assert resp.status == 201
        room = server.registry.rooms.get("busy")
        now = [0.0]
        room.voices = VoiceMeter(clock=lambda: now[0])  # scripted: voices heard at once
        for n in range(carried):
            room.voices.speaking(f"v{n}", True)
        now[0] += 60
        async with http.post(url, json={"room": "another", "name": "Bo"}) as resp:
            assert resp.status == 503, await resp.text()
            assert (await resp.json())["error"]["code"] == "stt_capacity"
            assert resp.headers["Retry-After"]
        # A call once admitted lets every participant speak, however many.
        for name in ("Cy", "Di", "Ed", "Flo", "Gus"):
            async with http.post(url, json={"room": "busy", "name": name}) as resp:
                assert resp.status == 201, await resp.text()
        # Quiet for long enough: the busy room no longer fills the machine.
        for n in range(carried):
            room.voices.speaking(f"v{n}", False)
        now[0] += 600
        async with http.post(url, json={"room": "another", "name": "Bo"}) as resp:
            assert resp.status == 201, await resp.text()
    finally:
        await runner.cleanup()


async def test_an_operator_cap_on_speakers_still_holds(
        settings: Settings, engines: Engines, http: aiohttp.ClientSession) -> None:
    server, runner = await start_server(settings.replace(max_speakers=2), engines)
    url = server.url + "/api/sessions"
    names = (f"p{n}" for n in itertools.count())
    try:
        for _ in range(2):
            async with http.post(url, json={"room": "r", "name": next(names)}) as resp:
                created = await resp.json()
            server.registry.speakers.acquire(created["session_id"])  # as its offer does
        async with http.post(url, json={"room": "r", "name": next(names)}) as resp:
            assert resp.status == 503
            body = await resp.json()
            assert body["error"]["code"] == "stt_capacity" and "MAX_SPEAKERS" in \
                body["error"]["message"]
        async with http.post(url, json={"room": "r", "name": next(names),
                                        "speak": False}) as resp:
            assert resp.status == 201  # a listener is never a speaker
    finally:
        await runner.cleanup()


def _final_by(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: (m["type"] == "caption" and m["status"] == "final"
                      and m["speaker"] == name and bool(m["text"]))


async def test_a_call_of_four_on_default_settings_where_everyone_speaks_in_turn(
        server: Server, http: aiohttp.ClientSession, jfk48: np.ndarray) -> None:
    # Each says one of JFK's four utterances, at its time in the recording: turns.
    names, targets = ["Ana", "Bo", "Cy", "Di"], ["en", "pt", "es", "en"]
    people = [CaptionClient(server.url, http) for _ in names]
    try:
        for n, (person, name, target) in enumerate(zip(people, names, targets, strict=True)):
            start, end = JFK_UTTERANCES[n]
            turn = np.zeros_like(jfk48)
            span = slice(int((start - 0.1) * RATE), int((end + 0.1) * RATE))
            turn[span] = jfk48[span]
            await person.start(turn, room="call", name=name, target_lang=target,
                               interpretation="consecutive")
        assert server.registry.speaking == 4  # nobody refused
        for reader, target in zip(people, targets, strict=True):
            for name in names:
                if reader is not people[names.index(name)]:
                    final = await reader.wait_for(_final_by(name), within=JFK_SECONDS + 20)
                    assert (final["translation"] or {"lang": "en"})["lang"] == target, final
            codes = {m["code"] for m in reader.of_type("error")}
            assert "stt_behind" not in codes, codes
    finally:
        for person in people:
            await person.close()
