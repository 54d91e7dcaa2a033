"""CMC and mAP under the official MARS kit protocol and the torchreid protocol, and the distances."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from reid_model.data.mars import MarsSplitInfo, load_split_info, protocol_split
from reid_model.metrics import (
    cosine_distance,
    distance_matrix,
    euclidean_distance,
    evaluate,
)

# Gallery of the hand-computed cases: (pid, camera), one row per gallery tracklet.
GALLERY = np.array([(-1, 1), (1, 1), (2, 2), (1, 2), (0, 3), (1, 3), (7, 1)])
# Query 0: pid 1 camera 1. Sorted by distance: junk (ignored officially), same pid + camera
# (ignored), negative, TRUE, distractor, TRUE, negative.
ROW_A = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.9]
# Query 1: pid 7 camera 1 has no true match (its only gallery tracklet shares its camera).
ROW_B = [0.5, 0.4, 0.3, 0.2, 0.1, 0.6, 0.7]


def _run(rows: list[list[float]], queries: list[tuple[int, int]], protocol: str, gallery: np.ndarray = GALLERY):
    q = np.array(queries)
    return evaluate(np.array(rows, np.float32), q[:, 0], q[:, 1], gallery[:, 0], gallery[:, 1], protocol)


def test_official_ignores_junk_and_same_camera_and_uses_the_kit_trapezoid() -> None:
    scores = _run([ROW_A], [(1, 1)], "official")
    # Kept list: neg, TRUE, neg, TRUE. Kit: 0 + 0.5*(0+1/2)/2 + 0 + 0.5*(1/3+1/2)/2 = 1/3.
    assert scores.first_rank.tolist() == [2]
    assert scores.mAP == pytest.approx(1 / 3)
    assert scores.cmc[:3].tolist() == [0.0, 1.0, 1.0]


def test_torchreid_counts_junk_as_negative_and_averages_precision_at_hits() -> None:
    scores = _run([ROW_A], [(1, 1)], "torchreid")
    # Kept list: junk, neg, TRUE, neg, TRUE -> precision 1/3 and 2/5 at the hits.
    assert scores.first_rank.tolist() == [3]
    assert scores.mAP == pytest.approx((1 / 3 + 2 / 5) / 2)


def test_query_without_true_match_counts_officially_and_is_skipped_by_torchreid() -> None:
    official = _run([ROW_A, ROW_B], [(1, 1), (7, 1)], "official")
    assert official.num_queries == 2 and official.counted.tolist() == [True, True]
    assert official.ap[1] == 0.0 and official.first_rank[1] == 0
    assert official.mAP == pytest.approx((1 / 3 + 0) / 2)
    assert official.rank(2) == 0.5 and official.rank(50) == 0.5
    torchreid = _run([ROW_A, ROW_B], [(1, 1), (7, 1)], "torchreid")
    assert torchreid.num_queries == 1 and torchreid.counted.tolist() == [True, False]
    assert np.isnan(torchreid.ap[1])
    assert torchreid.mAP == pytest.approx((1 / 3 + 2 / 5) / 2)
    assert torchreid.rank(3) == 1.0 and torchreid.rank(2) == 0.0


def test_all_true_matches_first_give_ap_one_and_kit_differs_from_torchreid_otherwise() -> None:
    gallery = np.array([(1, 2), (5, 2), (1, 3), (6, 3)])
    perfect = [[0.1, 0.5, 0.2, 0.6]]
    for protocol in ("official", "torchreid"):
        assert _run(perfect, [(1, 1)], protocol, gallery).mAP == pytest.approx(1.0)
    gap = [[0.1, 0.2, 0.3, 0.4]]  # TRUE, neg, TRUE, neg
    assert _run(gap, [(1, 1)], "torchreid", gallery).mAP == pytest.approx((1 + 2 / 3) / 2)
    # Kit: 0.5*(1+1)/2 + 0 + 0.5*(1/2+2/3)/2
    assert _run(gap, [(1, 1)], "official", gallery).mAP == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)


def test_ties_keep_gallery_order() -> None:
    # All at 0.5 except an ignored same-camera entry: stable order 0 neg, 1 TRUE, 2 neg, 3 TRUE, 5 junk.
    gallery = np.array([(2, 2), (1, 2), (3, 2), (1, 3), (1, 1), (-1, 2)])
    row = [[0.5, 0.5, 0.5, 0.5, 0.1, 0.5]]
    official = _run(row, [(1, 1)], "official", gallery)
    assert official.first_rank.tolist() == [2] and official.mAP == pytest.approx(1 / 3)
    torchreid = _run(row, [(1, 1)], "torchreid", gallery)
    assert torchreid.first_rank.tolist() == [2] and torchreid.mAP == pytest.approx((1 / 2 + 2 / 4) / 2)
    # A true match listed before its tied negatives ranks first.
    first = _run([[0.5, 0.5]], [(1, 1)], "official", np.array([(1, 2), (2, 2)]))
    assert first.first_rank.tolist() == [1] and first.mAP == 1.0


def test_summary_holds_unrounded_percentages() -> None:
    summary = _run([ROW_A, ROW_B], [(1, 1), (7, 1)], "official").summary()
    assert set(summary) == {"rank1", "rank5", "rank10", "rank20", "mAP", "num_queries"}
    assert summary["rank5"] == 50.0 and summary["num_queries"] == 2
    assert summary["mAP"] == pytest.approx(100 / 6)


# ---------------------------------------------------------------- real MARS split, synthetic features


def kit_reference(row, q_pid, q_cam, g_pids, g_cams):
    """A transliteration of the MARS kit's per-query loop (compute_AP.m), element by element."""
    index = np.argsort(row, kind="stable")  # MATLAB's sort is stable
    good = set(np.flatnonzero((g_pids == q_pid) & (g_cams != q_cam)).tolist())
    junk = set(np.flatnonzero((g_pids == -1) | ((g_pids == q_pid) & (g_cams == q_cam))).tolist())
    ap, old_recall, old_precision, hits, kept, first = 0.0, 0.0, 1.0, 0, 0, 0
    for n in index.tolist():
        if n in junk:
            continue
        kept += 1
        if n in good:
            hits += 1
            first = first or kept
        recall, precision = hits / len(good), hits / kept
        ap += (recall - old_recall) * (old_precision + precision) / 2
        old_recall, old_precision = recall, precision
        if hits == len(good):
            break
    return ap, first


