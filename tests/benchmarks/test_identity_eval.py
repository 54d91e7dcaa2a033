"""benchmarks/identity_eval.py: the scores by hand, the stream, the mars_dap reader, and a real run."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from benchmarks.identity_eval import (FRAME_H, FRAME_W, Tracklet, cluster_scores, load_frames, main,
                                      read_tracklets, run_stream, split_identities, stream_order)
from tracker.matching import IdentityMatcher


def test_cluster_scores_by_hand():
    # truth: a a a b b c ; predicted: 1 1 2 2 2 0 (0 = never identified: its own cluster)
    s = cluster_scores(list("aaabbc"), [1, 1, 2, 2, 2, 0])
    # pairs: true same = 3 (aa) + 1 (bb) = 4; predicted same = 1 + 3 = 4; both = 1 (a1a2) + 1 (b1b2) = 2
    assert s["pairwise_precision"] == pytest.approx(2 / 4)
    assert s["pairwise_recall"] == pytest.approx(2 / 4)
    # B-cubed precision per item: a:2/2,2/2,1/3  b:2/3,2/3  c:1/1 ; recall: a:2/3,2/3,1/3 b:1,1 c:1
    p = np.mean([1, 1, 1 / 3, 2 / 3, 2 / 3, 1])
    r = np.mean([2 / 3, 2 / 3, 1 / 3, 1, 1, 1])
    assert s["bcubed_precision"] == pytest.approx(p)
    assert s["bcubed_recall"] == pytest.approx(r)
    assert s["bcubed_f1"] == pytest.approx(2 * p * r / (p + r))
    assert (s["identities_created"], s["identities_true"], s["unassigned"]) == (3, 3, 1)


def test_perfect_and_all_in_one():
    truth = list("aabbcc")
    perfect = cluster_scores(truth, [4, 4, 9, 9, 1, 1])
    assert perfect["bcubed_f1"] == perfect["pairwise_f1"] == 1.0
    merged = cluster_scores(truth, [1] * 6)
    assert merged["bcubed_recall"] == 1.0 and merged["bcubed_precision"] == pytest.approx(1 / 3)


def test_splits_follow_the_model_split_and_halve_its_validation_identities():
    rows = [Tracklet(f"t{i}", f"{i % 30:04d}", i % 3, 8) for i in range(120)]
    parts = {name: split_identities(rows, name) for name in ("train", "val", "val-tune", "val-judge")}
    pids = {name: {t.pid for t in part} for name, part in parts.items()}
    assert len(pids["train"]) == 20 and len(pids["val"]) == 10  # 2/3 and 1/3, as the model is trained
    assert pids["train"].isdisjoint(pids["val"])
    assert pids["val-tune"] | pids["val-judge"] == pids["val"] and not pids["val-tune"] & pids["val-judge"]
    assert len(pids["val-tune"]) == 5
    assert len(parts["train"]) + len(parts["val"]) == 120
    assert stream_order(rows, 0) == stream_order(rows, 0) != stream_order(rows, 1)
    assert stream_order(rows, 0)[:6] != rows[:6]  # shuffled: one person's tracklets spread out
    with pytest.raises(ValueError, match="split"):
        split_identities(rows, "tune")


def _folder(tmp_path, pids=("0001", "0001", "0002")):
    (tmp_path / "tracklets").mkdir()
    lines = ["tracklet,pid,camera,frames"]
    for i, pid in enumerate(pids):
        strip = np.zeros((FRAME_H, 8 * FRAME_W, 3), np.uint8)
        for f in range(8):
            strip[:, f * FRAME_W:(f + 1) * FRAME_W] = (10 * f, 100 + i, 200)  # BGR
        cv2.imwrite(str(tmp_path / "tracklets" / f"t{i}.jpg"), strip, [cv2.IMWRITE_JPEG_QUALITY, 100])
        lines.append(f"t{i},{pid},{i},8")
    (tmp_path / "tracklets.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_reader_splits_strips_into_rgb_frames(tmp_path):
    root = _folder(tmp_path)
    rows = read_tracklets(root)
    assert [(t.pid, t.camera) for t in rows] == [("0001", 0), ("0001", 1), ("0002", 2)]
    frames = load_frames(root, rows[1], (256, 128))
    assert frames.shape == (8, 256, 128, 3)
    assert abs(int(frames[3, 100, 60, 0]) - 200) <= 3  # red channel first (RGB)
    assert abs(int(frames[3, 100, 60, 2]) - 30) <= 3  # frame 3's blue value


def test_flip_averages_each_clip_with_its_mirror_image(tmp_path):
    from benchmarks.identity_eval import embed_tracklets

    class LeftHalf:  # a feature that sees only the left half of each frame: mirroring changes it
        input_size, feature_dim = (8, 4), 1

        def embed(self, clips):
            return clips[:, :, :, :2, 0].mean(axis=(1, 2, 3))[:, None].astype(np.float32)

    root = _folder(tmp_path)
    strip = cv2.imread(str(root / "tracklets" / "t0.jpg"))
    strip[:, :, :] = 0
    for f in range(8):
        strip[:, f * FRAME_W:f * FRAME_W + FRAME_W // 2, 2] = 200  # red on the left half of each frame
    cv2.imwrite(str(root / "tracklets" / "t0.jpg"), strip, [cv2.IMWRITE_JPEG_QUALITY, 100])
    rows = read_tracklets(root)[:1]
    plain = embed_tracklets(root, rows, LeftHalf(), 4)["t0"]
    both = embed_tracklets(root, rows, LeftHalf(), 4, flip=True)["t0"]
    assert plain.shape == both.shape == (2, 1)
    assert plain[0, 0] > 190 and abs(both[0, 0] - plain[0, 0] / 2) < 5  # the mirror sees no red: half


def test_reader_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="tracklets.csv"):
        read_tracklets(tmp_path)
    root = _folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="t9.jpg"):
        load_frames(root, Tracklet("t9", "0001", 1, 8), (256, 128))


def test_stream_feeds_the_matcher_track_by_track():
    rows = [Tracklet("a1", "A", 1, 8), Tracklet("b1", "B", 2, 8), Tracklet("a2", "A", 3, 8), Tracklet("c1", "C", 0, 8)]
    basis = np.eye(4)
    features = {"a1": np.stack([basis[0]] * 2), "a2": np.stack([basis[0] + 0.1 * basis[1]] * 2),
                "b1": np.stack([basis[1]] * 2), "c1": np.stack([basis[2]] * 2)}
    predicted, _ = run_stream(IdentityMatcher(4, match_threshold=0.8, min_clips=2), rows, features, 4)
    assert predicted[0] == predicted[2] != 0
    assert len(set(predicted)) == 3


def test_a_real_run_on_mars_dap_writes_the_scores(shared_data, tmp_path):
    root = shared_data / "mars_dap"
    assert main(["--mars-dap", str(root), "--out", str(tmp_path), "--limit", "24", "--sweep", "0.5"]) == 0
    result = json.loads((tmp_path / "identity_eval.json").read_text())
    default, loose = result["runs"]["default"], result["runs"]["match_threshold=0.5"]
    assert default["tracklets"] == 24
    assert 1 <= default["identities_created"] <= 24
    assert loose["identities_created"] <= default["identities_created"]
    for run in (default, loose):
        assert 0.0 <= run["bcubed_precision"] <= 1.0 and 0.0 <= run["bcubed_recall"] <= 1.0
