"""Ended member tracks, archived as fixed-size rows so the matcher's memory does not grow with them.

Once a member track has ended and nothing live refers to it any more (``tracker.matching``), the
matcher needs only its output record: camera, track id, final global id, when it was seen and its
clip count. Those are kept here as 64-byte numpy rows, in chunks of ``chunk_rows``; full chunks
are written to a scratch file (an anonymous temporary file by default) and dropped from memory,
so a 24/7 run holds at most one chunk however many tracks ended. ``identities.json`` and the
relabelled MOT files read the rows back once, at the end (``by_identity``).

If the scratch file cannot be written (full or read-only disk) the rows stay in memory (64 bytes a
track) and one warning says so.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from tracker.types import TrackMember

log = logging.getLogger(__name__)

ROW = np.dtype([("camera", np.int32), ("clip_count", np.int32), ("track_id", np.int64), ("global_id", np.int64),
                ("join_order", np.int64), ("first_frame", np.int64), ("last_frame", np.int64),
                ("first_time_s", np.float64), ("last_time_s", np.float64)])


class MemberArchive:
    """Rows of ended member tracks: appended in memory, spilled to a scratch file by chunks.

    Args:
        chunk_rows: rows held in memory before a chunk is spilled.
        spill: write full chunks to the scratch file (False: keep every row in memory).
        path: the scratch file (overwritten); None = an anonymous temporary file, deleted when closed.
    """

    def __init__(self, chunk_rows: int = 1024, spill: bool = True, path: str | Path | None = None) -> None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
        self.chunk_rows = chunk_rows
        self._path = path
        self._file: IO[bytes] | None = None
        self._spill = spill
        self._chunk = np.zeros(chunk_rows, ROW)
        self._filled = 0
        self._kept: list[np.ndarray] = []  # full chunks held in memory (no scratch file)
        self._spilled = 0  # rows in the scratch file
        self._cameras: list[str] = []
        self._camera_index: dict[str, int] = {}
        self._max_track_id: dict[str, int] = {}

    def __len__(self) -> int:
        return self._spilled + sum(len(c) for c in self._kept) + self._filled

    @property
    def rows_in_memory(self) -> int:
        """Rows held in memory (at most one chunk while the scratch file works)."""
        return sum(len(c) for c in self._kept) + self._filled

    def add(self, member: TrackMember, global_id: int, join_order: int) -> None:
        """Archive one ended member track of identity ``global_id``."""
        camera = self._camera_index.get(member.camera_id)
        if camera is None:
            camera = self._camera_index[member.camera_id] = len(self._cameras)
            self._cameras.append(member.camera_id)
        self._chunk[self._filled] = (camera, member.clip_count, member.track_id, global_id, join_order,
                                     member.first_frame, member.last_frame, member.first_time_s, member.last_time_s)
        self._filled += 1
        self._max_track_id[member.camera_id] = max(self._max_track_id.get(member.camera_id, member.track_id),
                                                   member.track_id)
        if self._filled == self.chunk_rows:
            self._store(self._chunk.copy())
            self._filled = 0

    def _store(self, chunk: np.ndarray) -> None:
        if self._spill:
            try:
                if self._file is None:
                    self._file = (open(self._path, "w+b") if self._path
                                  else tempfile.TemporaryFile(prefix="mcreid-members-"))
                self._file.seek(0, 2)
                chunk.tofile(self._file)
                self._file.flush()
                self._spilled += len(chunk)
                return
            except OSError as exc:
                log.warning("cannot write the ended-track archive (%s); keeping it in memory (64 bytes a track)",
                            exc)
                self._spill = False
        self._kept.append(chunk)

    def _rows(self) -> Iterator[np.ndarray]:
        """Every archived row, by chunk (the scratch file is read back)."""
        if self._spilled:
            self._file.seek(0)
            yield np.fromfile(self._file, ROW, count=self._spilled)
        yield from self._kept
        if self._filled:
            yield self._chunk[:self._filled]

    def global_id(self, camera_id: str, track_id: int) -> int | None:
        """The global id of an archived track; None if it is not archived."""
        if track_id > self._max_track_id.get(camera_id, -1) or camera_id not in self._camera_index:
            return None  # the per-camera trackers count ids up: the usual case costs no search
        camera = self._camera_index[camera_id]
        for rows in self._rows():
            hit = np.flatnonzero((rows["camera"] == camera) & (rows["track_id"] == track_id))
            if len(hit):
                return int(rows["global_id"][hit[-1]])
        return None

    def by_identity(self) -> dict[int, list[tuple[int, TrackMember]]]:
        """``{global id: [(join order, member), ...]}`` over every archived track."""
        out: dict[int, list[tuple[int, TrackMember]]] = {}
        for rows in self._rows():
            for row in rows.tolist():
                camera, clips, track_id, gid, order, first, last, first_s, last_s = row
                member = TrackMember(self._cameras[camera], track_id, first, last, first_s, last_s, clips)
                out.setdefault(gid, []).append((order, member))
        return out

    def close(self) -> None:
        """Delete the scratch file (an anonymous one) and forget every row."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._kept, self._filled, self._spilled = [], 0, 0
