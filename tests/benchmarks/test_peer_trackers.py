"""benchmarks/peer_trackers.py: BoxMOT is optional; its tracks become MOT rows frame by frame."""

from __future__ import annotations

import sys
import types

import cv2
import numpy as np
import pytest

from benchmarks import peer_trackers, track_eval


def _video(path, frames=3):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), 40 * i, np.uint8))
    writer.release()
    return path


class _FakeTracker:
    """Echoes each detection as a track whose id is 7 + its index, like BoxMOT's (M, 8) output."""

    made: list[dict] = []

    def __init__(self, **options):
        self.made.append(options)
        self.frames = []

    def update(self, dets, frame):
        self.frames.append(frame.shape)
        ids = 7 + np.arange(len(dets))
        return np.column_stack([dets[:, :4], ids, dets[:, 4], dets[:, 5], np.arange(len(dets))]) if len(dets) \
            else np.empty((0, 8))


@pytest.fixture
def fake_boxmot(monkeypatch):
    module = types.SimpleNamespace(BotSort=_FakeTracker, ByteTrack=_FakeTracker, StrongSort=_FakeTracker)
    monkeypatch.setitem(sys.modules, "boxmot", module)
    _FakeTracker.made = []
    return module


def test_tracks_become_mot_rows_with_width_and_height(tmp_path, fake_boxmot):
    video = _video(tmp_path / "v.avi")
    dets = [np.array([[10, 5, 30, 45, 0.9, 0]], np.float32), np.empty((0, 6), np.float32),
            np.array([[1, 2, 11, 22, 0.5, 0], [20, 20, 40, 44, 0.8, 0]], np.float32)]
    fps = peer_trackers.boxmot_track("ByteTrack", dets, video, tmp_path / "out.txt")
    rows = [line.split(",") for line in (tmp_path / "out.txt").read_text().splitlines()]
    assert rows == [
        ["1", "7", "10.00", "5.00", "20.00", "40.00", "0.9000", "-1", "-1", "-1"],
        ["3", "7", "1.00", "2.00", "10.00", "20.00", "0.5000", "-1", "-1", "-1"],
        ["3", "8", "20.00", "20.00", "20.00", "24.00", "0.8000", "-1", "-1", "-1"],
    ]
    assert fps > 0 and _FakeTracker.made == [{}]  # ByteTrack gets no re-ID model


def test_re_id_trackers_get_the_osnet_onnx_on_the_cpu(tmp_path, fake_boxmot, monkeypatch):
    weights = tmp_path / "osnet.onnx"
    monkeypatch.setattr(peer_trackers, "asset_path", lambda rel, what: weights if rel == peer_trackers.REID_WEIGHTS
                        else None)
    peer_trackers.boxmot_track("BotSort", [np.empty((0, 6), np.float32)], _video(tmp_path / "v.avi", 1),
                               tmp_path / "out.txt")
    assert _FakeTracker.made == [{"reid_weights": weights, "device": "cpu", "half": False}]
    assert (tmp_path / "out.txt").read_text() == ""


def test_a_video_shorter_than_its_detections_is_an_error(tmp_path, fake_boxmot):
    with pytest.raises(RuntimeError, match="ended at frame 3"):
        peer_trackers.boxmot_track("ByteTrack", [np.empty((0, 6), np.float32)] * 3, _video(tmp_path / "v.avi", 2),
                                   tmp_path / "out.txt")


def test_without_boxmot_the_option_is_a_usage_error_naming_the_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "boxmot", None)  # makes `import boxmot` fail
    with pytest.raises(RuntimeError, match=r"pip install boxmot==25\.0\.0"):
        peer_trackers.import_boxmot()
    with pytest.raises(SystemExit) as info:
        track_eval.main(["--parts", "pets", "--boxmot"])
    assert info.value.code == 2 and "separate virtual environment" in capsys.readouterr().err
