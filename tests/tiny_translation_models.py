"""Tiny CTranslate2 translation models, built inside the tests: random weights set on
CTranslate2's own Transformer spec (no training framework) and a SentencePiece
tokenizer trained on a few lines. They translate nonsense, but through every step a
real model goes through: the directory's files, tokenisation, language tokens, the
target prefix, batching and detokenisation.

Two families, laid out as CTranslate2's converters leave them with the tokenizer files
copied beside (`--copy_files`):
- per pair (Marian / OPUS-MT): `source.spm`, `target.spm`, `shared_vocabulary.json`;
- many-to-many (NLLB-200 / M2M-100): one `sentencepiece.bpe.model` and language tokens
  in the vocabulary (`vie_Latn`, or `__vi__`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import sentencepiece
from ctranslate2.specs import TransformerSpec, attention_spec, common_spec, transformer_spec

SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]
LINES = [
    "Hello, how are you today?", "The meeting starts at nine.",
    "Xin chào, hôm nay bạn thế nào?", "Cuộc họp bắt đầu lúc chín giờ.",
    "Olá, como você está hoje?", "A reunião começa às nove.",
    "Ask not what your country can do for you.", "Cảm ơn rất nhiều.",
]
D_MODEL = 16
FFN = 32


def train_sentencepiece(path: Path, lines: Sequence[str] = LINES, *, vocab_size: int = 90
                        ) -> list[str]:
    """A SentencePiece model trained on `lines`; returns its pieces (its vocabulary)."""
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size,
        model_type="unigram", character_coverage=1.0, hard_vocab_limit=False,
        unk_id=0, bos_id=1, eos_id=2, pad_id=3, minloglevel=2)
    path.write_bytes(model.getvalue())
    processor = sentencepiece.SentencePieceProcessor(model_file=str(path))
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def _linear(rng: np.random.Generator, rows: int, cols: int) -> common_spec.LinearSpec:
    linear = common_spec.LinearSpec()
    linear.weight = rng.normal(0, 0.3, (rows, cols)).astype(np.float32)
    return linear


def _norm(spec: common_spec.LayerNormSpec) -> None:
    spec.gamma = np.ones(D_MODEL, np.float32)
    spec.beta = np.zeros(D_MODEL, np.float32)


def _attention(rng: np.random.Generator, spec: attention_spec.MultiHeadAttentionSpec, *,
               self_attention: bool) -> None:
    _norm(spec.layer_norm)
    if self_attention:  # fused query-key-value, then the output
        shapes = [(3 * D_MODEL, D_MODEL), (D_MODEL, D_MODEL)]
    else:  # query, fused key-value, output
        shapes = [(D_MODEL, D_MODEL), (2 * D_MODEL, D_MODEL), (D_MODEL, D_MODEL)]
    spec.linear = [_linear(rng, rows, cols) for rows, cols in shapes]


def _ffn(rng: np.random.Generator, spec: transformer_spec.FeedForwardSpec) -> None:
    _norm(spec.layer_norm)
    spec.linear_0 = _linear(rng, FFN, D_MODEL)
    spec.linear_1 = _linear(rng, D_MODEL, FFN)


def build_model(directory: Path, vocabulary: Sequence[str], *, seed: int = 1) -> None:
    """A one-layer Transformer with random weights over `vocabulary` (shared by source
    and target), saved as a CTranslate2 model directory."""
    rng = np.random.default_rng(seed)
    spec = TransformerSpec.from_config(1, 2)
    vocab = len(vocabulary)
    for embeddings in spec.encoder.embeddings:
        embeddings.weight = rng.normal(0, 0.3, (vocab, D_MODEL)).astype(np.float32)
    spec.decoder.embeddings.weight = rng.normal(0, 0.3, (vocab, D_MODEL)).astype(np.float32)
    for layer in spec.encoder.layer:
        _attention(rng, layer.self_attention, self_attention=True)
        _ffn(rng, layer.ffn)
    for layer in spec.decoder.layer:
        _attention(rng, layer.self_attention, self_attention=True)
        _attention(rng, layer.attention, self_attention=False)
        _ffn(rng, layer.ffn)
    _norm(spec.encoder.layer_norm)
    _norm(spec.decoder.layer_norm)
    spec.decoder.projection = _linear(rng, vocab, D_MODEL)
    spec.register_source_vocabulary(list(vocabulary))
    spec.register_target_vocabulary(list(vocabulary))
    spec.config.unk_token = "<unk>"
    spec.config.bos_token = "<s>"
    spec.config.eos_token = "</s>"
    spec.config.decoder_start_token = "</s>"  # as the converters set it for Marian/NLLB
    spec.validate()
    spec.optimize(quantization=None)
    spec.save(str(directory))


def per_pair_model(directory: Path, *, seed: int = 1) -> Path:
    """An OPUS-MT-like model directory: two tokenizers over one shared vocabulary."""
    directory.mkdir(parents=True)
    pieces = train_sentencepiece(directory / "source.spm")
    target_pieces = train_sentencepiece(directory / "target.spm", vocab_size=80)
    vocabulary = pieces + [p for p in target_pieces if p not in set(pieces)]
    build_model(directory, vocabulary, seed=seed)
    return directory


def many_to_many_model(directory: Path, language_tokens: Sequence[str], *, seed: int = 2
                       ) -> Path:
    """An NLLB- or M2M-like model directory: one tokenizer, language tokens appended to
    the vocabulary as `--copy_files`'d conversions of those models have them."""
    directory.mkdir(parents=True)
    pieces = train_sentencepiece(directory / "sentencepiece.bpe.model")
    build_model(directory, pieces + list(language_tokens), seed=seed)
    return directory


def read_config(directory: Path) -> dict[str, object]:
    config: dict[str, object] = json.loads((directory / "config.json").read_text())
    return config
