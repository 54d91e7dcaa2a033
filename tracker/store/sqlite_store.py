"""``SqliteIdentityStore``: the identity store in one SQLite file (WAL), no server.

- Created readable and writable by its owner only (0600; SQLite gives its ``-wal`` and ``-shm``
  files the same mode). ``secure_delete`` is on, so erased rows are overwritten with zeros.
- WAL journal: readers (``mcreid-search``, the viewer) never block the one writer (the tracker), and
  a process killed at any moment leaves the last committed transaction intact. ``synchronous=NORMAL``:
  a commit survives a killed process; only a power cut may lose the last commits.
- One writer at a time: a tracker holds an exclusive ``flock`` on ``PATH.lock`` (released by the
  kernel when the process dies, however it dies); a second tracker is refused with the holder's pid.
- Vectors are float32 BLOBs in the rows they describe; search uses ``tracker.store.index.ExactIndex``,
  a matrix derived from the file and refreshed from ``identities.updated_seq``.
- The re-ID model that made the vectors (file name, sha256, feature length) is recorded at creation;
  opening the store with another model is refused (``tracker.store.opening``).
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import socket
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from tracker.signatures import Signature
from tracker.store import schema
from tracker.store.base import (ForgetReport, ModelInfo, RetentionReport, RunInfo, SearchHit, Sighting, StoreError,
                                StoredIdentity, TrackSighting)
from tracker.store.index import ExactIndex

log = logging.getLogger(__name__)

JPEG_QUALITY = 90
_VERIFY_PATTERNS = 64  # vectors and thumbnails of a forgotten identity looked for in the file
_WHY = {
    "SQLITE_FULL": "the disk is full",
    "SQLITE_READONLY": "it is read-only",
    "SQLITE_CANTOPEN": "it cannot be opened (missing folder or no permission)",
    "SQLITE_NOTADB": "it is not an SQLite database",
    "SQLITE_CORRUPT": "it is damaged",
    "SQLITE_BUSY": "another process kept it locked too long",
    "SQLITE_IOERR": "an I/O error",
    "SQLITE_PERM": "permission denied",
}


def describe_sqlite_error(exc: sqlite3.Error) -> str:
    """A short reason for an SQLite error ("the disk is full", "it is read-only", ...)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    for prefix, why in _WHY.items():
        if name.startswith(prefix):
            return f"{why} ({exc})"
    return str(exc)


def _blob(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, np.float32).tobytes()


def _vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, np.float32).astype(np.float64)


