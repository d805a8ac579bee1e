"""A local stand-in for Google Cloud Speech, Translation and Text-to-Speech: a real gRPC
server on 127.0.0.1 speaking the real protocol, for the real client libraries."""

from __future__ import annotations

import grpc

from media_server.engines.stt.base import BatchRecognizer
from tests.google_fake.speech import FakeSpeech
from tests.google_fake.translation import FakeTranslation
from tests.google_fake.tts import FakeTts

__all__ = ["FakeGoogle"]


class FakeGoogle:
    def __init__(self, recognizer: BatchRecognizer) -> None:
        self.speech = FakeSpeech(recognizer)
        self.translation = FakeTranslation()
        self.tts = FakeTts()
        self._server: grpc.aio.Server | None = None
        self.address = ""

    async def start(self) -> None:
        self._server = grpc.aio.server(options=[("grpc.max_receive_message_length", -1)])
        for service in (self.speech, self.translation, self.tts):
            self._server.add_generic_rpc_handlers([service.handler()])
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        self.address = f"127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(grace=0)
