"""Whisper (faster-whisper's CTranslate2 model) as a batch recogniser.

Why not `WhisperModel.transcribe`: it pads every input to a 30 s window, so each
pass costs ~0.7 s however short the utterance. CTranslate2 takes shorter encoder
windows, and the encoder's cost follows the window. Windows fitted to the audio
make Whisper say a short phrase two or three times over ("Thank you. Thank you.
Thank you."); `bench/windows.py` measured what stops it on JFK and on espeak-ng and
Piper phrases of 1-11 s: bounding tokens by the audio's length, a repetition
penalty and `no_repeat_ngram_size` do not (WER 13-84 %); a window of at least 6 s
does offline (WER as with 10 s, one loop in 106 passes, passes ~25 % cheaper), but
through Opus in a room a 6 s final said a sentence twice, so interims (most passes)
get 6 s and finals keep 10 s. Sentences still said twice in more words than the
audio can hold are said once. Several streams' requests are decoded in one batched
`generate` call.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import _LANGUAGE_CODES, Tokenizer

from media_server.audio import STT_SAMPLE_RATE
from media_server.engines.stt.base import DecodeRequest, Transcript
from media_server.words import words

MAX_WINDOW_S = 30.0
NO_SPEECH_THRESHOLD = 0.6
# Faster than anyone speaks: a text this dense repeats itself.
MAX_WORDS_PER_SECOND = 4.0
# Whisper's own limit for previous-text conditioning is 223; a sentence or two is enough.
CONTEXT_TOKENS = 64


@dataclass(frozen=True)
class WindowPolicy:
    """How long an encoder window a pass gets, and what keeps the decoder from looping."""

    min_window_s: float = 10.0  # finals
    interim_min_window_s: float = 6.0
    pad_s: float = 1.0  # silence after the audio
    # A generous cap on tokens per second of audio: it stops a runaway repetition.
    # English costs Whisper's tokenizer about a token a word; Vietnamese 1.6 a syllable,
    # Russian 3 a word, more where a word is misheard (espeak-ng's Vietnamese lost its
    # last words at 7 a second), so other languages get more.
    tokens_per_second: float = 7.0
    other_tokens_per_second: float = 15.0

    def max_tokens(self, audio_s: float, language: str) -> int:
        rate = self.tokens_per_second if language == "en" else self.other_tokens_per_second
        return int(8 + audio_s * rate)
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0

    def window_s(self, audio_s: float, *, final: bool = True) -> float:
        shortest = self.min_window_s if final else self.interim_min_window_s
        return min(max(shortest, audio_s + self.pad_s), MAX_WINDOW_S)


class _Model:
    """One loaded CTranslate2 Whisper with its tokenizers and the tokens it never emits."""

    def __init__(self, model_dir: str | Path, threads: int) -> None:
        self.path = Path(model_dir)
        self.whisper = WhisperModel(str(model_dir), device="cpu", compute_type="int8",
                                    cpu_threads=threads)
        self.multilingual = bool(self.whisper.model.is_multilingual)
        self._tokenizers: dict[str, Tokenizer] = {}
        self._suppress: list[int] | None = None

    def tokenizer(self, language: str) -> Tokenizer:
        tok = self._tokenizers.get(language)
        if tok is None:
            tok = Tokenizer(self.whisper.hf_tokenizer, self.multilingual, task="transcribe",
                            language=language)
            self._tokenizers[language] = tok
        return tok

    def suppressed_tokens(self, tok: Tokenizer) -> list[int]:
        if self._suppress is None:
            self._suppress = sorted({*tok.non_speech_tokens, tok.transcribe, tok.translate,
                                     tok.sot, tok.sot_prev, tok.sot_lm, tok.no_speech})
        return self._suppress


class WhisperRecognizer:
    """`model_dir` serves every language; `language_models` gives some languages a model
    of their own (an English-only model for `en`, say)."""

    name = "whisper"

    def __init__(self, model_dir: str | Path, threads: int = 2, *, final_beam_size: int = 1,
                 window: WindowPolicy = WindowPolicy(),
                 language_models: Mapping[str, str | Path] | None = None) -> None:
        self._default = _Model(model_dir, threads)
        self._by_language: dict[str, _Model] = {}
        for language, path in (language_models or {}).items():
            if language not in _LANGUAGE_CODES:
                raise ValueError(f"Whisper does not know the language {language!r}")
            loaded = next((m for m in self._by_language.values() if m.path == Path(path)),
                          None) or _Model(path, threads)  # one model may serve several
            if language != "en" and not loaded.multilingual:
                raise ValueError(f"{path} is an English-only Whisper: it cannot serve "
                                 f"{language!r}")
            self._by_language[language] = loaded
        self._final_beam = final_beam_size
        self._window = window

    def final_like_interim(self, audio_s: float) -> bool:
        return self._final_beam == 1 and \
            self._window.window_s(audio_s) == self._window.window_s(audio_s, final=False)

    def languages(self) -> frozenset[str]:
        default = frozenset(_LANGUAGE_CODES) if self._default.multilingual else {"en"}
        return frozenset(default | self._by_language.keys())

    def calibration_languages(self) -> list[str]:
        """A language each model held decodes: what start-up times it in."""
        chosen: dict[Path, str] = {}
        for language, model in self._by_language.items():
            chosen.setdefault(model.path, language)
        default = next((lang for lang in ("en", "es", "vi", *sorted(_LANGUAGE_CODES))
                        if self._model(lang) is self._default), None)
        if default is not None:
            chosen.setdefault(self._default.path, default)
        return list(dict.fromkeys(chosen.values()))

    def model_dir(self, language: str) -> Path:
        """The model that decodes `language`."""
        return self._model(language).path

    def _model(self, language: str) -> _Model:
        return self._by_language.get(language, self._default)

    def transcribe(self, requests: Sequence[DecodeRequest]) -> list[Transcript]:
        """Decode in batches that CTranslate2 can take together; results keep request order.

        A batch shares a model and a beam size, and its prompts must put the
        start-of-transcript token at one position: requests with context form their own
        batch, their contexts trimmed to the shortest one's length (the most recent
        tokens kept).
        """
        results: list[Transcript | None] = [None] * len(requests)
        groups: dict[tuple[int, int, bool], list[int]] = {}
        for i, request in enumerate(requests):
            key = (id(self._model(request.language)), self._beam(request), bool(request.context))
            groups.setdefault(key, []).append(i)
        for (_, beam, _), index in groups.items():
            batch = [requests[i] for i in index]
            for i, transcript in zip(index, self._decode(batch, beam), strict=True):
                results[i] = transcript
        return [r for r in results if r is not None]

    def _beam(self, request: DecodeRequest) -> int:
        return self._final_beam if request.final else 1

    def _prompts(self, model: _Model, requests: Sequence[DecodeRequest]) -> list[list[int]]:
        tokenizers = [model.tokenizer(r.language) for r in requests]
        contexts = [t.encode(" " + r.context.strip())[-CONTEXT_TOKENS:] if r.context else []
                    for t, r in zip(tokenizers, requests, strict=True)]
        shortest = min(len(c) for c in contexts)
        prompts = []
        for tok, context in zip(tokenizers, contexts, strict=True):
            task = [*tok.sot_sequence, tok.no_timestamps]
            prompts.append([tok.sot_prev, *context[-shortest:], *task] if shortest else task)
        return prompts

    def _decode(self, requests: Sequence[DecodeRequest], beam: int) -> list[Transcript]:
        model = self._model(requests[0].language)
        longest = max(len(r.audio) for r in requests) / STT_SAMPLE_RATE
        final = any(r.final for r in requests)  # a batch of interims and finals: the finals'
        n_samples = int(self._window.window_s(longest, final=final) * STT_SAMPLE_RATE)
        features = np.stack([self._features(model, r.audio[:n_samples], n_samples)
                             for r in requests])
        prompts = self._prompts(model, requests)
        tokenizer = model.tokenizer(requests[0].language)
        outputs = model.whisper.model.generate(
            ctranslate2.StorageView.from_array(features),
            prompts,
            beam_size=beam,
            max_length=len(prompts[0]) + self._window.max_tokens(longest, requests[0].language),
            no_repeat_ngram_size=self._window.no_repeat_ngram_size,
            repetition_penalty=self._window.repetition_penalty,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=model.suppressed_tokens(tokenizer),
        )
        transcripts = []
        for request, out in zip(requests, outputs, strict=True):
            text = tokenizer.decode(out.sequences_ids[0]).strip()
            if out.no_speech_prob > NO_SPEECH_THRESHOLD:
                text = ""
            text = said_once(text, len(request.audio) / STT_SAMPLE_RATE)
            transcripts.append(Transcript(text=text, no_speech_prob=out.no_speech_prob))
        return transcripts

    def _features(self, model: _Model, audio: np.ndarray, n_samples: int) -> np.ndarray:
        padded = np.zeros(n_samples, dtype=np.float32)
        padded[: len(audio)] = audio
        feats = model.whisper.feature_extractor(padded)
        frames = n_samples // 160
        return np.ascontiguousarray(feats[:, : frames - frames % 2])


def said_once(text: str, seconds: float) -> str:
    """A sentence repeated back to back, in more words than `seconds` of speech can
    hold, said once (and a trailing start of it again dropped)."""
    if len(words(text)) <= MAX_WORDS_PER_SECOND * seconds:
        return text
    kept: list[str] = []
    for sentence in re.findall(r"[^.!?]+[.!?]*", text):
        if kept and words(sentence) == words(kept[-1]):
            continue
        kept.append(sentence)
    if len(kept) > 1:
        tail, before = words(kept[-1]), words(kept[-2])
        if tail and not kept[-1].rstrip().endswith((".", "!", "?")) \
                and before[: len(tail)] == tail:
            kept.pop()
    return "".join(kept).strip()
