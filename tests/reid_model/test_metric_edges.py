"""Edges of the distance functions that mutation testing found undefended."""

from __future__ import annotations

import numpy as np
import pytest

from reid_model.metrics import (
    cosine_distance,
    distance_matrix,
    euclidean_distance,
    l2_normalize,
)


def test_euclidean_small_distances_are_exact_not_floored():
    q = np.array([[0.0, 0.0], [0.3, 0.4]], np.float32)
    g = np.array([[0.0, 0.5]], np.float32)
    np.testing.assert_allclose(euclidean_distance(q, g), [[0.5], [np.sqrt(0.1)]], atol=1e-6)
    np.testing.assert_allclose(euclidean_distance(q, g, squared=True), [[0.25], [0.1]], atol=1e-6)


def test_euclidean_self_distance_is_never_negative_or_nan():
    # ||q||^2 + ||g||^2 - 2 q.g rounds below zero for some identical rows: the clip at 0 keeps sqrt real
    x = (np.random.default_rng(0).normal(size=(200, 64)) * 100).astype(np.float32)
    for squared in (False, True):
        d = euclidean_distance(x, x, squared=squared)
        assert np.isfinite(d).all() and (d >= 0).all()
        assert np.diag(d).max() < 1.0  # float32 cancellation at norms ~800, not a real distance


def test_unknown_distance_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown distance 'hamming'; choices: cosine, euclidean$"):
        distance_matrix(np.ones((1, 2)), np.ones((1, 2)), "hamming")


def test_distance_matrix_defaults_to_cosine():
    q, g = np.array([[1.0, 0.0]]), np.array([[0.0, 2.0], [3.0, 0.0]])
    np.testing.assert_allclose(distance_matrix(q, g), [[1.0, 0.0]], atol=1e-6)


def test_rank_reads_the_cmc_one_based_and_refuses_ranks_outside_it():
    from reid_model.metrics import Scores

    scores = Scores("official", np.array([0.5, 0.75, 1.0]), 0.6, 4, np.zeros(4), np.zeros(4), np.ones(4, bool))
    assert [scores.rank(k) for k in (1, 2, 3)] == [0.5, 0.75, 1.0]
    for k in (0, 4):
        with pytest.raises(ValueError) as err:
            scores.rank(k)
        assert str(err.value) == f"rank must be in 1..3, got {k}"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: l2_normalize(np.ones(3)), "features must be a numeric (N, D) array, got shape (3,) dtype float64"),
        (lambda: cosine_distance(np.ones(3), np.ones((1, 3))),
         "query features must be a numeric (N, D) array, got shape (3,) dtype float64"),
        (lambda: euclidean_distance(np.ones((1, 3)), np.ones((1, 1, 3))),
         "gallery features must be a numeric (N, D) array, got shape (1, 1, 3) dtype float64"),
        # numbers written as text, or truth values, are not features (astype would quietly read them)
        (lambda: l2_normalize(np.array([["1", "2"]])), "features must be a numeric (N, D) array, got shape (1, 2) dtype <U1"),
        (lambda: cosine_distance(np.ones((1, 2), bool), np.ones((1, 2))),
         "query features must be a numeric (N, D) array, got shape (1, 2) dtype bool"),
    ],
)
def test_features_that_are_not_a_numeric_matrix_are_refused_by_name(call, message: str):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value) == message


def test_l2_normalize_scales_short_rows_up_and_keeps_zero_rows_zero():
    out = l2_normalize(np.array([[0.3, 0.4], [0.0, 0.0], [3.0, 4.0], [1e-8, 0.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0], [0.6, 0.8], [1.0, 0.0]], atol=1e-6)
    # cosine therefore ignores the length of short vectors too
    q, g = np.array([[0.03, 0.04]]), np.array([[0.04, 0.03], [0.003, 0.004]])
    np.testing.assert_allclose(cosine_distance(q, g), [[0.04, 0.0]], atol=1e-6)
