"""The return track: clips one after another, silence between, paced by the clock."""

from __future__ import annotations

import time

import numpy as np

from media_server.playout import FRAME_SAMPLES, RATE, Clip, PlayoutTrack


def _tone(seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (8000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()


async def test_clips_play_in_order_with_gaps_and_never_overlap() -> None:
    started: list[tuple[str, int]] = []
    dropped: list[str] = []
    idle: list[int] = []
    track = PlayoutTrack(lambda clip, ms: started.append((clip.utterance_id, ms)),
                         lambda: idle.append(1), lambda clip: dropped.append(clip.utterance_id),
                         lambda pcm: None, gap_ms=300)
    track.enqueue(Clip(_tone(0.5), "u-1", "pt"))
    track.enqueue(Clip(_tone(0.3), "u-2", "pt"))
    stale = Clip(_tone(0.2), "u-3", "pt")
    stale.ends_at -= 60  # said a minute ago: too late to play
    track.enqueue(stale)
    t0 = time.monotonic()
    levels, pts = [], []
    for _ in range(75):  # 1.5 s
        frame = await track.recv()
        assert frame.sample_rate == RATE and frame.samples == FRAME_SAMPLES
        pts.append(frame.pts)
        levels.append(float(np.abs(frame.to_ndarray()).mean()))
    elapsed = time.monotonic() - t0
    track.stop()
    loud = [level > 100 for level in levels]
    # 25 frames of u-1, 15 of silence, 15 of u-2, then silence: never both at once.
    assert loud[:25] == [True] * 25 and loud[25:40] == [False] * 15
    assert loud[40:55] == [True] * 15 and not any(loud[55:])
    assert [u for u, _ in started] == ["u-1", "u-2"] and dropped == ["u-3"]
    assert [ms for _, ms in started] == [0, 800]
    assert idle == [1]  # once, when the queue ran dry
    assert pts == [i * FRAME_SAMPLES for i in range(75)]
    assert 1.4 < elapsed < 1.7  # paced in real time, not as fast as possible


async def test_clips_of_several_speakers_play_in_the_order_their_speech_ended() -> None:
    started: list[str] = []
    track = PlayoutTrack(lambda clip, ms: started.append(clip.utterance_id), lambda: None,
                         lambda clip: None, lambda pcm: None, gap_ms=0)
    now = time.monotonic()
    # Bruno's short sentence ended last but was synthesised first; Ana's ended earlier.
    track.enqueue(Clip(_tone(0.1), "bruno-1", "pt", ends_at=now - 1.0))
    track.enqueue(Clip(_tone(0.1), "ana-1", "pt", ends_at=now - 2.0))
    track.enqueue(Clip(_tone(0.1), "ana-2", "pt", ends_at=now - 0.5))
    for _ in range(20):
        await track.recv()
    track.stop()
    assert started == ["ana-1", "bruno-1", "ana-2"]
