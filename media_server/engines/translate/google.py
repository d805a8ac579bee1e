"""Google Cloud Translation v3 (`translate_text`) through the shared async client.

The API takes one target language per request (several texts at once), so the
targets of one utterance go out as concurrent requests on the one HTTP/2 channel;
the cache in front of every translator makes each (text, target) cost one call.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from google.api_core import exceptions, retry_async
from google.cloud.translate_v3 import TranslationServiceAsyncClient

from media_server.engines.translate.base import TranslationFailed

log = logging.getLogger(__name__)

TRANSIENT = (exceptions.ServiceUnavailable, exceptions.DeadlineExceeded,
             exceptions.InternalServerError, exceptions.TooManyRequests,
             exceptions.Aborted)


class GoogleTranslator:
    name = "google"

    def __init__(
        self, client: TranslationServiceAsyncClient, project: str, *, location: str,
        timeout_s: float = 5.0,
    ) -> None:
        self._client = client
        self._parent = f"projects/{project}/locations/{location}"
        self._timeout = timeout_s
        # Transient errors are retried within the deadline; the fallback adapter
        # takes over past it.
        self._retry = retry_async.AsyncRetry(
            predicate=retry_async.if_exception_type(*TRANSIENT),
            initial=0.1, maximum=1.0, multiplier=2.0, timeout=timeout_s)
        self._pairs: frozenset[tuple[str, str]] = frozenset()

    async def load_languages(self) -> None:
        """Ask the service which languages it translates from and into."""
        supported = await self._client.get_supported_languages(
            parent=self._parent, retry=self._retry, timeout=self._timeout)
        sources = {lang.language_code for lang in supported.languages if lang.support_source}
        targets = {lang.language_code for lang in supported.languages if lang.support_target}
        self._pairs = frozenset((s, t) for s in sources for t in targets if s != t)
        log.info("Google translation languages loaded",
                 extra={"sources": len(sources), "targets": len(targets)})

    def pairs(self) -> frozenset[tuple[str, str]]:
        return self._pairs

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        try:
            response = await self._client.translate_text(
                parent=self._parent, contents=list(texts), mime_type="text/plain",
                source_language_code=source, target_language_code=target,
                retry=self._retry, timeout=self._timeout)
        except (exceptions.GoogleAPICallError, exceptions.RetryError) as exc:
            raise TranslationFailed(f"Google translation failed: {exc}") from exc
        result = [t.translated_text for t in response.translations]
        if len(result) != len(texts):
            raise TranslationFailed(f"Google returned {len(result)} translations "
                                    f"for {len(texts)} texts")
        return result
