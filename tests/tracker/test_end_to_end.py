"""The whole pipeline on ~30 frames of the real PETS09-S2L1 video with the bundled detector."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tracker.cli import main

pytest.importorskip("ultralytics", reason="the tracker extra is not installed: pip install -e '.[tracker]'")
pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")

FRAMES = 30


def read_mot(path):
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    assert rows.shape[1] == 10
    return rows


def test_headless_run_on_real_video(shared_data, tmp_path):
    video = shared_data / "videos/pets09_s2l1/view001_480x360.avi"
    out = tmp_path / "out"
    code = main(["run", "--source", str(video), "--source", str(tmp_path / "absent.mp4"), "--out", str(out),
                 "--max-frames", str(FRAMES), "--min-clips", "1", "--no-progress"])
    assert code == 0  # one camera failed, the other ran

    tracks = read_mot(out / "view001_480x360.tracks.txt")
    glob = read_mot(out / "view001_480x360.txt")
    assert set(tracks[:, 0].astype(int)) == set(range(1, FRAMES + 1))  # people in every frame, 1-based
    assert (tracks[:, 7:] == -1).all()
    # boxes in the 480x360 source's pixels; several people tracked at once
    assert tracks[:, 2].min() >= -1 and (tracks[:, 2] + tracks[:, 4]).max() <= 481
    assert (tracks[:, 3] + tracks[:, 5]).max() <= 361
    assert max(np.bincount(tracks[:, 0].astype(int))) >= 3
    # every global row is a tracked box, labelled with a global id; sorted by frame
    assert len(glob) > 0.6 * len(tracks)
    assert (np.diff(glob[:, 0]) >= 0).all()
    boxes = {tuple(np.round(r[[0, 2, 3, 4, 5]], 2)) for r in tracks}
    assert all(tuple(np.round(r[[0, 2, 3, 4, 5]], 2)) in boxes for r in glob)
    # a global id is never on two boxes of one frame
    for frame in np.unique(glob[:, 0]):
        ids = glob[glob[:, 0] == frame, 1]
        assert len(ids) == len(set(ids))

    identities = json.loads((out / "identities.json").read_text())
    assert identities["count"] == len(identities["identities"]) == len(set(glob[:, 1].astype(int)))
    for ident in identities["identities"].values():
        assert ident["cameras"] == ["view001_480x360"]
        assert ident["clip_count"] >= 1 and ident["tracks"]
        assert 1 <= ident["first_seen"]["frame"] <= ident["last_seen"]["frame"] <= FRAMES
    # the global file is the tracks file relabelled with each track's final identity (the most
    # confident box where two tracks of one identity share a frame)
    final = {t["track_id"]: int(gid) for gid, ident in identities["identities"].items() for t in ident["tracks"]}
    best = {}
    for r in tracks[np.argsort(-tracks[:, 6], kind="stable")]:  # first of the most confident
        if int(r[1]) in final:
            best.setdefault((int(r[0]), final[int(r[1])]), tuple(np.round(r[2:6], 2)))
    assert sorted((int(r[0]), int(r[1]), *np.round(r[2:6], 2)) for r in glob) == sorted(
        (*key, *box) for key, box in best.items())
    assert not (out / "absent.txt").exists()
