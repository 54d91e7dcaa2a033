"""Edges of the distance functions that mutation testing found undefended."""

from __future__ import annotations

import numpy as np
import pytest

from reid_model.metrics import distance_matrix, euclidean_distance


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
