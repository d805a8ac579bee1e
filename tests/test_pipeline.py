"""One speaker's pipeline: frames in, protocol messages out."""

from __future__ import annotations

import fractions

import av
import numpy as np

from media_server.captions import CaptionBuilder
from media_server.engines.loader import Engines
from media_server.pipeline import SpeakerPipeline
from media_server.protocol import CaptionMessage, ErrorMessage, ServerMessage, StateMessage
from tests.conftest import JFK_TEXT, wer


def _frames(pcm48: np.ndarray) -> list[av.AudioFrame]:
    frames = []
    for i in range(0, len(pcm48) - 960 + 1, 960):
        stereo = np.repeat(pcm48[i:i + 960], 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = 48000, i, fractions.Fraction(1, 48000)
        frames.append(frame)
    return frames


async def test_audio_faster_than_recognition_warns_and_loses_no_final(
        engines: Engines, jfk48: np.ndarray) -> None:
    sent: list[ServerMessage] = []
    pipeline = SpeakerPipeline(engines.stt.open_stream("en"),
                               CaptionBuilder("p1", "Ana", "en"), sent.append)
    # Eleven seconds of speech arrive at once (a burst after a network stall):
    # recognition falls seconds behind the audio.
    for frame in _frames(np.concatenate([jfk48, np.zeros(48000, dtype=np.int16)])):
        pipeline.push_frame(frame)
    pipeline.end()
    await pipeline.run()
    errors = [m for m in sent if isinstance(m, ErrorMessage)]
    assert [e.code for e in errors] == ["stt_behind"]  # once, not once per caption
    finals = [m for m in sent if isinstance(m, CaptionMessage) and m.status == "final"]
    assert wer(JFK_TEXT, " ".join(f.text for f in finals)) <= 0.10
    states = [m.state for m in sent if isinstance(m, StateMessage)]
    assert states.count("listening") == len(finals) and states[-1] == "idle"
