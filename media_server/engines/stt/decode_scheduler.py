"""One decode worker shared by every stream, so STT load has a single, visible queue.

Finals go first, in arrival order, and are never dropped. Interims are latest-wins
per stream: a new request replaces the one still waiting, so under load interims
thin out instead of queueing up. Requests waiting together are decoded in one
batched call. The recogniser runs in a dedicated thread, never on the event loop.

A final that arrives while interims are being decoded waits for that pass: the time
interim passes take lately (`interim_pass_s`) lets streams space their interims so
that this wait stays a small share of a final's latency.

Streams say when their speech starts and ends (`voices`); with a `capacity` (voices at
once, re-estimated from the passes made here), `interim_pace` tells a stream whether
its interims go on, thin out or pause while more voices speak than the machine carries
(`pacing.py`). Without one, every voice keeps its interims.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from media_server.engines.stt.base import (
    BatchRecognizer,
    DecodeRequest,
    InterimPace,
    Transcript,
)
from media_server.engines.stt.capacity import VoiceCapacity
from media_server.engines.stt.pacing import SpeakingVoices
from media_server.metrics import DECODE_QUEUE, ENGINE_TIME, FINAL_DECODE_WAIT, INTERIMS_SKIPPED
from media_server.tasks import cancel_and_wait

log = logging.getLogger(__name__)
# Weight of the latest pass in `interim_pass_s`: a few passes make the estimate.
_PASS_SMOOTHING = 0.3


@dataclass(eq=False)
class _Job:
    stream: Hashable
    request: DecodeRequest
    future: asyncio.Future[Transcript]
    enqueued: float = field(default_factory=time.monotonic)


@dataclass
class SchedulerStats:
    decodes: int = 0
    batches: int = 0
    interims_dropped: int = 0
    busy_seconds: float = 0.0


class DecodeScheduler:
    def __init__(self, recognizer: BatchRecognizer, batch_size: int = 4,
                 capacity: VoiceCapacity | None = None) -> None:
        self.recognizer = recognizer
        self._batch_size = batch_size
        self.capacity = capacity
        self.voices = SpeakingVoices()
        self._finals: deque[_Job] = deque()
        self._interims: dict[Hashable, _Job] = {}
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stt-decode")
        self._worker: asyncio.Task[None] | None = None
        self.stats = SchedulerStats()
        self.interim_pass_s = 0.0  # recent passes of interims alone (smoothed); 0: none yet

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="stt-decode-scheduler")

    async def close(self) -> None:
        await cancel_and_wait(self._worker)
        self._worker = None
        for job in [*self._finals, *self._interims.values()]:
            job.future.cancel()
        self._finals.clear()
        self._interims.clear()
        self._executor.shutdown(wait=True, cancel_futures=True)

    @property
    def final_backlog_s(self) -> float:
        """How long the oldest waiting final has waited (0 when none waits)."""
        return time.monotonic() - self._finals[0].enqueued if self._finals else 0.0

    def interim_pace(self, stream: Hashable) -> InterimPace:
        """How often `stream`'s interims should come now (see `pacing.py`)."""
        if self.capacity is None:
            return InterimPace.LIVE
        behind = self.final_backlog_s > self.capacity.final_pass_s
        return self.voices.pace(stream, voices=self.capacity.voices, finals_behind=behind)

    def submit_final(self, stream: Hashable, request: DecodeRequest) -> asyncio.Future[Transcript]:
        job = _Job(stream, request, asyncio.get_running_loop().create_future())
        self._finals.append(job)
        DECODE_QUEUE.set(len(self._finals))
        self._wakeup.set()
        return job.future

    def submit_interim(
        self, stream: Hashable, request: DecodeRequest
    ) -> asyncio.Future[Transcript]:
        self.cancel_interim(stream)
        job = _Job(stream, request, asyncio.get_running_loop().create_future())
        self._interims[stream] = job
        self._wakeup.set()
        return job.future

    def keep_interim(self, stream: Hashable, future: asyncio.Future[Transcript]) -> None:
        """The interim behind `future` will serve as a final: if it still waits, it
        waits among the finals (never dropped). One in flight or done is
        already safe."""
        job = self._interims.get(stream)
        if job is not None and job.future is future:
            del self._interims[stream]
            self._finals.append(job)
            DECODE_QUEUE.set(len(self._finals))

    def cancel_interim(self, stream: Hashable) -> None:
        old = self._interims.pop(stream, None)
        if old is not None:
            old.future.cancel()
            self.stats.interims_dropped += 1
            INTERIMS_SKIPPED.labels("superseded").inc()

    def cancel_stream(self, stream: Hashable) -> None:
        """Drop everything a closed stream still waits for."""
        self.voices.ended(stream)
        self.cancel_interim(stream)
        for job in [j for j in self._finals if j.stream == stream]:
            self._finals.remove(job)
            job.future.cancel()

    def _next_batch(self) -> list[_Job]:
        batch: list[_Job] = []
        while self._finals and len(batch) < self._batch_size:
            batch.append(self._finals.popleft())
        # Oldest waiting interims fill what finals leave of the batch.
        for stream in list(self._interims)[: self._batch_size - len(batch)]:
            batch.append(self._interims.pop(stream))
        return batch

    def _note_interim_pass(self, elapsed: float) -> None:
        if self.interim_pass_s == 0.0:
            self.interim_pass_s = elapsed
        else:
            self.interim_pass_s += _PASS_SMOOTHING * (elapsed - self.interim_pass_s)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while batch := self._next_batch():
                started = time.monotonic()
                for job in batch:
                    if job.request.final:
                        FINAL_DECODE_WAIT.observe(started - job.enqueued)
                try:
                    results = await loop.run_in_executor(
                        self._executor, self.recognizer.transcribe, [j.request for j in batch]
                    )
                except asyncio.CancelledError:
                    for job in batch:
                        job.future.cancel()
                    raise
                except Exception as exc:
                    log.exception("decode failed", extra={"batch": len(batch)})
                    for job in batch:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    continue
                elapsed = time.monotonic() - started
                self.stats.busy_seconds += elapsed
                ENGINE_TIME.labels("stt", self.recognizer.name).observe(elapsed)
                if not any(job.request.final for job in batch):
                    self._note_interim_pass(elapsed)
                if len(batch) == 1 and self.capacity is not None:
                    self.capacity.observe(final=batch[0].request.final, elapsed_s=elapsed)
                DECODE_QUEUE.set(len(self._finals))
                self.stats.batches += 1
                self.stats.decodes += len(batch)
                for job, result in zip(batch, results, strict=True):
                    if not job.future.done():
                        job.future.set_result(result)
