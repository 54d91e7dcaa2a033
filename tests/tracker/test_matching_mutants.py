"""Identity matcher behaviour that mutation testing found undefended (README "Development": mutation
testing, issue 17): seeding from earlier runs (``seed``: ids, refusals, a returning person, seeded
identities never alone, never retired, not listed until seen), the defaults and messages, the
lost-track link (where a box's centre and height come from, the box a walking track was lost at, the
inclusive reach and time bounds, tracks of the recent frames that cannot be predecessors), the
recent-frames window, founders' order, the retry before anyone founds, similarities exactly at the
threshold, revision (ties at zero margin, archived members, every live track in one resolve),
retiring, ``on_settle`` and archiving only what nothing live refers to."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from tests.tracker.vectors import at_cosine as at_cos
from tests.tracker.vectors import feed as feed_track
from tracker.matching import IdentityMatcher
from tracker.signatures import Signature

D = 8


def unit(i: int) -> np.ndarray:
    v = np.zeros(D)
    v[i] = 1.0
    return v


feed = partial(feed_track, clips=1)


# -- seed: identities of earlier runs -------------------------------------------------------------
def test_seeding_nothing_leaves_the_ids_starting_at_one():
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=1)
    m.seed([])
    assert m.next_global_id == 1
    feed(m, "cam0", 1, range(1, 4), unit(0))
    assert m.global_id("cam0", 1) == 1 and m.next_global_id == 2


def test_new_ids_continue_after_the_highest_seeded_id_or_the_given_next_id():
    m = IdentityMatcher(D)
    m.seed([(5, Signature(unit(0), 2)), (1, Signature(unit(1), 2))])
    assert m.next_global_id == 6  # above every seeded id (the default next id, 1, is lower)
    m = IdentityMatcher(D)
    m.seed([(2, Signature(unit(0), 2))], next_global_id=10)  # ids up to 9 were given (then forgotten)
    assert m.next_global_id == 10


def test_a_returning_person_rejoins_a_seeded_id_and_a_stranger_founds_the_next_id():
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=1)
    m.seed([(1, Signature(unit(0), 3)), (4, Signature(unit(1), 2))], next_global_id=7)
    feed(m, "cam0", 1, range(1, 4), at_cos(unit(1), 0.9, 5))  # person 4 comes back
    feed(m, "cam0", 2, range(5, 8), unit(2))  # never seen before
    assert (m.global_id("cam0", 1), m.global_id("cam0", 2)) == (4, 7)
    assert m.identity_signature(4).count == 3  # the 2 stored clips and this run's one
    assert m.identity_signature(1).count == 3 and m.identity_signature(7).count == 1
    sims = m.similarities(Signature(unit(0), 1))  # the stored signature is in the gallery row
    assert sims[1] == pytest.approx(1.0) and sims[7] == pytest.approx(0.0)


def test_only_identities_seen_in_this_run_are_listed():
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=1)
    m.seed([(1, Signature(unit(0), 3)), (2, Signature(unit(1), 3))])
    feed(m, "cam0", 1, range(1, 4), unit(2))
    assert [i.global_id for i in m.identities()] == [3]  # 1 and 2 (not seen) are skipped, not the end
    assert [i.global_id for i in m.identities(recent=2)] == [3]


def test_a_track_alone_in_a_seeded_identity_is_not_alone_there():
    """Identity 1 holds earlier runs' clips: its only live member moves only by the margin."""
    m = IdentityMatcher(D, match_threshold=0.5, min_clips=1, revise_margin=0.2)
    m.seed([(1, Signature(unit(0), 4)), (2, Signature(unit(0) + unit(1), 4))])
    feed(m, "cam0", 1, range(1, 4), unit(0))
    assert m.global_id("cam0", 1) == 1
    m.add_feature("cam0", 1, unit(0) + 1.2 * unit(1))  # now a little closer to identity 2
    m.resolve()
    assert m.global_id("cam0", 1) == 1


def test_a_seeded_identity_left_by_its_only_track_is_not_retired():
    m = IdentityMatcher(D, match_threshold=0.5, min_clips=1, revise_margin=0.0)
    m.seed([(1, Signature(unit(0), 1)), (2, Signature(unit(1), 4))], next_global_id=3)
    feed(m, "cam0", 1, range(1, 4), unit(0))
    for _ in range(4):  # then clearly person 2: moves
        m.add_feature("cam0", 1, unit(1))
    m.resolve()
    assert m.global_id("cam0", 1) == 2
    assert 1 in m.similarities(Signature(unit(0), 1))  # identity 1 still in the gallery
    feed(m, "cam1", 1, range(1, 4), unit(0))  # person 1 comes back: their id, no new one
    assert m.global_id("cam1", 1) == 1 and m.next_global_id == 3


