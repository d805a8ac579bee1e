"""The stream adapter's decode policy, with a scripted VAD and a recogniser that counts:
which passes it asks for, and when an interim serves as the final."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from media_server.engines.stt.base import DecodeRequest, SpeechEventKind, Transcript
from media_server.engines.stt.decode_scheduler import DecodeScheduler
from media_server.engines.stt.stream_adapter import AdapterConfig, StreamAdapter
from media_server.engines.vad.base import VadEvent, VadEventKind

CHUNK = 320  # 20 ms at 16 kHz


class CountingRecognizer:
    """Says how much audio it heard; counts interim and final passes."""

    name = "counting"

    def __init__(self, final_pass_differs: bool, pass_s: float = 0.0) -> None:
        self._final_pass_differs = final_pass_differs
        self.passes: list[bool] = []  # final?
        self.heard: list[tuple[bool, int]] = []  # (final?, samples) per request
        self._pass_s = pass_s

    def languages(self) -> frozenset[str]:
        return frozenset({"en"})

    def final_like_interim(self, audio_s: float) -> bool:
        return not self._final_pass_differs

    def transcribe(self, requests: Sequence[DecodeRequest]) -> list[Transcript]:
        time.sleep(self._pass_s)  # in the decoder's thread
        self.passes += [r.final for r in requests]
        self.heard += [(r.final, len(r.audio)) for r in requests]
        return [Transcript(f"heard {len(r.audio)} samples") for r in requests]


class ScriptedVad:
    """Events at given chunk numbers."""

    def __init__(self, events: dict[int, list[VadEvent]]) -> None:
        self._events = events
        self._chunk = 0

    def feed(self, pcm: bytes) -> list[VadEvent]:
        self._chunk += 1
        return self._events.get(self._chunk, [])


async def _run(recognizer: CountingRecognizer, events: dict[int, list[VadEvent]],
               *, chunks: int, interim_ms: int = 400, pace_s: float = 0.0) -> list[str]:
    scheduler = DecodeScheduler(recognizer)
    scheduler.start()
    adapter = StreamAdapter(scheduler, lambda: ScriptedVad(events),
                            AdapterConfig(interim_interval_ms=interim_ms, min_interim_ms=400,
                                          speech_pad_ms=0))
    stream = adapter.open_stream("en")
    try:
        for _ in range(chunks):
            stream.push(bytes(CHUNK * 2))
            await asyncio.sleep(pace_s)  # the decoder takes up requests between chunks
        stream.end()
        return [f"{e.kind}:{e.text}" async for e in stream
                if e.kind in (SpeechEventKind.INTERIM, SpeechEventKind.FINAL)]
    finally:
        await scheduler.close()


def _at(chunk: int) -> int:
    return chunk * CHUNK


def _speech(until: int, ends_at: int) -> dict[int, list[VadEvent]]:
    """Speech from the first chunk to chunk `until`: the VAD's PAUSE comes a chunk
    later, its END at chunk `ends_at`."""
    return {1: [VadEvent(VadEventKind.START, 0)],
            until + 1: [VadEvent(VadEventKind.PAUSE, _at(until))],
            ends_at: [VadEvent(VadEventKind.END, _at(until))]}


async def test_an_interim_that_heard_all_the_speech_is_the_final() -> None:
    """Speech from chunk 1 to 20; the interim due at chunk 20 (400 ms) heard all of it,
    so the PAUSE a chunk later takes it as the final instead of decoding again."""
    recognizer = CountingRecognizer(final_pass_differs=False)
    said = await _run(recognizer, _speech(until=20, ends_at=30), chunks=40)
    assert recognizer.passes == [False]  # one interim pass, no final pass
    assert said == ["interim:heard 6400 samples", "final:heard 6400 samples"]


async def test_an_interim_that_missed_the_end_of_speech_is_not_the_final() -> None:
    """Speech goes on 100 ms past the interim: the final decodes all of it."""
    recognizer = CountingRecognizer(final_pass_differs=False)
    said = await _run(recognizer, _speech(until=25, ends_at=35), chunks=40)
    assert recognizer.passes == [False, True]
    assert said == ["interim:heard 6400 samples", "final:heard 8320 samples"]


async def test_a_costlier_final_search_is_never_replaced_by_an_interim() -> None:
    recognizer = CountingRecognizer(final_pass_differs=True)
    said = await _run(recognizer, _speech(until=20, ends_at=30), chunks=40)
    assert recognizer.passes == [False, True]
    assert said == ["interim:heard 6400 samples", "final:heard 6720 samples"]


async def test_interims_space_out_when_their_passes_take_long() -> None:
    """Passes of 0.2 s against an interval of 0.4 s: interims come at most every
    three passes' time (0.6 s), not every 0.4 s."""
    recognizer = CountingRecognizer(final_pass_differs=True, pass_s=0.2)
    events = {1: [VadEvent(VadEventKind.START, 0)]}
    # 4 s of speech, fed in real time.
    await _run(recognizer, events, chunks=200, pace_s=0.02)
    interims = recognizer.passes.count(False)
    # Every 0.4 s would be 10 interims; spaced by 3 x 0.2 s, at most 1 + 3.6 / 0.6 = 7.
    assert 2 <= interims <= 7, interims
