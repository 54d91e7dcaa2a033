"""The identity store seam: small typed values and the ``IdentityStore`` protocol.

The tracker, the viewer and ``mcreid-search`` speak only to this protocol; the SQLite
implementation lives in ``tracker.store.sqlite_store``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from tracker.signatures import Signature
from tracker.types import TrackMember


class StoreError(Exception):
    """The store cannot be used: the message says which file, what went wrong and what to do."""


class StoreBusy(StoreError):
    """Another tracker is recording into the store."""


class ModelMismatch(StoreError):
    """The store's vectors were made by another re-ID model than the one given."""


@dataclass(frozen=True)
class ModelInfo:
    """The re-ID model whose raw features the store holds (vectors of two models are not comparable).

    Attributes:
        name: the model file's name (or the embedder's class name for an embedder without a file).
        sha256: hex digest of the model file ("" for an embedder without a file).
        feature_dim: length of the vectors.
        path: where the model was when the store was created ("" without a file).
    """

    name: str
    sha256: str
    feature_dim: int
    path: str = ""

    def same_model(self, other: ModelInfo) -> bool:
        """Same file content (or, without files, same name) and same feature length."""
        return (self.sha256, self.name if not self.sha256 else "", self.feature_dim) == \
            (other.sha256, other.name if not other.sha256 else "", other.feature_dim)


@dataclass(frozen=True)
class TrackSighting:
    """One per-camera track of an identity, as the pipeline reports it to the store.

    Attributes:
        global_id: its identity.
        member: camera, track id, frames, source times and clip count.
        signature: the track's running-mean raw feature (``(D,)``) and clip count.
        thumbnail: its best crop so far, ``(H, W, 3)`` uint8 BGR, or None.
        thumbnail_score: the crop's score (confidence x sqrt(area)); higher is better.
        ended: the track is over (its record will not change again).
    """

    global_id: int
    member: TrackMember
    signature: Signature
    thumbnail: np.ndarray | None = None
    thumbnail_score: float = -1.0
    ended: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return (self.member.camera_id, self.member.track_id)


@dataclass(frozen=True)
class RunInfo:
    """One tracker run that recorded into the store.

    Attributes:
        run_id: its number (1, 2, ...).
        started_at, ended_at: wall clock, Unix seconds (``ended_at`` None while running or if it was killed).
        sources: ``{camera_id: source}`` (path, URL or webcam index).
    """

    run_id: int
    started_at: float
    ended_at: float | None
    sources: dict[str, str]


@dataclass(frozen=True)
class Sighting:
    """Where and when an identity was seen: one per-camera track of one run.

    Attributes:
        sighting_id: its row id (thumbnails are found by it).
        global_id: the identity.
        run_id: the run that recorded it; source: that run's source of the camera.
        camera_id, track_id: the camera and its per-camera track id.
        first_frame, last_frame: frames (1-based) in the source.
        first_time_s, last_time_s: seconds into the source.
        started_at, ended_at: wall clock, Unix seconds.
        clip_count: clips behind its signature.
        ended: False while the track was still live at the last commit.
        has_thumbnail: a best crop is stored.
    """

    sighting_id: int
    global_id: int
    run_id: int
    camera_id: str
    source: str
    track_id: int
    first_frame: int
    last_frame: int
    first_time_s: float
    last_time_s: float
    started_at: float
    ended_at: float
    clip_count: int
    ended: bool
    has_thumbnail: bool


@dataclass(frozen=True)
class StoredIdentity:
    """An identity as the store keeps it.

    Attributes:
        global_id: its id (never reused, also after it is forgotten).
        signature: clip-weighted mean of its sightings' signatures, and their clips.
        first_seen_at, last_seen_at: wall clock, Unix seconds.
        sightings: how many sightings it has.
        cameras: the cameras it was seen in.
        runs: the runs it was seen in.
    """

    global_id: int
    signature: Signature
    first_seen_at: float
    last_seen_at: float
    sightings: int
    cameras: tuple[str, ...]
    runs: tuple[int, ...]


@dataclass(frozen=True)
class SearchHit:
    """One identity a search found.

    Attributes:
        identity: the identity.
        similarity: cosine similarity of the query to its signature.
        best_sighting: the sighting with the best thumbnail (0: none stored).
    """

    identity: StoredIdentity
    similarity: float
    best_sighting: int = 0


@dataclass(frozen=True)
class RetentionReport:
    """What a retention pass dropped."""

    sightings: int
    thumbnails: int
    identities_dropped: int
    identities_updated: int


@dataclass(frozen=True)
class ForgetReport:
    """What ``forget`` erased, and whether a scan of the file found none of it afterwards.

    Attributes:
        global_id: the identity.
        sightings, thumbnails: rows erased.
        leftovers: vectors or thumbnails of the identity still found in the database file or its
            write-ahead log after erasing (0: none; -1: not checked).
        wal_truncated: the write-ahead log could be emptied (False while another process, e.g.
            a running tracker, was reading the store).
    """

    global_id: int
    sightings: int
    thumbnails: int
    leftovers: int = -1
    wal_truncated: bool = True


class IdentityStore(Protocol):
    """Identities, their sightings and vectors, kept across runs.

    Writers (the tracker) ``begin_run``, ``load_identities`` to seed the matcher, ``record`` what the
    pipeline reports at least once a second, and ``end_run``. Readers (``mcreid-search``, the
    viewer) ``search``, ``history``, ``forget``; readers and one writer may use a store at once.
    """

    model: ModelInfo

    def begin_run(self, sources: dict[str, str]) -> int:
        """Register a run; returns its id."""
        ...

    def end_run(self, run_id: int) -> None:
        """Mark the run ended."""
        ...

    def load_identities(self) -> tuple[list[tuple[int, Signature]], int]:
        """``([(global id, signature), ...], next global id)`` for seeding a matcher."""
        ...

    def record(self, run_id: int, sightings: Sequence[TrackSighting], next_global_id: int,
               now: float | None = None) -> None:
        """Write the sightings (insert or update) and their identities in one transaction."""
        ...

    def search(self, query: np.ndarray, top: int = 5) -> list[SearchHit]:
        """The ``top`` identities most similar to a ``(D,)`` raw feature."""
        ...

    def identity(self, global_id: int) -> StoredIdentity | None:
        """One identity, or None if the store has no such id."""
        ...

    def history(self, global_id: int) -> list[Sighting]:
        """Every sighting of an identity, oldest first."""
        ...

    def thumbnail(self, sighting_id: int) -> bytes | None:
        """The JPEG of a sighting's best crop, or None."""
        ...

    def forget(self, global_id: int) -> ForgetReport:
        """Erase an identity entirely: sightings, thumbnails, vectors."""
        ...

    def apply_retention(self, days: float, now: float | None = None) -> RetentionReport:
        """Drop what is older than ``days`` days."""
        ...

    def forgotten_at(self, global_id: int) -> float | None:
        """When the identity was forgotten, or None."""
        ...

    def runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        ...

    def stats(self) -> dict[str, object]:
        """Counts, schema version, model, file size."""
        ...

    def close(self) -> None:
        ...
