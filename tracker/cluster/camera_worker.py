"""One camera's work in a cluster: read, ``Pipeline.process``, send small batches, respect the window.

``CameraWorker`` knows nothing about Ray: it talks to the matcher through a ``Link`` (the camera
actor's is a Ray actor handle; tests pass an in-process one), so the flow control is tested
without a cluster.

Backpressure: at most ``window`` batches may be on their way or waiting in the matcher (a batch is
acknowledged once the matcher has *applied* it). When the window is full the worker waits; its
reader then blocks on its 4-frame queue (lockstep: every frame is still processed, later) or keeps
only the newest frame and counts the others as dropped (``--realtime``, as on one machine). So
neither a slow matcher nor a slow camera makes any queue grow without bound.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Protocol

from tracker.cluster.messages import Ack, CameraBatch, CameraReport, ResumePoint, WireStep, encode_jpeg
from tracker.cluster.options import ClusterOptions
from tracker.pipeline import Pipeline
from tracker.sources import CameraReader, ReconnectPolicy, SourceSpec
from tracker.types import CameraStatus

log = logging.getLogger(__name__)


class Link(Protocol):
    """The way to the matcher."""

    def send(self, batch: CameraBatch) -> Any:
        """Send a batch; returns a handle for its ``Ack``."""
        ...

    def done(self, handle: Any) -> bool:
        """The batch's ``Ack`` is there."""
        ...

    def wait(self, handle: Any) -> Ack:
        """The batch's ``Ack`` (blocks until the matcher applied it)."""
        ...


