"""Property-based fuzzing (hypothesis) of everything a client sends: HTTP bodies and
headers, room tokens, SDP offers, trickle-ICE fragments and candidates, data-channel
messages. Whatever comes in: no 5xx, no traceback or error in the server's log, and
afterwards the server still captions a real session.

Bounded in count (`EXAMPLES` per property, derandomised: CI sees the same inputs
every run; `LIVE_INTERPRETER_FUZZ_EXAMPLES` raises the count for a longer campaign,
and `LIVE_INTERPRETER_FUZZ_RANDOM=1` draws new inputs each run) and in time (every
request has a deadline). Hypothesis runs in a worker thread and hands each request
to the server's event loop, where the server and our clients live.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import aiohttp
import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from media_server.client_messages import MESSAGES_PER_S
from media_server.engines.loader import Engines
from media_server.settings import Settings
from signaling import tokens
from tests.conftest import JFK_SECONDS, JFK_TEXT, Server, start_server, wer
from tests.rtc_client import CaptionClient

EXAMPLES = int(os.environ.get("LIVE_INTERPRETER_FUZZ_EXAMPLES", "60"))
RANDOM = os.environ.get("LIVE_INTERPRETER_FUZZ_RANDOM") == "1"
REQUEST_DEADLINE_S = 20.0
SECRET = "fuzz-secret-of-at-least-32-bytes-long"
ROOM = "fuzz"
T = TypeVar("T")


# -- the server and what it logs ------------------------------------------------------

class _Troubles(logging.Handler):
    """Log records that mean the server failed on input: errors and tracebacks."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    def take(self) -> list[str]:
        formatter = logging.Formatter("%(name)s: %(message)s")
        found = [formatter.format(record) for record in self.records]
        self.records.clear()
        return found


@pytest.fixture(scope="module")
def _watching() -> Iterator[_Troubles]:
    handler = _Troubles()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


@pytest.fixture
def troubles(_watching: _Troubles) -> _Troubles:
    """What the server logged in trouble during this test (a test that failed left its
    own behind)."""
    _watching.take()
    return _watching


@pytest.fixture(scope="module")
async def fuzzed(settings: Settings, engines: Engines,
                 _watching: _Troubles) -> AsyncIterator[Server]:
    """The server as deployed (tokens on), its rate limit out of the fuzzer's way."""
    server, runner = await start_server(
        settings.replace(auth_secret=SECRET, rate_limit_per_s=100000, rate_limit_burst=100000),
        engines, dev=False)
    yield server
    await runner.cleanup()


def bearer(room: str = ROOM, role: str = "speaker") -> dict[str, str]:
    """A fresh token each time, of one subject: the sessions it creates are the fuzzer's."""
    token = tokens.mint(SECRET.encode(), room, role=role, ttl_s=600, subject="fuzzer")
    return {"Authorization": f"Bearer {token}"}


def fuzz(strategy: st.SearchStrategy[T], check: Callable[[T], Coroutine[Any, Any, None]],
         examples: int = EXAMPLES) -> Callable[[], None]:
    """A property over `strategy`, run in a worker thread; each example is checked on
    the event loop that is running now (the server's)."""
    loop = asyncio.get_running_loop()

    @hypothesis_settings(max_examples=examples, deadline=None, derandomize=not RANDOM,
                         database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def prop(value: T) -> None:
        asyncio.run_coroutine_threadsafe(check(value), loop).result(REQUEST_DEADLINE_S)

    return prop


async def no_5xx(response: aiohttp.ClientResponse, what: object) -> None:
    body = await response.text()
    assert response.status < 500, f"{response.status} for {what!r}: {body[:500]}"
    if response.status >= 400 and response.content_type == "application/json":
        error = json.loads(body)["error"]  # a clear error: a code and a message
        assert error["code"] and error["message"], body


# -- strategies -----------------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=16)
FIELDS = ("room", "name", "source_lang", "target_lang", "speak", "monitor", "stt_model",
          "resume")
plausible = {"room": st.sampled_from([ROOM, "", "a" * 300, "../x", "r\u00e9union", "\u0000"]),
             "name": st.text(max_size=80), "source_lang": st.sampled_from(["en", "pt", "zz", ""]),
             "target_lang": st.sampled_from(["en", "pt", "es", "vi", "zz", ""]),
             "speak": st.booleans(), "monitor": st.booleans() | st.none(),
             "stt_model": st.sampled_from(["", "latest_long", "x" * 200, "../../etc"]),
             "resume": st.text(max_size=40)}
session_bodies = st.fixed_dictionaries(
    {}, optional={name: plausible[name] | json_values for name in FIELDS})
nested = st.integers(1, 100000).map(lambda depth: "[" * depth + "]" * depth)
raw_bodies = st.binary(max_size=2000) | nested.map(str.encode) | json_values.map(
    lambda v: json.dumps(v).encode())
# (Control characters: aiohttp's client refuses to send them, its server to read them.)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=0x10FFFF,
                                    exclude_categories=["Cs", "Cc"]), max_size=200)


