"""The identities' signatures as one matrix, so a track is compared with all of them in one product.

Each identity owns a row holding the clip-weighted *sum* of its ended members' raw features, their
clip count and the sum's unit vector. Members still being tracked are few; their identities' rows
are corrected on the fly, so no row is rebuilt from member lists and nothing of size N x D is
copied per comparison: with 1,000 identities one comparison is a ``(1000, D) @ (D,)`` product.
"""

from __future__ import annotations

import numpy as np

from tracker.signatures import Signature

_blas_limited = False


def single_threaded_blas() -> None:
    """Run NumPy's BLAS on one thread in this process (threadpoolctl), once.

    The gallery's products are small (``(N, 512) @ (512,)``). Split over both cores of a small
    machine whose other core is busy with the detector or the embedder, one such product was seen
    to wait 8 ms instead of 0.2 (README "Identity store and search"); on one thread it costs at
    most ~0.1 ms more when the machine is idle. The detector and the embedders run on their own
    thread pools (OpenVINO, onnxruntime), which this leaves alone.
    """
    global _blas_limited
    if _blas_limited:
        return
    _blas_limited = True
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class IdentityGallery:
    """Rows of ended-member clip sums, one per identity.

    Args:
        feature_dim: length of the raw features.
    """

    def __init__(self, feature_dim: int) -> None:
        single_threaded_blas()
        self.feature_dim = feature_dim
        self._sums = np.zeros((64, feature_dim), np.float64)
        self._unit = np.zeros((64, feature_dim), np.float32)
        self._counts = np.zeros(64, np.int64)
        self._gid_of_row = np.zeros(64, np.int64)  # 0: free row
        self._rows: dict[int, int] = {}  # global id -> row
        self._free: list[int] = list(range(63, -1, -1))
        self._order: tuple[np.ndarray, np.ndarray, dict[int, int]] | None = None  # rows, gids, gid -> position
        # the live identities' combined unit rows, for one ``live`` mapping and gallery version: a
        # resolve compares many tracks against the same state (with hundreds of cameras, building
        # them per comparison was most of the matcher's time)
        self._version = 0
        self._combined_cache: tuple[object, int, dict[int, np.ndarray]] | None = None

    def __contains__(self, global_id: int) -> bool:
        return global_id in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, global_id: int) -> None:
        """A new, empty identity."""
        if global_id in self._rows:
            raise ValueError(f"identity {global_id} already exists")
        if global_id <= 0:
            raise ValueError(f"global ids are positive, got {global_id}")
        if not self._free:
            old = len(self._counts)
            self._sums = np.concatenate([self._sums, np.zeros_like(self._sums)])
            self._unit = np.concatenate([self._unit, np.zeros_like(self._unit)])
            self._counts = np.concatenate([self._counts, np.zeros_like(self._counts)])
            self._gid_of_row = np.concatenate([self._gid_of_row, np.zeros_like(self._gid_of_row)])
            self._free = list(range(2 * old - 1, old - 1, -1))
        row = self._free.pop()
        self._sums[row], self._unit[row], self._counts[row] = 0.0, 0.0, 0
        self._gid_of_row[row] = global_id
        self._rows[global_id] = row
        self._order = None
        self._version += 1

    def remove(self, global_id: int) -> None:
        """Forget an identity (retired); its row is reused."""
        row = self._rows.pop(global_id)
        self._gid_of_row[row] = 0
        self._free.append(row)
        self._order = None
        self._version += 1

    def fold(self, global_id: int, signature: Signature) -> None:
        """Add an ended member's clips to the identity."""
        row = self._rows[global_id]
        self._sums[row] += signature.mean * signature.count
        self._counts[row] += signature.count
        norm = np.linalg.norm(self._sums[row])
        self._unit[row] = self._sums[row] / norm if norm > 0 else 0.0
        self._version += 1

    def ended(self, global_id: int) -> Signature:
        """The identity's ended members as one signature."""
        row = self._rows[global_id]
        count = int(self._counts[row])
        mean = self._sums[row] / count if count else np.zeros(self.feature_dim)
        return Signature(mean, count)

    def order(self) -> tuple[np.ndarray, dict[int, int]]:
        """``(global ids, {global id: position})``: the order of every similarity vector."""
        if self._order is None:
            rows = np.flatnonzero(self._gid_of_row)
            gids = self._gid_of_row[rows]
            self._order = (rows, gids, {int(g): i for i, g in enumerate(gids)})
        return self._order[1], self._order[2]

    def similarities(self, query: np.ndarray, live: dict[int, list[Signature]]) -> np.ndarray:
        """Cosine similarity of a unit ``query`` to every identity, in ``order()``; an identity's
        members in ``live`` (still being tracked) count with its ended ones; 0 for no clips yet.
        ``live`` is read once per gallery change: pass a new mapping when its signatures change,
        never the same one changed in place."""
        self.order()
        rows, _, position = self._order
        high = int(rows[-1]) + 1 if len(rows) else 0
        sims = (self._unit[:high] @ query)[rows]
        for gid, combined in self._live_rows(live).items():
            sims[position[gid]] = float(combined @ query)
        return sims

    def _live_rows(self, live: dict[int, list[Signature]]) -> dict[int, np.ndarray]:
        """``_combined`` of every live identity, kept while the same ``live`` mapping (the matcher
        makes a new one whenever a live signature changes) meets the same gallery."""
        cache = self._combined_cache
        if cache is None or cache[0] is not live or cache[1] != self._version:
            cache = self._combined_cache = (live, self._version,
                                            {gid: self._combined(gid, sigs) for gid, sigs in live.items()})
        return cache[2]

    def matrix(self, live: dict[int, list[Signature]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every identity with its live members added: ``(global ids, unit rows (N, D), clip counts)``."""
        gids, position = self.order()
        rows = self._order[0]
        unit, counts = self._unit[rows].copy(), self._counts[rows].copy()
        for gid, signatures in live.items():
            unit[position[gid]] = self._combined(gid, signatures)
            counts[position[gid]] += sum(s.count for s in signatures)
        return gids, unit, counts

    def _combined(self, gid: int, signatures: list[Signature]) -> np.ndarray:
        row = self._rows[gid]
        total = self._sums[row].copy()
        for s in signatures:
            total += s.mean * s.count
        norm = np.linalg.norm(total)
        return (total / norm if norm > 0 else total).astype(np.float32)
