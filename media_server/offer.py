"""What an offer must be before aiortc sees it: one audio section at most (a speaker
and a WHEP player need it) and one data channel at most, nothing else, each section with its mid,
ICE credentials and DTLS fingerprint, and a BUNDLE group naming only sections that
exist. aiortc takes some broken offers and then fails half-way through answering,
in ways that leave its transports half set up; refusing them here keeps that from
happening and tells the client what is wrong."""

from __future__ import annotations

from collections import Counter

from aiortc.sdp import SessionDescription

from media_server.errors import BadRequest

MEDIA_KINDS = ("audio", "application")


def check_offer(sdp: str, *, needs_audio: bool) -> None:
    """`needs_audio`: a speaker sends audio, a WHEP player receives it."""
    try:
        offer = SessionDescription.parse(sdp)
    except Exception as exc:  # aiortc's parser raises whatever its lines led it to
        raise BadRequest("bad_sdp", f"the offer SDP cannot be parsed: {exc!r}") from exc
    kinds = Counter(media.kind for media in offer.media)
    if set(kinds) - set(MEDIA_KINDS) or any(count > 1 for count in kinds.values()):
        raise BadRequest("unsupported_media", "an offer may carry one audio section and one "
                         f"data channel, nothing else (got {dict(kinds)})")
    if needs_audio and not kinds["audio"]:
        raise BadRequest("no_audio", "the offer must have an audio media section")
    mids = []
    for media in offer.media:
        mid = media.rtp.muxId
        if not mid or media.ice is None or not media.ice.usernameFragment \
                or not media.ice.password or media.dtls is None or not media.dtls.fingerprints:
            raise BadRequest("bad_sdp", f"the {media.kind} section needs a=mid, "
                             "a=ice-ufrag, a=ice-pwd and a=fingerprint")
        mids.append(mid)
    if len(set(mids)) != len(mids):
        raise BadRequest("bad_sdp", "two sections of the offer share a mid")
    for group in offer.group:
        if set(map(str, group.items)) - set(mids):
            raise BadRequest("bad_sdp", f"a=group:{group} names a section the offer lacks")