@pytest.mark.parametrize("first", ["track", "seed"])
def test_seeding_after_a_track_or_a_seed_is_refused(first):
    m = IdentityMatcher(D)
    if first == "track":
        m.observe("cam0", 1, 1)  # a track, no identity yet
    else:
        m.seed([(1, Signature(unit(0), 1))])
    with pytest.raises(ValueError, match=r"^seed\(\) must come before the first track and only once$"):
        m.seed([(2, Signature(unit(1), 1))])


@pytest.mark.parametrize("seeds", [
    [(0, Signature(unit(0), 1))],
    [(-3, Signature(unit(0), 1))],
    [(3, Signature(unit(0), 1)), (3, Signature(unit(1), 1))],
])
def test_seeded_ids_must_be_positive_and_distinct(seeds):
    with pytest.raises(ValueError, match=rf"^seeded global ids must be positive and distinct, got {seeds[-1][0]}$"):
        IdentityMatcher(D).seed(seeds)


def test_a_seeded_signature_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match=r"^identity 2: signature must have shape \(8,\), got \(3,\)$"):
        IdentityMatcher(D).seed([(1, Signature(unit(0), 1)), (2, Signature(np.ones(3), 1))])


# -- defaults and messages ------------------------------------------------------------------------
def test_the_matcher_defaults():
    m = IdentityMatcher(D)
    assert (m.min_clips, m.revise_margin, m.covisible_frames, m.link_seconds, m.link_relax) == (2, 0.05, 0, 0.0, 0.0)


def test_a_track_observed_without_a_time_is_seen_at_time_zero():
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=1)
    m.observe("cam0", 1, 5)
    m.add_feature("cam0", 1, unit(0))
    m.resolve()
    (member,) = m.identities()[0].members
    assert (member.first_time_s, member.last_time_s) == (0.0, 0.0)


def test_a_feature_for_a_track_never_observed_names_it():
    with pytest.raises(KeyError, match=r"track 7 of camera 'cam0' was never observed"):
        IdentityMatcher(D).add_feature("cam0", 7, unit(0))


def test_the_recent_frames_window_holds_256_frames():
    m = IdentityMatcher(D)
    for f in range(300):
        m.observe("cam0", 1, f)
    assert m.bookkeeping()["recent_entries"] == 256


# -- the lost-track link's geometry ---------------------------------------------------------------
def lost_and_found(first_box, found_box, cos: float = 0.72, start: int = 26, covisible_frames: int = 0) -> bool:
    """Track 1 is lost at frame 20 (``first_box``, or ``first_box(frame)``: its box); track 2 starts at
    frame ``start`` (0.1 s a frame: 0.6 s later by default) at ``found_box`` looking ``cos`` alike
    (below 0.8, above the relaxed 0.65). Joined?"""
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=2, link_seconds=2.0, link_relax=0.15,
                        covisible_frames=covisible_frames)
    feed(m, "cam0", 1, range(1, 21), unit(0), clips=2, box=first_box)
    feed(m, "cam0", 2, range(start, start + 8), at_cos(unit(0), cos, 4), clips=2, box=found_box)
    return m.global_id("cam0", 2) == m.global_id("cam0", 1)


# boxes 100 px tall, 0.6 s apart: the link reaches 100 * (0.5 + 0.6) = 110 px from the lost box's centre
@pytest.mark.parametrize("dx, dy, linked", [
    (80, 0, True), (100, 0, True), (150, 0, False),  # sideways
    (0, 80, True), (0, 150, False),  # up or down: the centre's y counts as much as its x
])
def test_the_link_reaches_a_distance_around_the_centre_of_the_lost_box(dx, dy, linked):
    assert lost_and_found((100, 100, 140, 200), (100 + dx, 100 + dy, 140 + dx, 200 + dy)) is linked


@pytest.mark.parametrize("dx, linked", [(1, True), (2, False)])
def test_a_box_of_no_height_counts_as_one_pixel_tall(dx, linked):
    """Reach (1 + 1) / 2 * 1.1 = 1.1 px."""
    assert lost_and_found((100, 100, 140, 100), (100 + dx, 100, 140 + dx, 100)) is linked