class SqliteIdentityStore:
    """The ``IdentityStore`` in one SQLite file. Use ``open_store``.

    Safe to share between threads (one connection behind a lock): the viewer's GUI searches while
    its pipeline's writer thread records.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection, model: ModelInfo, lock_fd: int | None) -> None:
        self.path = path
        self.model = model
        self._conn = conn
        self._lock = threading.RLock()
        self._lock_fd = lock_fd
        self._index = ExactIndex(model.feature_dim)
        self._index_seq = -1
        self._sources: dict[int, tuple[dict[str, str], float]] = {}  # run id -> (sources, wall-clock start)

    # -- life ----------------------------------------------------------------------------------
    @property
    def writable(self) -> bool:
        """This object holds the writer lock (a tracker's store)."""
        return self._lock_fd is not None

    def close(self) -> None:
        with self._lock:
            if self._conn is None:
                return
            try:
                if self.writable:
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                log.warning("identity store %s: final checkpoint failed: %s", self.path, describe_sqlite_error(exc))
            self._conn.close()
            self._conn = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    def __enter__(self) -> SqliteIdentityStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any error)."""
        conn = self._conn
        if conn is None:
            raise StoreError(f"identity store {self.path} is closed")
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _meta(self, key: str, default: str = "") -> str:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def _set_meta(self, key: str, value: object) -> None:
        self._conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                           "value = excluded.value", (key, str(value)))

    def _bump_seq(self) -> int:
        seq = int(self._meta("write_seq", "0")) + 1
        self._set_meta("write_seq", seq)
        return seq

    # -- runs ----------------------------------------------------------------------------------
    def begin_run(self, sources: dict[str, str]) -> int:
        started = time.time()
        with self._lock, self._transaction() as conn:
            cur = conn.execute("INSERT INTO runs (started_at, sources, host, pid) VALUES (?, ?, ?, ?)",
                               (started, json.dumps(sources), socket.gethostname(), os.getpid()))
            run_id = int(cur.lastrowid)
        self._sources[run_id] = (dict(sources), started)
        return run_id

    def add_sources(self, run_id: int, sources: dict[str, str]) -> None:
        """Sources added to a running run (the viewer's File menu)."""
        known, started = self._run_sources(run_id)
        merged = {**known, **sources}
        with self._lock, self._transaction() as conn:
            conn.execute("UPDATE runs SET sources = ? WHERE run_id = ?", (json.dumps(merged), run_id))
        self._sources[run_id] = (merged, started)

    def end_run(self, run_id: int) -> None:
        with self._lock, self._transaction() as conn:
            conn.execute("UPDATE runs SET ended_at = ? WHERE run_id = ?", (time.time(), run_id))

    def _run_sources(self, run_id: int) -> tuple[dict[str, str], float]:
        """The run's sources by camera, and its wall-clock start."""
        if run_id not in self._sources:
            row = self._conn.execute("SELECT sources, started_at FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"identity store {self.path} has no run {run_id}")
            self._sources[run_id] = (json.loads(row[0]), float(row[1]))
        return self._sources[run_id]

    # -- seeding -------------------------------------------------------------------------------
    def load_identities(self) -> tuple[list[tuple[int, Signature]], int]:
        with self._lock:
            rows = self._conn.execute("SELECT global_id, clip_count, signature FROM identities ORDER BY global_id")
            identities = [(int(gid), Signature(_vector(blob), int(count))) for gid, count, blob in rows]
            next_id = int(self._meta("next_global_id", "1"))
        top = max((gid for gid, _ in identities), default=0)
        return identities, max(next_id, top + 1)

    # -- writing -------------------------------------------------------------------------------
    def record(self, run_id: int, sightings: Sequence[TrackSighting], next_global_id: int,
               now: float | None = None) -> None:
        """Insert or update the sightings of this run (keyed by camera and track) and fold the
        change into their identities' signatures, in one transaction. Sightings of identities
        forgotten meanwhile are skipped.

        Raises:
            sqlite3.Error: the write failed (full disk, read-only file); nothing was written.
        """
        now = time.time() if now is None else now
        sources, run_start = self._run_sources(run_id)
        with self._lock, self._transaction() as conn:
            seq = self._bump_seq()
            gids = {s.global_id for s in sightings}
            forgotten = {row[0] for row in conn.execute(
                f"SELECT global_id FROM forgotten WHERE global_id IN ({','.join('?' * len(gids))})", list(gids))}
            deltas: dict[int, list] = {}  # global id -> [clip-weighted sum, clips]
            for s in sightings:
                if s.global_id in forgotten or s.global_id <= 0:
                    continue
                self._record_one(conn, run_id, sources, run_start, s, now, deltas, forgotten)
            for gid, (total, clips) in deltas.items():
                self._apply_delta(conn, gid, total, clips, seq)
            self._conn.execute("UPDATE meta SET value = max(CAST(value AS INTEGER), ?) WHERE key = 'next_global_id'",
                               (int(next_global_id),))

    def _record_one(self, conn: sqlite3.Connection, run_id: int, sources: dict[str, str], run_start: float,
                    s: TrackSighting, now: float, deltas: dict[int, list], forgotten: set[int]) -> None:
        m, mean = s.member, s.signature.mean
        count = int(s.signature.count)

        def add(gid: int, vector: np.ndarray, clips: int) -> None:
            entry = deltas.setdefault(gid, [np.zeros(self.model.feature_dim), 0])
            entry[0] = entry[0] + vector * clips
            entry[1] += clips

        row = conn.execute("SELECT sighting_id, global_id, clip_count, signature FROM sightings "
                           "WHERE run_id = ? AND camera_id = ? AND track_id = ?",
                           (run_id, m.camera_id, m.track_id)).fetchone()
        values = (s.global_id, m.first_frame, m.last_frame, m.first_time_s, m.last_time_s, now, count, _blob(mean),
                  int(s.ended))
        self._ensure_identity(conn, s.global_id, now)
        if row is not None:
            sighting_id, old_gid, old_count, old_blob = row
            if old_gid not in forgotten:
                add(old_gid, _vector(old_blob), -old_count)
            conn.execute("UPDATE sightings SET global_id = ?, first_frame = ?, last_frame = ?, first_time_s = ?, "
                         "last_time_s = ?, ended_at = ?, clip_count = ?, signature = ?, ended = ? "
                         "WHERE sighting_id = ?", (*values, sighting_id))
        else:
            # the track's source duration back from now, but never before its run began (a file
            # processed faster than real time covers more source time than wall time)
            started = max(run_start, now - max(0.0, m.last_time_s - m.first_time_s))
            sighting_id = conn.execute(
                "INSERT INTO sightings (global_id, first_frame, last_frame, first_time_s, last_time_s, ended_at, "
                "clip_count, signature, ended, run_id, camera_id, source, track_id, started_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, run_id, m.camera_id, sources.get(m.camera_id, m.camera_id), m.track_id, started)).lastrowid
        add(s.global_id, np.asarray(mean, np.float64), count)
        if s.thumbnail is not None:
            stored = conn.execute("SELECT score FROM thumbnails WHERE sighting_id = ?", (sighting_id,)).fetchone()
            if stored is None or s.thumbnail_score > stored[0]:
                conn.execute("INSERT OR REPLACE INTO thumbnails (sighting_id, score, jpeg) VALUES (?, ?, ?)",
                             (sighting_id, float(s.thumbnail_score), _jpeg(s.thumbnail)))

    def _ensure_identity(self, conn: sqlite3.Connection, gid: int, started: float) -> None:
        """A placeholder row so the new sighting's foreign key holds; ``_apply_delta`` fills it."""
        conn.execute("INSERT OR IGNORE INTO identities (global_id, clip_count, first_seen_at, last_seen_at, "
                     "signature, updated_seq) VALUES (?, 0, ?, ?, ?, 0)",
                     (gid, started, started, _blob(np.zeros(self.model.feature_dim))))

    def _apply_delta(self, conn: sqlite3.Connection, gid: int, total: np.ndarray, clips: int, seq: int) -> None:
        count, first, last = conn.execute("SELECT count(*), min(started_at), max(ended_at) FROM sightings "
                                          "WHERE global_id = ?", (gid,)).fetchone()
        if not count:
            conn.execute("DELETE FROM identities WHERE global_id = ?", (gid,))
            return
        row = conn.execute("SELECT clip_count, signature FROM identities WHERE global_id = ?", (gid,)).fetchone()
        old_clips, old_sum = (row[0], _vector(row[1]) * row[0]) if row else (0, 0.0)
        new_clips = old_clips + clips
        mean = (old_sum + total) / max(new_clips, 1)
        conn.execute("INSERT INTO identities (global_id, clip_count, first_seen_at, last_seen_at, signature, "
                     "updated_seq) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (global_id) DO UPDATE SET "
                     "clip_count = excluded.clip_count, first_seen_at = excluded.first_seen_at, "
                     "last_seen_at = excluded.last_seen_at, signature = excluded.signature, "
                     "updated_seq = excluded.updated_seq", (gid, new_clips, first, last, _blob(mean), seq))

    # -- reading -------------------------------------------------------------------------------
    def stats(self) -> dict[str, object]:
        """Counts, schema version, model and file size, for a summary line."""
        with self._lock:
            count = lambda table: int(self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: E731
            return {"identities": count("identities"), "sightings": count("sightings"), "runs": count("runs"),
                    "thumbnails": count("thumbnails"), "schema_version": schema.schema_version(self._conn),
                    "model": self.model.name, "model_sha256": self.model.sha256,
                    "bytes": self.path.stat().st_size if self.path.exists() else 0}

    def identity(self, global_id: int) -> StoredIdentity | None:
        with self._lock:
            row = self._conn.execute("SELECT clip_count, signature, first_seen_at, last_seen_at FROM identities "
                                     "WHERE global_id = ?", (int(global_id),)).fetchone()
            if row is None:
                return None
            cameras = [r[0] for r in self._conn.execute(
                "SELECT camera_id FROM sightings WHERE global_id = ? GROUP BY camera_id ORDER BY min(started_at)",
                (int(global_id),))]
            runs = [r[0] for r in self._conn.execute(
                "SELECT DISTINCT run_id FROM sightings WHERE global_id = ? ORDER BY run_id", (int(global_id),))]
            sightings = self._conn.execute("SELECT count(*) FROM sightings WHERE global_id = ?",
                                           (int(global_id),)).fetchone()[0]
        clips, blob, first, last = row
        return StoredIdentity(int(global_id), Signature(_vector(blob), int(clips)), first, last, int(sightings),
                              tuple(cameras), tuple(int(r) for r in runs))

    def history(self, global_id: int) -> list[Sighting]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT s.sighting_id, s.global_id, s.run_id, s.camera_id, s.source, s.track_id, s.first_frame, "
                "s.last_frame, s.first_time_s, s.last_time_s, s.started_at, s.ended_at, s.clip_count, s.ended, "
                "t.sighting_id IS NOT NULL FROM sightings s LEFT JOIN thumbnails t USING (sighting_id) "
                "WHERE s.global_id = ? ORDER BY s.started_at, s.sighting_id", (int(global_id),)).fetchall()
        return [Sighting(*r[:13], bool(r[13]), bool(r[14])) for r in rows]

    def forgotten_at(self, global_id: int) -> float | None:
        """When the identity was forgotten (wall clock), or None."""
        with self._lock:
            row = self._conn.execute("SELECT forgotten_at FROM forgotten WHERE global_id = ?",
                                     (int(global_id),)).fetchone()
        return None if row is None else float(row[0])

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        with self._lock:
            rows = self._conn.execute("SELECT run_id, started_at, ended_at, sources FROM runs ORDER BY run_id").fetchall()
        return [RunInfo(int(r[0]), r[1], r[2], json.loads(r[3])) for r in rows]

    def thumbnail(self, sighting_id: int) -> bytes | None:
        with self._lock:
            row = self._conn.execute("SELECT jpeg FROM thumbnails WHERE sighting_id = ?", (int(sighting_id),)).fetchone()
        return None if row is None else bytes(row[0])

    def best_sighting(self, global_id: int) -> int:
        """The sighting with the best-scored thumbnail (0: none)."""
        with self._lock:
            row = self._conn.execute("SELECT t.sighting_id FROM thumbnails t JOIN sightings s USING (sighting_id) "
                                     "WHERE s.global_id = ? ORDER BY t.score DESC LIMIT 1", (int(global_id),)).fetchone()
        return int(row[0]) if row else 0

    def search(self, query: np.ndarray, top: int = 5) -> list[SearchHit]:
        query = np.asarray(query, np.float32).reshape(-1)
        if query.shape != (self.model.feature_dim,):
            raise ValueError(f"the query must be a ({self.model.feature_dim},) raw feature of {self.model.name}, "
                             f"got shape {query.shape}")
        if top < 1:
            raise ValueError(f"top must be >= 1, got {top}")
        with self._lock:
            self.refresh_index()
            ids, sims = self._index.search(query, top)
            hits = []
            for gid, sim in zip(ids.tolist(), sims.tolist()):
                ident = self.identity(gid)
                if ident is not None:
                    hits.append(SearchHit(ident, float(sim), self.best_sighting(gid)))
        return hits

    def refresh_index(self) -> int:
        """Bring the search matrix up to date with the file; returns the identities in it."""
        with self._lock:
            seq = int(self._meta("write_seq", "0"))
            if seq == self._index_seq:
                return len(self._index)
            current = {gid for (gid,) in self._conn.execute("SELECT global_id FROM identities INDEXED BY "
                                                            "identities_updated")}
            self._index.remove(self._index.ids - current)
            rows = self._conn.execute("SELECT global_id, signature FROM identities WHERE updated_seq > ?",
                                      (max(self._index_seq, -1),)).fetchall()
            if rows:
                ids = np.array([r[0] for r in rows], np.int64)
                vectors = np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), -1)
                self._index.upsert(ids, vectors)
            self._index_seq = seq
            return len(self._index)

    # -- privacy -------------------------------------------------------------------------------
    def forget(self, global_id: int, verify: bool = True) -> ForgetReport:
        """Erase one identity: its sightings, thumbnails and vectors; then VACUUM and empty the
        write-ahead log, and (``verify``) scan the file for any of its vectors or thumbnails.

        Raises:
            KeyError: the store has no such identity.
        """
        gid = int(global_id)
        with self._lock:
            if self.identity(gid) is None:
                raise KeyError(f"identity store {self.path} has no identity {gid}")
            patterns = self._patterns(gid) if verify else []
            with self._transaction() as conn:
                thumbs = conn.execute("DELETE FROM thumbnails WHERE sighting_id IN (SELECT sighting_id FROM sightings "
                                      "WHERE global_id = ?)", (gid,)).rowcount
                sightings = conn.execute("DELETE FROM sightings WHERE global_id = ?", (gid,)).rowcount
                conn.execute("DELETE FROM identities WHERE global_id = ?", (gid,))
                conn.execute("INSERT OR REPLACE INTO forgotten (global_id, forgotten_at) VALUES (?, ?)",
                             (gid, time.time()))
                self._bump_seq()
            self._conn.execute("VACUUM")
            busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            leftovers = _count_in_files([self.path, Path(f"{self.path}-wal")], patterns) if verify else -1
        log.info("identity store %s: forgot identity %d (%d sightings, %d thumbnails)", self.path, gid, sightings,
                 thumbs)
        return ForgetReport(gid, sightings, thumbs, leftovers, wal_truncated=not busy)

    def _patterns(self, gid: int) -> list[bytes]:
        """Fragments of the identity's vectors and thumbnails, to look for after erasing."""
        blobs = [self._conn.execute("SELECT signature FROM identities WHERE global_id = ?", (gid,)).fetchone()[0]]
        blobs += [r[0] for r in self._conn.execute("SELECT signature FROM sightings WHERE global_id = ? LIMIT ?",
                                                   (gid, _VERIFY_PATTERNS))]
        blobs += [r[0] for r in self._conn.execute("SELECT t.jpeg FROM thumbnails t JOIN sightings s USING "
                                                   "(sighting_id) WHERE s.global_id = ? LIMIT ?",
                                                   (gid, _VERIFY_PATTERNS))]
        out = []
        for blob in blobs:  # 64 bytes from the middle: never a shared header, unique to this record
            middle = len(blob) // 2
            fragment = bytes(blob[middle - 32:middle + 32])
            if len(fragment) == 64 and fragment.count(0) < 32:
                out.append(fragment)
        return out

    def apply_retention(self, days: float, now: float | None = None) -> RetentionReport:
        """Drop sightings (with their thumbnails and vectors) that ended more than ``days`` days ago;
        identities left with none are dropped, the others' signatures recomputed from what is left."""
        if days <= 0:
            raise ValueError(f"retention must be > 0 days, got {days}")
        cutoff = (time.time() if now is None else now) - days * 86400.0
        with self._lock, self._transaction() as conn:
            affected = [r[0] for r in conn.execute("SELECT DISTINCT global_id FROM sightings WHERE ended_at < ?",
                                                   (cutoff,))]
            thumbs = conn.execute("DELETE FROM thumbnails WHERE sighting_id IN (SELECT sighting_id FROM sightings "
                                  "WHERE ended_at < ?)", (cutoff,)).rowcount
            dropped = conn.execute("DELETE FROM sightings WHERE ended_at < ?", (cutoff,)).rowcount
            seq = self._bump_seq()
            gone = 0
            for gid in affected:
                gone += not self._recompute(conn, gid, seq)
            conn.execute("DELETE FROM runs WHERE ended_at IS NOT NULL AND ended_at < ? AND run_id NOT IN "
                         "(SELECT DISTINCT run_id FROM sightings)", (cutoff,))
        if dropped:
            log.info("identity store %s: retention %.4g days dropped %d sightings, %d thumbnails, %d identities",
                     self.path, days, dropped, thumbs, gone)
        return RetentionReport(dropped, thumbs, gone, len(affected) - gone)

    def _recompute(self, conn: sqlite3.Connection, gid: int, seq: int) -> bool:
        """Rebuild an identity from its sightings; False (and the row deleted) when it has none."""
        rows = conn.execute("SELECT clip_count, signature, started_at, ended_at FROM sightings WHERE global_id = ?",
                            (gid,)).fetchall()
        if not rows:
            conn.execute("DELETE FROM identities WHERE global_id = ?", (gid,))
            return False
        clips = sum(r[0] for r in rows)
        mean = sum(_vector(r[1]) * r[0] for r in rows) / max(clips, 1)
        conn.execute("UPDATE identities SET clip_count = ?, signature = ?, first_seen_at = ?, last_seen_at = ?, "
                     "updated_seq = ? WHERE global_id = ?",
                     (clips, _blob(mean), min(r[2] for r in rows), max(r[3] for r in rows), seq, gid))
        return True

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: "ok" or the problems found."""
        with self._lock:
            return "\n".join(r[0] for r in self._conn.execute("PRAGMA integrity_check"))


def _jpeg(image: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"cannot encode a thumbnail of shape {image.shape} as JPEG")
    return data.tobytes()


def _count_in_files(paths: Sequence[Path], patterns: Sequence[bytes]) -> int:
    """How many of ``patterns`` occur in any of the files."""
    found = 0
    maps = []
    try:
        for path in paths:
            if path.exists() and path.stat().st_size:
                with open(path, "rb") as fh:
                    maps.append(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ))
        for pattern in patterns:
            found += any(m.find(pattern) >= 0 for m in maps)
    finally:
        for m in maps:
            m.close()
    return found



def open_store(path, model: ModelInfo | None = None, writer: bool = False) -> SqliteIdentityStore:
    """See ``tracker.store.opening.open_store``."""
    from tracker.store.opening import open_store as _open

    return _open(path, model, writer)
