"""The matcher's side of a cluster run, without Ray: order the cameras' steps, run
``Pipeline.identify`` on them, write the outputs and the store, make snapshots.

**Order.** A step is at most one frame per camera, as on one machine. Without ``--realtime``
(lockstep) the k-th step holds the k-th processed frame of every camera, in source order, and
waits until each camera has sent it, whatever the network or the machines did: the matcher
sees exactly what a single-process run's matcher sees (observations of every camera, then every
camera's clip features, then the ended tracks, then resolve), so the identities are the same.
A camera is waited for until its last message (``final``), except a stream or webcam that is
opening or reconnecting (no frame is coming; one machine does not wait for it either) or that
has kept a step waiting for ``STREAM_WAIT_S`` (a stalled stream must not stop every camera). A camera
whose source is over is ended right after the step that held its last frame. With
``--realtime`` a step takes whatever frames have arrived, one per camera, and never waits.

**Memory.** Every camera has at most ``window`` unacknowledged batches (``CameraWorker``), and a
batch is acknowledged only once applied, so the steps held here are bounded by cameras x window x
batch size whatever the speeds.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from tracker.cluster.messages import (
    Ack,
    CameraBatch,
    CameraReport,
    FrameBoxes,
    JobSnapshot,
    ResumePoint,
    WireStep,
    decode_jpeg,
    encode_jpeg,
)
from tracker.config import TrackerConfig
from tracker.out_dir import describe_os_error, prepare_out_dir
from tracker.outputs import CameraWriter, final_track_ids, write_identities
from tracker.pipeline import Pipeline
from tracker.sources import SourceSpec
from tracker.types import CameraState, CameraStatus, FrameResult, GlobalIdentity

log = logging.getLogger(__name__)

SNAPSHOT_MEMBERS = 8
STREAM_WAIT_S = 1.0  # lockstep: how long a step waits for a running stream's frame (one machine: 0.5 s)
NO_FRAME = np.zeros((0, 0, 3), np.uint8)  # the frames stay on the cameras' machines


@dataclass
class _End:
    """A camera's end marker in its queue, after its last step."""

    thumbnails: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)


@dataclass
class _Feed:
    spec: SourceSpec
    queue: deque = field(default_factory=deque)  # WireStep | _End, received and not applied
    report: CameraReport = field(default_factory=CameraReport)
    incarnation: int = 0
    received_seq: int = 0
    applied_seq: int = 0
    max_frame: int = 0
    max_track: int = 0
    final_received: bool = False
    done: bool = False
    restarting: str = ""  # why, while its actor restarts
    restarts: int = 0
    failed: str = ""
    processed: int = 0
    boxes: FrameBoxes | None = None
    blocking_since: float | None = None  # lockstep: when a step began waiting for this camera
    late: bool = False  # a stream that kept a step waiting too long: not waited for until it sends


