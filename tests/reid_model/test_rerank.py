"""k-reciprocal re-ranking: the chunked sparse version against a direct dense transcription."""

from __future__ import annotations

import numpy as np
import pytest

from reid_model.metrics import cosine_distance, euclidean_distance, evaluate
from reid_model.rerank import k_reciprocal_rerank, rerank_distances


def direct_rerank(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3):
    """Zhong et al.'s algorithm written out plainly with dense matrices and Python loops."""
    original = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float64) ** 2
    original = (original / original.max(axis=0)).T
    n, nq = len(original), len(q_q)
    initial_rank = np.argsort(original, axis=1, kind="stable")

    def reciprocal(i, k):
        forward = initial_rank[i, : k + 1]
        return [j for j in forward if i in initial_rank[j, : k + 1]]

    v = np.zeros((n, n))
    for i in range(n):
        r = reciprocal(i, k1)
        expanded = set(r)
        for c in r:
            rc = reciprocal(c, int(np.around(k1 / 2.0)))
            if len(set(rc) & set(r)) > 2.0 / 3.0 * len(rc):
                expanded |= set(rc)
        idx = sorted(expanded)
        w = np.exp(-original[i, idx])
        v[i, idx] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[initial_rank[i, :k2]].mean(axis=0) for i in range(n)])
    final = np.empty((nq, n))
    for i in range(nq):
        both = np.minimum(v[i], v).sum(axis=1)
        either = np.maximum(v[i], v).sum(axis=1)
        final[i] = (1 - both / either) * (1 - lambda_value) + original[i] * lambda_value
    return final[:, nq:]


def _features(seed: int, n: int, ids: int = 8, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pids = rng.integers(0, ids, n)
    centres = rng.normal(size=(ids, dim))
    return (centres[pids] + 0.8 * rng.normal(size=(n, dim))).astype(np.float32), pids


@pytest.mark.parametrize(
    ("metric", "k1", "k2", "lam", "chunk"),
    [("cosine", 20, 6, 0.3, 1024), ("euclidean", 20, 6, 0.3, 7), ("cosine", 6, 3, 0.5, 5), ("euclidean", 5, 1, 0.0, 64)],
)
def test_chunked_rerank_matches_direct_implementation(metric: str, k1: int, k2: int, lam: float, chunk: int) -> None:
    feats, _ = _features(0, 70)
    q, g = feats[:15], feats[15:]
    dist = {"cosine": cosine_distance, "euclidean": euclidean_distance}[metric]
    full = dist(feats, feats).astype(np.float64)
    full = (full + full.T) / 2  # exactly symmetric, as the direct code assumes
    np.fill_diagonal(full, 0.0)
    expected = direct_rerank(full[:15, 15:], full[:15, :15], full[15:, 15:], k1, k2, lam)
    from_matrices = rerank_distances(full[:15, 15:], full[:15, :15], full[15:, 15:], k1, k2, lam, chunk_size=chunk)
    np.testing.assert_allclose(from_matrices, expected, atol=2e-5)
    from_features = k_reciprocal_rerank(q, g, metric, k1, k2, lam, chunk_size=chunk)
    np.testing.assert_allclose(from_features, expected, atol=1e-4)
    assert from_features.shape == (15, 55) and from_features.dtype == np.float32


def test_rerank_improves_map_on_clustered_data() -> None:
    feats, pids = _features(1, 200, ids=20, dim=8)
    cams = np.arange(200) % 2
    q, g = feats[:40], feats[40:]
    base = cosine_distance(q, g)
    reranked = k_reciprocal_rerank(q, g, "cosine")
    before = evaluate(base, pids[:40], cams[:40], pids[40:], cams[40:], "torchreid").mAP
    after = evaluate(reranked, pids[:40], cams[:40], pids[40:], cams[40:], "torchreid").mAP
    assert after > before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "manhattan"}, "unknown distance"),
        ({"k1": 0}, "k1 >= 1"),
        ({"lambda_value": 1.5}, "lambda"),
    ],
)
def test_rerank_bad_arguments(kwargs: dict, message: str) -> None:
    feats, _ = _features(2, 30)
    with pytest.raises(ValueError, match=message):
        k_reciprocal_rerank(feats[:5], feats[5:], **kwargs)


def test_rerank_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="equal D"):
        k_reciprocal_rerank(np.zeros((3, 4)), np.zeros((5, 6)))
    with pytest.raises(ValueError, match="q_q"):
        rerank_distances(np.zeros((3, 5)), np.zeros((3, 3)), np.zeros((4, 4)))
