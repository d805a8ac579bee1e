"""The return track: clips one after another, silence between, paced by the clock."""

from __future__ import annotations

import itertools
import time

import numpy as np

from media_server.metrics import REGISTRY
from media_server.participant import Participant, SessionInfo
from media_server.playout import FRAME_SAMPLES, RATE, Clip, PlayoutTrack
from media_server.protocol import SpeechMessage


def _slipped_s() -> float:
    return REGISTRY.get_sample_value("live_interpreter_playout_slipped_seconds_total") or 0.0


def _tone(seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (8000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()


async def test_clips_play_in_order_with_gaps_and_never_overlap() -> None:
    started: list[tuple[str, float]] = []
    dropped: list[str] = []
    idle: list[int] = []
    track = PlayoutTrack(lambda clip, at: started.append((clip.utterance_id, at)),
                         lambda: idle.append(1), lambda clip: dropped.append(clip.utterance_id),
                         lambda pcm: None, gap_ms=300)
    track.enqueue(Clip(_tone(0.5), "u-1", "pt"))
    track.enqueue(Clip(_tone(0.3), "u-2", "pt"))
    stale = Clip(_tone(0.2), "u-3", "pt")
    stale.ends_at -= 60  # said a minute ago: too late to play
    track.enqueue(stale)
    slipped = _slipped_s()
    t0 = time.monotonic()
    levels, pts = [], []
    for _ in range(75):  # 1.5 s
        frame = await track.recv()
        assert frame.sample_rate == RATE and frame.samples == FRAME_SAMPLES
        pts.append(frame.pts)
        levels.append(float(np.abs(frame.to_ndarray()).mean()))
    elapsed = time.monotonic() - t0
    slipped = _slipped_s() - slipped
    track.stop()
    loud = [level > 100 for level in levels]
    # 25 frames of u-1, 15 of silence, 15 of u-2, then silence: never both at once.
    assert loud[:25] == [True] * 25 and loud[25:40] == [False] * 15
    assert loud[40:55] == [True] * 15 and not any(loud[55:])
    assert [u for u, _ in started] == ["u-1", "u-2"] and dropped == ["u-3"]
    assert [round((at - started[0][1]) * 1000) for _, at in started] == [0, 800 + \
                                                                         round(slipped * 1000)]
    assert idle == [1]  # once, when the queue ran dry
    assert pts == [i * FRAME_SAMPLES for i in range(75)]
    # Paced on the sample clock: never faster; slower only by what a stalled loop slipped.
    assert 1.48 <= elapsed <= 1.48 + slipped + 0.1


async def test_clips_of_several_speakers_play_in_the_order_their_speech_ended() -> None:
    started: list[str] = []
    track = PlayoutTrack(lambda clip, at: started.append(clip.utterance_id), lambda: None,
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


async def test_a_stalled_event_loop_neither_bursts_nor_overlaps_the_clips_announced() -> None:
    """The event loop stalls for 0.5 s just as a clip is due (Whisper, the browser and
    the server share two cores). The track slips its clock rather than sending the
    frames due meanwhile at once, so the listener hears the gap between the clips; and
    each clip is announced when its first frame is due, so two clips never seem to
    overlap (they did when a late clip was stamped with the time it was made)."""
    origin = time.monotonic()
    info = SessionInfo(id="s", room="r", name="Lia", source_lang="en", target_lang="pt",
                       speak=False, participant_id="p", monitor=False)
    listener = Participant(info, lambda: round((time.monotonic() - origin) * 1000),
                           clip_gap_ms=300)
    returned: list[float] = []
    for frame in range(70):
        if frame == 10:
            listener.play(Clip(_tone(0.5), "u-1", "pt"))
            listener.play(Clip(_tone(0.3), "u-2", "pt"))
            time.sleep(0.5)  # noqa: ASYNC251 (the stall: nothing else runs on the loop)
        await listener.playout.recv()
        returned.append(time.monotonic())
    announced = [m for m in listener.channel._outbox if isinstance(m, SpeechMessage)]
    listener.close()
    assert [m.utterance_id for m in announced] == ["u-1", "u-2"]
    first, second = announced
    # (Offsets are whole milliseconds, each rounded: 1 ms either way.)
    assert second.start_ms - first.start_ms >= first.duration_ms + 300 - 1
    # Paced after the stall: a burst would send the ~25 frames due during it back to
    # back. A frame may follow the stall at once, and on a busy machine a wake-up late
    # by less than the slip threshold lets the next frame out at once too (one pair
    # each: a full suite saw two), so a handful is allowed, never a burst.
    bunched = [later - earlier < 0.005 for earlier, later in itertools.pairwise(returned[10:])]
    assert sum(bunched) <= 5, bunched
