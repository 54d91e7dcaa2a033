"""The identities' signatures as one matrix, so a track is compared with all of them in one product.

Each identity owns a row holding the clip-weighted *sum* of its ended members' raw features and
their clip count; live members are added on top when the matrix is taken (there are few of them),
so the rows never have to be rebuilt from member lists. With 1,000 identities one comparison is a
``(1000, D) @ (D,)`` product.
"""

from __future__ import annotations

import numpy as np

from tracker.signatures import Signature


class IdentityGallery:
    """Rows of ended-member clip sums, one per identity.

    Args:
        feature_dim: length of the raw features.
    """

    def __init__(self, feature_dim: int) -> None:
        self.feature_dim = feature_dim
        self._sums = np.zeros((64, feature_dim), np.float64)
        self._counts = np.zeros(64, np.int64)
        self._rows: dict[int, int] = {}  # global id -> row
        self._free: list[int] = []

    def __contains__(self, global_id: int) -> bool:
        return global_id in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, global_id: int) -> None:
        """A new, empty identity."""
        if global_id in self._rows:
            raise ValueError(f"identity {global_id} already exists")
        if not self._free:
            old = len(self._counts)
            self._sums = np.concatenate([self._sums, np.zeros_like(self._sums)])
            self._counts = np.concatenate([self._counts, np.zeros_like(self._counts)])
            self._free = list(range(2 * old - 1, old - 1, -1))
        row = self._free.pop()
        self._sums[row] = 0.0
        self._counts[row] = 0
        self._rows[global_id] = row

    def remove(self, global_id: int) -> None:
        """Forget an identity (retired or merged); its row is reused."""
        self._free.append(self._rows.pop(global_id))

    def fold(self, global_id: int, signature: Signature) -> None:
        """Add an ended member's clips to the identity."""
        row = self._rows[global_id]
        self._sums[row] += signature.mean * signature.count
        self._counts[row] += signature.count

    def ended(self, global_id: int) -> Signature:
        """The identity's ended members as one signature."""
        row = self._rows[global_id]
        count = int(self._counts[row])
        mean = self._sums[row] / count if count else np.zeros(self.feature_dim)
        return Signature(mean, count)

    def matrix(self, live: dict[int, list[Signature]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every identity with its live members added: ``(global ids, unit rows (N, D), clip counts)``.

        Args:
            live: global id -> signatures of its members that are still being tracked.
        """
        gids = np.fromiter(self._rows, np.int64, len(self._rows))
        rows = np.fromiter(self._rows.values(), np.int64, len(self._rows))
        sums, counts = self._sums[rows], self._counts[rows].copy()
        index = {int(g): i for i, g in enumerate(gids)}
        for gid, signatures in live.items():
            i = index[gid]
            for s in signatures:
                sums[i] += s.mean * s.count
                counts[i] += s.count
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        unit = np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)
        return gids, unit.astype(np.float32), counts
