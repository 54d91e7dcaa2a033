"""Global identities: merging across cameras, never merging co-visible people, re-entry, joint assignment."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.matching import IdentityMatcher

D = 8


def unit(i: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """A feature pointing along axis i (person i), optionally perturbed."""
    v = np.zeros(D)
    v[i] = 1.0
    if noise:
        v += np.random.default_rng(seed).normal(0, noise, D)
    return v


def feed(m: IdentityMatcher, camera: str, track: int, frames: range, feature: np.ndarray, clips: int = 2) -> None:
    for f in frames:
        m.observe(camera, track, f, f / 10)
    for _ in range(clips):
        m.add_feature(camera, track, feature)


def test_one_person_in_two_cameras_merges():
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=2)
    feed(m, "cam0", 1, range(1, 9), unit(0, 0.1, 1))
    feed(m, "cam1", 1, range(1, 9), unit(0, 0.1, 2))  # same moment, other camera: allowed
    m.resolve()
    assert m.global_id("cam0", 1) == m.global_id("cam1", 1) != 0
    assert len(m.identities()) == 1


def test_two_people_together_in_one_camera_never_merge_even_if_alike():
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=2)
    feed(m, "cam0", 1, range(1, 9), unit(0))
    feed(m, "cam0", 2, range(5, 13), unit(0, 0.01))  # near-identical look, overlapping in time
    m.resolve()
    assert m.global_id("cam0", 1) != m.global_id("cam0", 2)
    assert 0 not in (m.global_id("cam0", 1), m.global_id("cam0", 2))
    # and a third, similar track in another camera joins exactly one of them
    feed(m, "cam1", 1, range(1, 9), unit(0, 0.01, 3))
    m.resolve()
    assert m.global_id("cam1", 1) in (m.global_id("cam0", 1), m.global_id("cam0", 2))


def test_below_threshold_founds_a_new_identity():
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=2)
    feed(m, "cam0", 1, range(1, 9), unit(0))
    feed(m, "cam1", 1, range(1, 9), unit(1))
    m.resolve()
    assert m.global_id("cam0", 1) != m.global_id("cam1", 1)


def test_no_global_id_before_min_clips():
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=3)
    feed(m, "cam0", 1, range(1, 9), unit(0), clips=2)
    m.resolve()
    assert m.global_id("cam0", 1) == 0
    m.add_feature("cam0", 1, unit(0))
    m.resolve()
    assert m.global_id("cam0", 1) > 0


def test_reentry_same_camera_and_other_camera_keeps_the_id():
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=2)
    feed(m, "cam0", 1, range(1, 20), unit(2, 0.1, 1))
    feed(m, "cam0", 2, range(1, 20), unit(3, 0.1, 2))
    m.resolve()
    first = m.global_id("cam0", 1)
    m.end_track("cam0", 1)
    ended = m.resolve()
    assert ended == {("cam0", 1): first}
    # the same person comes back later as a new track, in the same camera
    feed(m, "cam0", 7, range(40, 50), unit(2, 0.1, 3))
    # and in another camera
    feed(m, "cam1", 4, range(60, 70), unit(2, 0.1, 4))
    m.resolve()
    assert m.global_id("cam0", 7) == first
    assert m.global_id("cam1", 4) == first
    assert {(t.camera_id, t.track_id) for t in m.identities()[0].members} == {("cam0", 1), ("cam0", 7), ("cam1", 4)}


def test_assignment_is_joint_not_greedy():
    """Greedy (best pair first) would give A to X and leave B with nothing; the joint assignment
    gives A -> Y and B -> X, the most total similarity."""
    m = IdentityMatcher(D, match_threshold=0.5, min_clips=1)
    x = np.array([1.0, 0, 0, 0, 0, 0, 0, 0])
    y = np.array([0.6, 0.8, 0, 0, 0, 0, 0, 0])
    feed(m, "cam0", 1, range(1, 5), x, clips=1)
    feed(m, "cam0", 2, range(1, 5), y, clips=1)
    m.resolve()
    gid_x, gid_y = m.global_id("cam0", 1), m.global_id("cam0", 2)
    m.end_track("cam0", 1)
    m.end_track("cam0", 2)
    m.resolve()
    # two new, co-visible tracks in cam1: A is close to both, B only to X
    a = np.array([0.9, 0.43, 0, 0, 0, 0, 0, 0])  # cos(a, x) ~ 0.90, cos(a, y) ~ 0.89
    b = np.array([0.7, -0.3, 0.65, 0, 0, 0, 0, 0])  # cos(b, x) ~ 0.70, cos(b, y) ~ 0.19 (< 0.5)
    feed(m, "cam1", 1, range(10, 15), a, clips=1)
    feed(m, "cam1", 2, range(10, 15), b, clips=1)
    m.resolve()
    assert m.global_id("cam1", 1) == gid_y
    assert m.global_id("cam1", 2) == gid_x


def test_identity_signature_is_clip_weighted_mean_of_members():
    m = IdentityMatcher(D, match_threshold=0.1, min_clips=1)
    feed(m, "cam0", 1, range(1, 5), unit(0), clips=3)
    feed(m, "cam1", 1, range(1, 5), unit(0) + unit(1), clips=1)
    m.resolve()
    gid = m.global_id("cam0", 1)
    assert m.global_id("cam1", 1) == gid
    sig = m.identity_signature(gid)
    assert sig.count == 4
    np.testing.assert_allclose(sig.mean, (3 * unit(0) + unit(0) + unit(1)) / 4)


def test_revision_moves_a_lone_track_to_the_identity_it_turns_out_to_be():
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=1)
    feed(m, "cam0", 1, range(1, 5), unit(0), clips=2)
    m.resolve()
    person = m.global_id("cam0", 1)
    # a track in cam1 starts with a misleading first clip and founds its own identity
    feed(m, "cam1", 1, range(1, 5), unit(0) + 1.2 * unit(1), clips=1)
    m.resolve()
    assert m.global_id("cam1", 1) not in (0, person)
    # as its signature improves it moves; the lone identity is retired and its id never reused
    for _ in range(4):
        m.add_feature("cam1", 1, unit(0))
    m.resolve()
    assert m.global_id("cam1", 1) == person
    assert [i.global_id for i in m.identities()] == [person]


def test_a_member_that_comes_back_overlapping_another_leaves_the_identity():
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=1)
    feed(m, "cam0", 1, range(1, 10), unit(0), clips=1)
    m.resolve()
    feed(m, "cam0", 2, range(12, 20), unit(0), clips=1)  # after track 1 was lost: same person, joins
    m.resolve()
    assert m.global_id("cam0", 2) == m.global_id("cam0", 1)
    m.observe("cam0", 1, 21)  # track 1 is back while 2 is alive: two boxes, one identity in one frame
    m.observe("cam0", 2, 21)
    m.resolve()
    assert m.global_id("cam0", 1) != m.global_id("cam0", 2)


def test_tracks_that_end_without_an_id_are_forgotten():
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=2)
    feed(m, "cam0", 1, range(1, 3), unit(0), clips=1)
    m.end_track("cam0", 1)
    assert m.resolve() == {("cam0", 1): 0}
    assert m.clip_counts() == {}


@pytest.mark.parametrize("kwargs", [{"min_clips": 0}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="min_clips"):
        IdentityMatcher(D, **kwargs)


@pytest.mark.parametrize("together, tolerance, merged", [(2, 2, True), (3, 2, False), (1, 0, False)])
def test_a_moment_together_is_tolerated_up_to_covisible_frames(together, tolerance, merged):
    # a duplicate box: track 2 starts on the person of track 1 `together` frames before track 1 ends
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=2, covisible_frames=tolerance)
    feed(m, "cam0", 1, range(1, 11), unit(0))
    feed(m, "cam0", 2, range(11 - together, 21), unit(0, 0.01))
    m.resolve()
    assert (m.global_id("cam0", 1) == m.global_id("cam0", 2)) is merged
    assert 0 not in (m.global_id("cam0", 1), m.global_id("cam0", 2))


def test_tracks_seen_in_different_frames_of_one_camera_are_not_together():
    # the lifetimes interleave, but the two tracks are never in the same frame (one person, two ids)
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=2)
    feed(m, "cam0", 1, range(1, 21, 2), unit(0))
    feed(m, "cam0", 2, range(2, 22, 2), unit(0, 0.01))
    m.resolve()
    assert m.global_id("cam0", 1) == m.global_id("cam0", 2) != 0


def test_negative_covisible_frames_is_rejected():
    with pytest.raises(ValueError, match="covisible_frames"):
        IdentityMatcher(D, covisible_frames=-1)
