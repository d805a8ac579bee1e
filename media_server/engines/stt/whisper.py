"""Whisper (faster-whisper's CTranslate2 model) as a batch recogniser.

Why not `WhisperModel.transcribe`: it pads every input to a 30 s window, so each
pass costs ~0.7 s however short the utterance. CTranslate2 takes shorter encoder
windows; below ~10 s Whisper starts to repeat itself, so the window is
max(10 s, audio + 1 s): 0.15-0.35 s a pass here, 2-4x cheaper. Several streams'
requests are decoded in one batched `generate` call.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import _LANGUAGE_CODES, Tokenizer

from media_server.audio import STT_SAMPLE_RATE
from media_server.engines.stt.base import DecodeRequest, Transcript

MIN_WINDOW_S = 10.0
TRAILING_PAD_S = 1.0
MAX_WINDOW_S = 30.0
# A generous cap on tokens per second of audio: it stops the rare runaway repetition.
TOKENS_PER_SECOND = 7
NO_SPEECH_THRESHOLD = 0.6
# Whisper's own limit for previous-text conditioning is 223; a sentence or two is enough.
CONTEXT_TOKENS = 64


class WhisperRecognizer:
    name = "whisper"

    def __init__(self, model_dir: str | Path, threads: int = 2, final_beam_size: int = 1) -> None:
        self._model = WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads
        )
        self._final_beam = final_beam_size
        self._tokenizers: dict[str, Tokenizer] = {}
        self._suppress: list[int] | None = None

    def languages(self) -> frozenset[str]:
        return frozenset(_LANGUAGE_CODES)

    def _tokenizer(self, language: str) -> Tokenizer:
        tok = self._tokenizers.get(language)
        if tok is None:
            tok = Tokenizer(self._model.hf_tokenizer, True, task="transcribe", language=language)
            self._tokenizers[language] = tok
        return tok

    def _suppressed_tokens(self, tok: Tokenizer) -> list[int]:
        if self._suppress is None:
            self._suppress = sorted({*tok.non_speech_tokens, tok.transcribe, tok.translate,
                                     tok.sot, tok.sot_prev, tok.sot_lm, tok.no_speech})
        return self._suppress

    def transcribe(self, requests: Sequence[DecodeRequest]) -> list[Transcript]:
        """Decode in batches that CTranslate2 can take together; results keep request order.

        A batch shares a beam size, and its prompts must put the start-of-transcript
        token at one position: requests with context form their own batch, their
        contexts trimmed to the shortest one's length (the most recent tokens kept).
        """
        results: list[Transcript | None] = [None] * len(requests)
        groups: dict[tuple[int, bool], list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault((self._beam(request), bool(request.context)), []).append(i)
        for (beam, _), index in sorted(groups.items()):
            batch = [requests[i] for i in index]
            for i, transcript in zip(index, self._decode(batch, beam), strict=True):
                results[i] = transcript
        return [r for r in results if r is not None]

    def _beam(self, request: DecodeRequest) -> int:
        return self._final_beam if request.final else 1

    def _prompts(self, requests: Sequence[DecodeRequest]) -> list[list[int]]:
        tokenizers = [self._tokenizer(r.language) for r in requests]
        contexts = [t.encode(" " + r.context.strip())[-CONTEXT_TOKENS:] if r.context else []
                    for t, r in zip(tokenizers, requests, strict=True)]
        shortest = min(len(c) for c in contexts)
        prompts = []
        for tok, context in zip(tokenizers, contexts, strict=True):
            task = [tok.sot, tok.language, tok.transcribe, tok.no_timestamps]
            prompts.append([tok.sot_prev, *context[-shortest:], *task] if shortest else task)
        return prompts

    def _decode(self, requests: Sequence[DecodeRequest], beam: int) -> list[Transcript]:
        longest = max(len(r.audio) for r in requests) / STT_SAMPLE_RATE
        window = min(max(MIN_WINDOW_S, longest + TRAILING_PAD_S), MAX_WINDOW_S)
        n_samples = int(window * STT_SAMPLE_RATE)
        features = np.stack([self._features(r.audio[:n_samples], n_samples) for r in requests])
        prompts = self._prompts(requests)
        tokenizer = self._tokenizer(requests[0].language)
        outputs = self._model.model.generate(
            ctranslate2.StorageView.from_array(features),
            prompts,
            beam_size=beam,
            max_length=int(len(prompts[0]) + 8 + longest * TOKENS_PER_SECOND),
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppressed_tokens(tokenizer),
        )
        transcripts = []
        for out in outputs:
            text = tokenizer.decode(out.sequences_ids[0]).strip()
            if out.no_speech_prob > NO_SPEECH_THRESHOLD:
                text = ""
            transcripts.append(Transcript(text=text, no_speech_prob=out.no_speech_prob))
        return transcripts

    def _features(self, audio: np.ndarray, n_samples: int) -> np.ndarray:
        padded = np.zeros(n_samples, dtype=np.float32)
        padded[: len(audio)] = audio
        feats = self._model.feature_extractor(padded)
        frames = n_samples // 160
        return np.ascontiguousarray(feats[:, : frames - frames % 2])
