"""Re-ID evaluation in numpy: distances, CMC and mAP under the two MARS protocols.

Protocols (the gallery each uses is chosen by ``reid_model.data.mars.protocol_split``; this module
decides what is ignored per query and how AP is computed):

- ``official``, the MARS evaluation kit (``compute_AP.m``): gallery entries labelled -1 (junk)
  and those sharing the query's label AND camera are ignored (skipped, as if absent). Walking the
  ranked list of kept entries, at each position ``recall = hits / n_good`` and
  ``precision = hits / kept_so_far``, and ``AP += (recall - old_recall) * (old_precision +
  precision) / 2`` starting from ``old_precision = 1``, ``old_recall = 0`` (a trapezoid under the
  precision-recall curve). Every query counts in the mean.
- ``torchreid`` (torchreid's ``eval_market1501`` and most public code): entries sharing the
  query's label and camera are ignored; AP is the mean of the precision at each true match;
  queries without a true match are skipped.

A true match ("good" entry) has the query's label and a different camera (and, officially, a
label other than -1). Label 0 (MARS distractors) is an ordinary negative in both.

Ties: the ranked list is the one ``np.argsort(distances, kind="stable")`` gives, i.e. equal
distances keep gallery order (MATLAB's ``sort``, which the kit uses, is stable too). The
implementation never sorts a whole row: per query it sorts only the true matches and counts, with
a binary search, how many kept entries come before each of them, which gives the same ranks.

A query with no true match under ``official`` (none on the real MARS split) makes the kit divide
0 by 0 (its AP and hence its mAP become NaN); here it counts as a miss with AP 0, and a warning is
logged, so the mean stays defined and still runs over all queries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

PROTOCOLS = ("official", "torchreid")
JUNK_PID = -1
REPORTED_RANKS = (1, 5, 10, 20)


def _as_features(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{name} must be a numeric (N, D) array, got shape {x.shape} dtype {x.dtype}")
    return x.astype(np.float32, copy=False)


def _check_pair(query: np.ndarray, gallery: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    query, gallery = _as_features(query, "query features"), _as_features(gallery, "gallery features")
    if query.shape[1] != gallery.shape[1]:
        raise ValueError(f"query and gallery features differ in length: {query.shape[1]} vs {gallery.shape[1]}")
    return query, gallery


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``x (N, D)`` scaled to unit length (all-zero rows stay zero); float32."""
    x = _as_features(x, "features")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, eps)


def cosine_distance(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """``1 - cos`` of L2-normalised features, in [0, 2].

    Args:
        query: ``(Q, D)`` features.
        gallery: ``(G, D)`` features.

    Returns:
        ``(Q, G)`` float32 distances.
    """
    query, gallery = _check_pair(query, gallery)
    dist = l2_normalize(query) @ l2_normalize(gallery).T
    np.subtract(1.0, dist, out=dist)
    return dist


def euclidean_distance(query: np.ndarray, gallery: np.ndarray, squared: bool = False) -> np.ndarray:
    """Euclidean distance ``||q - g||`` (plain, NOT squared unless ``squared``); float32 ``(Q, G)``.

    Computed as ``||q||^2 + ||g||^2 - 2 q.g`` clipped at 0. Squaring does not change any ranking,
    hence not CMC or mAP; it matters only for re-ranking, whose k-reciprocal code squares its input
    as Zhong et al.'s does.
    """
    query, gallery = _check_pair(query, gallery)
    dist = query @ gallery.T
    dist *= -2.0
    dist += np.einsum("ij,ij->i", query, query)[:, None]
    dist += np.einsum("ij,ij->i", gallery, gallery)[None, :]
    np.maximum(dist, 0.0, out=dist)
    return dist if squared else np.sqrt(dist, out=dist)


DISTANCES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "cosine": cosine_distance,
    "euclidean": euclidean_distance,
}