def _b64json(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _signed(header: object, claims: object) -> str:
    signing_input = _b64json(header) + "." + _b64json(claims)
    return signing_input + "." + tokens._sign(SECRET.encode(), signing_input)


claims = st.fixed_dictionaries({}, optional={
    "room": st.just(ROOM) | json_values, "role": st.sampled_from(["speaker", "listener", "x"])
    | json_values, "exp": st.integers() | st.floats() | st.just(10**400) | json_values,
    "sub": json_values}) | json_values
jwt_headers = st.just({"alg": "HS256", "typ": "JWT"}) | json_values
room_tokens = (header_text
               | st.builds(_signed, jwt_headers, claims)  # ours, with any claims at all
               | st.builds(lambda h, c, s: f"{_b64json(h)}.{_b64json(c)}.{s}",
                           jwt_headers, claims, header_text))
authorizations = (st.builds(lambda t: f"Bearer {t}", room_tokens)
                  | header_text | st.sampled_from(["Bearer", "Basic abc", "bearer  "]))


def mutations(text: str) -> st.SearchStrategy[str]:
    """`text` with lines dropped, repeated, replaced, added or cut short."""
    lines = text.splitlines()
    line_at = st.integers(0, max(0, len(lines) - 1))
    junk = st.text(max_size=120) | st.sampled_from(
        ["m=audio 9 UDP/TLS/RTP/SAVPF 111", "m=video 9 UDP/TLS/RTP/SAVPF 96",
         "a=candidate:1 1 udp 1 10.0.0.1 9 typ host", "a=rtpmap:111 opus/48000/2",
         "a=fingerprint:sha-256 00", "a=setup:actpass", "a=mid:", "c=IN IP4 0.0.0.0",
         "a=ice-ufrag:", "a=group:BUNDLE 0 1 2 3", "a=ssrc:1 cname:x"])
    edit = st.one_of(
        st.tuples(st.just("drop"), line_at, st.just("")),
        st.tuples(st.just("repeat"), line_at, st.just("")),
        st.tuples(st.just("replace"), line_at, junk),
        st.tuples(st.just("insert"), line_at, junk),
        st.tuples(st.just("cut"), line_at, st.just("")))

    def apply(edits: list[tuple[str, int, str]]) -> str:
        out = list(lines)
        for action, at, new in edits:
            at = min(at, max(0, len(out) - 1))
            if not out:
                out = [new]
            elif action == "drop":
                del out[at]
            elif action == "repeat":
                out.insert(at, out[at])
            elif action == "replace":
                out[at] = new
            elif action == "insert":
                out.insert(at, new)
            else:
                out = out[:at]
        return "\r\n".join(out) + "\r\n"

    return st.lists(edit, min_size=1, max_size=6).map(apply)


async def real_offer() -> str:
    """An offer as a browser sends it (aiortc's: audio and a data channel)."""
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="sendrecv")
    pc.createDataChannel("captions")
    await pc.setLocalDescription(await pc.createOffer())
    sdp: str = pc.localDescription.sdp
    await pc.close()
    return sdp


# -- properties -----------------------------------------------------------------------

