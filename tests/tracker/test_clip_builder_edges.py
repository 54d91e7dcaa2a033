"""Edges of ClipBuilder that mutation testing found undefended (README "Development": mutation
testing): the defaults and argument checks, the stride and gap bookkeeping at their bounds, the
thumbnail's score and colour order, the reject counts, and queries about unknown tracks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tracker.clips import ClipBuilder, crop_rgb
from tracker.types import Detections

FRAME = np.zeros((200, 300, 3), np.uint8)
GOOD = (50, 40, 90, 140)  # 40x100 box well inside the 300x200 frame


def boxes(*rows, conf=0.9) -> Detections:
    xyxy = np.array([r[1:] for r in rows], np.float32).reshape(-1, 4)
    return Detections(xyxy, np.full(len(rows), conf, np.float32), np.array([r[0] for r in rows]))


def feed(builder: ClipBuilder, steps, seen) -> list:
    """One update per step; track 1 at GOOD in the steps listed in ``seen``, no boxes otherwise."""
    done = []
    for step in steps:
        done += builder.update(FRAME, step, boxes((1, *GOOD)) if step in seen else boxes())
    return done


# -- arguments -----------------------------------------------------------------------------------
def test_default_clips_are_four_crops_of_every_frame():
    done = feed(ClipBuilder("cam0", (32, 16)), range(1, 6), seen=range(1, 6))
    assert [c.frame_indices for c in done] == [(1, 2, 3, 4)]


def test_clips_of_one_crop_are_allowed():
    done = feed(ClipBuilder("cam0", (32, 16), clip_len=1), range(1, 4), seen=range(1, 4))
    assert [c.frame_indices for c in done] == [(1,), (2,), (3,)]


@pytest.mark.parametrize(("clip_len", "clip_stride"), [(0, 1), (1, 0)])
def test_a_zero_length_or_stride_is_refused_with_both_values(clip_len, clip_stride):
    with pytest.raises(ValueError) as err:
        ClipBuilder("cam0", (32, 16), clip_len=clip_len, clip_stride=clip_stride)
    assert str(err.value) == f"clip_len and clip_stride must be >= 1, got {clip_len} and {clip_stride}"


def test_untracked_detections_are_refused_with_the_fix():
    with pytest.raises(ValueError) as err:
        ClipBuilder("cam0", (32, 16)).update(FRAME, 1, Detections(np.zeros((1, 4)), np.ones(1)))
    assert str(err.value) == "ClipBuilder.update needs tracked detections (track_id set)"


# -- stride and gaps -------------------------------------------------------------------------------
def test_stride_two_takes_every_other_observation():
    done = feed(ClipBuilder("cam0", (32, 16), clip_len=4, clip_stride=2), range(1, 9), seen=range(1, 9))
    assert [c.frame_indices for c in done] == [(1, 3, 5, 7)]


def test_a_gap_of_clip_len_frames_keeps_the_open_clip_one_more_restarts_it():
    # clip_len x stride = 4 processed frames may pass between two sightings (seen at 1, back at 5)
    done = feed(ClipBuilder("cam0", (32, 16), clip_len=4), range(1, 8), seen={1, 5, 6, 7})
    assert [c.frame_indices for c in done] == [(1, 5, 6, 7)]
    # back at 6: 5 frames passed, frame 1's crop is not one moment with the new ones
    builder = ClipBuilder("cam0", (32, 16), clip_len=4)
    assert feed(builder, range(1, 9), seen={1, 6, 7, 8}) == []
    assert builder.open_crops(1) == 3


def test_the_gap_allowance_grows_with_the_stride():
    # clip_len 4, stride 2: 8 processed frames may pass. Seen at 1 (taken) and 2 (skipped by the
    # stride), back at 10 (taken): frame 1's crop stays; back at 11 it is dropped.
    builder = ClipBuilder("cam0", (32, 16), clip_len=4, clip_stride=2)
    feed(builder, range(1, 11), seen={1, 2, 10})
    assert builder.open_crops(1) == 2
    builder = ClipBuilder("cam0", (32, 16), clip_len=4, clip_stride=2)
    feed(builder, range(1, 12), seen={1, 2, 11})
    assert builder.open_crops(1) == 1


# -- rejects and thumbnails ------------------------------------------------------------------------
def test_rejects_are_counted_per_reason():
    builder = ClipBuilder("cam0", (32, 16))
    for f in (1, 2, 3):
        builder.update(FRAME, f, boxes((1, 50, 40, 55, 140)))  # 5 px wide
    builder.update(FRAME, 4, boxes((1, *GOOD), conf=0.1))
    assert builder.rejected == {"small": 3, "low confidence": 1}


def test_thumbnail_score_is_confidence_times_sqrt_area():
    builder = ClipBuilder("cam0", (32, 16))
    builder.update(FRAME, 1, boxes((1, 10, 20, 30, 60), conf=0.8))  # 20 wide, 40 high
    _, score = builder.thumbnail(1)
    assert score == pytest.approx(0.8 * math.sqrt(20 * 40))


def test_thumbnail_is_bgr_and_the_first_of_equal_crops_stays():
    first = FRAME.copy()
    first[40:140, 50:90] = (255, 0, 0)  # blue in BGR
    second = FRAME.copy()
    second[40:140, 50:90] = (0, 255, 0)  # green: same box, same confidence, same score
    builder = ClipBuilder("cam0", (32, 16))
    builder.update(first, 1, boxes((1, *GOOD)))
    builder.update(second, 2, boxes((1, *GOOD)))
    image, _ = builder.thumbnail(1)
    np.testing.assert_array_equal(image, crop_rgb(first, np.array(GOOD), (32, 16))[..., ::-1])
    assert (image[..., 0] == 255).all() and (image[..., 1:] == 0).all()  # still BGR blue


def test_unknown_tracks_have_no_thumbnail_no_crops_and_drop_quietly():
    builder = ClipBuilder("cam0", (32, 16))
    image, score = builder.thumbnail(99)
    assert image is None and score == -1.0
    assert builder.open_crops(99) == 0
    builder.drop_track(99)
    assert builder.track_ids == []
