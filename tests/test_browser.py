"""A real user: headless Debian Chromium opens the demo page, presses Start, speaks
(a fake microphone playing jfk.flac) and reads the captions. The server runs as
deployed, room tokens on: each page gets its token in its address.

Chromium and the server run in a network namespace this test creates, with only a
loopback interface: WebRTC traffic never touches another address.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

from media_server.settings import Settings
from signaling import tokens
from tests.conftest import JFK_TEXT, MORNING_TEXT, wer

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parent.parent
PORT = 8089
URL = f"http://127.0.0.1:{PORT}"
SECRET = b"browser-test-secret-7a2c9e4f1b8d3065c2a1"


def token(room: str, role: str = "speaker") -> str:
    """A fresh token each time, all of one user: the page's sessions are theirs."""
    return tokens.mint(SECRET, room, role=role, ttl_s=600, subject="browser-user")


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    if shutil.which("ip") is None:
        raise RuntimeError("iproute2 ('ip') is required for the browser tests")
    name = f"li-browser-{os.getpid()}"
    _run("ip", "netns", "add", name)
    try:
        _run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name
    finally:
        _run("ip", "netns", "del", name)


@pytest.fixture(scope="module")
def served(netns: str, settings: Settings, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Path]:
    """`live-interpreter serve` as a user runs it, inside the namespace; yields its log."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = {**os.environ,
           "LIVE_INTERPRETER_ICE_HOST_ADDRESSES": "127.0.0.1",
           "LIVE_INTERPRETER_ICE_ALLOWED_NETWORKS": "127.0.0.0/8",
           "LIVE_INTERPRETER_MAX_SPEAKERS": "4",
           "LIVE_INTERPRETER_AUTH_SECRET": SECRET.decode(),
           "LIVE_INTERPRETER_DATA_DIR": settings.data_dir}
    cli = Path(sys.executable).parent / "live-interpreter"
    with log.open("w") as out:
        proc = subprocess.Popen(["ip", "netns", "exec", netns, str(cli), "serve",
                                 "--port", str(PORT)], env=env, stdout=out, stderr=out)
    try:
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def fake_mic(jfk48: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 16-bit PCM: Chromium plays a 24-bit WAV as silence. Padded with silence, since
    # the file loops.
    path = tmp_path_factory.mktemp("mic") / "jfk48.wav"
    silence = np.zeros(48000 // 2, dtype=np.int16)
    soundfile.write(path, np.concatenate([silence, jfk48, silence, silence, silence,
                                          silence, silence, silence]),
                    48000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def chromium_in_netns(netns: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium")
    wrapper = tmp_path_factory.mktemp("bin") / "chromium-in-netns"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {netns} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def _tail(log: Path) -> str:
    return log.read_text()[-2000:]


@contextlib.asynccontextmanager
async def _chromium(wrapper: Path, mic: Path) -> AsyncIterator[Browser]:
    """Headless Chromium in the namespace, its fake microphone playing `mic` in a loop."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(wrapper), args=[
            "--headless=new", "--no-sandbox", "--disable-gpu",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={mic}",
            "--autoplay-policy=no-user-gesture-required",
            "--allow-loopback-in-peer-connection",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run",
        ])
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture(scope="module")
async def browser(chromium_in_netns: Path, fake_mic: Path, served: Path
                  ) -> AsyncIterator[Browser]:
    async with _chromium(chromium_in_netns, fake_mic) as browser:
        yield browser


async def _open_when_ready(browser: Browser, served: Path, *, room: str = "demo",
                           locale: str | None = None, query: str = "") -> Page:
    """The demo page with a token for `room`, in a browser whose language is `locale`."""
    page = await (await browser.new_context(locale=locale)).new_page() if locale \
        else await browser.new_page()
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(PlaywrightError):  # not listening yet
            response = await page.goto(URL + "/readyz")
            if response is not None and response.status == 200:
                break
        if time.monotonic() > deadline:
            raise RuntimeError(f"server never became ready: {_tail(served)}")
        await asyncio.sleep(0.3)
    await page.goto(f"{URL}/?room={room}{query}#token={token(room)}")
    # Taken out of the address bar (and so of history) as the page starts.
    await page.wait_for_function("!window.location.href.includes('token')", timeout=15000)
    return page


