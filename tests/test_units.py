"""Small pure units: settings, protocol parsing, captions, LocalAgreement."""

import ast
import base64
import json
from pathlib import Path

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from media_server.captions import CaptionBuilder, CaptionRevisions
from media_server.engines.stt.base import SpeechEvent, SpeechEventKind
from media_server.engines.stt.local_agreement import LocalAgreement
from media_server.ice_addresses import announce
from media_server.protocol import (
    Bye,
    CaptionMessage,
    Ping,
    ProtocolError,
    SetInterpretation,
    SetLanguage,
    SetTts,
    Translation,
    parse_client_message,
)
from media_server.settings import Settings, SettingsError
from signaling import tokens
from signaling.errors import Unauthorized


def test_settings_from_environment_and_toml(tmp_path: Path) -> None:
    config = tmp_path / "li.toml"
    config.write_text('port = 9000\nstun_urls = ["stun:a:3478", "stun:b:3478"]\nmax_speakers = 2\n')
    settings = Settings.load({
        "LIVE_INTERPRETER_CONFIG": str(config),
        "LIVE_INTERPRETER_MAX_SPEAKERS": "5",  # the environment wins over the file
        "LIVE_INTERPRETER_ICE_HOST_ADDRESSES": "127.0.0.1, ::1",
    })
    assert settings.port == 9000
    assert settings.max_speakers == 5
    assert settings.stun_urls == ("stun:a:3478", "stun:b:3478")
    assert settings.ice_host_addresses == ("127.0.0.1", "::1")