def distance_matrix(query: np.ndarray, gallery: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """``(Q, G)`` float32 distances by a name in ``DISTANCES``; ValueError listing them otherwise."""
    if metric not in DISTANCES:
        raise ValueError(f"unknown distance {metric!r}; choices: {', '.join(DISTANCES)}")
    return DISTANCES[metric](query, gallery)


@dataclass(frozen=True)
class Scores:
    """CMC and mAP of one evaluation, with the per-query detail.

    Attributes:
        protocol: ``official`` or ``torchreid``.
        cmc: ``(max_rank,)`` fraction of counted queries whose first true match is at rank <= k+1.
        mAP: mean AP over counted queries, a fraction in [0, 1].
        num_queries: queries counted in the means.
        first_rank: ``(Q,)`` 1-based rank of the first true match among kept entries; 0 = none.
        ap: ``(Q,)`` AP per query; NaN where the query is not counted.
        counted: ``(Q,)`` bool, the queries in the means.
    """

    protocol: str
    cmc: np.ndarray
    mAP: float
    num_queries: int
    first_rank: np.ndarray
    ap: np.ndarray
    counted: np.ndarray

    def rank(self, k: int) -> float:
        """CMC at rank ``k`` (1-based) as a fraction."""
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"rank must be in 1..{len(self.cmc)}, got {k}")
        return float(self.cmc[k - 1])

    def summary(self) -> dict[str, float | int]:
        """Unrounded percentages ``rank1``, ``rank5``, ``rank10``, ``rank20``, ``mAP`` and ``num_queries``."""
        out: dict[str, float | int] = {f"rank{k}": 100.0 * self.rank(k) for k in REPORTED_RANKS}
        out["mAP"] = 100.0 * self.mAP
        out["num_queries"] = self.num_queries
        return out


def ignored_entries(
    query_pid: int, query_cam: int, gallery_pids: np.ndarray, gallery_cams: np.ndarray, protocol: str
) -> np.ndarray:
    """``(G,)`` bool: the gallery entries ``protocol`` skips for this query (for showing ranked lists)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choices: {', '.join(PROTOCOLS)}")
    gallery_pids, gallery_cams = np.asarray(gallery_pids), np.asarray(gallery_cams)
    ignored = (gallery_pids == query_pid) & (gallery_cams == query_cam)
    if protocol == "official":
        ignored |= gallery_pids == JUNK_PID
    return ignored


def _pid_groups(gallery_pids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gallery indices grouped by pid: ``(unique_pids, starts, order)``; group u is order[starts[u]:starts[u+1]]."""
    order = np.argsort(gallery_pids, kind="stable")
    unique, starts = np.unique(gallery_pids[order], return_index=True)
    return unique, np.append(starts, len(order)), order


def _good_ranks(row: np.ndarray, good: np.ndarray, ignored: np.ndarray) -> np.ndarray:
    """1-based ranks among kept entries of the true matches, ascending.

    Args:
        row: ``(G,)`` distances of one query.
        good: ascending gallery indices of the true matches.
        ignored: gallery indices skipped by the protocol (disjoint from ``good``).
    """
    good_dist = row[good]
    order = np.argsort(good_dist, kind="stable")  # ties keep gallery order, as good is ascending
    good_sorted, good_dist = good[order], good_dist[order]
    # bins[j] = number of true matches ranked before entry j (stable order).
    bins = np.searchsorted(good_dist, row, side="left")
    tie_at = np.minimum(bins, len(good) - 1)
    tied = np.flatnonzero(good_dist[tie_at] == row)
    if len(tied):  # equal distance: a true match precedes j iff its gallery index is smaller
        same = good_dist[None, :] == row[tied, None]
        bins[tied] += np.count_nonzero(same & (good_sorted[None, :] < tied[:, None]), axis=1)
    counts = np.bincount(bins, minlength=len(good) + 1)
    if len(ignored):
        counts -= np.bincount(bins[ignored], minlength=len(good) + 1)
    # The i-th true match (0-based) is preceded by every kept entry with bin <= i, itself included.
    return np.cumsum(counts)[: len(good)]


