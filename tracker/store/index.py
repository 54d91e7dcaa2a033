"""Exact cosine top-k over the stored identity vectors: one float32 matrix, one BLAS product per query.

Chosen by measurement (README "Identity store and search"; ``benchmarks/store_speed.py``): on this
2-core CPU a ``(100k, 512) @ (512,)`` product with ``argpartition`` answers in ~25 ms, under the 50 ms
target, and is exact, which re-ID scores compared with a calibrated threshold need; sqlite-vec's
brute-force ``vec0`` scan took 87-112 ms, faiss' flat index 56 ms, usearch's exact search 42 ms, and
an HNSW graph answers in ~1 ms but is approximate and takes minutes to build. The matrix is
derived from the SQLite file (the source of truth), so it can never disagree with it after a crash.
"""

from __future__ import annotations

import numpy as np


class ExactIndex:
    """Unit vectors by id, searched by brute force.

    Args:
        dim: vector length.
    """

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        self.dim = dim
        self._vectors = np.zeros((0, dim), np.float32)
        self._ids = np.zeros(0, np.int64)  # 0: free row
        self._row: dict[int, int] = {}
        self._free: list[int] = []

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, key: int) -> bool:
        return key in self._row

    @property
    def ids(self) -> set[int]:
        return set(self._row)

    def upsert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add or replace ``(N,)`` positive ids with ``(N, dim)`` vectors (normalised here)."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        vectors = np.asarray(vectors, np.float32).reshape(len(ids), -1)
        if vectors.shape[1] != self.dim:
            raise ValueError(f"vectors must be (N, {self.dim}), got {vectors.shape}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)
        new = [int(k) for k in ids if int(k) not in self._row]
        self._grow(len(new) - len(self._free))
        for key, vector in zip(ids.tolist(), vectors):
            row = self._row.get(key)
            if row is None:
                row = self._row[key] = self._free.pop()
                self._ids[row] = key
            self._vectors[row] = vector

    def remove(self, ids) -> None:
        """Forget ids (unknown ones are ignored); their rows are zeroed and reused."""
        for key in ids:
            row = self._row.pop(int(key), None)
            if row is not None:
                self._vectors[row] = 0.0
                self._ids[row] = 0
                self._free.append(row)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, cosine similarities)`` of the ``k`` nearest, best first, for a ``(dim,)`` query."""
        query = np.asarray(query, np.float32).reshape(-1)
        if query.shape != (self.dim,):
            raise ValueError(f"query must have shape ({self.dim},), got {query.shape}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        norm = float(np.linalg.norm(query))
        if norm == 0.0 or not self._row:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        sims = self._vectors @ (query / norm)
        sims[self._ids == 0] = -np.inf  # free rows
        k = min(k, len(self._row))
        top = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
        top = top[np.argsort(-sims[top], kind="stable")]
        return self._ids[top].copy(), sims[top].astype(np.float32)

    def _grow(self, rows: int) -> None:
        if rows <= 0:
            return
        old = len(self._ids)
        size = max(old * 2, old + rows, 64)
        vectors = np.zeros((size, self.dim), np.float32)
        vectors[:old] = self._vectors
        ids = np.zeros(size, np.int64)
        ids[:old] = self._ids
        self._vectors, self._ids = vectors, ids
        self._free.extend(range(size - 1, old - 1, -1))
