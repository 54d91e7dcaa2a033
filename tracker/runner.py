"""``PipelineRunner``: sources on reader threads, the pipeline on a worker thread, results out.

Built for both the headless runner and the viewer: nothing here blocks its caller. Results reach
the caller through a callback (called on the worker thread) or a bounded queue (the oldest result
is dropped when the consumer is slow); camera states, statistics and identities are snapshots that
any thread may read.

Latency (``FrameResult.latency_s``, ``CameraState.latency_s``) is measured from the moment a reader
decoded the frame to its result. In real-time mode a reader keeps only its newest frame, so it is
about one pipeline step. Otherwise readers block on a small queue (4 frames) instead of dropping, so
it also counts the time the frame waited in that queue (up to 4 more steps when the pipeline is the
bottleneck): it is then not the time one step takes.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Callable, Sequence

from tracker.config import TrackerConfig
from tracker.pipeline import Pipeline, build_pipeline
from tracker.sources import CameraReader, ReconnectPolicy, SourceSpec, parse_sources
from tracker.types import CameraFrame, CameraState, CameraStatus, FrameResult, GlobalIdentity

log = logging.getLogger(__name__)

ResultCallback = Callable[[FrameResult], None]
SNAPSHOT_MEMBERS = 8  # member tracks per identity in the live snapshots


class _Stats:
    """Per-camera processed count, fps over the last 2 s (0 once frames stop coming), last latency."""

    def __init__(self) -> None:
        self.processed = 0
        self.latency_s = 0.0
        self._times: list[float] = []

    def add(self, latency_s: float) -> None:
        now = time.monotonic()
        self.processed += 1
        self.latency_s = latency_s
        self._times.append(now)
        self._times = [t for t in self._times if now - t <= 2.0]

    @property
    def fps(self) -> float:
        now = time.monotonic()
        times = [t for t in self._times if now - t <= 2.0]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / max(times[-1] - times[0], 1e-6)


class PipelineRunner:
    """Runs a pipeline over live sources off the caller's thread.

    Args:
        config: the options (``config.realtime`` picks real-time pacing and frame dropping).
        sources: paths, URLs or webcam indices.
        pipeline: a built pipeline; None builds one from ``config`` on the worker thread (a failure
            then shows as every camera's error and in ``error``).
        on_result: called on the worker thread with every ``FrameResult``; None puts results on
            ``results`` instead.
        result_queue_size: bound of ``results``.
        open_capture, max_frames: passed to each ``CameraReader``.
        reconnect: the streams' ``ReconnectPolicy``; None builds it from ``config.connect_timeout``
            and ``config.reconnect_limit``.
        keep_alive: keep the worker running when every source is over (or none was given), for
            sources added later with ``add_source``; only ``stop()`` ends it. False (headless): the
            worker ends once every source is over, and sources added after that are not read.

    Attributes:
        error: "" while healthy; otherwise why the worker stopped (the pipeline could not be built,
            or an unexpected exception in a step or in result delivery). Every camera not yet
            settled then shows ``CameraStatus.ERROR`` with this message, and the readers are stopped.
    """

    def __init__(self, config: TrackerConfig, sources: Sequence[str] = (), pipeline: Pipeline | None = None,
                 on_result: ResultCallback | None = None,
                 result_queue_size: int = 8, open_capture: Callable | None = None,
                 reconnect: ReconnectPolicy | None = None, max_frames: int | None = None,
                 keep_alive: bool = False) -> None:
        self.config = config
        self.keep_alive = keep_alive
        self.pipeline = pipeline
        self.on_result = on_result
        self.results: queue.Queue[FrameResult] = queue.Queue(maxsize=result_queue_size)
        self.error = ""
        self._open_capture, self._reconnect, self._max_frames = open_capture, reconnect, max_frames
        self._readers: dict[str, CameraReader] = {}
        self._stats: dict[str, _Stats] = {}
        self._ended: set[str] = set()
        self._lock = threading.Lock()
        self._identities: list[GlobalIdentity] = []
        self._identities_at = 0.0
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._busy = threading.Event()  # set while the worker gathers and processes a step
        self._worker = threading.Thread(target=self._run, name="pipeline", daemon=True)
        for spec in parse_sources(list(sources)):
            self._add(spec)

    # -- control -------------------------------------------------------------------------------
    def add_source(self, uri: str) -> str:
        """Open another source (also while running); returns its camera id."""
        with self._lock:
            spec = parse_sources([uri], start=len(self._readers), taken=set(self._readers))[0]
        self._add(spec)
        reader = self._readers[spec.camera_id]
        if self._worker.is_alive():
            reader.start()
        elif self.error:  # the worker failed: nothing would ever read this source
            reader.status, reader.message = CameraStatus.ERROR, self.error
        return spec.camera_id

    def _add(self, spec: SourceSpec) -> None:
        reconnect = self._reconnect or ReconnectPolicy.from_config(self.config.connect_timeout,
                                                                   self.config.reconnect_limit)
        reader = CameraReader(spec, self.config.realtime, open_capture=self._open_capture, reconnect=reconnect,
                              max_frames=self._max_frames)
        with self._lock:
            self._readers[spec.camera_id] = reader
            self._stats[spec.camera_id] = _Stats()

    def start(self) -> None:
        """Start the readers and the worker; returns at once."""
        for reader in list(self._readers.values()):
            reader.start()
        self._worker.start()

    def pause(self) -> None:
        """Stop taking frames (file readers wait too; live sources keep only their newest frame)."""
        self._running.clear()
        for reader in list(self._readers.values()):
            reader.pause(True)

    def resume(self) -> None:
        self._running.set()
        for reader in list(self._readers.values()):
            reader.pause(False)

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def settled(self) -> bool:
        """Paused and no step in flight: the results will not change until ``resume()``."""
        return self.paused and not self._busy.is_set()

    def stop(self, timeout: float | None = 10.0, reader_timeout: float = 5.0) -> bool:
        """Stop readers and worker; the worker finishes its current step and settles every
        camera's tracks. Waits up to ``timeout`` seconds in all (None: until the worker has ended),
        and at most ``reader_timeout`` for each reader (one blocked in a stream read is left).

        Returns:
            True when the worker and every reader thread have ended. False: something is still
            inside a blocking call; the caller must not close what the worker writes to.
        """
        self._stop.set()
        self._running.set()
        deadline = None if timeout is None else time.monotonic() + timeout

        def remaining() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        def reader_wait() -> float:
            left = remaining()
            return reader_timeout if left is None else min(reader_timeout, left)

        readers_done = all([reader.stop(reader_wait()) for reader in list(self._readers.values())])
        while self._worker.is_alive() and (deadline is None or time.monotonic() < deadline):
            wait = remaining()
            self._worker.join(0.1 if wait is None else min(0.1, wait))  # short joins: signals get through
        if self._worker.is_alive():
            log.error("the pipeline worker did not stop within %.0f s", timeout)
        return readers_done and not self._worker.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every source is over and processed (with ``keep_alive``: until stopped or
        failed); True if the worker ended."""
        self._worker.join(timeout)
        return not self._worker.is_alive()

    @property
    def alive(self) -> bool:
        return self._worker.is_alive() or any(r.alive for r in list(self._readers.values()))

    # -- snapshots -----------------------------------------------------------------------------
    def camera_states(self) -> list[CameraState]:
        """One ``CameraState`` per source, in the order they were added.

        ``latency_s`` is read-to-result time; when not real-time it includes the time the frame
        waited in its reader's queue (see the module docstring).
        """
        with self._lock:
            items = list(self._readers.items())
        states = []
        for camera_id, r in items:
            stats = self._stats[camera_id]
            message = r.message or (self.error if r.status == CameraStatus.ERROR else "")
            states.append(CameraState(camera_id, r.spec.uri, r.status, message, r.frames_read, stats.processed,
                                      r.dropped, stats.fps, stats.latency_s, r.total_frames))
        return states

    def identities(self) -> list[GlobalIdentity]:
        """The latest identities snapshot (refreshed on the worker thread at most twice a second).

        While the worker runs, each identity lists its latest ``SNAPSHOT_MEMBERS`` member tracks
        and summarises the others in ``GlobalIdentity.older``; once it has ended (or stopped),
        every member is listed.
        """
        return list(self._identities)

    # -- worker --------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            if self.pipeline is None:
                self.pipeline = build_pipeline(self.config)
        except Exception as exc:
            self._fail(f"cannot start the pipeline: {exc}", exc_info=False)  # a clear load error
            return
        try:
            self._loop()
        except Exception as exc:  # a failing step must not leave every camera "running" with no worker
            self._fail(f"pipeline failed: {type(exc).__name__}: {exc}")
        try:
            self._finish()  # settle tracks (also after a failure: the headless writers keep what was done)
        except Exception as exc:
            self._fail(f"settling tracks failed: {type(exc).__name__}: {exc}")

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._running.wait(0.1):
                continue
            self._busy.set()
            try:
                frames = self._gather()
                if frames:
                    self._process(frames)
                    if self.paused:  # the last step before a pause: the snapshot shows its identities
                        self._refresh_identities(force=True)
                self._settle_finished()
            finally:
                self._busy.clear()
            if not frames and not self.keep_alive and self._all_finished():
                break

    def _fail(self, error: str, exc_info: bool = True) -> None:
        """Record why the worker stops, stop the readers, show the error on every unsettled camera."""
        log.error("%s", error, exc_info=exc_info)
        self.error = self.error or error  # keep the first cause
        self._stop.set()
        with self._lock:
            readers = [r for cid, r in self._readers.items() if cid not in self._ended]
        for reader in readers:
            reader.stop()
            reader.status, reader.message = CameraStatus.ERROR, self.error

    def _gather(self) -> list[CameraFrame]:
        """At most one frame per camera. Real-time: whatever is newest now; else the next frame of
        every file (waited for until it comes or the file is over, so the k-th step holds every
        file's k-th frame however slowly a reader opens or decodes: the run is reproducible) and of
        every running stream or webcam (up to 0.5 s; those opening or reconnecting are not waited for)."""
        with self._lock:
            readers = [r for cid, r in self._readers.items() if cid not in self._ended]
        frames = []
        deadline = time.monotonic() + (0.05 if self.config.realtime else 0.5)
        for reader in readers:
            if not self.config.realtime and reader.spec.kind == "file":
                frame = self._next_file_frame(reader)
                if frame is not None:
                    frames.append(frame)
                continue
            wait = 0.0
            if not self.config.realtime and reader.status == CameraStatus.RUNNING:
                wait = max(0.001, deadline - time.monotonic())
            frame = reader.get(wait)
            if frame is not None:
                frames.append(frame)
        if not frames:  # nothing ready (sources opening or reconnecting, or none left): do not spin
            self._stop.wait(0.005 if readers else 0.02)
        return frames

    def _next_file_frame(self, reader: CameraReader) -> CameraFrame | None:
        """A file's next frame, waited for until it comes, the file is over, or a stop or pause."""
        while not self._stop.is_set() and self._running.is_set():
            frame = reader.get(0.02)
            if frame is not None or reader.finished:
                return frame
        return reader.get()

    def _process(self, frames: list[CameraFrame]) -> None:
        results = self.pipeline.step(frames)
        for result in results:
            self._stats[result.camera_id].add(result.latency_s)
            self._deliver(result)
        self._refresh_identities()

    def _deliver(self, result: FrameResult) -> None:
        if self.on_result is not None:
            self.on_result(result)
            return
        while True:
            try:
                self.results.put_nowait(result)
                return
            except queue.Full:
                try:
                    self.results.get_nowait()  # the consumer is slow: drop the oldest result
                except queue.Empty:
                    pass

    def _refresh_identities(self, force: bool = False, full: bool = False) -> None:
        """At most twice a second unless ``force``: each identity's latest ``SNAPSHOT_MEMBERS``
        tracks (a cost that does not grow with the run); ``full`` (the run's end): every member,
        for ``identities.json``."""
        now = time.monotonic()
        if force or full or now - self._identities_at >= 0.5:
            self._identities = self.pipeline.identities(None if full else SNAPSHOT_MEMBERS)
            self._identities_at = now

    def _settle_finished(self) -> None:
        with self._lock:
            finished = [cid for cid, r in self._readers.items() if cid not in self._ended and r.finished]
        for camera_id in finished:
            self._ended.add(camera_id)
            self.pipeline.end_camera(camera_id)

    def _all_finished(self) -> bool:
        with self._lock:
            return all(cid in self._ended for cid in self._readers)

    def _finish(self) -> None:
        self._ended.update(self.pipeline.finish())
        self._ended.update(list(self._readers))
        self._refresh_identities(full=True)
