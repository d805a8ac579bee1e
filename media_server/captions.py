"""Speech events -> caption messages with utterance ids, revisions and room offsets.

Two steps, each with one owner. `CaptionBuilder` (in the speaker's pipeline) turns
speech events into captions: an utterance opens with its first interim or final and
closes with its final, every caption of it has the same `utterance_id`, and offsets
are on the room's clock. `CaptionRevisions` (in the interpreter, where captions
leave for the room) numbers them: every message of an utterance, its translated
interims included, gets a revision one higher than the last, so clients order and
dedupe by (utterance_id, revision) and replace an interim in place by its final.
"""

from __future__ import annotations

import dataclasses

from media_server.engines.stt.base import SpeechEvent, SpeechEventKind
from media_server.protocol import CaptionMessage, Translation


class CaptionBuilder:
    def __init__(self, speaker_id: str, speaker_name: str, *, lang: str, offset_ms: int = 0,
                 said: int = 0) -> None:
        self._speaker_id = speaker_id
        self.speaker_name = speaker_name
        self.lang = lang
        # Where the speech stream starts on the room's clock: speakers join at any time.
        self.offset_ms = offset_ms
        self._sequence = said  # a resumed session numbers on after what it said before
        self._open = False
        self._last_text: str | None = None

    @property
    def said(self) -> int:
        """How many utterances this speaker has begun."""
        return self._sequence

    def on_event(self, event: SpeechEvent) -> CaptionMessage | None:
        """The caption for this event (not numbered yet: revision 0), or None if it
        changes nothing."""
        if event.kind not in (SpeechEventKind.INTERIM, SpeechEventKind.FINAL):
            return None
        final = event.kind is SpeechEventKind.FINAL
        if not self._open:
            if final and not event.text:
                return None  # a false start with nothing on screen: nothing to close
            self._sequence += 1
            self._open = True
            self._last_text = None
        if not final and event.text == self._last_text:
            return None
        self._open = not final
        self._last_text = event.text
        return CaptionMessage(
            utterance_id=f"{self._speaker_id}-{self._sequence}",
            revision=0,
            status="final" if final else "interim",
            speaker=self.speaker_name,
            speaker_id=self._speaker_id,
            lang=self.lang,
            text=event.text,
            start_ms=self.offset_ms + event.start_ms,
            end_ms=self.offset_ms + event.end_ms,
            stable_chars=event.stable_chars,
        )


class CaptionRevisions:
    """The revision numbers of one speaker's captions, given as they go out."""

    def __init__(self) -> None:
        self._last: CaptionMessage | None = None  # the latest caption numbered

    def number(self, caption: CaptionMessage) -> CaptionMessage:
        """The caption as its utterance's next revision."""
        revision = self._next(caption.utterance_id)
        self._last = dataclasses.replace(caption, revision=revision)
        return self._last

    def translated(self, interim: CaptionMessage,
                   translation: Translation) -> CaptionMessage | None:
        """The interim again with its translation, as its utterance's next revision;
        None once it is no longer the latest word of an open utterance."""
        last = self._last
        if (last is None or last.status != "interim" or last.utterance_id != interim.utterance_id
                or last.text != interim.text):
            return None
        return self.number(dataclasses.replace(interim, translation=translation))

    def close(self) -> CaptionMessage | None:
        """An empty final for the utterance on screen (the speaker left mid-sentence);
        None when no utterance is open."""
        last = self._last
        if last is None or last.status != "interim":
            return None
        return self.number(dataclasses.replace(last, status="final", text="", stable_chars=0,
                                               translation=None))

    def _next(self, utterance_id: str) -> int:
        last = self._last
        return last.revision + 1 if last is not None and last.utterance_id == utterance_id else 1
