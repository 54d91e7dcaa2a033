"""Edges of the scheduler, the crop filter and the signature algebra that mutation testing found
undefended (README "Development": mutation testing). Each test names the behaviour it pins."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.clips import CropFilter
from tracker.scheduler import ClipScheduler
from tracker.signatures import Signature, cosine_matrix
from tracker.types import Clip


def clip(camera: str, track: int) -> Clip:
    return Clip(camera, track, np.zeros((4, 8, 4, 3), np.uint8), (1, 2, 3, 4))


# -- scheduler ---------------------------------------------------------------------------------
def test_a_brand_new_track_beats_a_track_with_one_clip():
    s = ClipScheduler(budget_s=0.01, initial_cost_s=0.01)  # room for 1 clip
    old, new = clip("c", 1), clip("c", 2)
    assert s.select([old, new], {("c", 1): 1}) == [new]  # absent from the counts = 0 clips


def test_ties_go_by_arrival_and_a_chosen_clip_counts_once():
    s = ClipScheduler(budget_s=0.02, initial_cost_s=0.01)  # room for 2 clips
    b = clip("c", 3)
    # a: 0 clips (both its clips would bring it to 1, then 2); b: 1 clip. After a's first clip a and b
    # are tied at 1, and a's second clip arrived first.
    a_first, a_second = clip("c", 1), clip("c", 1)
    assert s.select([a_first, a_second, b], {("c", 3): 1}) == [a_first, a_second]


def test_the_cost_ignores_empty_or_untimed_calls():
    s = ClipScheduler(budget_s=0.1, initial_cost_s=0.02, smoothing=0.5)
    s.record(0, 0.5)  # no clips: nothing learned (and no division by zero)
    s.record(3, 0.0)  # a zero timing is a clock artefact, not a free embedder
    assert s.cost_per_clip_s == 0.02
    s.record(2, 0.2)  # 0.1 s a clip: halfway there with smoothing 0.5
    assert s.cost_per_clip_s == pytest.approx(0.06)
    assert s.capacity() == 1  # int(0.1 / 0.06)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"budget_s": 0}, "budget_s must be > 0 or None, got 0"),
    ({"initial_cost_s": 0}, r"initial_cost_s must be > 0 and smoothing in \(0, 1\], got 0, 0.3"),
    ({"smoothing": 1.5}, r"smoothing in \(0, 1\], got 0.02, 1.5"),
    ({"smoothing": 0}, r"smoothing in \(0, 1\]"),
])
def test_bad_scheduler_arguments_say_what_arrived(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClipScheduler(**kwargs)


def test_smoothing_one_takes_the_newest_measurement():
    s = ClipScheduler(budget_s=1.0, smoothing=1.0)
    s.record(4, 0.4)
    assert s.cost_per_clip_s == pytest.approx(0.1)


# -- crop filter: every bound is inclusive of the good side ------------------------------------
FRAME = (100, 200, 3)  # height 100, width 200
F = CropFilter(min_height=32, min_width=12, min_conf=0.4, border_margin=2)


@pytest.mark.parametrize(("xyxy", "conf", "reason"), [
    ((50, 20, 62, 52), 0.4, None),  # exactly min_width x min_height, exactly min_conf
    ((50, 20, 61.9, 52), 0.9, "small"),  # narrower
    ((50, 20, 62, 51.9), 0.9, "small"),  # lower
    ((50, 20, 62, 52), 0.399, "low confidence"),
    ((2, 2, 198, 98), 0.9, None),  # exactly border_margin from every edge
    ((1.9, 20, 62, 60), 0.9, "border"),  # cut on the left
    ((50, 1.9, 62, 60), 0.9, "border"),  # cut on the top only
    ((150, 20, 198.1, 60), 0.9, "border"),  # cut on the right
    ((150, 20, 199, 60), 0.9, "border"),  # inside the image but within the margin on the right
    ((50, 50, 62, 98.1), 0.9, "border"),  # cut at the bottom
])
def test_crop_filter_bounds(xyxy, conf, reason):
    assert F.reject_reason(np.array(xyxy, np.float32), conf, FRAME) == reason


# -- signatures ----------------------------------------------------------------------------------
def sig(*features) -> Signature:
    s = Signature.empty(len(features[0]))
    for f in features:
        s = s.add(np.array(f, np.float64))
    return s


def test_combining_with_an_empty_signature_keeps_the_other():
    one = sig([1.0, 3.0])
    assert Signature.empty(2).combine(one).count == 1
    np.testing.assert_allclose(Signature.empty(2).combine(one).mean, [1.0, 3.0])
    empty = Signature.empty(2).combine(Signature.empty(2))
    assert empty.count == 0 and empty.mean.shape == (2,)


def test_removing_clips_down_to_one_and_to_none():
    both = sig([1.0, 0.0], [0.0, 1.0])
    left = both.remove(sig([0.0, 1.0]))
    assert left.count == 1
    np.testing.assert_allclose(left.mean, [1.0, 0.0])
    none = both.remove(both)
    assert none.count == 0 and none.mean.shape == (2,) and not none.mean.any()
    with pytest.raises(ValueError, match="cannot remove 3 clips from a signature of 2"):
        both.remove(sig([1.0, 1.0], [1.0, 1.0], [1.0, 1.0]))


def test_cosine_matrix_is_float32_per_row_and_scale_free():
    a = np.array([[0.03, 0.04], [0.0, 0.0]])  # a short vector (norm 0.05) and a zero vector
    b = np.array([[3.0, 4.0], [0.0, 10.0]])  # rows of different lengths
    sims = cosine_matrix(a, b)
    assert sims.dtype == np.float32 and sims.shape == (2, 2)
    np.testing.assert_allclose(sims, [[1.0, 0.8], [0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(cosine_matrix(b, a), sims.T, atol=1e-6)


def test_normalized_is_a_float32_unit_vector_or_float32_zeros():
    unit = sig([3.0, 4.0]).normalized()
    assert unit.dtype == np.float32
    np.testing.assert_allclose(unit, [0.6, 0.8], atol=1e-7)
    zeros = Signature.empty(3).normalized()
    assert zeros.dtype == np.float32 and zeros.shape == (3,) and not zeros.any()
