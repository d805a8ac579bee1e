"""Translation v3 `TranslateText` and `GetSupportedLanguages`, for tests.

A translation is marked, not made: "[pt] <text>", so a test can tell exactly which
provider answered and that the text went through unchanged.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter

import grpc
from google.cloud.translate_v3.types import translation_service as ts

from tests.google_fake.hang import Hang

LANGUAGES = ("en", "es", "pt", "vi", "fr", "de")
_PARENT = re.compile(r"^projects/[^/]+/locations/[^/]+$")


class FakeTranslation:
    def __init__(self) -> None:
        self.down = False  # every call fails with UNAVAILABLE
        self.fail_next = 0  # the next N calls fail with UNAVAILABLE
        self.delay_s = 0.0
        self.hang = Hang()  # on: calls get no answer (until the caller gives up)
        self.calls: Counter[str] = Counter()  # per target language
        self.in_flight = self.most_in_flight = 0  # calls being answered at once
        self.requests: list[ts.TranslateTextRequest] = []

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "google.cloud.translation.v3.TranslationService", {
                "TranslateText": grpc.unary_unary_rpc_method_handler(
                    self.translate_text,
                    request_deserializer=ts.TranslateTextRequest.deserialize,
                    response_serializer=ts.TranslateTextResponse.serialize),
                "GetSupportedLanguages": grpc.unary_unary_rpc_method_handler(
                    self.get_supported_languages,
                    request_deserializer=ts.GetSupportedLanguagesRequest.deserialize,
                    response_serializer=ts.SupportedLanguages.serialize)})

    async def _check_up(self, context: grpc.aio.ServicerContext[object, object]) -> None:
        if self.down or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "injected failure")
        await asyncio.sleep(self.delay_s)
        await self.hang.wait()

    async def translate_text(self, request: ts.TranslateTextRequest,
                             context: grpc.aio.ServicerContext[object, object]
                             ) -> ts.TranslateTextResponse:
        self.requests.append(request)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self._check_up(context)
        finally:
            self.in_flight -= 1
        if not _PARENT.match(request.parent) or request.target_language_code not in LANGUAGES:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad parent or target")
        self.calls[request.target_language_code] += 1
        return ts.TranslateTextResponse(translations=[
            ts.Translation(translated_text=f"[{request.target_language_code}] {text}")
            for text in request.contents])

    async def get_supported_languages(self, request: ts.GetSupportedLanguagesRequest,
                                      context: grpc.aio.ServicerContext[object, object]
                                      ) -> ts.SupportedLanguages:
        await self._check_up(context)
        return ts.SupportedLanguages(languages=[
            ts.SupportedLanguage(language_code=code, support_source=True, support_target=True)
            for code in LANGUAGES])