async def test_session_bodies_and_headers(fuzzed: Server, http: aiohttp.ClientSession,
                                          troubles: _Troubles) -> None:
    url = f"{fuzzed.url}/api/sessions"

    async def create(body: dict[str, Any]) -> None:
        async with http.post(url, json=body, headers=bearer()) as resp:
            await no_5xx(resp, body)
            if resp.status == 201:  # a session made: end it, so none pile up
                created = await resp.json()
                async with http.delete(f"{url}/{created['session_id']}",
                                       headers=bearer()) as gone:
                    assert gone.status == 204

    async def raw(case: tuple[bytes, str, str]) -> None:
        body, content_type, origin = case
        headers = {**bearer(), "Content-Type": content_type, "Origin": origin}
        async with http.post(url, data=body, headers=headers) as resp:
            await no_5xx(resp, case)
            if resp.status == 201:
                created = await resp.json()
                await http.delete(f"{url}/{created['session_id']}", headers=bearer())

    await asyncio.to_thread(fuzz(session_bodies, create))
    await asyncio.to_thread(fuzz(st.tuples(
        raw_bodies, st.sampled_from(["application/json", "text/plain", ""]) | header_text,
        st.sampled_from([fuzzed.url, "null", "https://evil.example"]) | header_text), raw))
    assert troubles.take() == []


async def test_room_tokens_and_session_ids(fuzzed: Server, http: aiohttp.ClientSession,
                                           troubles: _Troubles) -> None:
    paths = st.sampled_from([f"/api/rooms/{ROOM}", f"/api/rooms/{ROOM}/transcript",
                             "/api/sessions/x", "/api/sessions/%00", "/api/rooms/..%2F.."])

    async def call(case: tuple[str, str]) -> None:
        authorization, path = case
        async with http.get(fuzzed.url + path, headers={"Authorization": authorization}) as resp:
            await no_5xx(resp, case)
            assert resp.status in (401, 403, 404) or (resp.status == 200 and authorization
                                                      .startswith("Bearer ")), case

    async def ids(session_id: str) -> None:
        for method in ("GET", "DELETE"):
            async with http.request(method, f"{fuzzed.url}/api/sessions/{session_id}",
                                    headers=bearer()) as resp:
                await no_5xx(resp, session_id)

    await asyncio.to_thread(fuzz(st.tuples(authorizations, paths), call))
    await asyncio.to_thread(fuzz(st.text(st.characters(codec="utf-8", exclude_characters="/?#"),
                                         min_size=1, max_size=60), ids))
    assert troubles.take() == []