# Records what the caption list and the two state badges showed over time.
OBSERVE = """() => {
  window.seen = {interim: 0, states: new Set(), playout: new Set()};
  new MutationObserver(() => {
    window.seen.interim += document.querySelectorAll('.caption.interim').length;
    window.seen.states.add(document.getElementById('state').textContent);
    window.seen.playout.add(document.getElementById('playout').textContent);
  }).observe(document.body, {subtree: true, childList: true, characterData: true,
                             attributes: true});
}"""


async def test_demo_page_shows_live_captions(browser: Browser, served: Path,
                                            tmp_path: Path) -> None:
    page = await _open_when_ready(browser, served)
    await page.evaluate(OBSERVE)
    await page.click("#start")
    text = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = " ".join(await page.locator(".caption.final .text").all_inner_texts())
        if wer(JFK_TEXT, text) <= 0.15:
            break
        await asyncio.sleep(0.5)
    await page.screenshot(path=str(tmp_path / "demo.png"))
    assert wer(JFK_TEXT, text) <= 0.15, f"page shows: {text!r}"
    seen = await page.evaluate("({interim: window.seen.interim, states: [...window.seen.states]})")
    assert seen["interim"] > 0, "no interim caption was ever shown"
    assert "listening…" in seen["states"]
    # Chromium and the server share two cores here: a load warning (stt_behind) may
    # show; any other error may not.
    if await page.locator("#error").is_visible():
        assert "(stt_behind)" in await page.locator("#error").inner_text()
    await page.click("#stop")
    await page.wait_for_function("document.getElementById('state').textContent === 'off'")
    await page.close()


async def test_the_page_the_overlay_and_the_sdk_speak_vietnamese(
        browser: Browser, served: Path) -> None:
    """A browser set to Vietnamese gets the page in Vietnamese, language names included;
    `?ui=en` overrides it, `?ui=vi` gives Vietnamese to any browser; the SDK's and the
    overlay's messages follow."""
    page = await _open_when_ready(browser, served, room="phong-hop", locale="vi-VN")
    assert await page.evaluate("navigator.language") == "vi-VN"
    assert await page.locator("html").get_attribute("lang") == "vi"
    assert await page.locator("#start").inner_text() == "Bắt đầu"
    assert await page.locator("#state").inner_text() == "tắt"
    assert await page.locator("#source-lang").get_attribute("aria-label") == "Ngôn ngữ nói"
    await page.wait_for_function("document.querySelectorAll('#source-lang option').length > 50")
    assert "Tiếng Việt (vi)" in await page.locator("#source-lang").inner_text()
    # The SDK's own messages, and the server's it knows, in the page's language.
    refused = await page.evaluate("""async () => {
        const sdk = await import('/sdk/interpreter.js');
        try { await sdk.connect({room: 'phong-hop', speak: false, locale: sdk.uiLocale()}); }
        catch (e) { return [e.code, e.message]; }
    }""")
    assert refused == ["token_missing", "cần mã truy cập phòng (token)"]
    await page.click("#start")
    await page.wait_for_function(
        "document.getElementById('state').textContent === 'đang nghe…'", timeout=30000)
    await page.click("#stop")
    await page.wait_for_function("document.getElementById('state').textContent === 'tắt'")
    await page.context.close()

    english = await _open_when_ready(browser, served, room="phong-hop", locale="vi-VN",
                                     query="&ui=en")
    assert await english.locator("#start").inner_text() == "Start"
    assert "Vietnamese (vi)" in await english.locator("#source-lang").inner_text()
    await english.context.close()

    page = await browser.new_page()  # an English browser asking for Vietnamese
    await page.goto(f"{URL}/viewer.html?room=phong-hop&lang=vi&ui=vi")  # no token
    await page.wait_for_function(
        "document.getElementById('status').textContent.startsWith('không vào được phòng')")
    assert await page.locator("#status").inner_text() == \
        "không vào được phòng: cần mã truy cập phòng (token); đang thử lại…"
    await page.goto(f"{URL}/?room=phong-hop&ui=vi")
    assert await page.locator("#stop").inner_text() == "Dừng"
    await page.close()