@pytest.mark.parametrize("env", [
    {"LIVE_INTERPRETER_PORT": "eighty"},
    {"LIVE_INTERPRETER_MAX_SPEAKERS": "-1"},
    {"LIVE_INTERPRETER_MAX_SPEAKERS": "many"},
    {"LIVE_INTERPRETER_LOG_FORMAT": "xml"},
    {"LIVE_INTERPRETER_CONFIG": "/nonexistent/li.toml"},
])
def test_bad_settings_are_refused_clearly(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        Settings.load(env)


@pytest.mark.parametrize("env,message", [
    ({"LIVE_INTERPRETER_TRANSLATE_ATTEMPT_S": "5", "LIVE_INTERPRETER_TRANSLATE_BUDGET_S": "5"},
     "leaves room for the next provider"),
    ({"LIVE_INTERPRETER_TTS_ATTEMPT_S": "0"}, "tts_attempt_s"),
    ({"LIVE_INTERPRETER_GOOGLE_TIMEOUT_S": "5"}, "google_timeout_s is gone: .*translate_attempt_s"),
])
def test_deadline_settings_are_checked(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.load(env)


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "li.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="prot"):
        Settings.load({"LIVE_INTERPRETER_CONFIG": str(config)})


def test_client_messages_parse() -> None:
    assert parse_client_message('{"type":"set_language","target":"pt"}', 4096) == SetLanguage("pt")
    assert parse_client_message(b'{"type":"set_tts","enabled":false}', 4096) == SetTts(False)
    assert parse_client_message('{"type":"ping"}', 4096) == Ping()
    assert parse_client_message('{"type":"bye"}', 4096) == Bye()
    assert parse_client_message('{"type":"set_interpretation","mode":"consecutive"}',
                                4096) == SetInterpretation("consecutive")


@pytest.mark.parametrize("raw,code", [
    ("not json", "bad_message"),
    (b"\xff\xfe\x00", "bad_message"),
    ("[1, 2]", "bad_message"),
    ('{"type":"set_language","target":5}', "bad_message"),
    ('{"type":"set_tts","enabled":"yes"}', "bad_message"),
    ('{"type":"set_interpretation","mode":"fast"}', "bad_interpretation"),
    ('{"type":"set_interpretation"}', "bad_message"),
    ('{"type":"launch_missiles"}', "unknown_type"),
    ('{"type":"ping","pad":"' + "x" * 5000 + '"}', "message_too_large"),
    ("[" * 2000 + "]" * 2000, "bad_message"),  # too deep for the parser
])
def test_bad_client_messages_get_a_code(raw: str | bytes, code: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_client_message(raw, 4096)
    assert caught.value.code == code


def _signed(secret: bytes, header: object, claims: object) -> str:
    parts = [base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=").decode()
             for p in (header, claims)]
    signing_input = ".".join(parts)
    return signing_input + "." + tokens._sign(secret, signing_input)


@pytest.mark.parametrize("header,claims", [
    (None, {"room": "r", "role": "speaker", "exp": 2**40}),
    ([1], {"room": "r", "role": "speaker", "exp": 2**40}),
    ({"alg": "HS256"}, {"room": "r", "role": "speaker", "exp": float("inf")}),
    ({"alg": "HS256"}, {"room": "r", "role": "speaker", "exp": [1]}),
    ({"alg": "HS256"}, [1, 2]),
])
def test_signed_tokens_with_unreadable_claims_are_refused(header: object, claims: object
                                                          ) -> None:
    with pytest.raises(Unauthorized) as caught:
        tokens.verify(b"secret", _signed(b"secret", header, claims))
    assert caught.value.code == "token_invalid"
    with pytest.raises(Unauthorized):  # a signature that is not ASCII
        tokens.verify(b"secret", "a.b.\u00e9t\u00e9")


def _event(kind: SpeechEventKind, text: str, *, start: int = 100, end: int = 900) -> SpeechEvent:
    return SpeechEvent(kind, text, start, end)


def test_captions_number_utterances_and_revisions() -> None:
    builder = CaptionBuilder("p1", "Ana", lang="en")
    first = builder.on_event(_event(SpeechEventKind.INTERIM, "hello"))
    same = builder.on_event(_event(SpeechEventKind.INTERIM, "hello"))
    second = builder.on_event(_event(SpeechEventKind.INTERIM, "hello there"))
    final = builder.on_event(_event(SpeechEventKind.FINAL, "Hello there."))
    nothing = builder.on_event(_event(SpeechEventKind.FINAL, ""))  # a false start
    next_one = builder.on_event(_event(SpeechEventKind.FINAL, "Bye.", start=2000, end=2500))
    assert same is None and nothing is None
    assert first is not None and second is not None and final is not None and next_one is not None
    revisions = CaptionRevisions()
    first, second, final, next_one = (revisions.number(c) for c in (first, second, final,
                                                                    next_one))
    assert [m.revision for m in (first, second, final)] == [1, 2, 3]
    assert {m.utterance_id for m in (first, second, final)} == {"p1-1"}
    assert (final.status, next_one.utterance_id, next_one.revision) == ("final", "p1-2", 1)
    wire = json.loads(final.to_json())
    assert wire["type"] == "caption" and wire["translation"] is None and wire["speaker"] == "Ana"


def test_caption_message_json_keeps_non_ascii() -> None:
    msg = CaptionMessage("p-1", 1, "final", "Zoë", "pt", "não", 0, 10)
    assert "não" in msg.to_json()


def test_local_agreement_keeps_agreed_words_stable() -> None:
    agreement = LocalAgreement()
    assert agreement.update("and so much") == ("and so much", 0)
    text, stable = agreement.update("And so my fellow")
    assert text == "And so my fellow" and text[:stable] == "And so"
    # Whisper changes its mind about a confirmed word: the confirmed prefix does not flicker.
    text, stable = agreement.update("And saw my fellow Americans")
    assert text == "And so my fellow Americans" and text[:stable] == "And so"
    text, stable = agreement.update("And saw my fellow Americans ask")
    assert text == "And so my fellow Americans ask"
    assert text[:stable] == "And so my fellow Americans"


def test_a_word_is_confirmed_as_spelled_with_words_after_it() -> None:
    agreement = LocalAgreement()
    agreement.update("Our team has spent the last six months.")
    # The speaker paused: a second pass agrees with the whole of the first, full stop
    # included, but a clip's end is no sentence's end.
    text, stable = agreement.update("Our team has spent the last six months.")
    assert text[:stable] == "Our team has spent the last six"
    text, stable = agreement.update("Our team has spent the last six months building a system.")
    assert text[:stable] == "Our team has spent the last six months"
    assert text == "Our team has spent the last six months building a system."


def test_an_utterance_cut_off_is_closed_with_an_empty_final() -> None:
    builder = CaptionBuilder("p1", "Ana", lang="en", offset_ms=5000)
    revisions = CaptionRevisions()
    assert revisions.close() is None  # nothing open
    interim = builder.on_event(_event(SpeechEventKind.INTERIM, "ask not"))
    assert interim is not None
    sent = revisions.number(interim)
    translated = revisions.translated(interim, Translation("pt", "não pergunte"))
    closing = revisions.close()
    assert translated is not None and closing is not None
    assert (sent.revision, translated.revision) == (1, 2)
    assert (closing.utterance_id, closing.revision, closing.status, closing.text) == \
        (interim.utterance_id, 3, "final", "")
    assert closing.translation is None
    assert (closing.start_ms, closing.speaker_id) == (5100, "p1")  # on the room's clock
    assert revisions.close() is None
    # A translation that arrives once its interim is no longer the latest is not sent.
    assert revisions.translated(interim, Translation("pt", "não")) is None


async def test_announced_address_replaces_host_candidates_keeping_ports() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    announced = announce(sdp, "203.0.113.7")

    def candidates(text: str) -> list[list[str]]:
        return [line.split(" ") for line in text.split("\r\n")
                if line.startswith("a=candidate:")]

    before, after = candidates(sdp), candidates(announced)
    assert before and len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        assert new[4] == "203.0.113.7" and new[5] == old[5]  # same port
    assert "c=IN IP4 203.0.113.7" in announced
    assert announce(sdp, "") == sdp


def test_functions_of_four_or_more_parameters_take_the_rest_by_keyword() -> None:
    """The house rule (no linter has it): past the first one or two, parameters are
    keyword-only, so that two of one type cannot be swapped unseen. Test functions and
    fixtures are called by pytest, by name."""
    repo = Path(__file__).resolve().parent.parent
    offenders = []
    for package in ("media_server", "signaling", "history", "cache", "tests", "bench"):
        for path in sorted((repo / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                if node.name.startswith("test_") or any(
                        "fixture" in ast.unparse(d) for d in node.decorator_list):
                    continue
                args = node.args
                positional = [a for a in args.posonlyargs + args.args
                              if a.arg not in ("self", "cls")]
                if len(positional) + len(args.kwonlyargs) >= 4 and len(positional) > 2:
                    offenders.append(f"{path.relative_to(repo)}:{node.lineno} {node.name}")
    assert not offenders, offenders