class OutputSink:
    """The headless outputs of ``tracker.cli``: ``<camera>.txt``, ``.tracks.txt``, ``identities.json``.

    Attributes:
        error: "" until a write fails (a full disk); then why, and nothing more is written.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = prepare_out_dir(Path(out_dir))  # ValueError: not a writable folder
        self.writers: dict[str, CameraWriter] = {}
        self.error = ""

    def write(self, result: FrameResult) -> None:
        if self.error:
            return
        try:
            writer = self.writers.get(result.camera_id)
            if writer is None:
                writer = self.writers[result.camera_id] = CameraWriter(self.out_dir, result.camera_id)
            writer.write(result)
        except OSError as exc:
            self.error = f"cannot write the outputs in {self.out_dir}: {describe_os_error(exc)}"
            log.error("%s; stopping the run", self.error)

    def close(self, identities: list[GlobalIdentity]) -> list[str]:
        """Relabel the MOT files with the final ids and write ``identities.json``; the failures."""
        failures = [self.error] if self.error else []
        final = final_track_ids(identities)
        for camera_id, writer in self.writers.items():
            try:
                writer.close(final.get(camera_id, {}))
            except OSError as exc:
                failures.append(f"cannot finish {writer.global_path}: {describe_os_error(exc)} (it keeps the rows "
                                "written during the run)")
        try:
            write_identities(self.out_dir / "identities.json", identities)
        except OSError as exc:
            failures.append(f"cannot write {self.out_dir / 'identities.json'}: {describe_os_error(exc)}")
        for failure in failures[1 if self.error else 0:]:
            log.error("%s", failure)
        return failures


class MatcherCore:
    """Steps of every camera in, global identities and outputs out.

    Args:
        config: the options (``config.realtime`` chooses arrival order over lockstep).
        pipeline: an identity-only ``Pipeline`` (no detector) with the job's embedder.
        specs: the cameras, in source order.
        sink: where results go (None: nowhere, for benchmarks).
        job: the job's name, for snapshots.
    """

    def __init__(self, config: TrackerConfig, pipeline: Pipeline, specs: Sequence[SourceSpec],
                 sink: OutputSink | None, job: str = "") -> None:
        if not specs:
            raise ValueError("a cluster job needs at least one --source")
        self.config, self.pipeline, self.sink, self.job = config, pipeline, sink, job
        self.feeds: dict[str, _Feed] = {s.camera_id: _Feed(s) for s in specs}
        self.lock = threading.RLock()
        self.stop_requested = False
        self.error = ""
        self.steps_applied = 0
        self.received_batches = 0
        self.ignored_batches = 0
        self.max_queued = 0  # the most steps ever held (bounded by cameras x window x batch)
        self.finished = False
        self._thumbnail_cache: dict[int, tuple[int, bytes]] = {}

    # -- from the cameras ------------------------------------------------------------------------
    def resume(self, camera_id: str) -> ResumePoint:
        """A camera actor starts (again): a new incarnation, after what was received."""
        with self.lock:
            feed = self._feed(camera_id)
            feed.incarnation += 1
            if feed.incarnation > 1:
                feed.restarts += 1
                log.warning("camera %s: actor incarnation %d resumes after frame %d (track ids from %d)", camera_id,
                            feed.incarnation, feed.max_frame, feed.max_track + 1)
            feed.restarting = ""
            over = feed.final_received or feed.done or bool(feed.failed)
            return ResumePoint(feed.incarnation, feed.received_seq + 1, feed.max_frame, feed.max_track + 1,
                               stop=self.stop_requested or over)

    def receive(self, batch: CameraBatch) -> bool:
        """Queue a batch's steps (False: it came from a replaced incarnation and is ignored)."""
        with self.lock:
            feed = self._feed(batch.camera_id)
            if batch.incarnation != feed.incarnation or feed.final_received or feed.failed:
                self.ignored_batches += 1
                return False
            self.received_batches += 1
            feed.restarting = ""  # its (new) actor is up
            if batch.steps:
                feed.blocking_since, feed.late = None, False
            for step in batch.steps:
                if step.seq != feed.received_seq + 1:
                    log.warning("camera %s: step %d after %d (steps lost on the way)", batch.camera_id, step.seq,
                                feed.received_seq)
                feed.received_seq = step.seq
                feed.max_frame = max(feed.max_frame, step.update.frame_index)
                if len(step.update.boxes.track_id):
                    feed.max_track = max(feed.max_track, int(step.update.boxes.track_id.max()))
                feed.queue.append(step)
            feed.report = batch.report
            if batch.final:
                thumbnails = {t: (decode_jpeg(data), score) for t, data, score in batch.final_thumbnails}
                feed.queue.append(_End(thumbnails))
                feed.final_received = True
            self.max_queued = max(self.max_queued, sum(len(f.queue) for f in self.feeds.values()))
            return True

    def ack(self, batch: CameraBatch, accepted: bool = True) -> Ack | None:
        """The batch's ``Ack`` once it is applied, else None."""
        with self.lock:
            feed = self._feed(batch.camera_id)
            if not accepted:
                return Ack(feed.applied_seq, stop=True, ignored=True)
            applied = batch.last_seq <= feed.applied_seq and (not batch.final or feed.done)
            stop = self.stop_requested or bool(self.error)
            return Ack(feed.applied_seq, stop=stop) if applied or feed.done else None

    # -- from the driver -------------------------------------------------------------------------
    def camera_restarting(self, camera_id: str, why: str) -> None:
        """The camera's actor died and Ray restarts it: lockstep waits for it meanwhile (until its
        new actor sends)."""
        with self.lock:
            feed = self._feed(camera_id)
            if not (feed.final_received or feed.done):
                feed.restarting = why

    def camera_failed(self, camera_id: str, why: str) -> None:
        """The camera is given up (its actor could not start, or died too often): it ends after
        what was received."""
        with self.lock:
            feed = self._feed(camera_id)
            if feed.done or feed.final_received:
                return
            log.error("camera %s: %s", camera_id, why)
            feed.failed, feed.restarting = why, ""
            feed.report = replace(feed.report, status=CameraStatus.ERROR, message=why)
            feed.queue.append(_End())
            feed.final_received = True

    def stop(self) -> None:
        """Ask every camera to stop (their next acks say so); what they processed is still applied."""
        with self.lock:
            self.stop_requested = True

    # -- applying --------------------------------------------------------------------------------
    def apply(self, max_steps: int | None = None) -> int:
        """Apply every step that is ready (lockstep: complete); returns how many were applied."""
        applied = 0
        while max_steps is None or applied < max_steps:
            with self.lock:
                if self.error:
                    return applied
                try:
                    if not self._apply_one():
                        return applied
                except Exception as exc:  # a failing step stops the job with the reason, not silently
                    self.error = f"the matcher failed: {type(exc).__name__}: {exc}"
                    log.exception("%s", self.error)
                    return applied
            applied += 1

    def _apply_one(self) -> bool:
        for feed in self.feeds.values():  # a camera whose last step was applied ends now
            if not feed.done and feed.queue and isinstance(feed.queue[0], _End):
                self._end(feed, feed.queue.popleft())
        active = [f for f in self.feeds.values() if not f.done]
        if not self.config.realtime and any(not f.queue and self._waits_for(f) for f in active):
            return False
        for feed in active:
            feed.blocking_since = None
        heads = [f for f in active if f.queue and isinstance(f.queue[0], WireStep)]
        if not heads:
            return False
        steps = [f.queue.popleft() for f in heads]
        updates = [s.to_update() for s in steps]
        ended = self.pipeline.identify(updates)
        for feed, step, update in zip(heads, steps, updates):
            feed.applied_seq = step.seq
            feed.processed += 1
            result = self.pipeline.frame_result(update, ended, NO_FRAME)
            feed.boxes = FrameBoxes(result.frame_index, result.xyxy, result.confidence, result.track_id,
                                    result.global_id)
            if self.sink is not None:
                self.sink.write(result)
        self.steps_applied += 1
        if self.sink is not None and self.sink.error:
            self.error = self.sink.error
        return True

    def _waits_for(self, feed: _Feed) -> bool:
        """Lockstep: is a step held back until this camera sends its next frame? A file's (or a
        restarting camera's) always; a running stream's for ``STREAM_WAIT_S`` at most (it may be
        stalled in a read before it drops), and then not again until it sends a frame."""
        if feed.final_received or feed.failed:
            return False
        if feed.restarting or feed.spec.kind == "file":
            return True
        if feed.late or feed.report.status in (CameraStatus.OPENING, CameraStatus.RECONNECTING):
            return False
        now = time.monotonic()
        if feed.blocking_since is None:
            feed.blocking_since = now
        feed.late = now - feed.blocking_since >= STREAM_WAIT_S
        return not feed.late

    def _end(self, feed: _Feed, end: _End) -> None:
        self.pipeline.end_camera(feed.spec.camera_id, end.thumbnails)
        feed.done = True

    @property
    def all_done(self) -> bool:
        with self.lock:
            return all(f.done for f in self.feeds.values())

    def queued(self) -> int:
        with self.lock:
            return sum(len(f.queue) for f in self.feeds.values())

    # -- the end ---------------------------------------------------------------------------------
    def finish(self) -> dict[str, object]:
        """Apply what is left, end every camera, write the outputs; the run's summary (as
        ``tracker.cli.run_headless``'s, with each camera's restarts)."""
        with self.lock:
            self.apply()
            for feed in self.feeds.values():  # cameras that never sent their last message
                if not feed.done:
                    if not feed.final_received:
                        log.warning("camera %s: no last message from its actor; ending it after step %d",
                                    feed.spec.camera_id, feed.applied_seq)
                    self.pipeline.end_camera(feed.spec.camera_id)
                    feed.done = True
            identities = self.pipeline.identities()
            failures = self.sink.close(identities) if self.sink is not None else []
            self.finished = True
            error = self.error or (failures[0] if failures else "")
            states = self.camera_states()
        for state in states:
            level = logging.WARNING if state.status == CameraStatus.ERROR else logging.INFO
            log.log(level, "camera %s: %s%s, %d frames processed, %d dropped, %d restarts", state.camera_id,
                    state.status.value, f" ({state.message})" if state.message else "", state.frames_processed,
                    state.dropped, self.feeds[state.camera_id].restarts)
        log.info("%d global identities; %d steps applied", len(identities), self.steps_applied)
        return {"cameras": {s.camera_id: {"status": s.status.value, "message": s.message, "frames": s.frames_processed,
                                          "dropped": s.dropped, "restarts": self.feeds[s.camera_id].restarts}
                            for s in states},
                "identities": len(identities), "error": error, "threads_ended": True, "steps": self.steps_applied,
                "max_queued_steps": self.max_queued}

    # -- snapshots -------------------------------------------------------------------------------
    def camera_states(self) -> list[CameraState]:
        with self.lock:
            out = []
            for feed in self.feeds.values():
                r = feed.report
                status, message = r.status, r.message
                if feed.restarting:
                    status, message = CameraStatus.RECONNECTING, feed.restarting
                out.append(CameraState(feed.spec.camera_id, feed.spec.uri, status, message, r.frames_read,
                                       feed.processed, r.dropped, r.fps, r.latency_s, r.total_frames))
            return out

    def snapshot(self) -> JobSnapshot:
        """Camera states, identities (latest members) with JPEG thumbnails, latest boxes."""
        with self.lock:
            identities = self.pipeline.identities(None if self.finished else SNAPSHOT_MEMBERS)
            thumbnails = {}
            for ident in identities:
                if ident.thumbnail is not None:  # encoded again only when the crop changed
                    checksum = zlib.crc32(np.ascontiguousarray(ident.thumbnail))
                    cached = self._thumbnail_cache.get(ident.global_id)
                    if cached is None or cached[0] != checksum:
                        cached = self._thumbnail_cache[ident.global_id] = (checksum, encode_jpeg(ident.thumbnail))
                    thumbnails[ident.global_id] = cached[1]
            bare = tuple(replace(i, thumbnail=None) for i in identities)
            return JobSnapshot(self.job, tuple(self.camera_states()),
                               {cid: f.report.frame_size for cid, f in self.feeds.items()}, bare, thumbnails,
                               {cid: f.boxes for cid, f in self.feeds.items() if f.boxes is not None},
                               self.steps_applied, self.finished, self.error, self.config)

    def _feed(self, camera_id: str) -> _Feed:
        feed = self.feeds.get(camera_id)
        if feed is None:
            raise ValueError(f"unknown camera {camera_id!r}; this job's cameras are {', '.join(self.feeds)}")
        return feed