@pytest.mark.parametrize("found_x, linked", [(300, True), (100, False)])
def test_the_link_starts_from_where_a_walking_track_was_lost_not_where_it_began(found_x, linked):
    def walking(f):  # 10 px a frame: from x 110 at frame 1 to x 300 at frame 20
        return (100 + 10 * f, 100, 140 + 10 * f, 200)

    assert lost_and_found(walking, (found_x, 100, found_x + 40, 200)) is linked


def test_the_link_passes_over_boxless_and_forgotten_tracks_of_the_recent_frames():
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=2, link_seconds=2.0, link_relax=0.15)
    feed(m, "cam0", 1, range(1, 11), unit(0), clips=2, end=True)  # identified, seen without a box
    feed(m, "cam0", 3, range(1, 6), unit(1), clips=1, end=True)  # never identified: forgotten
    feed(m, "cam0", 2, range(12, 20), at_cos(unit(0), 0.72, 4), clips=2, box=(100, 100, 140, 200))
    assert m.global_id("cam0", 2) == 2  # no box to link by place: a new person at the full threshold


@pytest.mark.parametrize("start, dx, linked", [
    (25, 100, True), (25, 101, False),  # 0.5 s: the reach is exactly 100 * (0.5 + 0.5) = 100 px
    (40, 0, True), (41, 0, False),  # 2.0 s (link_seconds) is still a link; 2.1 s is not
])
def test_the_link_bounds_are_inclusive(start, dx, linked):
    box = (100, 100, 140, 200)
    assert lost_and_found(box, (box[0] + dx, 100, box[2] + dx, 200), start=start) is linked


def test_a_track_that_appears_while_the_other_is_still_seen_is_not_its_continuation():
    """Gap 0 (both seen in frame 20; one frame together is tolerated here): not lost before."""
    box = (100, 100, 140, 200)
    assert not lost_and_found(box, box, start=20, covisible_frames=1)
    assert lost_and_found(box, box, start=21, covisible_frames=1)


@pytest.mark.parametrize("others", ["without a box", "seen after the new track appeared"])
def test_other_tracks_of_the_recent_frames_do_not_hide_the_lost_one(others):
    """In each of four cameras: a lost person, four other tracks that cannot be predecessors, and the
    person found again nearby. Whatever order the recent tracks are looked at in, the link holds."""
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=2, link_seconds=2.0, link_relax=0.15)
    box = (100, 100, 140, 200)
    for c in range(4):
        cam = f"cam{c}"
        feed(m, cam, 1, range(1, 21), unit(c), clips=2, box=box)  # lost at frame 20
        for track in range(2, 6):
            if others == "without a box":
                feed(m, cam, track, range(1, 21), unit(7), clips=1)
            else:  # still seen, far away
                feed(m, cam, track, range(1, 40), unit(7), clips=1, box=(600, 100, 640, 200))
        feed(m, cam, 9, range(26, 34), at_cos(unit(c), 0.72, 4 + c), clips=2, box=(110, 100, 150, 200))
    assert [m.global_id(f"cam{c}", 9) for c in range(4)] == [m.global_id(f"cam{c}", 1) for c in range(4)]


# -- assignment order, founders, revision at the threshold ------------------------------------------
def test_strangers_found_identities_camera_by_camera_whatever_their_track_ids():
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=1)
    for f in range(1, 4):  # same frames, same clips; cam1's track is observed first and has the lower id
        m.observe("cam1", 1, f, f / 10)
        m.observe("cam0", 5, f, f / 10)
    m.add_feature("cam1", 1, unit(1))
    m.add_feature("cam0", 5, unit(0))
    m.resolve()
    assert (m.global_id("cam0", 5), m.global_id("cam1", 1)) == (1, 2)


def test_of_strangers_with_as_many_clips_the_one_seen_first_founds_first():
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=1)
    for track, first in ((1, 1), (2, 5)):
        for f in range(first, 10):
            m.observe("cam0", track, f, f / 10)
    m.add_feature("cam0", 2, unit(2))
    m.add_feature("cam0", 1, unit(1))
    m.resolve()
    assert (m.global_id("cam0", 1), m.global_id("cam0", 2)) == (1, 2)


def test_tracks_left_waiting_after_a_join_are_tried_again_before_anyone_founds():
    """cam0's tracks 1 and 2 (one after the other) both look like identity 1, but one camera's
    assignment gives an identity to one track: track 2 waits, and joins on the next round, before
    the stranger in cam1 founds an identity (track 2, with more clips, would otherwise found first)."""
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=1)
    feed(m, "cam9", 1, range(1, 4), unit(0), end=True)
    for track, frames in ((1, range(10, 14)), (2, range(20, 24))):
        for f in frames:
            m.observe("cam0", track, f, f / 10)
    for f in range(10, 14):
        m.observe("cam1", 1, f, f / 10)
    m.add_feature("cam0", 1, unit(0))
    for _ in range(3):
        m.add_feature("cam0", 2, unit(0))
    m.add_feature("cam1", 1, unit(3))
    m.resolve()
    assert (m.global_id("cam0", 1), m.global_id("cam0", 2), m.global_id("cam1", 1)) == (1, 1, 2)


