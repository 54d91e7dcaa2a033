"""Per-camera trackers (Ultralytics' ByteTrack / BoT-SORT): independent ids and state."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.config import TrackerConfig
from tracker.tracking import CameraTracker
from tracker.types import Detections

pytest.importorskip("ultralytics", reason="the tracker extra is not installed: pip install -e '.[tracker]'")


def walkers(frame: int, n: int) -> Detections:
    """n people walking right, 60 px apart."""
    xyxy = np.array([[10 + 60 * i + 3 * frame, 50, 40 + 60 * i + 3 * frame, 130] for i in range(n)], np.float32)
    return Detections(xyxy, np.full(n, 0.9, np.float32))


@pytest.mark.parametrize("kind", ["bytetrack", "botsort"])
def test_each_camera_counts_its_own_ids(kind):
    config = TrackerConfig(tracker_type=kind)
    cam_a, cam_b = CameraTracker(config), CameraTracker(config)
    ids_a, ids_b = set(), set()
    for f in range(1, 8):
        ids_a |= set(cam_a.update(walkers(f, 3)).track_id.tolist())
        ids_b |= set(cam_b.update(walkers(f, 2)).track_id.tolist())
    assert ids_a == {1, 2, 3}
    assert ids_b == {1, 2}  # not 4, 5: no counter shared with camera A


def test_cameras_share_no_state():
    config = TrackerConfig()
    cam_a, cam_b = CameraTracker(config), CameraTracker(config)
    for f in range(1, 6):
        cam_a.update(walkers(f, 2))
    # camera B sees nothing for a while: camera A's tracks must not leak into it
    assert len(cam_b.update(Detections.empty())) == 0
    out = cam_a.update(walkers(6, 2))
    assert sorted(out.track_id.tolist()) == [1, 2]


def test_track_ids_follow_people_and_boxes_are_the_detectors():
    tracker = CameraTracker(TrackerConfig())
    first = None
    for f in range(1, 10):
        dets = walkers(f, 2)
        out = tracker.update(dets)
        if len(out) == 2:
            order = np.argsort(out.xyxy[:, 0])
            ids = out.track_id[order].tolist()
            first = first or ids
            assert ids == first  # the left person keeps the left id
            np.testing.assert_allclose(out.xyxy[order], dets.xyxy)
    assert first is not None


def test_unknown_tracker_type_lists_the_choices():
    with pytest.raises(ValueError, match="bytetrack, botsort"):
        TrackerConfig(tracker_type="sort")
