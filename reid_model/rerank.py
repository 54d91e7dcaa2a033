"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), in row chunks and sparse form (numpy + scipy).

Same algorithm and constants as the authors' ``re_ranking`` (k1 = 20, k2 = 6, lambda = 0.3), which
holds several dense ``N x N`` matrices (N = queries + gallery = 14,160 for the official MARS
protocol: about 0.8 GB each). Here only ``chunk_size`` rows of distances exist at a time; the
neighbour lists are ``(N, k1 + 1)``, the encodings ``V`` are sparse, and the output is ``(Q, G)``.

Steps (numbers as in the paper's Sec. 3-4):

1. ``d = dist^2`` over all query + gallery items, each row divided by its maximum (the authors'
   ``original_dist``); ``N(i, k)`` = the k nearest items of i (itself included).
2. ``R(i, k1)`` = k-reciprocal neighbours: j in ``N(i, k1)`` with i in ``N(j, k1)``; expanded by
   ``R(c, k1/2)`` of each c in it when that set shares more than 2/3 of its items with ``R(i, k1)``.
3. ``V[i, j] = exp(-d(i, j))`` over the expanded set, normalised to sum 1 (Eq. 12); local query
   expansion replaces ``V[i]`` by the mean of ``V`` over ``N(i, k2)``.
4. Jaccard distance ``1 - sum min(V_i, V_j) / sum max(V_i, V_j)`` (Eq. 10-13, written as
   ``1 - m / (2 - m)`` with ``m = sum min``), final ``(1 - lambda) * jaccard + lambda * d``.

Ties: neighbours at equal distance are listed in index order, except at the k-th place itself,
where ``np.argpartition`` picks (arbitrary but deterministic).
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import sparse

from reid_model.metrics import DISTANCES

log = logging.getLogger(__name__)


class _FeatureDistances:
    """All-vs-all distances of ``features (N, D)``, produced a block of rows at a time."""

    def __init__(self, features: np.ndarray, metric: str) -> None:
        if metric not in DISTANCES:
            raise ValueError(f"unknown distance {metric!r}; choices: {', '.join(DISTANCES)}")
        self.features = np.asarray(features, dtype=np.float32)
        self.metric = metric
        self.size = len(self.features)

    def rows(self, start: int, stop: int) -> np.ndarray:
        return DISTANCES[self.metric](self.features[start:stop], self.features)


class _MatrixDistances:
    """The same for a precomputed ``(N, N)`` matrix."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix
        self.size = len(matrix)

    def rows(self, start: int, stop: int) -> np.ndarray:
        return np.array(self.matrix[start:stop], dtype=np.float32)


def _nearest(d: np.ndarray, k: int) -> np.ndarray:
    """``(R, k)`` indices of the k smallest entries per row, ascending by value."""
    if k >= d.shape[1]:
        return np.argsort(d, axis=1, kind="stable")[:, :k]
    part = np.sort(np.argpartition(d, k - 1, axis=1)[:, :k], axis=1)  # index order, so ties stay stable
    order = np.argsort(np.take_along_axis(d, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def _reciprocal(top: np.ndarray) -> np.ndarray:
    """``(N, k)`` bool: ``top[i, a]`` is a k-reciprocal neighbour of i (i is among its own top k)."""
    rows = np.arange(len(top))[:, None, None]
    return np.any(top[top] == rows, axis=2)


def _expanded_pairs(top: np.ndarray, half: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """``(i, j)`` pairs of the expanded k-reciprocal sets (step 2), unique and sorted by ``(i, j)``."""
    recip = _reciprocal(top)
    recip_half = _reciprocal(half)
    n = len(top)
    pair_codes = []
    for s in range(0, n, chunk):
        t, r = top[s : s + chunk], recip[s : s + chunk]
        cand_items = half[t]  # (B, k1+1, h+1): R(c, k1/2) candidates of every neighbour c
        cand_mask = recip_half[t] & r[:, :, None]
        # |R(c, k1/2) ∩ R(i, k1)| > 2/3 |R(c, k1/2)|
        in_r = np.any((cand_items[..., None] == t[:, None, None, :]) & r[:, None, None, :], axis=3)
        shared = np.count_nonzero(cand_mask & in_r, axis=2)
        qualifies = r & (shared > 2.0 / 3.0 * np.count_nonzero(cand_mask, axis=2))
        rows = np.arange(s, s + len(t), dtype=np.int64)
        codes_r = rows[:, None] * n + t
        add = cand_mask & qualifies[:, :, None]
        codes_c = np.broadcast_to(rows[:, None, None], add.shape)[add] * n + cand_items[add]
        pair_codes.append(np.unique(np.concatenate([codes_r[r], codes_c])))
    codes = np.concatenate(pair_codes)
    return codes // n, codes % n


def _encodings(source, k1: int, k2: int, num_query: int, chunk_size: int) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Sparse ``V (N, N)`` after query expansion, and the query rows of ``d``: ``(Q, N)``."""
    n = source.size
    k = min(k1 + 1, n)
    kh = min(int(np.around(k1 / 2.0)) + 1, n)
    top = np.empty((n, k), np.int64)
    row_max = np.empty(n, np.float32)
    query_d = np.empty((num_query, n), np.float32)
    for s in range(0, n, chunk_size):
        d = _normalised_rows(source, s, min(s + chunk_size, n), row_max)
        top[s : s + len(d)] = _nearest(d, k)
        if s < num_query:
            query_d[s : min(s + len(d), num_query)] = d[: num_query - s]
    i, j = _expanded_pairs(top, top[:, :kh])
    weights = np.exp(-_pair_distances(source, i, j, row_max, chunk_size))
    weights /= np.bincount(i, weights=weights, minlength=n)[i]
    v = sparse.csr_matrix((weights.astype(np.float32), (i, j)), shape=(n, n))
    if k2 != 1:
        k2 = min(k2, k)
        expand = sparse.csr_matrix(
            (np.full(n * k2, 1.0 / k2, np.float32), (np.repeat(np.arange(n), k2), top[:, :k2].ravel())), shape=(n, n)
        )
        v = (expand @ v).tocsr()
    return v, query_d


def _normalised_rows(source, start: int, stop: int, row_max: np.ndarray) -> np.ndarray:
    d = source.rows(start, stop)
    np.square(d, out=d)
    peak = d.max(axis=1)
    row_max[start:stop] = peak
    d /= np.where(peak > 0, peak, 1.0)[:, None]
    return d


def _pair_distances(source, i: np.ndarray, j: np.ndarray, row_max: np.ndarray, chunk_size: int) -> np.ndarray:
    """``d(i, j)`` for pairs sorted by i, recomputing one block of rows at a time."""
    out = np.empty(len(i), np.float32)
    bounds = np.searchsorted(i, np.arange(0, source.size + chunk_size, chunk_size))
    for b, s in enumerate(range(0, source.size, chunk_size)):
        lo, hi = bounds[b], bounds[b + 1]
        if lo == hi:
            continue
        d = _normalised_rows(source, s, min(s + chunk_size, source.size), row_max)
        out[lo:hi] = d[i[lo:hi] - s, j[lo:hi]]
    return out


def _jaccard(v: sparse.csr_matrix, num_query: int, chunk: int = 64) -> np.ndarray:
    """``(Q, N)`` Jaccard distances of the first ``num_query`` rows of ``V`` to every row."""
    n = v.shape[0]
    vc = v.tocsc()
    out = np.empty((num_query, n), np.float32)
    for s in range(0, num_query, chunk):
        block = v[s : min(s + chunk, num_query)].tocoo()
        starts, stops = vc.indptr[block.col], vc.indptr[block.col + 1]
        lengths = stops - starts
        idx = np.repeat(stops - np.cumsum(lengths), lengths) + np.arange(lengths.sum())
        mins = np.minimum(np.repeat(block.data, lengths), vc.data[idx])
        target = np.repeat(block.row.astype(np.int64), lengths) * n + vc.indices[idx]
        overlap = np.bincount(target, weights=mins, minlength=(block.shape[0]) * n).reshape(block.shape[0], n)
        out[s : s + block.shape[0]] = 1.0 - overlap / (2.0 - overlap)
    return out


def _rerank(source, num_query: int, k1: int, k2: int, lambda_value: float, chunk_size: int) -> np.ndarray:
    if k1 < 1 or k2 < 1 or not 0.0 <= lambda_value <= 1.0 or chunk_size < 1:
        raise ValueError(
            f"need k1 >= 1, k2 >= 1, 0 <= lambda <= 1, chunk_size >= 1; got k1={k1} k2={k2} "
            f"lambda={lambda_value} chunk_size={chunk_size}"
        )
    if not 0 < num_query < source.size:
        raise ValueError(f"need at least one query and one gallery item, got {num_query} of {source.size}")
    v, query_d = _encodings(source, k1, k2, num_query, chunk_size)
    jaccard = _jaccard(v, num_query)
    final = jaccard[:, num_query:]
    final *= 1.0 - lambda_value
    final += lambda_value * query_d[:, num_query:]
    return final


def k_reciprocal_rerank(
    query_features: np.ndarray,
    gallery_features: np.ndarray,
    metric: str = "cosine",
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    chunk_size: int = 1024,
) -> np.ndarray:
    """Re-ranked query-gallery distances from features.

    Args:
        query_features: ``(Q, D)``.
        gallery_features: ``(G, D)``.
        metric: a name in ``reid_model.metrics.DISTANCES`` for the original distance (squared
            inside, as the authors' code does).
        k1, k2, lambda_value: the paper's parameters (20, 6, 0.3).
        chunk_size: rows of the ``(Q + G)`` distance matrix held at once (memory ~ 12 bytes x
            chunk_size x (Q + G) for distances and neighbour search).

    Returns:
        ``(Q, G)`` float32 distances, smaller = more similar.
    """
    q = np.asarray(query_features, np.float32)
    g = np.asarray(gallery_features, np.float32)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f"features must be (Q, D) and (G, D) with equal D, got {q.shape} and {g.shape}")
    source = _FeatureDistances(np.concatenate([q, g]), metric)
    log.info("re-ranking %d queries x %d gallery (k1=%d, k2=%d, lambda=%.2f)", len(q), len(g), k1, k2, lambda_value)
    return _rerank(source, len(q), k1, k2, lambda_value, chunk_size)


def rerank_distances(
    q_g: np.ndarray,
    q_q: np.ndarray,
    g_g: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    chunk_size: int = 1024,
) -> np.ndarray:
    """The same from precomputed distances (the authors' signature): ``(Q, G)``, ``(Q, Q)``, ``(G, G)``.

    Builds the dense ``(Q + G)^2`` matrix, so it suits small problems; use ``k_reciprocal_rerank``
    at MARS size.
    """
    q_g, q_q, g_g = (np.asarray(x, np.float32) for x in (q_g, q_q, g_g))
    nq, ng = q_g.shape
    if q_q.shape != (nq, nq) or g_g.shape != (ng, ng):
        raise ValueError(f"need q_g (Q, G), q_q (Q, Q), g_g (G, G); got {q_g.shape}, {q_q.shape}, {g_g.shape}")
    full = np.block([[q_q, q_g], [q_g.T, g_g]])
    return _rerank(_MatrixDistances(full), nq, k1, k2, lambda_value, chunk_size)