def test_a_similarity_exactly_at_the_threshold_passes_for_joining_and_for_revising():
    m = IdentityMatcher(D, match_threshold=1.0, min_clips=1)
    feed(m, "cam0", 1, range(1, 4), unit(0), end=True)
    feed(m, "cam1", 1, range(1, 4), unit(0))  # cosine exactly 1.0: joins
    assert m.global_id("cam1", 1) == 1
    feed(m, "cam2", 1, range(1, 4), unit(1))  # a stranger: founds 2
    assert m.global_id("cam2", 1) == 2
    m.add_feature("cam2", 1, 2 * unit(0) - unit(1))  # its mean is now exactly unit(0): moves to 1
    m.resolve()
    assert m.global_id("cam2", 1) == 1
    assert sorted(m.similarities(Signature(unit(0), 1))) == [1]  # identity 2, left empty, is retired
    assert m.bookkeeping()["identities"] == 1


def test_a_lone_track_does_not_move_to_an_identity_below_the_threshold():
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=1)
    feed(m, "cam0", 1, range(1, 4), unit(0), end=True)
    feed(m, "cam1", 1, range(1, 4), unit(1))  # founds 2
    m.add_feature("cam1", 1, unit(1))  # more clips: revised, but identity 1 is at cosine 0
    m.resolve()
    assert m.global_id("cam1", 1) == 2


def test_with_no_margin_a_tie_with_another_identity_moves_the_track():
    """Beating the current identity "by the margin" includes equalling it plus the margin."""
    m = IdentityMatcher(D, match_threshold=0.5, min_clips=1, revise_margin=0.0)
    m.seed([(1, Signature(unit(0), 1)), (2, Signature(unit(1), 1))])
    feed(m, "cam0", 1, range(1, 4), unit(0))
    assert m.global_id("cam0", 1) == 1
    m.add_feature("cam0", 1, unit(1))  # mean (unit(0) + unit(1)) / 2: as close to 1 (without it) as to 2
    m.resolve()
    assert m.global_id("cam0", 1) == 2


@pytest.mark.parametrize("margin, moved", [(0.2, False), (0.0, True)])
def test_a_track_whose_identity_has_archived_members_is_not_alone_there(margin, moved):
    m = IdentityMatcher(D, match_threshold=0.75, min_clips=2, revise_margin=margin)
    feed(m, "cam1", 1, range(1, 4), unit(0) + unit(1), clips=2, end=True)  # identity 1
    feed(m, "cam0", 1, range(10, 310), unit(0), clips=2, end=True)  # cosine 0.71 to 1: identity 2
    feed(m, "cam0", 2, range(1000, 1300), unit(0), clips=2)  # the same person: joins 2; track 1 archived
    assert m.global_id("cam0", 2) == 2 and m.bookkeeping()["archived_tracks"] == 1  # cam1's is still recent
    for _ in range(3):  # mean unit(0) + 0.72 unit(1): cosine 0.99 to identity 1, 0.81 to 2 (without it)
        m.add_feature("cam0", 2, unit(0) + 1.2 * unit(1))
    m.resolve()
    assert m.global_id("cam0", 2) == (1 if moved else 2)
    listed = {i.global_id: [(t.camera_id, t.track_id) for t in i.members] for i in m.identities()}
    assert listed[2][0] == ("cam0", 1)  # identity 2 keeps its archived member even when left
    assert 2 in m.similarities(Signature(unit(0), 1))


@pytest.mark.parametrize("stuck", ["nothing passes", "short of the margin"])
def test_every_live_track_is_revised_in_one_resolve(stuck):
    """Track 1 (first in line) stays where it is; track 2, after it, still moves in the same resolve."""
    m = IdentityMatcher(D, match_threshold=0.5, min_clips=1, revise_margin=0.2)
    m.seed([(1, Signature(unit(0), 4)), (2, Signature(unit(0) + unit(1), 4))])
    feed(m, "cam0", 1, range(1, 4), unit(0) if stuck == "short of the margin" else unit(3))
    feed(m, "cam1", 1, range(1, 4), unit(2))  # a stranger: founds 3 (or 4)
    first, second = m.global_id("cam0", 1), m.global_id("cam1", 1)
    m.add_feature("cam0", 1, unit(0) + 1.2 * unit(1) if stuck == "short of the margin" else unit(3))
    m.add_feature("cam1", 1, 2 * unit(0) - unit(2))  # its mean is now unit(0): moves to 1
    m.resolve()
    assert (m.global_id("cam0", 1), m.global_id("cam1", 1)) == (first, 1) and second != 1


