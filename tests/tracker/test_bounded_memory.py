"""Long runs keep per-track bookkeeping bounded, and the outputs still list every member track."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.archive import MemberArchive
from tracker.matching import IdentityMatcher
from tracker.outputs import final_track_ids, identities_json
from tracker.types import TrackMember

PEOPLE = 6
DIM = 16


def person_features(seed: int = 0) -> np.ndarray:
    basis = np.random.default_rng(seed).standard_normal((PEOPLE, DIM))
    return basis / np.linalg.norm(basis, axis=1, keepdims=True)


def drive(matcher: IdentityMatcher, tracks: int, checkpoints: tuple[int, ...] = ()) -> tuple[dict, list[dict]]:
    """``tracks`` short tracks (6 frames, 2 clips each) by ``PEOPLE`` people taking turns in two
    cameras, two at a time per camera (seen together: never merged); returns
    ``({(camera, track): final global id}, [bookkeeping at each checkpoint])``."""
    basis = person_features()
    rng = np.random.default_rng(1)
    final, counts = {}, []
    frame, started = 0, 0
    while started < tracks:
        frame += 10
        for cam in ("a", "b"):
            pair = rng.choice(PEOPLE, 2, replace=False)
            ids = (started + 1, started + 2)
            started += 2
            for offset in range(6):
                for track_id, person, x in zip(ids, pair, (50, 300)):
                    matcher.observe(cam, track_id, frame + offset, (frame + offset) / 10, (x, 10, x + 40, 110))
                    if offset in (2, 5):
                        matcher.add_feature(cam, track_id, basis[person] + rng.normal(0, 0.02, DIM))
                final.update(matcher.resolve())
            for track_id in ids:
                matcher.end_track(cam, track_id)
            final.update(matcher.resolve())
        if started in checkpoints or started - 2 in checkpoints:
            counts.append(matcher.bookkeeping())
    return final, counts


def test_ended_tracks_are_archived_and_records_stay_bounded():
    matcher = IdentityMatcher(DIM, match_threshold=0.8, min_clips=2)
    final, counts = drive(matcher, 3000, checkpoints=(1000, 3000))
    early, late = counts  # after 1,000 and 3,000 tracks
    for name in ("matcher_tracks", "covisible_pairs", "identity_members"):
        assert late[name] <= early[name] * 1.2 + 20, (name, early[name], late[name])
    assert late["matcher_tracks"] < 200 and late["covisible_pairs"] < 400 and late["identity_members"] < 300
    assert late["archived_tracks"] > 2500 and late["archive_rows_in_memory"] <= 1024


def test_outputs_still_list_every_member_track_with_its_final_id():
    matcher = IdentityMatcher(DIM, match_threshold=0.8, min_clips=2)
    final, _ = drive(matcher, 2400)
    identified = {key: gid for key, gid in final.items() if gid}
    assert len(identified) == 2400 and len(matcher.identities()) == PEOPLE
    mapping = final_track_ids(matcher.identities())
    assert {(cam, tid): gid for cam, ids in mapping.items() for tid, gid in ids.items()} == identified
    doc = identities_json(matcher.identities())
    rows = [t for ident in doc["identities"].values() for t in ident["tracks"]]
    assert len(rows) == 2400 and all(t["clips"] == 2 and t["last_frame"] - t["first_frame"] == 5 for t in rows)
    assert sum(ident["clip_count"] for ident in doc["identities"].values()) == 4800
    for ident in matcher.identities():  # members come back in join order: track ids rise
        keys = [(m.first_frame, m.camera_id, m.track_id) for m in ident.members]
        assert keys == sorted(keys)
    assert matcher.global_id("a", 1) == identified[("a", 1)]  # archived tracks still answer


def test_a_recent_snapshot_summarises_the_older_members():
    matcher = IdentityMatcher(DIM, match_threshold=0.8, min_clips=2)
    drive(matcher, 600)
    full = {i.global_id: i for i in matcher.identities()}
    for snap in matcher.identities(recent=3):
        whole = full[snap.global_id]
        assert snap.older is not None and snap.older.count == len(whole.members) - len(snap.members) > 0
        assert snap.members == whole.members[-len(snap.members):]  # the unarchived ones and 3 more
        assert snap.track_count == len(whole.members) and snap.clip_count == whole.clip_count
        assert (snap.first_seen_s, snap.last_seen_s, set(snap.cameras)) == \
            (whole.first_seen_s, whole.last_seen_s, set(whole.cameras))
        assert identities_json([snap])["identities"][str(snap.global_id)]["tracks_not_listed"] == snap.older.count
    with pytest.raises(ValueError, match="recent members"):
        final_track_ids(matcher.identities(recent=3))


@pytest.mark.parametrize("spill", [True, False])
def test_archive_spills_full_chunks_and_reads_them_back(spill, tmp_path):
    archive = MemberArchive(chunk_rows=4, spill=spill, path=tmp_path / "members.bin" if spill else None)
    for i in range(1, 11):
        archive.add(TrackMember("c1" if i % 2 else "c2", i, i, i + 5, i / 10, i / 10 + 0.5, 3), 100 + i % 3, i)
    assert len(archive) == 10 and archive.rows_in_memory == (2 if spill else 10)
    if spill:
        assert (tmp_path / "members.bin").stat().st_size == 8 * 64  # two full chunks of 64-byte rows
    rows = archive.by_identity()
    assert sorted(order for pairs in rows.values() for order, _ in pairs) == list(range(1, 11))
    assert rows[101][0] == (1, TrackMember("c1", 1, 1, 6, 0.1, 0.6, 3))
    assert archive.global_id("c2", 4) == 101 and archive.global_id("c2", 3) is None
    assert archive.global_id("c1", 99) is None and archive.global_id("c9", 1) is None
    with pytest.raises(ValueError, match="chunk_rows"):
        MemberArchive(chunk_rows=0)
