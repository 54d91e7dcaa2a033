"""``StoreRecorder``: a pipeline's sightings into an ``IdentityStore``, from a writer thread.

The pipeline hands over, on its own thread and at almost no cost, the tracks that ended (as they
end: their signatures are folded away right after) and, every ``interval_s`` (0.5 s), a snapshot of
the live identified tracks. A writer thread commits each batch in one transaction, so a process
killed at any moment loses at most the last ``interval_s`` plus one commit. JPEG encoding and disk
waits happen on that thread, never in a pipeline step.

A failed write (a full disk, a file made read-only) is logged once with the reason (then once a
minute while it lasts) and retried with the next batch; tracking goes on. Ended tracks wait for the
retry (at most ``MAX_BACKLOG``; older ones are dropped and counted); a live snapshot is superseded
by the next one. With ``retention_days`` the writer also applies retention every
``RETENTION_EVERY_S``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from typing import Callable, Protocol

from tracker.store.base import IdentityStore, StoreError, TrackSighting
from tracker.store.sqlite_store import describe_sqlite_error

log = logging.getLogger(__name__)

MAX_BACKLOG = 10_000  # ended tracks kept for a retry while writes fail
RETENTION_EVERY_S = 600.0
_REPEAT_ERROR_S = 60.0


class _LiveSource(Protocol):
    def live_sightings(self) -> list[TrackSighting]: ...

    @property
    def next_global_id(self) -> int: ...


class StoreRecorder:
    """Writes what a pipeline reports to ``store`` under ``run_id``.

    Args:
        store: the open (writable) store.
        run_id: from ``store.begin_run``.
        interval_s: the most time between two commits while there is something to write.
        retention_days: apply ``store.apply_retention`` every ``RETENTION_EVERY_S`` (None: never here).
        clock: monotonic seconds (tests).

    Attributes:
        error: "" while writes succeed; else why the last one failed.
        commits, failures: transactions written and failed.
        dropped: ended tracks dropped because writes kept failing.
        commit_s: seconds of the latest commits (the writer thread's time per batch).
    """

    def __init__(self, store: IdentityStore, run_id: int, interval_s: float = 0.5,
                 retention_days: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be > 0, got {interval_s}")
        self.store, self.run_id, self.interval_s = store, run_id, interval_s
        self.retention_days = retention_days
        self._clock = clock
        self.error = ""
        self.commits = self.failures = self.dropped = 0
        self.commit_s: deque[float] = deque(maxlen=1000)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._ended: list[TrackSighting] = []
        self._live: list[TrackSighting] | None = None
        self._next_global_id = 1
        self._closing = False
        self._last_submit = float("-inf")
        self._last_error_log = float("-inf")
        self._last_retention = clock()
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    # -- pipeline thread -----------------------------------------------------------------------
    def ended(self, sighting: TrackSighting) -> None:
        """A track ended: its final record (written with the next batch)."""
        with self._lock:
            self._ended.append(sighting)

    def after_step(self, pipeline: _LiveSource) -> None:
        """Called after every pipeline step: every ``interval_s``, snapshot the live tracks."""
        now = self._clock()
        if now - self._last_submit < self.interval_s:
            return
        self._last_submit = now
        self.submit(pipeline.live_sightings(), pipeline.next_global_id)

    def submit(self, live: list[TrackSighting], next_global_id: int) -> None:
        """Hand a live snapshot (and the ended tracks so far) to the writer."""
        with self._lock:
            self._live = list(live)
            self._next_global_id = max(self._next_global_id, int(next_global_id))
        self._wake.set()

    def close(self, next_global_id: int | None = None, timeout: float = 30.0) -> bool:
        """Write what is pending, mark the run ended, stop the writer. True when everything was written."""
        with self._lock:
            if next_global_id is not None:
                self._next_global_id = max(self._next_global_id, int(next_global_id))
            self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        clean = not self._thread.is_alive() and not self._ended and self._live is None
        try:
            self.store.end_run(self.run_id)
        except (sqlite3.Error, StoreError) as exc:
            log.error("identity store: cannot mark run %d ended: %s", self.run_id, _why(exc))
            clean = False
        if not clean:
            log.error("identity store: %d ended tracks could not be written (%s)", len(self._ended) + self.dropped,
                      self.error or "the writer did not finish")
        return clean

    # -- writer thread -------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            with self._lock:
                ended, live, next_id, closing = self._ended, self._live, self._next_global_id, self._closing
                self._ended, self._live = [], None
            if ended or live is not None:
                self._write(ended, live, next_id)
            self._maybe_retain()
            if closing:
                with self._lock:
                    pending = bool(self._ended) or self._live is not None
                if not pending or self.error:  # a failing store is not retried forever at close
                    return

    def _write(self, ended: list[TrackSighting], live: list[TrackSighting] | None, next_id: int) -> None:
        tic = time.perf_counter()
        try:
            # live first: a track in an old live snapshot and in ``ended`` ends with its final record
            self.store.record(self.run_id, [*(live or ()), *ended], next_id)
        except (sqlite3.Error, OSError, StoreError) as exc:
            self.error = f"cannot write the identity store: {_why(exc)}"
            now = self._clock()
            if now - self._last_error_log >= _REPEAT_ERROR_S:
                self._last_error_log = now
                log.error("%s; tracking goes on, writes are retried", self.error)
            with self._lock:
                self._ended = ended + self._ended
                overflow = len(self._ended) - MAX_BACKLOG
                if overflow > 0:
                    del self._ended[:overflow]
                    self.dropped += overflow
                if self._live is None:
                    self._live = live
            self.failures += 1  # last: a reader that sees it also sees the log line and the backlog
            return
        if self.error:
            log.warning("identity store writes work again (%d failed)", self.failures)
        self.error = ""
        self.commits += 1
        self.commit_s.append(time.perf_counter() - tic)

    def _maybe_retain(self) -> None:
        if self.retention_days is None or self._clock() - self._last_retention < RETENTION_EVERY_S:
            return
        self._last_retention = self._clock()
        try:
            self.store.apply_retention(self.retention_days)
        except (sqlite3.Error, StoreError) as exc:
            log.error("identity store: retention failed: %s", _why(exc))


def _why(exc: BaseException) -> str:
    return describe_sqlite_error(exc) if isinstance(exc, sqlite3.Error) else str(exc)
