"""Running-mean signatures equal the batch mean (the paper's AAS, online)."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.signatures import Signature, cosine_matrix


def test_running_mean_equals_batch_mean():
    features = np.random.default_rng(0).normal(size=(37, 16)).astype(np.float32)
    sig = Signature.empty(16)
    for f in features:
        sig = sig.add(f)
    assert sig.count == 37
    np.testing.assert_allclose(sig.mean, features.astype(np.float64).mean(axis=0), rtol=1e-10, atol=1e-12)


def test_combine_and_remove_are_clip_weighted():
    rng = np.random.default_rng(1)
    a_feats, b_feats = rng.normal(size=(3, 8)), rng.normal(size=(5, 8))
    a = b = Signature.empty(8)
    for f in a_feats:
        a = a.add(f)
    for f in b_feats:
        b = b.add(f)
    both = a.combine(b)
    np.testing.assert_allclose(both.mean, np.vstack([a_feats, b_feats]).mean(axis=0))
    back = both.remove(b)
    assert back.count == 3
    np.testing.assert_allclose(back.mean, a.mean)
    with pytest.raises(ValueError, match="cannot remove"):
        a.remove(both)


def test_add_leaves_the_original_alone_and_checks_shape():
    sig = Signature.empty(4)
    sig.add(np.ones(4))
    assert sig.count == 0
    with pytest.raises(ValueError, match="shape"):
        sig.add(np.ones(5))


def test_cosine_of_normalised_signatures():
    sims = cosine_matrix(np.array([[2.0, 0], [1, 1]]), np.array([[5.0, 0]]))
    np.testing.assert_allclose(sims[:, 0], [1.0, np.sqrt(0.5)], rtol=1e-6)
    assert np.allclose(Signature.empty(3).normalized(), 0)


def test_bad_signatures_say_what_is_wrong():
    import re

    with pytest.raises(ValueError, match=re.escape("mean must be a (D,) vector, got shape (2, 2)")):
        Signature(np.zeros((2, 2)), 0)
    with pytest.raises(ValueError, match=re.escape("count must be >= 0, got -1")):
        Signature(np.zeros(3), -1)


def test_a_feature_given_as_one_row_is_folded_in():
    sig = Signature.empty(3).add(np.array([[1.0, 2.0, 3.0]], np.float32))
    assert sig.mean.shape == (3,) and sig.mean.tolist() == [1.0, 2.0, 3.0] and sig.count == 1
