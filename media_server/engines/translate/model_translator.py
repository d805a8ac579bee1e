"""A CTranslate2 model directory a user brought (`model_dir.py`) as a translation
provider.

Texts wait in one queue per model; each batch is every text waiting (up to
`MAX_BATCH`) when the previous batch ends, so interims and finals of several rooms
arriving together cost one `translate_batch` call. Tokenising, translating and
detokenising run in the worker thread the loader gives (one for all models: a bounded
thread count beside Whisper), never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import ctranslate2
import sentencepiece

from media_server.engines.translate.base import TranslationFailed
from media_server.engines.translate.model_dir import ModelDir, ModelDirError
from media_server.metrics import TRANSLATION_BATCH_TEXTS, TRANSLATION_BATCHES

log = logging.getLogger(__name__)

MAX_BATCH = 16
BEAM_SIZE = 2
# A translation runs to at most this many tokens per source token (and a few more):
# a model that will not stop is cut, never left to fill the batch's time.
MAX_LENGTH_RATIO = 2.5
SPECIAL_TOKENS = frozenset({"<s>", "</s>", "<pad>", "<unk>"})


def decoding_bound(source_tokens: int) -> int:
    """The most tokens a translation of `source_tokens` tokens may run to."""
    return int(source_tokens * MAX_LENGTH_RATIO) + 8


def _tokenizer(path: str) -> sentencepiece.SentencePieceProcessor:
    try:
        return sentencepiece.SentencePieceProcessor(model_file=path)
    except (OSError, RuntimeError) as exc:
        raise ModelDirError(f"translation model: {path} is not a SentencePiece model "
                            f"({exc})") from exc


@dataclass
class _Request:
    text: str
    source: str
    target: str
    future: asyncio.Future[str] = field(repr=False)


class ModelTranslator:
    def __init__(self, model: ModelDir, executor: Executor, *, threads: int = 1) -> None:
        """Loads the model (seconds for a real one): call it in a thread."""
        self.name = model.name
        self._model = model
        self._executor = executor
        try:
            self._translator = ctranslate2.Translator(
                str(model.path), device="cpu", inter_threads=1, intra_threads=threads)
        except Exception as exc:  # CTranslate2 says IndexError, RuntimeError, ValueError...
            raise ModelDirError(f"translation model: cannot load {model.path / 'model.bin'}: "
                                f"{exc}") from exc
        self._source = _tokenizer(str(model.source_tokenizer))
        self._target = self._source if model.target_tokenizer == model.source_tokenizer \
            else _tokenizer(str(model.target_tokenizer))
        self._waiting: list[_Request] = []
        self._draining: asyncio.Task[None] | None = None

    def pairs(self) -> frozenset[tuple[str, str]]:
        return self._model.pairs()

    async def translate(self, texts: Sequence[str], source: str, target: str) -> list[str]:
        if (source, target) not in self.pairs():
            raise TranslationFailed(f"{self.name} does not translate {source}->{target}")
        loop = asyncio.get_running_loop()
        requests = [_Request(t, source, target, loop.create_future())
                    for t in texts if t.strip()]
        self._waiting.extend(requests)
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain(), name=f"translate {self.name}")
        translated = iter(await asyncio.gather(*(r.future for r in requests)))
        return [next(translated) if t.strip() else t for t in texts]

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            batch = [r for r in self._waiting[:MAX_BATCH] if not r.future.done()]
            del self._waiting[:MAX_BATCH]
            if not batch:  # their callers gave up (a deadline) while they waited
                continue
            TRANSLATION_BATCHES.labels(self.name).inc()
            TRANSLATION_BATCH_TEXTS.labels(self.name).inc(len(batch))
            results: Sequence[str | TranslationFailed]
            try:
                results = await loop.run_in_executor(self._executor, self._run, batch)
            except Exception as exc:
                log.warning("translation batch failed",
                            extra={"provider": self.name, "texts": len(batch), "error": repr(exc)})
                failure = TranslationFailed(f"{self.name}: {exc!r}")
                results = [failure] * len(batch)
            for request, result in zip(batch, results, strict=True):
                if request.future.done():
                    continue
                if isinstance(result, str):
                    request.future.set_result(result)
                else:
                    request.future.set_exception(result)

    def _run(self, batch: Sequence[_Request]) -> list[str]:
        """In the worker thread: tokenise, translate and detokenise a batch."""
        sources = [self._source_tokens(r.text, r.source) for r in batch]
        tokens = self._model.language_tokens
        prefixes = [[tokens[r.target]] for r in batch] \
            if self._model.family == "many_to_many" else None
        bounds = [decoding_bound(len(s)) for s in sources]
        results = self._translator.translate_batch(
            sources, target_prefix=prefixes, beam_size=BEAM_SIZE, max_batch_size=MAX_BATCH,
            max_decoding_length=max(bounds))
        # Each cut at its own bound: a text's translation does not depend on its batch.
        return [self._detokenise(result.hypotheses[0][:bound])
                for result, bound in zip(results, bounds, strict=True)]

    def _source_tokens(self, text: str, source: str) -> list[str]:
        pieces: list[str] = self._source.encode(text, out_type=str)
        if self._model.family == "many_to_many":
            pieces = [self._model.language_tokens[source], *pieces]
        if not self._model.add_source_eos:
            pieces.append(self._model.eos_token)
        return pieces

    def _detokenise(self, hypothesis: Sequence[str]) -> str:
        """The target's pieces as text, without the target prefix or special tokens."""
        pieces = [p for p in hypothesis
                  if p not in SPECIAL_TOKENS and p not in self._model.all_language_tokens]
        ids = [self._target.piece_to_id(p) for p in pieces]
        if self._target.unk_id() not in ids:
            return str(self._target.decode(ids)).strip()
        # Pieces of the source's vocabulary (a shared one): as SentencePiece joins them.
        return "".join(pieces).replace("\u2581", " ").strip()
