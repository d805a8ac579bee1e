"""The return track: clips one after another, silence between, paced by the clock."""

from __future__ import annotations

import fractions
import itertools
import time

import av
import numpy as np
import pytest

from media_server.metrics import REGISTRY
from media_server.participant import Participant, SessionInfo
from media_server.playout import FRAME_SAMPLES, RATE, Clip, PlayoutTrack
from media_server.protocol import SpeechMessage
from media_server.return_track import EncodedReturnTrack
from media_server.tempo import MAX_TEMPO


class Recorder:
    """The track's owner, keeping what it is told."""

    def __init__(self) -> None:
        self.started: list[tuple[str, float, int]] = []
        self.completed: list[tuple[str, float, int]] = []
        self.cut: list[tuple[str, int]] = []  # (utterance, cut_ms) as each clip started
        self.cut_short: list[tuple[str, int]] = []  # as each clip cut ended
        self.idles = 0

    def clip_started(self, clip: Clip, starts_at: float, *, duration_ms: int,
                     cut_ms: int = 0) -> None:
        self.started.append((clip.utterance_id, starts_at, duration_ms))
        self.cut.append((clip.utterance_id, cut_ms))

    def clip_completed(self, clip: Clip, starts_at: float, *, duration_ms: int,
                       cut_ms: int = 0) -> None:
        self.completed.append((clip.utterance_id, starts_at, duration_ms))

    def clip_cut(self, clip: Clip, cut_ms: int) -> None:
        self.cut_short.append((clip.utterance_id, cut_ms))

    def idle(self) -> None:
        self.idles += 1

    def frame_sent(self, pcm: bytes) -> None:
        pass


def _slipped_s() -> float:
    return REGISTRY.get_sample_value("live_interpreter_playout_slipped_seconds_total") or 0.0