class CameraWorker:
    """Runs one camera until its source is over or the job stops.

    Args:
        spec: the source.
        pipeline: a ``Pipeline`` with a detector (its camera half runs here; its matcher is unused).
        link: to the matcher.
        resume: where to start (``ResumePoint``: step numbers and frames after a restart).
        options: batch size, batch delay, window.
        reconnect: the stream's reconnection policy.
        max_frames: end the source after this frame.
        open_capture: ``uri -> cv2.VideoCapture``-like (tests).
        node: where this runs, for the camera's state.
    """

    def __init__(self, spec: SourceSpec, pipeline: Pipeline, link: Link, resume: ResumePoint,
                 options: ClusterOptions, reconnect: ReconnectPolicy | None = None, max_frames: int | None = None,
                 open_capture: Callable | None = None, node: str = "") -> None:
        self.spec, self.pipeline, self.link, self.resume, self.options = spec, pipeline, link, resume, options
        self.node = node
        config = pipeline.config
        self.reader = CameraReader(spec, config.realtime, open_capture=open_capture,
                                   reconnect=reconnect or ReconnectPolicy.from_config(config.connect_timeout,
                                                                                      config.reconnect_limit),
                                   max_frames=max_frames, start_frame=resume.start_frame)
        self.stopping = threading.Event()
        if resume.stop:
            self.stopping.set()
        self.next_seq = resume.next_seq
        self.processed = 0
        self.sent_batches = 0
        self.waits = 0  # times the window was full
        self.wait_s = 0.0
        self._pending: list[WireStep] = []
        self._pending_since = 0.0
        self._inflight: deque = deque()
        self._times: deque[float] = deque(maxlen=64)
        self._latency_s = 0.0
        self._frame_size = (0, 0)
        self._last_status: CameraStatus | None = None

    def stop(self) -> None:
        """Stop reading; what was processed is still sent (any thread)."""
        self.stopping.set()

    def run(self) -> dict[str, object]:
        """Read and process until the source is over or ``stop``; returns the camera's summary."""
        camera_id = self.spec.camera_id
        self.reader.start()
        try:
            while True:
                if self.stopping.is_set() and self.reader.alive:
                    self.reader.stop()
                frame = None if self.stopping.is_set() else self.reader.get(0.05)
                if frame is not None:
                    self._process(frame)
                over = self.stopping.is_set() or self.reader.finished
                report = self.report()
                now = time.monotonic()
                due = (len(self._pending) >= self.options.batch_frames
                       or (self._pending and now - self._pending_since >= self.options.batch_s)
                       or report.status != self._last_status or over)
                if due:
                    self._send(report, final=over)
                if over:
                    break
            while self._inflight:  # every batch applied: the camera's outputs are complete
                self._ack(self.link.wait(self._inflight.popleft()))
        finally:
            self.reader.stop()
        report = self.report()
        log.info("camera %s: %s%s; %d frames processed here, %d batches sent, window full %d times (%.1f s)",
                 camera_id, report.status.value, f" ({report.message})" if report.message else "", self.processed,
                 self.sent_batches, self.waits, self.wait_s)
        return {"camera_id": camera_id, "status": report.status.value, "message": report.message,
                "processed": self.processed, "last_seq": self.next_seq - 1, "dropped": report.dropped,
                "window_waits": self.waits, "window_wait_s": round(self.wait_s, 3)}

    def report(self) -> CameraReport:
        r = self.reader
        status, message = r.status, r.message
        if self.stopping.is_set() and status in (CameraStatus.OPENING, CameraStatus.RUNNING,
                                                 CameraStatus.RECONNECTING):
            status, message = CameraStatus.STOPPED, "stopped"
        return CameraReport(status, message, r.start_frame + r.frames_read, r.dropped, self._fps(), self._latency_s,
                            r.total_frames, self._frame_size, self.node)

    # -- internals -------------------------------------------------------------------------------
    def _process(self, frame) -> None:
        update = self.pipeline.process([frame])[0]
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append(WireStep.from_update(self.next_seq, update))
        self.next_seq += 1
        self.processed += 1
        now = time.monotonic()
        self._times.append(now)
        self._latency_s = max(0.0, now - frame.captured_at) if frame.captured_at else 0.0
        self._frame_size = (int(frame.image.shape[1]), int(frame.image.shape[0]))

    def _fps(self) -> float:
        now = time.monotonic()
        recent = [t for t in self._times if now - t <= 2.0]
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6) if len(recent) >= 2 else 0.0

    def _send(self, report: CameraReport, final: bool) -> None:
        final_thumbnails = ()
        if final:  # the tracks still live end with the camera: their best crops go with the last batch
            crops = self.pipeline.release_camera(self.spec.camera_id) or {}
            final_thumbnails = tuple((int(t), encode_jpeg(image), float(score)) for t, (image, score) in crops.items())
        batch = CameraBatch(self.spec.camera_id, self.resume.incarnation, tuple(self._pending), report, final,
                            final_thumbnails)
        self._pending = []
        self._last_status = report.status
        self._inflight.append(self.link.send(batch))
        self.sent_batches += 1
        while self._inflight and self.link.done(self._inflight[0]):
            self._ack(self.link.wait(self._inflight.popleft()))
        if len(self._inflight) > self.options.window:
            self.waits += 1
            tic = time.monotonic()
            while len(self._inflight) > self.options.window:
                self._ack(self.link.wait(self._inflight.popleft()))
            self.wait_s += time.monotonic() - tic

    def _ack(self, ack: Ack) -> None:
        if ack.stop and not self.stopping.is_set():
            log.info("camera %s: the job is stopping", self.spec.camera_id)
            self.stopping.set()
        if ack.ignored:  # a newer actor of this camera exists: this one must not go on
            log.warning("camera %s: replaced by a newer actor; stopping this one", self.spec.camera_id)
            self.stopping.set()


class InProcessLink:
    """A ``Link`` to a ``MatcherCore`` in this process (tests, benchmarks): a waiting camera
    applies what is ready itself, unless ``paused`` (a matcher that does not keep up)."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self.paused = threading.Event()

    def send(self, batch: CameraBatch) -> tuple[CameraBatch, bool]:
        return batch, self.core.receive(batch)

    def done(self, handle: tuple[CameraBatch, bool]) -> bool:
        return self.core.ack(*handle) is not None

    def wait(self, handle: tuple[CameraBatch, bool]) -> Ack:
        while True:
            if not self.paused.is_set():
                self.core.apply()
            ack = self.core.ack(*handle)
            if ack is not None:
                return ack
            time.sleep(0.002)