# Samples the interpretation's level meter (a WebAudio analyser on the return track):
# [milliseconds, rms] every 20 ms or so (timers run late under load: hence the times).
RECORD_LEVELS = """() => {
  window.levels = [];
  setInterval(() => {
    const rms = Number(document.getElementById('out-level').dataset.rms || 0);
    window.levels.push([performance.now(), rms]);
  }, 20);
}"""
MIN_QUIET_BETWEEN_CLIPS_MS = 250  # the clip gap is 300 ms


def longest_quiet_between_loud(levels: list[tuple[float, float]], loud: float = 0.01) -> float:
    """The longest quiet stretch (ms) with audible audio both before and after it: from
    the first quiet sample after a loud one to the next loud sample."""
    longest, quiet_since, heard = 0.0, None, False
    for at, rms in levels:
        if rms > loud:
            if heard and quiet_since is not None:
                longest = max(longest, at - quiet_since)
            heard, quiet_since = True, None
        elif heard and quiet_since is None:
            quiet_since = at
    return longest


async def test_demo_page_interprets_into_portuguese(browser: Browser, served: Path,
                                                    tmp_path: Path) -> None:
    page = await _open_when_ready(browser, served)
    await page.wait_for_function("document.querySelectorAll('#target-lang option').length > 1")
    await page.select_option("#target-lang", "pt")
    await page.evaluate(OBSERVE)
    await page.evaluate(RECORD_LEVELS)
    await page.click("#start")
    finals: list[str] = []
    originals: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        originals = await page.locator(".caption.final .original").all_inner_texts()
        if any("for your country" in o for o in originals):  # the end of the first pass
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(3)  # let its clip play
    await page.screenshot(path=str(tmp_path / "interpreted.png"))
    finals = await page.locator(".caption.final .text").all_inner_texts()
    originals = await page.locator(".caption.final .original").all_inner_texts()
    # The fake mic loops: judge the first pass, up to its last phrase.
    first_pass = next(i for i, o in enumerate(originals) if "for your country" in o) + 1
    assert wer(JFK_TEXT, " ".join(originals[:first_pass])) <= 0.25, originals
    assert any("american" in f for f in finals) and any("país" in f for f in finals), finals
    spoken = await page.locator(".caption.final.spoken").count()
    assert spoken >= 2, f"{spoken} clips marked as spoken"
    levels = [(at, rms) for at, rms in await page.evaluate("window.levels")]
    loud_ms = sum(later[0] - at for (at, rms), later in itertools.pairwise(levels) if rms > 0.01)
    assert loud_ms >= 1000, "the return track carried no audible speech"
    # Silence between clips, as a listener hears it: loud, a real pause, loud again.
    quiet_ms = longest_quiet_between_loud(levels)
    assert quiet_ms >= MIN_QUIET_BETWEEN_CLIPS_MS, f"no pause between clips ({quiet_ms:.0f} ms)"
    seen = await page.evaluate("({states: [...window.seen.states], "
                               "playout: [...window.seen.playout]})")
    # My speech and what I hear, each on its own badge.
    assert {"listening…", "translating…"} <= set(seen["states"]), seen
    assert "speaking…" not in seen["states"] and "speaking…" in seen["playout"], seen
    await page.close()


# Records each `speech` message and what the page's "now speaking" line showed.
RECORD_SPEECH = """() => {
  window.speech = [];
  window.interpreterSession.on('speech', (m) => window.speech.push(m));
  window.nowSpeaking = new Set();
  const line = document.getElementById('now-speaking');
  new MutationObserver(() => window.nowSpeaking.add(line.textContent))
    .observe(line, {childList: true, characterData: true, subtree: true});
}"""