def _tone(seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (8000 * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()


async def test_clips_play_in_order_with_gaps_and_never_overlap() -> None:
    told = Recorder()
    track = PlayoutTrack(told, gap_ms=300)
    track.enqueue(Clip(_tone(0.5), "u-1", "pt"))
    track.enqueue(Clip(_tone(0.3), "u-2", "pt"))
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
    assert [(u, ms) for u, _, ms in told.started] == [("u-1", 500), ("u-2", 300)]
    assert told.cut_short == [] and told.completed == []
    first_at = told.started[0][1]
    assert [round((at - first_at) * 1000) for _, at, _ in told.started] == [
        0, 800 + round(slipped * 1000)]
    assert told.idles == 1  # once, when the queue ran dry
    assert pts == [i * FRAME_SAMPLES for i in range(75)]
    # Paced on the sample clock: never faster; slower only by what a stalled loop slipped.
    assert 1.48 <= elapsed <= 1.48 + slipped + 0.1


async def test_clips_of_several_speakers_play_in_the_order_their_speech_ended() -> None:
    told = Recorder()
    track = PlayoutTrack(told, gap_ms=0)
    now = time.monotonic()
    # Bruno's short sentence ended last but was synthesised first; Ana's ended earlier.
    track.enqueue(Clip(_tone(0.1), "bruno-1", "pt", ends_at=now - 1.0))
    track.enqueue(Clip(_tone(0.1), "ana-1", "pt", ends_at=now - 2.0))
    track.enqueue(Clip(_tone(0.1), "ana-2", "pt", ends_at=now - 0.5))
    for _ in range(20):
        await track.recv()
    track.stop()
    assert [u for u, _, _ in told.started] == ["ana-1", "bruno-1", "ana-2"]


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


async def test_a_clip_plays_from_its_first_audio_and_grows_while_it_plays() -> None:
    """The voice has made the first sentence only: the clip starts with it, silence
    fills in while the second is synthesised, then it plays, and the clip is reported
    complete (with its whole duration) once the voice is done."""
    told = Recorder()
    track = PlayoutTrack(told, gap_ms=0)
    clip = Clip(_tone(0.2), "u-1", "pt", complete=False)
    track.enqueue(clip)
    levels = []
    for frame in range(40):
        if frame == 15:
            clip.append(_tone(0.2))
            clip.finish()
        levels.append(float(np.abs((await track.recv()).to_ndarray()).mean()))
    track.stop()
    loud = [level > 100 for level in levels]
    assert loud[:10] == [True] * 10 and loud[10:15] == [False] * 5  # waiting for the voice
    assert loud[15:25] == [True] * 10 and not any(loud[25:])
    assert [(u, ms) for u, _, ms in told.started] == [("u-1", 200)]
    assert [(u, ms) for u, _, ms in told.completed] == [("u-1", 400)]
    assert told.completed[0][1] == told.started[0][1]  # the same clip, the same start


def _pitch_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.argmax(spectrum) * RATE / len(pcm))


async def test_a_listener_behind_the_speaker_hears_faster_speech_at_the_same_pitch() -> None:
    told = Recorder()
    track = PlayoutTrack(told, gap_ms=0)
    sped_up, saved = _counter("playout_sped_up_clips"), _counter("playout_saved_seconds")
    now = time.monotonic()
    # 1 s clips whose speech ended 6 s ago: the listener is far behind.
    track.enqueue(Clip(_tone(1.0), "late-1", "pt", ends_at=now - 6))
    track.enqueue(Clip(_tone(1.0), "late-2", "pt", ends_at=now - 5))
    frames = [(await track.recv()).to_ndarray().reshape(-1) for _ in range(60)]
    track.stop()
    loud = [float(np.abs(f).mean()) > 100 for f in frames]
    # At MAX_TEMPO a second of speech takes 0.8 s: 40 frames, then the next clip.
    played = round(1000 / MAX_TEMPO)
    assert [(u, ms) for u, _, ms in told.started] == [("late-1", played), ("late-2", played)]
    assert all(loud) and told.started[1][1] - told.started[0][1] == \
        pytest.approx(played / 1000, abs=0.021)
    assert _pitch_hz(np.concatenate(frames[5:35])) == pytest.approx(300, abs=5)
    assert _counter("playout_sped_up_clips") - sped_up == 2
    assert _counter("playout_saved_seconds") - saved == pytest.approx(0.2)  # the first's


async def test_a_clip_far_behind_the_speaker_is_cut_short_never_dropped_whole() -> None:
    told = Recorder()
    track = PlayoutTrack(told, gap_ms=0, max_delay_s=10.0)
    clips, seconds = _counter("playout_cut_clips"), _counter("playout_cut_seconds")
    now = time.monotonic()
    # Said a minute ago but short: plays whole (at top tempo, 0.4 s), however late.
    track.enqueue(Clip(_tone(0.5), "ancient", "pt", ends_at=now - 60))
    # 6 s of speech (4.8 s at top tempo) ended 12 s ago; it starts ~12.4 s behind, 2.4 s
    # past the bound: that much of its end is left out.
    track.enqueue(Clip(_tone(6.0), "late", "pt", ends_at=now - 12))
    frames = [(await track.recv()).to_ndarray().reshape(-1) for _ in range(150)]
    track.stop()
    loud = [float(np.abs(f).mean()) > 100 for f in frames]
    assert [u for u, _, _ in told.started] == ["ancient", "late"]
    (_, _, ancient_ms), (_, _, late_ms) = told.started
    assert ancient_ms == 400 and told.cut[0] == ("ancient", 0)
    assert late_ms == pytest.approx(2400, abs=60)
    assert told.cut[1][1] == 4800 - late_ms and told.cut_short == [told.cut[1]]
    late_from = round((told.started[1][1] - told.started[0][1]) / 0.02)  # its first frame
    played = late_from - (-late_ms // 20)  # and its last, whole or faded
    assert all(loud[:played - 1]) and not any(loud[played:])
    # Faded out where it was cut: the last 10 ms of its last frame fall to silence.
    assert np.abs(frames[played - 1][-48:]).max() < 0.1 * np.abs(frames[played - 2]).max()
    assert _counter("playout_cut_clips") - clips == 1
    assert _counter("playout_cut_seconds") - seconds == pytest.approx(told.cut[1][1] / 1000)


def _counter(name: str) -> float:
    return REGISTRY.get_sample_value(f"live_interpreter_{name}_total") or 0.0


async def test_a_listener_close_behind_hears_clips_at_their_own_pace() -> None:
    told = Recorder()
    track = PlayoutTrack(told, gap_ms=0)
    track.enqueue(Clip(_tone(1.0), "u-1", "pt"))
    for _ in range(5):
        await track.recv()
    track.stop()
    assert [(u, ms) for u, _, ms in told.started] == [("u-1", 1000)]


async def test_webrtc_gets_silence_encoded_once_and_clips_encoded_on_the_sample_clock() -> None:
    track = PlayoutTrack(Recorder(), gap_ms=0)
    sent = EncodedReturnTrack(track)
    silent = [await sent.recv() for _ in range(5)]
    assert {bytes(p) for p in silent} == {bytes(silent[0])} and len(bytes(silent[0])) < 10
    track.enqueue(Clip(_tone(0.2), "u-1", "pt"))
    packets = silent + [await sent.recv() for _ in range(15)]
    # One 20 ms packet after another on the playout's sample clock, silence and clip alike.
    assert [p.pts for p in packets] == [n * FRAME_SAMPLES for n in range(20)]
    assert all(p.time_base == fractions.Fraction(1, RATE) for p in packets)
    decoder = av.CodecContext.create("libopus", "r")
    decoded = [frame for p in packets for frame in decoder.decode(p)]
    levels = [float(np.abs(frame.to_ndarray()).mean()) for frame in decoded]
    assert max(levels[:5]) < 10 and max(levels[6:14]) > 1000, levels  # silence, then the tone
    sent.stop()
    assert track.readyState == "ended"