def torchreid_reference(distmat, q_pids, q_cams, g_pids, g_cams, max_rank=20):
    """torchreid's eval_market1501 loop (with a stable sort), returning (cmc, mAP, valid queries)."""
    indices = np.argsort(distmat, axis=1, kind="stable")
    matches = (g_pids[indices] == q_pids[:, None]).astype(np.int32)
    all_cmc, all_ap = [], []
    for q in range(len(q_pids)):
        order = indices[q]
        keep = ~((g_pids[order] == q_pids[q]) & (g_cams[order] == q_cams[q]))
        raw_cmc = matches[q][keep]
        if not raw_cmc.any():
            continue
        cmc = raw_cmc.cumsum()
        cmc[cmc > 1] = 1
        all_cmc.append(cmc[:max_rank])
        precision = raw_cmc.cumsum() / np.arange(1, len(raw_cmc) + 1)
        all_ap.append((precision * raw_cmc).sum() / raw_cmc.sum())
    return np.mean(all_cmc, axis=0), float(np.mean(all_ap)), len(all_ap)


@pytest.fixture(scope="module")
def mars_info(shared_data: Path) -> MarsSplitInfo:
    return load_split_info(shared_data / "mars_info")


def _synthetic_distances(info: MarsSplitInfo, protocol: str, seed: int = 0):
    """Distances from noisy per-identity features, rounded to 0.02 so ties are frequent."""
    q_rows, g_rows = protocol_split(info, protocol)
    pids, cams = info.test_tracks[:, 2], info.test_tracks[:, 3]
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(pids.max() + 2, 16))
    feats = centres[pids + 1] + 0.6 * rng.normal(size=(len(pids), 16))
    distmat = np.round(cosine_distance(feats[q_rows], feats[g_rows]) * 50) / 50
    return distmat.astype(np.float32), pids[q_rows], cams[q_rows], pids[g_rows], cams[g_rows]