# -- settling ended tracks ------------------------------------------------------------------------
def test_ended_tracks_settle_even_behind_a_live_one():
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=1)
    feed(m, "cam0", 1, range(1, 4), unit(0))  # stays live
    feed(m, "cam0", 2, range(5, 8), unit(1))
    m.end_track("cam0", 2)
    assert m.resolve() == {("cam0", 2): 2}


def test_on_settle_gets_each_identified_track_as_it_ends_with_its_signature():
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=2)
    calls = []
    m.on_settle = lambda gid, member, signature: calls.append((gid, member, signature.mean.copy(), signature.count))
    feed(m, "cam0", 1, range(3, 9), unit(1), clips=2)
    m.add_feature("cam0", 1, unit(2))
    m.observe("cam0", 2, 9, 0.9)
    m.add_feature("cam0", 2, unit(1))  # one clip: never identified
    m.end_track("cam0", 1)
    m.end_track("cam0", 2)
    assert calls == [] and m.resolve() == {("cam0", 1): 1, ("cam0", 2): 0}
    ((gid, member, mean, count),) = calls
    assert (gid, count) == (1, 3)
    assert (member.camera_id, member.track_id, member.first_frame, member.last_frame, member.clip_count) == \
        ("cam0", 1, 3, 8, 3)
    np.testing.assert_allclose(mean, (2 * unit(1) + unit(2)) / 3)


# -- archiving: only what nothing live can refer to -----------------------------------------------
def test_an_ended_track_seen_with_a_live_one_stays_until_that_one_ends():
    """Out of the recent window but seen together with a live track: not archived, so the live track
    still cannot join its identity."""
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=2)
    for f in range(1, 11):  # two people side by side
        m.observe("cam0", 1, f, f / 10)
        m.observe("cam0", 2, f, f / 10)
    feed(m, "cam0", 1, [], unit(0), clips=2, end=True)  # identity 1
    feed(m, "cam0", 2, range(11, 300), unit(0), clips=0)  # track 1 leaves the recent frames
    assert m.bookkeeping()["archived_tracks"] == 0
    feed(m, "cam0", 2, [], unit(0), clips=2)  # looks exactly like 1, but was seen with it
    assert m.global_id("cam0", 2) == 2
    m.end_track("cam0", 2)
    m.resolve()
    assert m.bookkeeping()["archived_tracks"] == 1  # 1 now; 2 is still in the recent frames


def test_a_track_that_ended_is_still_a_predecessor_while_in_the_recent_frames():
    """The per-camera tracker ended the lost track before the person was found again: the link holds."""
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=2, link_seconds=2.0, link_relax=0.15)
    box = (100, 100, 140, 200)
    feed(m, "cam0", 1, range(1, 21), unit(0), clips=2, box=box, end=True)
    assert m.bookkeeping()["archived_tracks"] == 0
    feed(m, "cam0", 2, range(26, 34), at_cos(unit(0), 0.72, 4), clips=2, box=box)
    assert m.global_id("cam0", 2) == m.global_id("cam0", 1) == 1


def test_a_predecessor_kept_for_a_live_track_does_not_hold_back_other_archiving():
    m = IdentityMatcher(D, match_threshold=0.8, min_clips=2, link_seconds=2.0, link_relax=0.15)
    feed(m, "cam0", 1, range(1, 21), unit(0), clips=2, box=(100, 100, 140, 200), end=True)  # lost at 20
    feed(m, "cam0", 3, range(2, 9), unit(5), clips=2, box=(600, 100, 640, 200), end=True)  # far away
    feed(m, "cam0", 2, range(26, 34), at_cos(unit(0), 0.72, 4), clips=2, box=(110, 100, 150, 200))
    assert m.global_id("cam0", 2) == 1  # found again: track 1 is its predecessor, kept while 2 lives
    feed(m, "cam0", 2, range(34, 330), unit(0), clips=0, box=(110, 100, 150, 200))  # 1 and 3 leave the window
    assert m.bookkeeping()["archived_tracks"] == 1  # track 3 (settled after 1) is archived
    assert m.global_id("cam0", 3) == 2