async def test_demo_page_plays_a_long_sentence_in_chunks_in_order(
        chromium_in_netns: Path, served: Path, long48: np.ndarray, tmp_path: Path) -> None:
    mic = tmp_path / "long48.wav"
    silence = np.zeros(48000 // 2, dtype=np.int16)
    soundfile.write(mic, np.concatenate([silence, long48, *[silence] * 16]), 48000,
                    subtype="PCM_16")
    async with _chromium(chromium_in_netns, mic) as chromium:
        page = await _open_when_ready(chromium, served, room="chunks")
        await page.wait_for_function(
            "document.querySelectorAll('#target-lang option').length > 1")
        await page.select_option("#target-lang", "pt")
        assert await page.input_value("#interpretation") == "simultaneous"  # the default
        await page.evaluate(RECORD_LEVELS)
        await page.click("#start")
        await page.wait_for_function("window.interpreterSession", timeout=15000)
        await page.evaluate(RECORD_SPEECH)
        # Until a sentence has been spoken in two chunks or more and has played out.
        await page.wait_for_function(
            "window.speech.some((m) => m.chunk >= 2 && m.complete)"
            " && document.getElementById('playout').hidden", timeout=90000, polling=200)
        speech = await page.evaluate("window.speech")
        shown = await page.evaluate("[...window.nowSpeaking]")
        levels = [(at, rms) for at, rms in await page.evaluate("window.levels")]
        await page.close()
    first: dict[str, list[int]] = {}
    for message in speech:  # each chunk's first announcement, in arrival order
        chunks = first.setdefault(message["utterance_id"], [])
        if message["chunk"] not in chunks:
            chunks.append(message["chunk"])
    assert all(chunks == list(range(1, len(chunks) + 1)) for chunks in first.values()), first
    complete = [m for m in speech if m["complete"]]
    for earlier, later in itertools.pairwise(complete):  # one after another, never mixed
        assert earlier["start_ms"] + earlier["duration_ms"] <= later["start_ms"] + 40
    assert any(f"♪ {m['text']}" in shown for m in complete), (shown, complete)
    loud_ms = sum(later[0] - at for (at, rms), later in itertools.pairwise(levels) if rms > 0.01)
    assert loud_ms >= 0.5 * sum(m["duration_ms"] for m in complete), "chunks were not heard"


async def test_a_closed_tab_is_noticed_within_5_s(browser: Browser, served: Path) -> None:
    page = await _open_when_ready(browser, served)
    await page.click("#start")
    await page.wait_for_function("document.body.dataset.session", timeout=15000)
    session_id = await page.evaluate("document.body.dataset.session")
    watcher = await browser.new_page()
    await watcher.goto(URL + "/healthz")
    status_js = (f"fetch('/api/sessions/{session_id}', {{headers: {{Authorization: "
                 f"'Bearer {token('demo')}'}}}}).then(r => r.status)")
    assert await watcher.evaluate(status_js) == 200
    await page.close(run_before_unload=True)
    closed_at = time.monotonic()
    while await watcher.evaluate(status_js) != 404:
        assert time.monotonic() - closed_at < 5.0, "the server did not notice the closed tab"
        await asyncio.sleep(0.1)
    await watcher.close()


# The finished caption rows of the demo page, by utterance.
FINAL_ROWS = """() => [...document.querySelectorAll('.caption.final')].map(
  (row) => row.dataset.utterance)"""


async def test_the_demo_page_resumes_its_session_after_a_reconnect(
        browser: Browser, served: Path) -> None:
    page = await _open_when_ready(browser, served)
    await page.click("#start")
    await page.wait_for_function("document.querySelectorAll('.caption.final').length >= 2",
                                 timeout=30000)
    session_id = await page.evaluate("document.body.dataset.session")
    before = await page.evaluate(FINAL_ROWS)
    await page.evaluate("""() => {
      window.resumed = new Promise((done) => window.interpreterSession.on('reconnected', done));
      window.interpreterSession.reconnect();
    }""")
    await page.evaluate("window.resumed")  # a new connection, the same session
    assert await page.evaluate("window.interpreterSession.id") == session_id
    await page.wait_for_function(f"document.querySelectorAll('.caption.final').length >= "
                                 f"{len(before) + 2}", timeout=30000)
    after = await page.evaluate(FINAL_ROWS)
    assert after[:len(before)] == before  # what was on screen stays
    numbers = [int(u.rsplit("-", 1)[1]) for u in after]
    assert numbers == sorted(set(numbers)), after  # numbering went on: nothing twice
    state = await page.evaluate(
        f"fetch('/api/sessions/{session_id}', {{headers: {{Authorization: "
        f"'Bearer {token('demo')}'}}}}).then((r) => r.json())")
    assert state["connection_state"] == "connected"
    await page.close()


# The overlay's finished captions: who said it, the translation, the original.
VIEWER_ROWS = """() => [...document.querySelectorAll('.caption:not(.interim)')].map((row) => ({
  speaker: row.querySelector('.speaker').textContent,
  text: row.querySelector('.text').textContent,
  original: row.querySelector('.original').textContent,
}))"""


# Notes whether the overlay ever marked a caption as the one being voiced.
WATCH_VOICED = """() => {
  window.voicedSeen = false;
  new MutationObserver(() => {
    window.voicedSeen ||= Boolean(document.querySelector('.caption.voiced'));
  }).observe(document.body, {subtree: true, childList: true, attributes: true});
}"""


def _messages(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_a_room_of_three_with_chromium_reading_portuguese(
        browser: Browser, served: Path, netns: str, jfk48: np.ndarray,
        morning48: np.ndarray, tmp_path: Path) -> None:
    page = await _open_when_ready(browser, served)
    await page.goto(f"{URL}/viewer.html?room=trio&lang=pt&audio=1&lines=20"
                    f"&token={token('trio', 'listener')}")  # as older links have it
    await page.wait_for_function("document.body.dataset.session", timeout=15000)
    await page.evaluate(WATCH_VOICED)
    members: dict[str, tuple[asyncio.subprocess.Process, Path]] = {}
    for name, target, audio, lead in (("Ana", "es", jfk48, 0.5),
                                      ("Bruno", "pt", morning48, 4.0)):
        wav, out = tmp_path / f"{name}.wav", tmp_path / f"{name}.jsonl"
        soundfile.write(wav, audio, 48000, subtype="PCM_16")
        members[name] = (await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", netns, sys.executable, "-m", "tests.room_member", URL,
            "trio", name, target, str(wav), str(out), "--lead", str(lead),
            "--token", token("trio"), cwd=REPO), out)
    try:
        def said(rows: list[dict[str, str]], speaker: str) -> str:
            return " ".join(r["original"] for r in rows if r["speaker"] == speaker)

        rows: list[dict[str, str]] = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            rows = await page.evaluate(VIEWER_ROWS)
            if (wer(JFK_TEXT, said(rows, "Ana")) <= 0.25
                    and wer(MORNING_TEXT, said(rows, "Bruno")) <= 0.25):
                break
            await asyncio.sleep(0.5)
        await page.screenshot(path=str(tmp_path / "viewer.png"))
        assert wer(JFK_TEXT, said(rows, "Ana")) <= 0.25, rows
        assert wer(MORNING_TEXT, said(rows, "Bruno")) <= 0.25, rows
        # Chromium reads Portuguese, with the English original beneath.
        portuguese = " ".join(r["text"] for r in rows).lower()
        assert "país" in portuguese and "americanos" in portuguese, rows
        assert all(r["text"] != r["original"] for r in rows), rows
        await page.wait_for_function("Number(document.body.dataset.clips || 0) >= 2",
                                     timeout=15000)  # and hears it spoken
        # The caption being voiced was marked while it played, and unmarked after.
        await page.wait_for_function("window.voicedSeen && document.body.dataset.playout"
                                     " === 'idle' && !document.querySelector('.voiced')",
                                     timeout=15000)
    finally:
        for proc, _ in members.values():
            proc.terminate()
        for proc, _ in members.values():
            await asyncio.wait_for(proc.wait(), 10)
        await page.close()
    # Each speaker read the other in their own language, and never heard themselves.
    for name, other, lang in (("Ana", "Bruno", "es"), ("Bruno", "Ana", "pt")):
        got = _messages(members[name][1])
        finals = [m for m in got if m["type"] == "caption" and m["status"] == "final"
                  and m["speaker"] == other and m["text"]]
        assert finals and all(m["translation"]["lang"] == lang  # type: ignore[index]
                              for m in finals), got
        own = {m["speaker_id"] for m in got if m["type"] == "caption" and m["speaker"] == name}
        heard = {m["speaker_id"] for m in got if m["type"] == "speech"}
        assert heard and not heard & own, got