async def test_sdp_offers(fuzzed: Server, http: aiohttp.ClientSession,
                          troubles: _Troubles) -> None:
    offer = await real_offer()
    url = f"{fuzzed.url}/api/sessions"

    async def offered(case: tuple[str, object]) -> None:
        sdp, kind = case
        async with http.post(url, json={"room": ROOM}, headers=bearer()) as resp:
            assert resp.status == 201, await resp.text()
            session = (await resp.json())["session_id"]
        try:
            async with http.post(f"{url}/{session}/offer", json={"sdp": sdp, "type": kind},
                                 headers=bearer()) as resp:
                await no_5xx(resp, sdp)
        finally:
            async with http.delete(f"{url}/{session}", headers=bearer()) as gone:
                assert gone.status == 204

    async def whip(sdp: str) -> None:
        async with http.post(f"{fuzzed.url}/whip/{ROOM}", data=sdp.encode(),
                             headers={**bearer(), "Content-Type": "application/sdp"}) as resp:
            await no_5xx(resp, sdp)
            if resp.status == 201:
                await http.delete(fuzzed.url + resp.headers["Location"], headers=bearer())

    await asyncio.to_thread(fuzz(st.tuples(mutations(offer), st.just("offer") | json_values),
                                 offered, examples=EXAMPLES // 2))
    await asyncio.to_thread(fuzz(mutations(offer), whip, examples=EXAMPLES // 2))
    assert troubles.take() == []


async def test_trickle_fragments_and_candidates(fuzzed: Server, http: aiohttp.ClientSession,
                                                troubles: _Troubles) -> None:
    async with http.post(f"{fuzzed.url}/whip/{ROOM}", data=(await real_offer()).encode(),
                         headers={**bearer(), "Content-Type": "application/sdp"}) as resp:
        assert resp.status == 201, await resp.text()
        resource, etag = fuzzed.url + resp.headers["Location"], resp.headers["ETag"]
    session = resource.rsplit("/", 1)[1]
    fragment = ("a=ice-ufrag:abcd\r\na=ice-pwd:efghijklmnopqrstuvwxyz12\r\n"
                "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
                "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
                "a=end-of-candidates\r\n")

    async def patch(case: tuple[str, str | None]) -> None:
        body, if_match = case
        headers = {**bearer(), "Content-Type": "application/trickle-ice-sdpfrag"}
        if if_match is not None:
            headers["If-Match"] = if_match
        async with http.patch(resource, data=body.encode(), headers=headers) as resp:
            await no_5xx(resp, case)

    candidate = st.fixed_dictionaries({}, optional={
        "candidate": st.sampled_from(["candidate:1 1 udp 2130706431 127.0.0.1 9 typ host", ""])
        | st.text(max_size=100) | json_values,
        "sdpMid": st.sampled_from(["0", "1"]) | json_values,
        "sdpMLineIndex": st.integers() | json_values}) | json_values

    async def ice(body: object) -> None:
        async with http.patch(f"{fuzzed.url}/api/sessions/{session}/ice", json=body,
                              headers=bearer()) as resp:
            await no_5xx(resp, body)

    await asyncio.to_thread(fuzz(st.tuples(mutations(fragment), st.none() | st.just(etag)
                                           | st.just("*") | header_text), patch))
    await asyncio.to_thread(fuzz(candidate | st.fixed_dictionaries(
        {"candidates": st.lists(candidate, max_size=4) | json_values}), ice))
    await http.delete(resource, headers=bearer())
    assert troubles.take() == []


def _is_bye(message: str | bytes) -> bool:
    try:
        return json.loads(message).get("type") == "bye"  # type: ignore[no-any-return]
    except (ValueError, AttributeError, RecursionError):
        return False


# Hypothesis draws in a worker thread while the event loop's peers (aioice, SCTP) use
# the global `random`; Hypothesis takes that for the strategies using it.
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning")
async def test_data_channel_messages(fuzzed: Server, troubles: _Troubles) -> None:
    async with aiohttp.ClientSession(headers=bearer(role="listener")) as http:
        client = CaptionClient(fuzzed.url, http)
        await client.start(None, room=ROOM, name="Fuzz", speak=False, target_lang="pt")
        try:
            await _fuzz_channel(client)
        finally:
            await client.close()
    assert troubles.take() == []


async def _fuzz_channel(client: CaptionClient) -> None:
    messages = (st.text(max_size=300) | st.binary(max_size=300)
                | json_values.map(json.dumps) | nested.map(lambda s: s[:6000])
                | st.fixed_dictionaries({"type": st.sampled_from(
                    ["set_language", "set_tts", "set_monitor", "set_interpretation", "ping",
                     "x", ""])},
                    optional={"target": json_values, "enabled": json_values,
                              "mode": json_values | st.sampled_from(
                                  ["simultaneous", "consecutive"])}).map(json.dumps)
                | st.just("x" * 5000)).filter(lambda m: not _is_bye(m))

    async def send(message: str | bytes) -> None:
        client.channel.send(message)
        await asyncio.sleep(1 / (MESSAGES_PER_S * 0.8))  # under the rate: every one parsed

    await asyncio.to_thread(fuzz(messages, send, examples=EXAMPLES * 2))
    pongs = len(client.of_type("pong"))
    client.send({"type": "ping"})  # and the session still answers
    await client.wait_for(lambda m: m["type"] == "pong" and len(client.of_type("pong"))
                          > pongs, 10)
    errors = {e["code"] for e in client.of_type("error")}
    assert errors <= {"bad_message", "unknown_type", "message_too_large",
                      "unsupported_language", "bad_interpretation"}, errors


async def test_a_real_session_still_works_after_the_fuzzing(
        fuzzed: Server, jfk48: np.ndarray, troubles: _Troubles) -> None:
    async with aiohttp.ClientSession(headers=bearer()) as http:
        client = CaptionClient(fuzzed.url, http)
        try:
            await client.start(jfk48, room=ROOM, target_lang="pt")
            await client.wait_for(lambda m: m["type"] == "caption" and m["status"] == "final"
                                  and m["end_ms"] > 9000, JFK_SECONDS + 20)
        finally:
            await client.close()
    assert wer(JFK_TEXT, " ".join(f["text"] for f in client.finals())) <= 0.15
    assert troubles.take() == []
