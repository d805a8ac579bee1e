"""Spoken translation as a listener hears it, consecutive and simultaneous side by side.

Sentences of 2-20 s spoken by Piper and espeak-ng, and JFK, each into its own room in
both modes, through WebRTC to a server process on loopback, English -> Portuguese.
For each: the ear-voice span (first word -> first translated audio on the return
track; end of speech -> end of translated audio); how much of each final was spoken:
the share of its words whose translation a clip said (the `speech` messages'
`source`), of its translation's words said word for word (their `text`: a chunk
worded otherwise counts as missing), and of those a listener hears (the return
track re-transcribed by Whisper in Portuguese, consecutive being the baseline); and
the quality of what was spoken (chrF against the whole-sentence translation and, for
each sentence, against a translation written by hand). Latencies as p50/p95 in
seconds and as ratios to the machine's yardstick (a plain Whisper decode, timed in
the run).

    .venv/bin/python bench/interpretation.py [--each] [--voices piper,espeak,jfk]
                                             [--modes consecutive,simultaneous]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile, phrases, server_process, speech_bounds, wait_ready, yardstick
from media_server.audio import STT_SAMPLE_RATE, pcm_to_float, resample_pcm
from tests.conftest import JFK, JFK_TEXT, LONG_TEXT
from tests.rtc_client import RATE, CaptionClient, load_pcm48

PORT = 8096
LOUD = 0.01
TARGET = "pt"
# English sentences and Portuguese translations written for this benchmark.
SENTENCES = [
    ("Please send me the report by Monday.",
     "Por favor, envie-me o relatório até segunda-feira."),
    ("I think we should move the launch to next Tuesday, because the documentation is "
     "not ready yet.",
     "Acho que devemos adiar o lançamento para a próxima terça-feira, porque a "
     "documentação ainda não está pronta."),
    ("Thank you all for coming today, and before we start, I would like to remind "
     "everyone that the office will be closed on Friday.",
     "Obrigado a todos por virem hoje e, antes de começarmos, gostaria de lembrar a todos "
     "que o escritório estará fechado na sexta-feira."),
    ("The new version of the application is faster than the old one, it uses less "
     "memory, and most of our customers have already moved to it without any problems.",
     "A nova versão do aplicativo é mais rápida que a antiga, usa menos memória, e a "
     "maioria dos nossos clientes já migrou para ela sem nenhum problema."),
    ("If the weather is good tomorrow, we will walk to the river in the morning, have "
     "lunch in the small restaurant near the bridge, and come back by train in the "
     "afternoon.",
     "Se o tempo estiver bom amanhã, vamos caminhar até o rio de manhã, almoçar no "
     "pequeno restaurante perto da ponte e voltar de trem à tarde."),
    ("When we looked at the numbers from the last quarter, we saw that sales in the south "
     "grew by twelve percent, while sales in the north stayed about the same as the year "
     "before.",
     "Quando analisamos os números do último trimestre, vimos que as vendas no sul "
     "cresceram doze por cento, enquanto as vendas no norte ficaram praticamente iguais "
     "às do ano anterior."),
    (LONG_TEXT,
     "Nossa equipe passou os últimos seis meses construindo um sistema que ouve pessoas "
     "falando em um idioma, escreve o que elas dizem, traduz para outro idioma e lê a "
     "tradução em voz alta enquanto elas ainda estão falando, para que todos na reunião "
     "possam acompanhar sem esperar o fim de cada frase nem pedir a quem fala que fale "
     "mais devagar."),
]
JFK_REFERENCE = ("E assim, meus compatriotas americanos, não perguntem o que o seu país "
                 "pode fazer por vocês, perguntem o que vocês podem fazer pelo seu país.")
MODES = ("consecutive", "simultaneous")


@dataclass
class Sentence:
    name: str
    pcm: np.ndarray  # 48 kHz mono int16
    text: str
    reference: str  # a human translation


@dataclass
class FinalHeard:
    text: str  # the final, in the original
    translation: str  # its translation, whole
    said: str  # what its clips said, by the server's account (their `text`)
    covered: str  # the words of the original they translate (their `source`)
    audio: np.ndarray  # the return track during its clips, 16 kHz


@dataclass
class Heard:
    """One sentence in one mode, as the listener got it."""

    seconds: float  # of speech
    first_audio: float | None = None  # first word -> first translated audio (s)
    end_audio: float | None = None  # end of speech -> end of translated audio (s)
    finals: list[FinalHeard] = field(default_factory=list)
    cut_ms: int = 0
    clips: int = 0


async def synthesize(sentences: list[tuple[str, str]], voices: set[str]) -> list[Sentence]:
    made: list[Sentence] = []
    if "piper" in voices:
        from media_server.engines.tts.piper import PiperTts

        piper = PiperTts()
        await piper.start()
        try:
            for i, (text, reference) in enumerate(sentences):
                chunks = [c async for c in piper.synthesize(text, "en")]
                pcm = b"".join(resample_pcm(c.pcm, c.sample_rate, RATE) for c in chunks)
                made.append(Sentence(f"piper-{i}", np.frombuffer(pcm, "<i2").copy(), text,
                                     reference))
        finally:
            await piper.close()
    if "espeak" in voices:
        made += await asyncio.to_thread(_espeak, sentences)
    if "jfk" in voices:
        made.append(Sentence("jfk", load_pcm48(JFK), JFK_TEXT, JFK_REFERENCE))
    return made


def _espeak(sentences: list[tuple[str, str]]) -> list[Sentence]:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is missing: apt-get install espeak-ng")
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (text, reference) in enumerate(sentences):
            wav = Path(tmp) / f"{i}.wav"
            subprocess.run([espeak, "-v", "en-us", "-s", "165", "-w", str(wav), text],
                           check=True)
            made.append(Sentence(f"espeak-{i}", load_pcm48(wav), text, reference))
    return made


async def listen(url: str, sentence: Sentence, *, mode: str, room: str) -> Heard:
    async with aiohttp.ClientSession() as http:
        client = CaptionClient(url, http, keep_return_pcm=True)
        await client.start(sentence.pcm, lead_silence_s=0.5, room=room, target_lang=TARGET,
                           interpretation=mode)
        await asyncio.sleep(len(sentence.pcm) / RATE + 1.0)
        await _until_quiet(client)
        await client.close()
    assert client.track is not None and client.track.audio_t0 is not None
    start, end = speech_bounds(sentence.pcm)
    first_word = client.track.audio_t0 + start / RATE
    speech_end = client.track.audio_t0 + end / RATE
    heard = Heard(seconds=(end - start) / RATE)
    loud = [t for t, rms in client.return_audio if rms > LOUD and t > first_word]
    if loud:
        heard.first_audio = loud[0] - first_word
        heard.end_audio = loud[-1] + 0.02 - speech_end
    speech = [r for r in client.received if r.message["type"] == "speech"]
    heard.clips = len({(r.message["utterance_id"], r.message["chunk"]) for r in speech})
    for final in client.finals():
        if not final.get("translation"):
            continue
        said = _clips_of(speech, final["utterance_id"])
        heard.cut_ms += sum(m["cut_ms"] for _, m in said)
        windows = [(at, at + m["duration_ms"] / 1000 + 0.1) for at, m in said]
        audio = [pcm for t, pcm in client.return_pcm if any(a <= t < b for a, b in windows)]
        pcm16 = (resample_pcm(np.concatenate(audio).tobytes(), RATE, STT_SAMPLE_RATE)
                 if audio else b"")
        heard.finals.append(FinalHeard(
            final["text"], final["translation"]["text"], " ".join(m["text"] for _, m in said),
            " ".join(m["source"] for _, m in said), pcm_to_float(pcm16)))
    return heard


def _clips_of(speech: list[Any], utterance_id: str) -> list[tuple[float, dict[str, Any]]]:
    """The clips of an utterance in chunk order: (when the first announcement of each
    arrived, its last announcement: complete, with its full duration)."""
    clips: dict[int, tuple[float, dict[str, Any]]] = {}
    for r in speech:
        if r.message["utterance_id"] == utterance_id:
            chunk = r.message["chunk"]
            clips[chunk] = (clips[chunk][0] if chunk in clips else r.at, r.message)
    return [clips[chunk] for chunk in sorted(clips)]


async def _until_quiet(client: CaptionClient, quiet_s: float = 3.0, within: float = 60) -> None:
    """Until nothing but pongs has come for `quiet_s` and nothing is playing."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        messages = [r for r in client.received if r.message["type"] != "pong"]
        playing = [m["state"] for m in client.of_type("playout_state")]
        if (messages and time.monotonic() - messages[-1].at > quiet_s
                and (not playing or playing[-1] == "idle")):
            return
        await asyncio.sleep(0.25)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def coverage(said: str, translation: str) -> float:
    """The share of the translation's words found, in order, in what was said."""
    reference = _words(translation)
    if not reference:
        return 1.0
    matcher = SequenceMatcher(None, reference, _words(said), autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(reference)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--each", action="store_true", help="print every sentence's figures")
    parser.add_argument("--voices", default="piper,espeak,jfk")
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    asyncio.run(_run(set(args.voices.split(",")), modes=args.modes.split(","), each=args.each))


async def _run(voices: set[str], *, modes: list[str], each: bool) -> None:
    import sacrebleu
    from faster_whisper import WhisperModel

    from media_server.engines.stt.whisper_files import whisper_base_dir
    from media_server.settings import Settings

    sentences = await synthesize(SENTENCES, voices)
    stick = yardstick(phrases("en"))
    print(f"yardstick: one plain 30 s-window faster-whisper decode of a 2-4 s phrase, "
          f"p50 {stick:.2f} s (this machine, this run); ratios below are to it")
    results: dict[str, list[tuple[Sentence, Heard]]] = {mode: [] for mode in modes}
    url = f"http://127.0.0.1:{PORT}"
    with server_process(PORT):
        await wait_ready(url)
        for n, sentence in enumerate(sentences):
            for mode in modes:
                heard = await listen(url, sentence, mode=mode, room=f"bench-{n}-{mode}")
                results[mode].append((sentence, heard))
    whisper = WhisperModel(str(whisper_base_dir(Settings.load().data_dir)), device="cpu",
                           compute_type="int8", cpu_threads=2)

    def transcribe(audio: np.ndarray) -> str:
        if not len(audio):
            return ""
        segments, _ = whisper.transcribe(audio, language=TARGET)
        return " ".join(s.text.strip() for s in segments)

    seconds = [h.seconds for _, h in results[modes[0]]]
    print(f"{len(sentences)} sentences of {min(seconds):.1f}-{max(seconds):.1f} s "
          f"({', '.join(sorted(voices))}), en -> {TARGET}")
    print(f"{'':44}" + "".join(f"{mode:>26}" for mode in modes))
    rows: dict[str, list[str]] = {}
    for mode in modes:
        done = results[mode]
        long = [h for _, h in done if h.seconds >= 8]
        finals = [f for _, h in done for f in h.finals]
        covered = [coverage(f.covered, f.text) for f in finals]
        worded = [coverage(f.said, f.translation) for f in finals]
        understood = [coverage(transcribe(f.audio), f.translation) for f in finals]
        whole_vs_human = [sacrebleu.sentence_chrf(" ".join(f.translation for f in h.finals),
                                                  [s.reference]).score for s, h in done]
        said_vs_human = [sacrebleu.sentence_chrf(" ".join(f.said for f in h.finals),
                                                 [s.reference]).score for s, h in done]
        said_vs_whole = [sacrebleu.sentence_chrf(f.said, [f.translation]).score for f in finals]
        column = {
            "first word -> first translated audio":
                _p([h.first_audio for _, h in done if h.first_audio is not None], stick),
            "  on sentences of 8 s or more":
                _p([h.first_audio for h in long if h.first_audio is not None], stick),
            "end of speech -> end of translated audio":
                _p([h.end_audio for _, h in done if h.end_audio is not None], stick),
            "each final spoken: its words translated min/p50":
                f"{min(covered):.0%} / {percentile(covered, 50):.0%}",
            "  its translation, word for word min/p50":
                f"{min(worded):.0%} / {percentile(worded, 50):.0%}",
            "  heard (Whisper pt on the track) p50/mean":
                f"{percentile(understood, 50):.0%} / {np.mean(understood):.0%}",
            "clips; cut short (s)":
                f"{sum(h.clips for _, h in done)}; {sum(h.cut_ms for _, h in done) / 1000:.1f}",
            "chrF spoken vs whole-sentence translation": f"{np.mean(said_vs_whole):.1f}",
            "chrF vs human reference: spoken (whole)":
                f"{np.mean(said_vs_human):.1f} ({np.mean(whole_vs_human):.1f})",
        }
        for label, cell in column.items():
            rows.setdefault(label, []).append(cell)
        if each:
            for sentence, h in done:
                first = f"{h.first_audio:.2f}" if h.first_audio is not None else "-"
                end = f"{h.end_audio:.2f}" if h.end_audio is not None else "-"
                print(f"  {mode} {sentence.name} {h.seconds:.1f} s: first {first} s, end {end} s, "
                      f"clips {h.clips}, cut {h.cut_ms} ms")
                for f in h.finals:
                    print(f"    {coverage(f.covered, f.text):.0%} of: {f.text}\n"
                          f"         covered: {f.covered}\n"
                          f"    {coverage(f.said, f.translation):.0%} said: {f.said}\n"
                          f"         of: {f.translation}")
    for label, cells in rows.items():
        print(f"{label:44}" + "".join(f"{cell:>26}" for cell in cells))


def _p(values: list[float], stick: float) -> str:
    if not values:
        return "-"
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return f"{p50:.1f}/{p95:.1f} s ({p50 / stick:.1f}x/{p95 / stick:.1f}x)"


if __name__ == "__main__":
    main()