def _average_precision(ranks: np.ndarray, protocol: str) -> float:
    hits = np.arange(1, len(ranks) + 1, dtype=np.float64)
    precision = hits / ranks
    if protocol == "torchreid":
        return float(precision.mean())
    # Kit: the precision one kept position before the i-th hit is (i-1)/(rank-1), 1 at rank 1.
    previous = np.divide(hits - 1, ranks - 1, out=np.ones_like(precision), where=ranks > 1)
    return float(np.sum((previous + precision) / 2.0) / len(ranks))


def _validated(distmat, query_pids, query_cams, gallery_pids, gallery_cams, protocol: str) -> list[np.ndarray]:
    """``[distmat, q_pids, q_cams, g_pids, g_cams]`` as arrays; ValueError saying what is wrong."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choices: {', '.join(PROTOCOLS)}")
    distmat = np.asarray(distmat)
    if distmat.ndim != 2 or not np.issubdtype(distmat.dtype, np.floating):
        raise ValueError(f"distmat must be a float (Q, G) array, got shape {distmat.shape} dtype {distmat.dtype}")
    arrays = [distmat]
    for name, arr in (("query_pids", query_pids), ("query_cams", query_cams),
                      ("gallery_pids", gallery_pids), ("gallery_cams", gallery_cams)):
        arr = np.asarray(arr)
        want = distmat.shape[0] if name.startswith("query") else distmat.shape[1]
        if arr.shape != (want,):
            raise ValueError(f"{name} must have shape ({want},) to match distmat {distmat.shape}, got {arr.shape}")
        arrays.append(arr)
    if not np.isfinite(distmat).all():
        raise ValueError("distmat holds NaN or infinite values; check the features")
    return arrays


def _rank_queries(distmat, q_pids, q_cams, g_pids, g_cams, protocol: str):
    """Per query: ``(first_rank (Q,), ap (Q,), counted (Q,))`` (see ``Scores``)."""
    num_q = len(q_pids)
    unique, starts, order = _pid_groups(g_pids)
    junk = np.flatnonzero(g_pids == JUNK_PID) if protocol == "official" else np.zeros(0, np.int64)
    first_rank = np.zeros(num_q, np.int64)
    ap = np.full(num_q, np.nan)
    counted = np.zeros(num_q, bool)
    empty = np.zeros(0, np.int64)
    for i in range(num_q):
        u = np.searchsorted(unique, q_pids[i])
        same = np.sort(order[starts[u] : starts[u + 1]]) if u < len(unique) and unique[u] == q_pids[i] else empty
        same_cam = g_cams[same] == q_cams[i]
        good, ignored = same[~same_cam], same[same_cam]
        if protocol == "official":
            # Junk is never a true match; a junk query's same-label entries are all junk already.
            good, ignored = (empty, junk) if q_pids[i] == JUNK_PID else (good, np.concatenate([ignored, junk]))
        if len(good) == 0:
            if protocol == "official":  # the kit's 0/0; see the module docstring
                counted[i], ap[i] = True, 0.0
            continue
        ranks = _good_ranks(distmat[i], good, ignored)
        first_rank[i] = ranks[0]
        ap[i] = _average_precision(ranks, protocol)
        counted[i] = True
    return first_rank, ap, counted


def evaluate(
    distmat: np.ndarray,
    query_pids: np.ndarray,
    query_cams: np.ndarray,
    gallery_pids: np.ndarray,
    gallery_cams: np.ndarray,
    protocol: str = "official",
    max_rank: int = 50,
) -> Scores:
    """CMC and mAP of a distance matrix under a protocol (see the module docstring).

    Args:
        distmat: ``(Q, G)`` distances, smaller = more similar; must be finite.
        query_pids, query_cams: ``(Q,)`` labels and cameras of the queries.
        gallery_pids, gallery_cams: ``(G,)`` labels and cameras of the gallery.
        protocol: ``official`` or ``torchreid``.
        max_rank: length of the CMC curve.

    Returns:
        ``Scores``; ``summary()`` gives the percentages results.json holds.
    """
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    distmat, q_pids, q_cams, g_pids, g_cams = _validated(
        distmat, query_pids, query_cams, gallery_pids, gallery_cams, protocol
    )
    first_rank, ap, counted = _rank_queries(distmat, q_pids, q_cams, g_pids, g_cams, protocol)
    num_counted = int(counted.sum())
    missing = int(np.count_nonzero(counted & (first_rank == 0)))
    if protocol == "official" and missing:
        log.warning("%d of %d queries have no true match in the gallery; counted with AP 0", missing, len(ap))
    if num_counted == 0:
        raise ValueError(f"no query has a true match in the gallery under protocol {protocol!r}")
    ranks_counted = first_rank[counted]
    hit = (ranks_counted > 0)[:, None] & (ranks_counted[:, None] <= np.arange(1, max_rank + 1)[None, :])
    return Scores(
        protocol=protocol,
        cmc=hit.mean(axis=0),
        mAP=float(np.mean(ap[counted])),
        num_queries=num_counted,
        first_rank=first_rank,
        ap=ap,
        counted=counted,
    )


def evaluate_matches(
    distmat: np.ndarray, good: np.ndarray, ignored: np.ndarray, protocol: str = "mars_dap", max_rank: int = 50
) -> Scores:
    """CMC and mAP when the true matches and skipped entries are given per query (e.g. ``mars_dap``).

    Args:
        distmat: ``(Q, G)`` finite distances, smaller = more similar.
        good: ``(Q, G)`` bool, the true matches of each query.
        ignored: ``(Q, G)`` bool, entries removed from the ranking (the query itself, same-camera
            tracklets of its identity...); must not overlap ``good``.
        protocol: the name ``Scores.protocol`` carries.
        max_rank: length of the CMC curve.

    AP is the mean of the precision at each true match. Queries without a true match are not counted.
    """
    distmat, good, ignored = np.asarray(distmat), np.asarray(good, bool), np.asarray(ignored, bool)
    if distmat.ndim != 2 or not np.issubdtype(distmat.dtype, np.floating):
        raise ValueError(f"distmat must be a float (Q, G) array, got shape {distmat.shape} dtype {distmat.dtype}")
    if good.shape != distmat.shape or ignored.shape != distmat.shape:
        raise ValueError(f"good {good.shape} and ignored {ignored.shape} must have distmat's shape {distmat.shape}")
    if (good & ignored).any():
        raise ValueError("an entry cannot be both a true match and ignored")
    if not np.isfinite(distmat).all():
        raise ValueError("distmat holds NaN or infinite values; check the features")
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    num_q = len(distmat)
    first_rank, ap, counted = np.zeros(num_q, np.int64), np.full(num_q, np.nan), np.zeros(num_q, bool)
    for i in range(num_q):
        matches = np.flatnonzero(good[i])
        if len(matches) == 0:
            continue
        ranks = _good_ranks(distmat[i], matches, np.flatnonzero(ignored[i]))
        first_rank[i], ap[i], counted[i] = ranks[0], _average_precision(ranks, "torchreid"), True
    if not counted.any():
        raise ValueError("no query has a true match in the gallery")
    if not counted.all():
        log.warning("%d of %d queries have no true match; not counted", num_q - int(counted.sum()), num_q)
    ranks_counted = first_rank[counted]
    hit = ranks_counted[:, None] <= np.arange(1, max_rank + 1)[None, :]
    return Scores(protocol=protocol, cmc=hit.mean(axis=0), mAP=float(np.mean(ap[counted])),
                  num_queries=int(counted.sum()), first_rank=first_rank, ap=ap, counted=counted)
