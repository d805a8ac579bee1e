"""Speech events -> caption messages with utterance ids, revisions and room offsets.

One builder per speaker. An utterance opens with its first interim or final and
closes with its final; every message of it has the same `utterance_id` and a
revision one higher than the last, so clients order and dedupe by
(utterance_id, revision) and replace an interim in place by its final.
"""

from __future__ import annotations

import dataclasses

from media_server.engines.stt.base import SpeechEvent, SpeechEventKind
from media_server.protocol import CaptionMessage, Translation


class CaptionBuilder:
    def __init__(self, speaker_id: str, speaker_name: str, lang: str, offset_ms: int = 0,
                 said: int = 0) -> None:
        self._speaker_id = speaker_id
        self.speaker_name = speaker_name
        self.lang = lang
        # Where the speech stream starts on the room's clock: speakers join at any time.
        self.offset_ms = offset_ms
        self._sequence = said  # a resumed session numbers on after what it said before
        self._revision = 0
        self._open = False
        self._last: CaptionMessage | None = None

    @property
    def said(self) -> int:
        """How many utterances this speaker has begun."""
        return self._sequence

    @property
    def current_utterance_id(self) -> str:
        return f"{self._speaker_id}-{self._sequence}"

    def revise(self, caption: CaptionMessage, translation: Translation) -> CaptionMessage | None:
        """The same interim again with its translation, as the utterance's next revision;
        None once that interim is no longer the latest word of an open utterance."""
        if (not self._open or caption.utterance_id != self.current_utterance_id
                or self._last is None or caption.text != self._last.text):
            return None
        self._revision += 1
        return dataclasses.replace(caption, revision=self._revision, translation=translation)

    def close(self) -> CaptionMessage | None:
        """An empty final for the utterance on screen (the speaker left mid-sentence);
        None when no utterance is open."""
        if not self._open or self._last is None:
            return None
        self._open = False
        self._revision += 1
        return dataclasses.replace(self._last, revision=self._revision, status="final",
                                   text="", stable_chars=0, translation=None)

    def on_event(self, event: SpeechEvent) -> CaptionMessage | None:
        """Return the caption to send for this event, or None if it changes nothing."""
        if event.kind not in (SpeechEventKind.INTERIM, SpeechEventKind.FINAL):
            return None
        final = event.kind is SpeechEventKind.FINAL
        if not self._open:
            if final and not event.text:
                return None  # a false start with nothing on screen: nothing to close
            self._sequence += 1
            self._revision = 0
            self._open = True
            self._last = None
        if not final and self._last is not None and event.text == self._last.text:
            return None
        self._revision += 1
        if final:
            self._open = False
        self._last = CaptionMessage(
            utterance_id=self.current_utterance_id,
            revision=self._revision,
            status="final" if final else "interim",
            speaker=self.speaker_name,
            speaker_id=self._speaker_id,
            lang=self.lang,
            text=event.text,
            start_ms=self.offset_ms + event.start_ms,
            end_ms=self.offset_ms + event.end_ms,
            stable_chars=event.stable_chars,
        )
        return self._last
