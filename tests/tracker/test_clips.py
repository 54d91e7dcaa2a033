"""Clip formation, stride, crop filters and bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.clips import ClipBuilder, CropFilter, crop_rgb
from tracker.types import Detections

FRAME = np.zeros((200, 300, 3), np.uint8)


def boxes(*rows, conf=0.9) -> Detections:
    xyxy = np.array([r[1:] for r in rows], np.float32).reshape(-1, 4)
    return Detections(xyxy, np.full(len(rows), conf, np.float32), np.array([r[0] for r in rows]))


GOOD = (50, 40, 90, 140)  # 40x100 box well inside the 300x200 frame


def test_non_overlapping_clips_of_four():
    builder = ClipBuilder("cam0", (32, 16), clip_len=4)
    done = []
    for f in range(1, 10):
        done += builder.update(FRAME, f, boxes((1, *GOOD)))
    assert [c.frame_indices for c in done] == [(1, 2, 3, 4), (5, 6, 7, 8)]
    assert done[0].crops.shape == (4, 32, 16, 3) and done[0].crops.dtype == np.uint8
    assert builder.open_crops(1) == 1  # frame 9 waits in the open clip


def test_stride_takes_every_kth_frame():
    builder = ClipBuilder("cam0", (32, 16), clip_len=4, clip_stride=3)
    done = []
    for f in range(1, 25):
        done += builder.update(FRAME, f, boxes((7, *GOOD)))
    assert [c.frame_indices for c in done] == [(1, 4, 7, 10), (13, 16, 19, 22)]


def test_tracks_are_kept_apart():
    builder = ClipBuilder("cam0", (32, 16), clip_len=2)
    done = []
    for f in range(1, 3):
        done += builder.update(FRAME, f, boxes((1, *GOOD), (2, 150, 40, 190, 140)))
    assert sorted(c.key for c in done) == [("cam0", 1), ("cam0", 2)]


def test_crop_is_rgb_and_resized():
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[10:50, 20:40] = (255, 0, 0)  # blue in BGR
    crop = crop_rgb(frame, np.array([20, 10, 40, 50]), (8, 4))
    assert crop.shape == (8, 4, 3)
    assert (crop[..., 2] == 255).all() and (crop[..., 0] == 0).all()  # blue is last in RGB


@pytest.mark.parametrize("box, conf, reason", [
    ((50, 40, 90, 140), 0.9, None),
    ((50, 40, 90, 60), 0.9, "small"),        # 20 px high
    ((50, 40, 55, 140), 0.9, "small"),       # 5 px wide
    ((50, 40, 90, 140), 0.2, "low confidence"),
    ((0, 40, 40, 140), 0.9, "border"),       # touches the left edge
    ((50, 100, 90, 200), 0.9, "border"),     # cut by the bottom
])
def test_crop_filter(box, conf, reason):
    flt = CropFilter(min_height=32, min_width=12, min_conf=0.4, border_margin=2)
    assert flt.reject_reason(np.array(box, np.float32), conf, FRAME.shape) == reason


def test_filtered_crops_are_skipped_not_clipped():
    builder = ClipBuilder("cam0", (32, 16), clip_len=2, crop_filter=CropFilter(min_conf=0.5))
    done = builder.update(FRAME, 1, boxes((1, *GOOD), conf=0.3))
    done += builder.update(FRAME, 2, boxes((1, *GOOD), conf=0.9))
    done += builder.update(FRAME, 3, boxes((1, *GOOD), conf=0.9))
    assert [c.frame_indices for c in done] == [(2, 3)]
    assert builder.rejected == {"low confidence": 1}


def test_memory_is_bounded_to_the_open_clip():
    builder = ClipBuilder("cam0", (32, 16), clip_len=4)
    for f in range(1, 1001):
        builder.update(FRAME, f, boxes((1, *GOOD)))
        assert builder.open_crops(1) < 4
    builder.drop_track(1)
    assert builder.track_ids == []


def test_a_long_gap_restarts_the_open_clip():
    builder = ClipBuilder("cam0", (32, 16), clip_len=4)
    for f in (1, 2, 3):
        builder.update(FRAME, f, boxes((1, *GOOD)))
    for f in range(4, 40):  # the track is lost for 36 processed frames
        builder.update(FRAME, f, boxes())
    done = []
    for f in (40, 41, 42, 43):  # the old crops are not one moment with these
        done += builder.update(FRAME, f, boxes((1, *GOOD)))
    assert [c.frame_indices for c in done] == [(40, 41, 42, 43)]


def test_frames_dropped_in_realtime_mode_do_not_break_clips():
    builder = ClipBuilder("cam0", (32, 16), clip_len=4)
    done = []
    for f in range(1, 60, 6):  # only every 6th frame is processed: the pipeline is behind
        done += builder.update(FRAME, f, boxes((1, *GOOD)))
    assert [c.frame_indices for c in done] == [(1, 7, 13, 19), (25, 31, 37, 43)]


def test_thumbnail_keeps_the_best_crop():
    builder = ClipBuilder("cam0", (32, 16), clip_len=4)
    builder.update(FRAME, 1, boxes((1, *GOOD), conf=0.5))
    _, low = builder.thumbnail(1)
    builder.update(FRAME, 2, boxes((1, *GOOD), conf=0.9))
    image, high = builder.thumbnail(1)
    assert high > low and image.shape == (32, 16, 3)


def test_untracked_detections_are_refused():
    with pytest.raises(ValueError, match="track_id"):
        ClipBuilder("cam0", (32, 16)).update(FRAME, 1, Detections(np.zeros((1, 4)), np.ones(1)))
