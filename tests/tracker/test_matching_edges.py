"""Edges of the identity matcher that mutation testing found undefended (README "Development":
mutation testing): the matcher a TrackerConfig builds, the answers about unknown tracks, the
bookkeeping counts, the recent-members snapshot at its bounds, an identity kept by its remaining
member when another leaves, and the co-visibility of live tracks surviving a forgotten partner."""

from __future__ import annotations

import numpy as np

from tracker.config import TrackerConfig
from tracker.matching import IdentityMatcher, matcher_from_config

D = 8
FRAMES_PER_TRACK = 300  # more than the matcher's recent-frames window (256): an ended track leaves it


def unit(i: int) -> np.ndarray:
    v = np.zeros(D)
    v[i] = 1.0
    return v


def test_matcher_from_config_passes_every_matching_option():
    config = TrackerConfig(match_threshold=0.61, min_clips=3, revise_margin=0.07, covisible_frames=5,
                           link_seconds=1.5, link_relax=0.04)
    m = matcher_from_config(config, feature_dim=D)
    assert (m.feature_dim, m.match_threshold, m.min_clips, m.revise_margin, m.covisible_frames, m.link_seconds,
            m.link_relax) == (D, 0.61, 3, 0.07, 5, 1.5, 0.04)


def test_a_track_never_seen_has_global_id_zero():
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=1)
    assert m.global_id("cam0", 7) == 0
    m.observe("cam0", 1, 1)
    m.add_feature("cam0", 1, unit(0))
    m.resolve()
    assert m.global_id("cam0", 1) == 1 and m.global_id("cam0", 7) == 0


def test_bookkeeping_counts_each_kind_of_record():
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=1)
    for f in (1, 2):
        m.observe("cam0", 1, f)
        m.observe("cam0", 2, f)
    m.observe("cam1", 1, 1)
    m.add_feature("cam1", 1, unit(0))
    m.resolve()
    assert m.bookkeeping() == {"matcher_tracks": 3, "matcher_live": 3, "covisible_pairs": 2, "recent_entries": 5,
                               "identities": 1, "identity_members": 1, "archived_tracks": 0,
                               "archive_rows_in_memory": 0}


def one_person_archived(clips=(2, 3, 4, 5), live_clips: int = 2) -> IdentityMatcher:
    """One person, tracks 1..4 of cam0 one after the other (``clips`` clips each), each long enough to
    push the previous one out of the recent window: 1..4 are archived, track 5 is live."""
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=2)
    for track, n_clips in enumerate((*clips, live_clips), start=1):
        start = track * 1000
        for f in range(start, start + FRAMES_PER_TRACK):
            m.observe("cam0", track, f, f / 10)
        for _ in range(n_clips):
            m.add_feature("cam0", track, unit(0))
        if track <= len(clips):
            m.end_track("cam0", track)
        m.resolve()
    return m


def test_a_snapshot_lists_the_latest_archived_members_and_summarises_the_rest():
    m = one_person_archived()
    assert m.bookkeeping()["archived_tracks"] == 4
    assert m.bookkeeping()["identity_members"] == 5  # 1 live + 4 recent archived records
    (whole,) = m.identities()
    assert [t.track_id for t in whole.members] == [1, 2, 3, 4, 5] and whole.older is None

    (snap,) = m.identities(recent=1)  # archived 4 and live 5 listed; 1..3 summarised
    assert [t.track_id for t in snap.members] == [4, 5]
    assert (snap.older.count, snap.older.clip_count, snap.older.cameras) == (3, 2 + 3 + 4, ("cam0",))
    assert snap.older.first.track_id == 1
    assert (snap.first_seen_s, snap.last_seen_s) == (whole.first_seen_s, whole.last_seen_s)
    assert snap.clip_count == whole.clip_count == 2 + 3 + 4 + 5 + 2

    (snap,) = m.identities(recent=2)
    assert [t.track_id for t in snap.members] == [3, 4, 5] and snap.older.clip_count == 2 + 3

    (snap,) = m.identities(recent=0)  # only the live member
    assert [t.track_id for t in snap.members] == [5] and snap.older.count == 4

    for recent in (4, 10):  # every archived member fits: nothing to summarise
        (snap,) = m.identities(recent=recent)
        assert [t.track_id for t in snap.members] == [1, 2, 3, 4, 5] and snap.older is None


def test_the_earlier_member_keeps_the_identity_when_the_later_one_leaves():
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=1)
    for track, frames in ((1, range(1, 10)), (2, range(12, 20))):
        for f in frames:
            m.observe("cam0", track, f, f / 10)
        m.add_feature("cam0", track, unit(0))
        m.resolve()
    m.observe("cam0", 1, 21)  # both alive in one frame: track 2, the later joiner, leaves
    m.observe("cam0", 2, 21)
    m.resolve()
    m.resolve()
    assert [(i.global_id, [t.track_id for t in i.members]) for i in m.identities()] == [(1, [1]), (2, [2])]
    m.add_feature("cam0", 1, unit(0))  # identity 1 still takes its member's clips
    m.resolve()
    assert m.identities()[0].clip_count == 2


def test_a_forgotten_partner_does_not_erase_the_pairs_of_the_live_tracks():
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=2)
    for f in range(1, 6):  # three people side by side in one camera
        for track in (1, 2, 3):
            m.observe("cam0", track, f, f / 10)
    m.add_feature("cam0", 1, unit(0))
    m.end_track("cam0", 1)  # one clip only: never identified, forgotten
    m.resolve()
    assert m.bookkeeping()["covisible_pairs"] == 2  # 2-3 and 3-2 only
    for track in (2, 3):  # 2 and 3 look exactly alike but were seen together: two people
        m.add_feature("cam0", track, unit(1))
        m.add_feature("cam0", track, unit(1))
    m.resolve()
    assert m.global_id("cam0", 2) != m.global_id("cam0", 3)


def test_with_the_link_on_tracks_without_boxes_match_at_the_plain_threshold():
    m = IdentityMatcher(D, match_threshold=0.6, min_clips=1, link_seconds=2.0, link_relax=0.1)
    for track, frames in ((1, range(1, 10)), (2, range(12, 20))):  # no xyxy: nothing to link by place
        for f in frames:
            m.observe("cam0", track, f, f / 10)
        m.add_feature("cam0", track, unit(0))
        m.end_track("cam0", track)
        m.resolve()
    assert m.global_id("cam0", 2) == m.global_id("cam0", 1) == 1
