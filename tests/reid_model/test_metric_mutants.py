"""evaluate, evaluate_matches and ignored_entries: the behaviours mutation testing found undefended.

Small hand-computed cases (no assets), each checking a default, a message or an edge the tests of
``test_metrics.py`` left open; and a brute-force comparison that ranks whole rows.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from reid_model.metrics import evaluate, evaluate_matches, ignored_entries

# (pid, camera) per gallery entry; the query below is pid 1 on camera 1.
GALLERY = np.array([(-1, 1), (1, 2), (2, 2), (1, 3), (3, 3)])
# junk first, then TRUE, neg, TRUE, neg: officially the junk is skipped (first true match at rank 1),
# torchreid counts it as a negative (rank 2).
ROW = [0.1, 0.2, 0.3, 0.4, 0.5]


def _evaluate(rows, queries, gallery=GALLERY, **kwargs):
    q = np.array(queries)
    return evaluate(np.array(rows, np.float32), q[:, 0], q[:, 1], gallery[:, 0], gallery[:, 1], **kwargs)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "reid_model.metrics" and r.levelno == logging.WARNING]


# ---------------------------------------------------------------- evaluate


def test_evaluate_defaults_to_the_official_protocol_and_a_50_long_cmc():
    scores = _evaluate([ROW], [(1, 1)])
    assert scores.protocol == "official"
    assert scores.first_rank.tolist() == [1]  # the junk entry was skipped
    assert scores.cmc.shape == (50,) and scores.cmc.tolist() == [1.0] * 50
    torchreid = _evaluate([ROW], [(1, 1)], protocol="torchreid")
    assert torchreid.protocol == "torchreid" and torchreid.first_rank.tolist() == [2]


@pytest.mark.parametrize("protocol", ["official", "torchreid"])
def test_cmc_has_max_rank_entries_and_max_rank_one_is_allowed(protocol: str):
    assert _evaluate([ROW], [(1, 1)], protocol=protocol, max_rank=1).cmc.shape == (1,)
    scores = _evaluate([ROW], [(1, 1)], protocol=protocol, max_rank=3)
    assert scores.cmc.tolist() == ([1.0, 1.0, 1.0] if protocol == "official" else [0.0, 1.0, 1.0])
    with pytest.raises(ValueError) as err:
        _evaluate([ROW], [(1, 1)], protocol=protocol, max_rank=0)
    assert str(err.value) == "max_rank must be >= 1, got 0"


def test_first_rank_is_an_integer_array():
    for protocol in ("official", "torchreid"):
        first = _evaluate([ROW, ROW], [(1, 1), (2, 1)], protocol=protocol).first_rank
        assert first.dtype == np.int64 and first.tolist() == ([1, 2] if protocol == "official" else [2, 3])


def test_official_warns_once_with_the_number_of_queries_without_a_true_match(caplog):
    caplog.set_level(logging.WARNING, logger="reid_model.metrics")
    # query pid 3 camera 3: its only gallery entry shares its camera; the other two hit at rank 1
    rows = [ROW, [0.5, 0.1, 0.2, 0.3, 0.4], [0.5, 0.4, 0.3, 0.1, 0.2]]
    scores = _evaluate(rows, [(3, 3), (1, 1), (1, 1)])
    assert scores.first_rank.tolist() == [0, 1, 1] and scores.counted.all()
    assert _warnings(caplog) == ["1 of 3 queries have no true match in the gallery; counted with AP 0"]


def test_no_warning_when_every_query_has_a_true_match_or_under_torchreid(caplog):
    caplog.set_level(logging.WARNING, logger="reid_model.metrics")
    _evaluate([ROW, ROW], [(1, 1), (2, 1)])
    scores = _evaluate([ROW, ROW], [(1, 1), (3, 3)], protocol="torchreid")
    assert scores.counted.tolist() == [True, False]
    assert _warnings(caplog) == []


def test_query_label_above_every_gallery_label_is_a_miss_not_an_error():
    official = _evaluate([ROW, ROW], [(1, 1), (9, 1)])
    assert official.first_rank.tolist() == [1, 0] and official.ap[1] == 0.0
    assert official.counted.tolist() == [True, True]
    torchreid = _evaluate([ROW, ROW], [(1, 1), (9, 1)], protocol="torchreid")
    assert torchreid.counted.tolist() == [True, False] and torchreid.num_queries == 1


def test_a_junk_query_has_no_true_match_officially_even_when_junk_is_on_other_cameras():
    gallery = np.array([(-1, 2), (1, 2), (-1, 3)])
    official = _evaluate([[0.1, 0.2, 0.3], [0.3, 0.1, 0.2]], [(-1, 1), (1, 1)], gallery)
    assert official.first_rank.tolist() == [0, 1] and official.ap[0] == 0.0 and official.counted.all()
    # torchreid knows no junk: -1 is an ordinary label there
    torchreid = _evaluate([[0.1, 0.2, 0.3]], [(-1, 1)], gallery, protocol="torchreid")
    assert torchreid.first_rank.tolist() == [1] and torchreid.ap[0] == pytest.approx((1 + 2 / 3) / 2)


def test_skipped_entry_before_and_true_match_at_the_very_end_of_the_row():
    # same label and camera first (skipped by both protocols), the farthest entry a true match
    gallery = np.array([(1, 1), (1, 2), (2, 2), (1, 3), (3, 3), (1, 2)])
    row = [0.1, 0.2, 0.3, 0.4, 0.5, 0.9]
    for protocol in ("official", "torchreid"):
        scores = _evaluate([row], [(1, 1)], gallery, protocol=protocol)
        assert scores.first_rank.tolist() == [1]
    # kept list TRUE, neg, TRUE, neg, TRUE
    assert _evaluate([row], [(1, 1)], gallery, protocol="torchreid").mAP == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    kit = (1 + 1) / 2 + (1 / 2 + 2 / 3) / 2 + (2 / 4 + 3 / 5) / 2
    assert _evaluate([row], [(1, 1)], gallery).mAP == pytest.approx(kit / 3)


def _brute_force(row, q_pid, q_cam, g_pids, g_cams, protocol):
    """(first_rank, AP) from the whole row ranked with a stable sort, skipped entries removed."""
    skip = (g_pids == q_pid) & (g_cams == q_cam)
    good = (g_pids == q_pid) & (g_cams != q_cam)
    if protocol == "official":
        skip |= g_pids == -1
        good &= g_pids != -1
    order = [j for j in np.argsort(row, kind="stable") if not skip[j]]
    hits = np.cumsum(good[order])
    ranks = np.flatnonzero(good[order]) + 1
    if len(ranks) == 0:
        return 0, (0.0 if protocol == "official" else None)
    precision = hits[ranks - 1] / ranks
    if protocol == "torchreid":
        return ranks[0], precision.mean()
    previous = np.where(ranks > 1, (hits[ranks - 1] - 1) / np.maximum(ranks - 1, 1), 1.0)
    return ranks[0], np.mean((previous + precision) / 2)


@pytest.mark.parametrize("protocol", ["official", "torchreid"])
def test_small_random_galleries_with_ties_match_ranking_whole_rows(protocol: str):
    rng = np.random.default_rng(7)
    for _ in range(40):
        g = int(rng.integers(4, 12))
        g_pids, g_cams = rng.integers(-1, 4, g), rng.integers(1, 4, g)
        q_pids, q_cams = rng.integers(-1, 5, 6), rng.integers(1, 4, 6)
        distmat = rng.integers(0, 4, (6, g)).astype(np.float32) / 4  # many ties
        try:
            scores = evaluate(distmat, q_pids, q_cams, g_pids, g_cams, protocol)
        except ValueError as err:  # torchreid: possible when no query has a true match
            assert protocol == "torchreid" and "no query has a true match" in str(err)
            continue
        for i in range(6):
            first, ap = _brute_force(distmat[i], q_pids[i], q_cams[i], g_pids, g_cams, protocol)
            assert scores.first_rank[i] == first
            assert scores.counted[i] == (ap is not None)
            if ap is not None:
                assert scores.ap[i] == pytest.approx(ap, abs=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"protocol": "market"}, "unknown protocol 'market'; choices: official, torchreid"),
        ({"distmat": np.zeros(5, np.float32)}, "distmat must be a float (Q, G) array, got shape (5,) dtype float32"),
        ({"distmat": np.zeros((1, 5), np.int64)}, "distmat must be a float (Q, G) array, got shape (1, 5) dtype int64"),
        ({"gallery_cams": np.ones(4)}, "gallery_cams must have shape (5,) to match distmat (1, 5), got (4,)"),
        ({"query_cams": np.ones(2)}, "query_cams must have shape (1,) to match distmat (1, 5), got (2,)"),
        ({"distmat": np.array([[0.1, np.inf, 0.2, 0.3, 0.4]])}, "distmat holds NaN or infinite values; check the features"),
    ],
)
def test_evaluate_bad_input_says_exactly_what_is_wrong(change: dict, message: str):
    args = {"distmat": np.array([ROW], np.float32), "query_pids": np.array([1]), "query_cams": np.array([1]),
            "gallery_pids": GALLERY[:, 0], "gallery_cams": GALLERY[:, 1], "protocol": "official"}
    args.update(change)
    with pytest.raises(ValueError) as err:
        evaluate(**args)
    assert str(err.value) == message


# ---------------------------------------------------------------- ignored_entries


def test_ignored_entries_skip_same_label_same_camera_and_officially_junk():
    pids, cams = [1, 1, 2, -1, -1], [1, 2, 1, 1, 3]  # lists are accepted
    assert ignored_entries(1, 1, pids, cams, "official").tolist() == [True, False, False, True, True]
    assert ignored_entries(1, 1, pids, cams, "torchreid").tolist() == [True, False, False, False, False]
    assert ignored_entries(2, 3, pids, cams, "torchreid").tolist() == [False] * 5
    with pytest.raises(ValueError) as err:
        ignored_entries(1, 1, pids, cams, "market")
    assert str(err.value) == "unknown protocol 'market'; choices: official, torchreid"


def test_ignored_entries_are_what_evaluate_skips():
    rng = np.random.default_rng(3)
    g_pids, g_cams = rng.integers(-1, 4, 30), rng.integers(1, 4, 30)
    row = rng.random(30).astype(np.float32)
    for protocol in ("official", "torchreid"):
        skip = ignored_entries(2, 1, g_pids, g_cams, protocol)
        good = (g_pids == 2) & (g_cams != 1)
        kept_order = [j for j in np.argsort(row, kind="stable") if not skip[j]]
        first = 1 + next(k for k, j in enumerate(kept_order) if good[j])
        assert evaluate(row[None], [2], [1], g_pids, g_cams, protocol).first_rank[0] == first


# ---------------------------------------------------------------- evaluate_matches

# q0: entry 0 ignored, TRUE at 1 and 3 -> kept list TRUE, neg, TRUE (ranks 1, 3)
# q1: no true match (not counted)
# q2: entry 2 ignored, the only TRUE entry is the farthest -> rank 4
MATCH_ROWS = np.array([[0.1, 0.2, 0.3, 0.4, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.1, 0.2, 0.3, 0.4]], np.float32)
MATCH_GOOD = np.array([[0, 1, 0, 1, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], bool)
MATCH_IGNORED = np.array([[1, 0, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 1, 0, 0]], bool)


def test_evaluate_matches_hand_computed(caplog):
    caplog.set_level(logging.WARNING, logger="reid_model.metrics")
    scores = evaluate_matches(MATCH_ROWS, MATCH_GOOD, MATCH_IGNORED, protocol="dap", max_rank=5)
    assert scores.protocol == "dap"
    assert scores.first_rank.dtype == np.int64 and scores.first_rank.tolist() == [1, 0, 4]
    assert scores.counted.tolist() == [True, False, True] and scores.num_queries == 2
    assert scores.ap[0] == pytest.approx((1 + 2 / 3) / 2) and np.isnan(scores.ap[1]) and scores.ap[2] == 0.25
    assert scores.mAP == pytest.approx(((1 + 2 / 3) / 2 + 0.25) / 2)
    assert scores.cmc.tolist() == [0.5, 0.5, 0.5, 1.0, 1.0]
    assert _warnings(caplog) == ["1 of 3 queries have no true match; not counted"]


def test_evaluate_matches_defaults_and_no_warning_when_every_query_counts(caplog):
    caplog.set_level(logging.WARNING, logger="reid_model.metrics")
    rows = [0, 2]
    scores = evaluate_matches(MATCH_ROWS[rows], MATCH_GOOD[rows], MATCH_IGNORED[rows])
    assert scores.protocol == "mars_dap" and scores.cmc.shape == (50,)
    assert scores.first_rank.tolist() == [1, 4] and scores.counted.all()
    assert evaluate_matches(MATCH_ROWS[rows], MATCH_GOOD[rows], MATCH_IGNORED[rows], max_rank=1).cmc.tolist() == [0.5]
    assert _warnings(caplog) == []


def test_evaluate_matches_reads_numeric_masks_as_truth_values():
    scores = evaluate_matches(MATCH_ROWS, MATCH_GOOD.astype(np.float32), MATCH_IGNORED.astype(np.float64), max_rank=5)
    assert scores.first_rank.tolist() == [1, 0, 4]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"distmat": MATCH_ROWS[0]}, "distmat must be a float (Q, G) array, got shape (5,) dtype float32"),
        ({"distmat": MATCH_ROWS.astype(np.int64)}, "distmat must be a float (Q, G) array, got shape (3, 5) dtype int64"),
        ({"good": MATCH_GOOD[:, :4]}, "good (3, 4) and ignored (3, 5) must have distmat's shape (3, 5)"),
        ({"ignored": MATCH_IGNORED[:2]}, "good (3, 5) and ignored (2, 5) must have distmat's shape (3, 5)"),
        ({"ignored": MATCH_IGNORED | MATCH_GOOD}, "an entry cannot be both a true match and ignored"),
        ({"distmat": np.where(MATCH_GOOD, np.nan, MATCH_ROWS)}, "distmat holds NaN or infinite values; check the features"),
        ({"max_rank": 0}, "max_rank must be >= 1, got 0"),
        ({"good": np.zeros_like(MATCH_GOOD)}, "no query has a true match in the gallery"),
    ],
)
def test_evaluate_matches_bad_input_says_exactly_what_is_wrong(change: dict, message: str):
    args = {"distmat": MATCH_ROWS, "good": MATCH_GOOD, "ignored": MATCH_IGNORED}
    args.update(change)
    with pytest.raises(ValueError) as err:
        evaluate_matches(**args)
    assert str(err.value) == message
