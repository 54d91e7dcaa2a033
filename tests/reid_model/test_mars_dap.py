"""mars_dap: strips cut into frames, the identity split, the protocol with hand-computed ranks and AP."""

from __future__ import annotations

import numpy as np
import pytest

from reid_model.data.mars_dap import (
    load_mars_dap, select_split, split_identities, true_match_masks,
)
from reid_model.data.sampling import TestClipDataset, TrainClipDataset
from reid_model.evaluate_dap import score_dap
from reid_model.metrics import evaluate_matches
from tests.reid_model.synthetic_mars_dap import EXPECTED, TRACKLETS, hand_features, write_mars_dap

NAMES = list(TRACKLETS)


@pytest.fixture()
def dap_root(tmp_path):
    frames = {"t00000": [(30 * i, 0, 255 - 30 * i) for i in range(8)]}  # t0's frames differ, to check the cut
    return write_mars_dap(tmp_path / "dap", frames)


def test_loader_reads_rows_and_queries(dap_root):
    data = load_mars_dap(dap_root)
    assert [t.name for t in data.tracklets] == NAMES
    assert [(t.pid, t.camera, t.num_frames) for t in data.tracklets][:3] == [(1, 1, 8), (1, 1, 8), (1, 0, 8)]
    assert [(q.row, q.pid, q.camera, sorted(q.shown_matches)) for q in data.queries] == [
        (0, 1, 1, ["t00002"]), (4, 2, 3, ["t00005"])]


def test_strip_is_cut_into_frames_in_order_and_resized(dap_root):
    t0 = load_mars_dap(dap_root).tracklets[0]
    frames = t0.read_frames([7, 0, 3, 3], 256, 128)
    assert frames.shape == (4, 256, 128, 3) and frames.dtype == np.uint8
    centre = frames[:, 100:150, 40:90].reshape(4, -1, 3).mean(axis=1)
    np.testing.assert_allclose(centre[:, 0], [210, 0, 90, 90], atol=4)  # R = 30 * frame index
    with pytest.raises(ValueError, match="out of range"):
        t0.read_frames([8], 256, 128)


def test_train_and_test_clip_datasets_read_strips(dap_root):
    data = load_mars_dap(dap_root)
    train = TrainClipDataset(data.tracklets, seq_len=4, height=64, width=32, seed=0)
    clip, label, camera = train[0]
    assert clip.shape == (4, 3, 64, 32) and label == 1 and camera == 1
    test = TestClipDataset(data.tracklets, seq_len=4, clips="all", height=64, width=32)
    item = test[0]
    assert item.clips.shape == (2, 4, 64, 32, 3)  # 8 frames -> 2 non-overlapping 4-frame clips
    reds = item.clips[:, :, 32, 16, 0].astype(int)
    np.testing.assert_allclose(reds, [[0, 30, 60, 90], [120, 150, 180, 210]], atol=4)


def test_protocol_masks_follow_sources_md(dap_root):
    good, ignored = true_match_masks(load_mars_dap(dap_root))
    assert [NAMES[i] for i in np.flatnonzero(good[0])] == ["t00002", "t00003"]  # shown; known other camera
    assert [NAMES[i] for i in np.flatnonzero(ignored[0])] == ["t00000", "t00001"]  # itself; same camera
    assert [NAMES[i] for i in np.flatnonzero(good[1])] == ["t00005"]
    assert [NAMES[i] for i in np.flatnonzero(ignored[1])] == ["t00004", "t00006"]  # unknown camera, not shown


def test_hand_computed_ranks_and_ap(dap_root):
    data = load_mars_dap(dap_root)
    scores = score_dap(hand_features(), data, "cosine")
    assert scores.first_rank.tolist() == [2, 1]
    np.testing.assert_allclose(scores.ap, [0.5, 1.0])
    summary = scores.summary()
    for key, value in EXPECTED.items():
        assert summary[key] == pytest.approx(value), key
    assert score_dap(hand_features(), data, "euclidean").summary()["mAP"] == pytest.approx(75.0)


def test_identity_split_is_fixed_disjoint_and_two_thirds():
    pids = np.repeat(np.arange(100, 407 + 100), 3)
    train, val = split_identities(pids)
    assert len(train) == 271 and len(val) == 136 and not set(train) & set(val)
    again, _ = split_identities(pids[::-1])
    np.testing.assert_array_equal(train, again)
    other, _ = split_identities(pids, seed=1)
    assert not np.array_equal(train, other)


def test_select_split_keeps_queries_of_their_identities(dap_root):
    data = load_mars_dap(dap_root)
    parts = [select_split(data, s) for s in ("train", "val")]
    assert sorted(t.name for p in parts for t in p.tracklets) == NAMES
    for part in parts:
        for q in part.queries:
            assert part.tracklets[q.row].pid == q.pid
    relabelled = parts[0].relabel()
    assert sorted({t.label for t in relabelled.tracklets}) == list(range(relabelled.num_train_ids))
    with pytest.raises(ValueError, match="unknown split"):
        select_split(data, "test")


@pytest.mark.parametrize("damage, error, match", [
    (lambda r: (r / "tracklets.csv").unlink(), FileNotFoundError, "tracklets.csv"),
    (lambda r: (r / "tracklets" / "t00003.jpg").unlink(), FileNotFoundError, "t00003.jpg"),
    (lambda r: (r / "queries.csv").write_text("query,pid,camera,mars_name,shown_matches\nt09999,0001,1,x,t00002\n"),
     ValueError, "t09999.* is not in tracklets.csv"),
    (lambda r: (r / "tracklets.csv").write_text("tracklet,pid\nt00000,1\n"), ValueError, "missing columns"),
    (lambda r: (r / "tracklets.csv").write_text("tracklet,pid,camera,frames\nt00000,x,1,8\n"), ValueError, "pid must be"),
])
def test_bad_folders_say_what_is_wrong(dap_root, damage, error, match):
    damage(dap_root)
    with pytest.raises(error, match=match):
        load_mars_dap(dap_root)


def test_missing_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_mars_dap(tmp_path / "nowhere")


def test_evaluate_matches_rejects_bad_masks():
    d = np.zeros((1, 2))
    with pytest.raises(ValueError, match="both"):
        evaluate_matches(d, np.array([[True, False]]), np.array([[True, False]]))
    with pytest.raises(ValueError, match="shape"):
        evaluate_matches(d, np.zeros((1, 3), bool), np.zeros((1, 2), bool))
    with pytest.raises(ValueError, match="no query"):
        evaluate_matches(d, np.zeros((1, 2), bool), np.zeros((1, 2), bool))
