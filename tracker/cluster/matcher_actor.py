"""The matcher actor: ``MatcherCore`` inside an asyncio Ray actor (imports Ray's asyncio only).

``submit`` is a coroutine that returns a batch's ``Ack`` once the batch is *applied*, so a camera's
window of unacknowledged batches bounds what waits here. The steps are applied on one thread of
the actor (the matcher is not thread-safe and its order is the point); the event loop only
queues batches and answers, so hundreds of cameras' calls never wait behind a step.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Sequence

from tracker.cluster.components import Components
from tracker.cluster.matcher_core import MatcherCore, OutputSink
from tracker.cluster.messages import Ack, CameraBatch, JobSnapshot, ResumePoint
from tracker.config import TrackerConfig
from tracker.pipeline import Pipeline
from tracker.sources import SourceSpec

log = logging.getLogger(__name__)

SNAPSHOT_EVERY_S = 0.5


class MatcherActor:
    """The job's one matcher (wrapped by ``ray.remote`` in ``launch``; placed on the head node).

    Args:
        config: the pipeline's options.
        specs: the cameras, in source order.
        out_dir: where the outputs go, on this node (None: nowhere, for benchmarks).
        job: the job's name.
        components: builds the re-ID embedder (only its feature length and model file are used here).
        store: ``(path, retention_days)`` of ``--store`` on this node, or None.
        log_level: the driver's logging level.
    """

    def __init__(self, config: TrackerConfig, specs: Sequence[SourceSpec], out_dir: str | None, job: str,
                 components: Components, store: tuple[str, float | None] | None = None,
                 log_level: int = logging.INFO) -> None:
        from mcreid.logs import setup_logging

        setup_logging(0)
        logging.getLogger().setLevel(log_level)
        sink = OutputSink(Path(out_dir)) if out_dir is not None else None
        pipeline = Pipeline(config, None, components.embedder(config, threads=1))
        self.core = MatcherCore(config, pipeline, specs, sink, job)
        self.session = None
        if store is not None:
            from tracker.store.session import StoreSession, check_store_path

            check_store_path(Path(store[0]))
            self.session = StoreSession.start(Path(store[0]), pipeline, {s.camera_id: s.uri for s in specs},
                                              store[1])
        self.node = socket.gethostname()
        self._waiters: list[tuple[CameraBatch, asyncio.Future, asyncio.AbstractEventLoop]] = []
        self._waiters_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._snapshot: JobSnapshot | None = None
        self._snapshot_at = 0.0
        self._summary: dict | None = None
        self._thread = threading.Thread(target=self._apply_loop, name="matcher-apply", daemon=True)
        self._thread.start()
        log.info("matcher of job %s on %s: %d cameras, %s", job, self.node, len(specs),
                 "real-time (arrival order)" if config.realtime else "lockstep (every frame, fixed order)")

    # -- cameras ---------------------------------------------------------------------------------
    async def submit(self, batch: CameraBatch) -> Ack:
        """Queue a camera's batch; returns its ``Ack`` once applied."""
        accepted = self.core.receive(batch)
        ack = self.core.ack(batch, accepted)
        if ack is not None:
            return ack
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._waiters_lock:
            self._waiters.append((batch, future, loop))
        self._wake.set()
        return await future

    async def resume(self, camera_id: str) -> ResumePoint:
        return self.core.resume(camera_id)

    # -- driver and viewer -----------------------------------------------------------------------
    async def ready(self) -> dict[str, object]:
        return {"node": self.node, "feature_dim": self.core.pipeline.embedder.feature_dim,
                "next_global_id": self.core.pipeline.next_global_id}

    async def ping(self) -> bool:
        return True

    async def camera_restarting(self, camera_id: str, why: str) -> None:
        self.core.camera_restarting(camera_id, why)

    async def camera_failed(self, camera_id: str, why: str) -> None:
        self.core.camera_failed(camera_id, why)
        self._wake.set()

    async def stop(self) -> None:
        self.core.stop()
        self._wake.set()

    async def progress(self) -> dict[str, object]:
        """Cheap figures for the driver: steps, frames applied per camera, held steps, error."""
        core = self.core
        with core.lock:
            return {"steps": core.steps_applied, "queued": sum(len(f.queue) for f in core.feeds.values()),
                    "max_queued": core.max_queued, "error": core.error, "all_done": core.all_done,
                    "cameras": {cid: {"applied": f.processed, "total": f.report.total_frames,
                                      "frames_read": f.report.frames_read, "restarts": f.restarts}
                                for cid, f in core.feeds.items()}}

    async def snapshot(self) -> JobSnapshot:
        """What a viewer shows (refreshed at most every ``SNAPSHOT_EVERY_S``)."""
        now = time.monotonic()
        if self._snapshot is None or now - self._snapshot_at >= SNAPSHOT_EVERY_S or self.core.finished:
            loop = asyncio.get_running_loop()
            self._snapshot = await loop.run_in_executor(None, self.core.snapshot)
            self._snapshot_at = now
        return self._snapshot

    async def finish(self) -> dict[str, object]:
        """Apply what is left, end the cameras, write the outputs and the store; the summary."""
        if self._summary is None:
            loop = asyncio.get_running_loop()
            self._summary = await loop.run_in_executor(None, self._finish)
        return self._summary

    # -- the apply thread ------------------------------------------------------------------------
    def _finish(self) -> dict[str, object]:
        self._closing.set()
        self._thread.join()
        summary = self.core.finish()
        self._answer_waiters()
        summary["store_written"] = self.session.close() if self.session is not None else True
        return summary

    def _apply_loop(self) -> None:
        while not self._closing.is_set():
            self._wake.wait(0.05)
            self._wake.clear()
            self.core.apply()
            self._answer_waiters()

    def _answer_waiters(self) -> None:
        with self._waiters_lock:
            waiting, self._waiters = self._waiters, []
        keep = []
        for batch, future, loop in waiting:
            ack = self.core.ack(batch)
            if ack is None and self.core.finished:
                ack = Ack(self.core.feeds[batch.camera_id].applied_seq, stop=True)
            if ack is None:
                keep.append((batch, future, loop))
            else:
                loop.call_soon_threadsafe(_resolve, future, ack)
        if keep:
            with self._waiters_lock:
                self._waiters = keep + self._waiters


def _resolve(future: asyncio.Future, ack: Ack) -> None:
    if not future.done():
        future.set_result(ack)
