"""One speaker's chain, put together in one place, as the README's diagram reads:

    mic frames -> 16 kHz PCM -> speech stream (VAD + recogniser)     SpeakerPipeline
      -> echo guard -> captions (utterance ids, room offsets)         CaptionBuilder
      -> interpreter: translations, revisions, the room's readers,   Interpreter
         the store
      -> spoken translation: chunks of the stable prefix               SpokenTranslation
         (simultaneous), each final's rest or whole -> the room's voices

Data flows one way: the pipeline hands captions to the interpreter, which hands its
work to the room through `Outlets`; nothing calls back up the chain.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from history.records import UtteranceRecord
from media_server.captions import CaptionBuilder
from media_server.engines.catalog import EngineCatalog
from media_server.interpretation import Interpreter, Outlets
from media_server.participant import Participant
from media_server.pipeline import SpeakerPipeline
from media_server.protocol import CaptionMessage
from media_server.room import Room
from media_server.simultaneous import SpokenTranslation


@dataclass(frozen=True)
class SpeakerChain:
    pipeline: SpeakerPipeline
    captions: CaptionBuilder
    interpreter: Interpreter
    spoken: SpokenTranslation

    async def aclose(self) -> None:
        await self.pipeline.aclose()
        await self.interpreter.aclose()
        await self.spoken.aclose()


def speaker_chain(speaker: Participant, room: Room, *, catalog: EngineCatalog,
                  interim_interval_ms: int) -> SpeakerChain:
    info = speaker.info
    stream = catalog.stt.open_stream(info.source_lang, model=info.stt_model)
    captions = CaptionBuilder(info.participant_id, info.name, lang=info.source_lang,
                              said=info.said_before)
    engine = catalog.stt.name

    def keep(final: CaptionMessage, translations: dict[str, str]) -> None:
        room.archive(UtteranceRecord(
            session_id=info.id, utterance_id=final.utterance_id, room=room.name,
            speaker_id=final.speaker_id, speaker=final.speaker, lang=final.lang,
            text=final.text, start_ms=final.start_ms, end_ms=final.end_ms, engine=engine,
            created_at=time.time(), translations=translations))

    spoken = SpokenTranslation(info.participant_id, translator_for=catalog.translator_for,
                               heard_in=room.speech.heard_in, speak=room.speech.speak,
                               wall_time=room.wall_time)
    interpreter = Interpreter(
        speaker,
        Outlets(readers=room.target_languages, broadcast=room.broadcast,
                tell_readers_of=room.tell_readers_of, keep=keep, wall_time=room.wall_time),
        translator_for=catalog.translator_for, spoken=spoken, interval_ms=interim_interval_ms)
    pipeline = SpeakerPipeline(stream, captions, sink=interpreter, speaker=speaker,
                               echo_guard=speaker.echo_guard, clock_ms=room.clock_ms,
                               voice=room.voices.voice(info.participant_id))
    return SpeakerChain(pipeline, captions, interpreter, spoken)
