"""The clip scheduler under overload: new tracks first, surplus dropped, never a backlog."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.scheduler import ClipScheduler
from tracker.types import Clip


def clip(camera: str, track: int) -> Clip:
    return Clip(camera, track, np.zeros((4, 8, 4, 3), np.uint8), (1, 2, 3, 4))


def test_without_budget_every_clip_is_embedded():
    s = ClipScheduler(budget_s=None)
    clips = [clip("c", i) for i in range(50)]
    assert s.select(clips, {}) == clips
    assert s.dropped == 0


def test_overload_prefers_tracks_with_fewest_clips_and_drops_the_rest():
    s = ClipScheduler(budget_s=0.03, initial_cost_s=0.01)  # room for 3 clips per step
    clips = [clip("a", 1), clip("a", 1), clip("b", 2), clip("c", 3), clip("d", 4)]
    counts = {("a", 1): 10, ("b", 2): 0, ("c", 3): 5}  # d/4 is brand new (absent = 0)
    chosen = s.select(clips, counts)
    assert sorted(c.key for c in chosen) == [("b", 2), ("c", 3), ("d", 4)]
    assert (s.submitted, s.embedded, s.dropped) == (5, 3, 2)


def test_one_clip_per_track_before_any_second():
    s = ClipScheduler(budget_s=0.02, initial_cost_s=0.01)  # 2 per step
    chosen = s.select([clip("a", 1), clip("a", 1), clip("b", 1)], {})
    assert sorted(c.key for c in chosen) == [("a", 1), ("b", 1)]


def test_capacity_follows_the_measured_cost_and_never_builds_a_backlog():
    s = ClipScheduler(budget_s=0.1, initial_cost_s=0.01, smoothing=1.0)
    assert s.capacity() == 10
    s.record(4, 0.2)  # the embedder turned out slower: 50 ms per clip
    assert s.capacity() == 2
    for _ in range(20):  # a steady flood of 30 clips per step
        chosen = s.select([clip("x", i) for i in range(30)], {})
        assert len(chosen) == 2  # what fits, every step; nothing carried over
    s.record(1, 10.0)
    assert s.capacity() == 1  # always at least one


@pytest.mark.parametrize("kwargs", [{"budget_s": 0}, {"initial_cost_s": 0}, {"smoothing": 0}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        ClipScheduler(**kwargs)
