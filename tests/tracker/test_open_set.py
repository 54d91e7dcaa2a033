"""Open-set identities: strangers found new identities, returning people rejoin, decisions are
revised, a lost track found again nearby links at a lower threshold, and all of it holds with
1,000 identities alive."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from tests.tracker.vectors import at_cosine as with_cos
from tests.tracker.vectors import feed as feed_track
from tracker.matching import IdentityMatcher

D = 16


def person(i: int, look: float = 0.0, common: float = 1.0, seed: int | None = None) -> np.ndarray:
    """Person i's feature: a component all people share (real re-ID features are far from
    orthogonal) plus their own axis; ``look`` adds noise."""
    v = np.full(D, common / np.sqrt(D))
    v[i % D] += 1.0
    if look:
        v += np.random.default_rng(i if seed is None else seed).normal(0, look, D)
    return v


feed = partial(feed_track, clips=2)


def test_a_stranger_who_resembles_an_old_identity_founds_a_new_one():
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=2)
    old = person(0)
    feed(m, "cam0", 1, range(1, 9), old, end=True)
    feed(m, "cam0", 2, range(100, 108), with_cos(old, 0.78, 5), end=True)  # alike, not enough
    assert m.global_id("cam0", 2) not in (0, m.global_id("cam0", 1))
    assert len(m.identities()) == 2


def test_a_returning_person_rejoins_their_identity_in_any_camera():
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=2)
    feed(m, "cam0", 1, range(1, 9), person(0), end=True)
    feed(m, "cam0", 2, range(20, 28), person(1), end=True)
    feed(m, "cam1", 1, range(500, 508), with_cos(person(0), 0.9, 7), end=True)  # much later, elsewhere
    assert m.global_id("cam1", 1) == m.global_id("cam0", 1)
    assert len(m.identities()) == 2


def test_a_join_is_revised_when_later_clips_contradict_it():
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=1, revise_margin=0.05)
    a, b = person(0), person(1)
    feed(m, "cam0", 1, range(1, 9), a, clips=3)
    feed(m, "cam1", 1, range(1, 9), b, clips=3)
    feed(m, "cam2", 1, range(1, 5), with_cos(a, 0.9, 5), clips=1)  # looks like A at first
    assert m.global_id("cam2", 1) == m.global_id("cam0", 1)
    for _ in range(6):  # then clearly B
        m.add_feature("cam2", 1, b)
    m.resolve()
    assert m.global_id("cam2", 1) == m.global_id("cam1", 1)


def test_revision_needs_the_margin_to_leave_an_identity_with_other_members():
    """Another identity passes the threshold but beats the current one by less than
    ``revise_margin``: the track stays; with no margin, it moves."""
    a, b = person(0), person(1)
    query = with_cos(a, 0.9, 3)
    sims = {}
    for margin in (0.2, 0.0):
        m = IdentityMatcher(D, match_threshold=0.65, min_clips=1, revise_margin=margin)
        feed(m, "cam0", 1, range(1, 9), a, clips=3)
        feed(m, "cam1", 1, range(1, 9), b, clips=3)
        feed(m, "cam2", 1, range(1, 5), query, clips=1)  # joins A
        assert m.global_id("cam2", 1) == m.global_id("cam0", 1)
        drift = 0.5 * a / np.linalg.norm(a) + 0.55 * b / np.linalg.norm(b)  # now a little closer to B
        for _ in range(40):
            m.add_feature("cam2", 1, drift)
        m.resolve()
        sig = m.identity_signature(m.global_id("cam2", 1), exclude=("cam2", 1))
        sims[margin] = m.global_id("cam2", 1) == m.global_id("cam1", 1)
        assert sig.count == 3
    assert sims == {0.2: False, 0.0: True}


# -- time and place: a track lost and found again ------------------------------------------------
def _lost_and_found(gap_s: float, dx: float, cos: float, link_relax: float = 0.15) -> bool:
    """Track 1 walks, is lost at frame 20; track 2 starts ``gap_s`` later ``dx`` px away with a
    signature at ``cos`` from track 1's. Is it joined to track 1's identity?"""
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=2, link_seconds=2.0, link_relax=link_relax)
    a = person(0)
    feed(m, "cam0", 1, range(1, 21), a, box=(100, 100, 140, 200))  # 100 px tall, still active (lost)
    start = 21 + int(round(gap_s * 10))
    feed(m, "cam0", 2, range(start, start + 8), with_cos(a, cos, 4), box=(100 + dx, 100, 140 + dx, 200))
    return m.global_id("cam0", 2) == m.global_id("cam0", 1)


@pytest.mark.parametrize("gap_s, dx, cos, joined", [
    (0.5, 30, 0.72, True),    # soon, close, alike enough for the relaxed threshold (0.65)
    (0.5, 30, 0.62, False),   # soon and close, but not alike enough even then
    (0.5, 300, 0.72, False),  # soon but far: no link, 0.72 < 0.80
    (3.0, 30, 0.72, False),   # close but too late (link_seconds 2)
    (0.5, 30, 0.85, True),    # alike enough without any link
])
def test_a_track_found_again_near_where_one_was_lost_links_at_a_lower_threshold(gap_s, dx, cos, joined):
    assert _lost_and_found(gap_s, dx, cos) is joined


def test_without_link_relax_the_found_track_needs_the_full_threshold():
    assert not _lost_and_found(0.5, 30, 0.72, link_relax=0.0)


def test_the_link_prefers_the_lost_track_over_a_slightly_more_similar_stranger():
    """Two identities pass; the one lost right there wins the assignment (its threshold is lower)."""
    m = IdentityMatcher(D, match_threshold=0.7, min_clips=2, link_seconds=2.0, link_relax=0.15)
    a, b = person(0), person(1)
    feed(m, "cam1", 1, range(1, 9), b, end=True)  # B, seen elsewhere
    feed(m, "cam0", 1, range(1, 21), a, box=(100, 100, 140, 200))  # A, lost at frame 20
    query = a / np.linalg.norm(a) * 0.5 + b / np.linalg.norm(b) * 0.52
    feed(m, "cam0", 2, range(25, 33), query, box=(110, 100, 150, 200))
    sims = [float(query @ s / np.linalg.norm(query) / np.linalg.norm(s)) for s in (a, b)]
    assert 0.7 <= sims[0] < sims[1]  # B is (a little) more similar
    assert m.global_id("cam0", 2) == m.global_id("cam0", 1)


# -- scale ---------------------------------------------------------------------------------------
def test_decisions_hold_with_a_thousand_identities_alive():
    """1,000 people, each seen once, all alike (shared component: pairwise cosine ~0.5): the matrix
    comparison equals per-identity signatures, a stranger founds a new identity and a returning
    person rejoins the right one of the 1,000."""
    rng = np.random.default_rng(0)
    dim = 256
    common = rng.normal(0, 1, dim)
    common /= np.linalg.norm(common)
    own = rng.normal(0, 1, (1001, dim))
    own /= np.linalg.norm(own, axis=1, keepdims=True)
    people = common + own  # cos between two people ~0.5
    unit_people = people / np.linalg.norm(people, axis=1, keepdims=True)
    pairs = unit_people @ unit_people.T
    assert 0.4 < np.median(pairs) < 0.6 and pairs[~np.eye(1001, dtype=bool)].max() < 0.75
    m = IdentityMatcher(dim, match_threshold=0.8, min_clips=1)
    for i in range(1000):
        feed(m, f"cam{i % 4}", i, range(10 * i, 10 * i + 4), people[i], clips=1, end=True)
    assert len(m.identities()) == 1000
    probe = m.identity_signature(7)
    sims = m.similarities(probe)
    assert len(sims) == 1000
    for gid in (1, 500, 1000):  # the matrix product equals the identities' own signatures
        expected = float(probe.normalized() @ m.identity_signature(gid).normalized())
        assert sims[gid] == pytest.approx(expected, abs=1e-5)
    returning = people[417] + rng.normal(0, 0.05, dim)
    feed(m, "cam9", 1, range(20000, 20004), returning, clips=1, end=True)
    assert m.global_id("cam9", 1) == m.identities()[417].global_id
    feed(m, "cam9", 2, range(20100, 20104), people[1000], clips=1, end=True)  # never seen before
    assert m.global_id("cam9", 2) not in [i.global_id for i in m.identities()[:1000]]
    assert len(m.identities()) == 1001


@pytest.mark.parametrize("kwargs", [{"link_seconds": -1.0}, {"link_relax": -0.1}])
def test_negative_link_settings_are_rejected(kwargs):
    with pytest.raises(ValueError, match="link_seconds and link_relax"):
        IdentityMatcher(D, **kwargs)
