"""The identity gallery: one matrix row per identity, equal to the members' clip-weighted mean."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.gallery import IdentityGallery
from tracker.signatures import Signature

D = 6


def sig(values, count):
    return Signature(np.asarray(values, np.float64), count)


def test_rows_are_ended_sums_plus_live_members():
    g = IdentityGallery(D)
    g.add(7)
    g.add(9)
    g.fold(7, sig([1, 0, 0, 0, 0, 0], 3))
    g.fold(7, sig([0, 1, 0, 0, 0, 0], 1))
    g.fold(9, sig([0, 0, 1, 0, 0, 0], 2))
    assert g.ended(7).count == 4
    np.testing.assert_allclose(g.ended(7).mean, [0.75, 0.25, 0, 0, 0, 0])
    gids, unit, counts = g.matrix({9: [sig([0, 0, 0, 1, 0, 0], 2)]})
    rows = dict(zip(gids.tolist(), range(len(gids))))
    assert counts[rows[7]] == 4 and counts[rows[9]] == 4
    expected7 = np.array([3, 1, 0, 0, 0, 0]) / np.linalg.norm([3, 1])
    np.testing.assert_allclose(unit[rows[7]], expected7, atol=1e-6)
    np.testing.assert_allclose(unit[rows[9]], np.array([0, 0, 1, 1, 0, 0]) / np.sqrt(2), atol=1e-6)


def test_an_identity_with_no_clips_yet_is_a_zero_row():
    g = IdentityGallery(D)
    g.add(1)
    gids, unit, counts = g.matrix({})
    assert gids.tolist() == [1] and counts.tolist() == [0] and not unit.any()


def test_removed_rows_are_reused_clean_and_the_store_grows():
    g = IdentityGallery(D)
    for gid in range(1, 201):  # past the initial 64 rows
        g.add(gid)
        g.fold(gid, sig(np.eye(D)[gid % D], 1))
    g.remove(5)
    assert 5 not in g and len(g) == 199
    g.add(500)  # takes the freed row: must start empty
    assert g.ended(500).count == 0
    gids, unit, _ = g.matrix({})
    assert len(gids) == 200 and 5 not in gids.tolist()
    np.testing.assert_allclose(unit[gids.tolist().index(200)], np.eye(D)[200 % D], atol=1e-6)
    with pytest.raises(ValueError, match="already exists"):
        g.add(200)


def test_a_gallery_puts_numpys_blas_on_one_thread():
    import subprocess
    import sys

    code = ("from threadpoolctl import threadpool_info; import numpy;"
            "before = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'];"
            "from tracker.gallery import IdentityGallery; IdentityGallery(8);"
            "after = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'];"
            "print(before, after)")
    env = {**__import__("os").environ, "OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    before, after = out.stdout.strip().split("] [")
    assert "2" in before and set(after.strip("[]").split(", ")) == {"1"}, out.stdout + out.stderr


def test_live_rows_are_built_once_per_live_mapping_and_gallery_change():
    g = IdentityGallery(6)
    for gid in (1, 2):
        g.add(gid)
    g.fold(1, sig([1, 0, 0, 0, 0, 0], 2))
    g.fold(2, sig([0, 1, 0, 0, 0, 0], 2))
    live = {1: [sig([0, 0, 1, 0, 0, 0], 2)]}
    query = np.array([0, 0, 1, 0, 0, 0], np.float32)
    first = g.similarities(query, live)
    assert first[0] == pytest.approx(np.sqrt(0.5)) and first[1] == 0.0
    built = g._combined_cache[2]
    assert g.similarities(query, live)[0] == first[0] and g._combined_cache[2] is built  # reused
    g.fold(1, sig([1, 0, 0, 0, 0, 0], 6))  # the gallery changed: rebuilt
    assert g.similarities(query, live)[0] == pytest.approx(2 / np.sqrt(68))
    assert g.similarities(query, {1: [sig([0, 0, 1, 0, 0, 0], 8)]})[0] == pytest.approx(8 / np.sqrt(128))  # new mapping