def test_official_on_real_split_matches_kit_loop(mars_info: MarsSplitInfo) -> None:
    distmat, q_pids, q_cams, g_pids, g_cams = _synthetic_distances(mars_info, "official")
    assert distmat.shape == (1980, 12180)
    scores = evaluate(distmat, q_pids, q_cams, g_pids, g_cams, "official")
    assert scores.num_queries == 1980 and (scores.first_rank > 0).all()
    sample = np.random.default_rng(1).choice(1980, 300, replace=False)
    for q in sample:
        ap, first = kit_reference(distmat[q], q_pids[q], q_cams[q], g_pids, g_cams)
        assert scores.ap[q] == pytest.approx(ap, abs=1e-12) and scores.first_rank[q] == first
    assert 0.05 < scores.mAP < 0.95  # a real mix of hits and misses


def test_torchreid_on_real_split_matches_torchreid_loop(mars_info: MarsSplitInfo) -> None:
    distmat, q_pids, q_cams, g_pids, g_cams = _synthetic_distances(mars_info, "torchreid", seed=3)
    assert distmat.shape == (1980, 9330)
    scores = evaluate(distmat, q_pids, q_cams, g_pids, g_cams, "torchreid")
    assert scores.num_queries == 1840
    part = slice(0, 700)
    cmc, m_ap, valid = torchreid_reference(distmat[part], q_pids[part], q_cams[part], g_pids, g_cams)
    mine = evaluate(distmat[part], q_pids[part], q_cams[part], g_pids, g_cams, "torchreid")
    assert mine.num_queries == valid
    np.testing.assert_allclose(mine.cmc[:20], cmc, atol=1e-12)
    assert mine.mAP == pytest.approx(m_ap, abs=1e-12)
    assert 0.05 < mine.mAP < 0.95


# ---------------------------------------------------------------- distances and bad input


def test_distances_match_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 7)), rng.normal(size=(9, 7))
    np.testing.assert_allclose(cosine_distance(a, b), cdist(a, b, "cosine"), atol=1e-5)
    np.testing.assert_allclose(euclidean_distance(a, b), cdist(a, b), atol=1e-4)
    np.testing.assert_allclose(euclidean_distance(a, b, squared=True), cdist(a, b, "sqeuclidean"), atol=1e-4)
    np.testing.assert_allclose(distance_matrix(a, b, "euclidean"), cdist(a, b), atol=1e-4)
    assert cosine_distance(a, b).dtype == np.float32
    # cosine ignores the magnitude
    np.testing.assert_allclose(cosine_distance(3 * a, b), cosine_distance(a, b), atol=1e-6)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: distance_matrix(np.ones((2, 3)), np.ones((2, 3)), "hamming"), "unknown distance"),
        (lambda: cosine_distance(np.ones((2, 3)), np.ones((2, 4))), "differ in length"),
        (lambda: cosine_distance(np.ones(3), np.ones((2, 3))), r"\(N, D\)"),
        (lambda: _run([ROW_A], [(1, 1)], "market"), "unknown protocol"),
        (lambda: _run([ROW_A[:-1]], [(1, 1)], "official"), "gallery_pids must have shape"),
        (lambda: _run([[np.nan] * 7], [(1, 1)], "official"), "NaN"),
        (lambda: _run([ROW_B], [(7, 1)], "torchreid"), "no query has a true match"),
    ],
)
def test_bad_input_raises(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
