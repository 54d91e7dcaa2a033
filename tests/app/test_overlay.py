"""Box styles, hit tests and trails on hand-made results (no Qt)."""

from __future__ import annotations

import numpy as np
import pytest

from app.overlay import Trails, box_at, box_styles
from tracker.pipeline import colour_for
from tracker.types import FrameResult


def result(boxes, gids, tracks=None, frame=1, camera="cam0"):
    gids = np.asarray(gids, np.int64)
    return FrameResult(camera, frame, np.zeros((100, 200, 3), np.uint8), np.asarray(boxes, np.float32).reshape(-1, 4),
                       np.full(len(gids), 0.9, np.float32),
                       np.asarray(tracks if tracks is not None else np.arange(1, len(gids) + 1), np.int64), gids,
                       tuple(colour_for(int(g)) for g in gids))


def test_styles_label_by_identity_or_track():
    styles = box_styles(result([[0, 0, 10, 20], [20, 0, 30, 20]], [3, 0], tracks=[7, 8]))
    assert [s.label for s in styles] == ["#3", "t8"]
    assert [s.colour for s in styles] == [colour_for(3), colour_for(0)]
    assert {s.width for s in styles} == {2} and not any(s.highlighted for s in styles)


def test_highlight_thickens_its_boxes_and_dims_the_others():
    styles = box_styles(result([[0, 0, 10, 20], [20, 0, 30, 20], [40, 0, 50, 20]], [3, 5, 0]), highlight=5)
    assert [s.highlighted for s in styles] == [False, True, False]
    assert [s.width for s in styles] == [2, 6, 2]
    assert styles[1].colour == colour_for(5)
    assert styles[0].colour == tuple(int(c * 0.5) for c in colour_for(3))
    assert styles[2].colour == tuple(int(c * 0.5) for c in colour_for(0))


def test_highlight_of_an_absent_identity_dims_everything():
    styles = box_styles(result([[0, 0, 10, 20]], [3]), highlight=9)
    assert not styles[0].highlighted and styles[0].colour != colour_for(3)


def test_box_at_picks_the_smallest_box_under_the_point():
    r = result([[0, 0, 100, 100], [40, 40, 60, 60], [200, 0, 210, 10]], [1, 2, 3])
    assert box_at(r, 50, 50) == 1  # inside both: the nested, smaller one
    assert box_at(r, 10, 10) == 0
    assert box_at(r, 205, 5) == 2
    assert box_at(r, 150, 50) is None
    assert box_at(result(np.zeros((0, 4)), []), 5, 5) is None


def test_trails_keep_recent_foot_points_per_track():
    trails = Trails(length=3)
    for frame in range(1, 6):
        x = 10.0 * frame
        trails.update(result([[x, 0, x + 10, 50]], [4], tracks=[1], frame=frame))
    [(gid, colour, points)] = trails.lines()
    assert gid == 4 and colour == colour_for(4)
    assert points == [(35.0, 50.0), (45.0, 50.0), (55.0, 50.0)]  # bottom centres of the last 3 frames


def test_trails_forget_tracks_not_seen_for_their_length():
    trails = Trails(length=3)
    trails.update(result([[0, 0, 10, 10]], [1], tracks=[1], frame=1))
    trails.update(result([[5, 0, 15, 10]], [1], tracks=[1], frame=2))
    assert len(trails.lines()) == 1
    trails.update(result([[50, 0, 60, 10]], [2], tracks=[2], frame=5))
    assert trails.lines() == []  # track 1 is gone, track 2 has a single point


def test_trails_of_length_zero_keep_nothing_and_negative_is_refused():
    trails = Trails(length=0)
    trails.update(result([[0, 0, 10, 10]], [1], frame=1))
    trails.update(result([[5, 0, 15, 10]], [1], frame=2))
    assert trails.lines() == []
    with pytest.raises(ValueError, match=">= 0 frames, got -2"):
        Trails(length=-2)
