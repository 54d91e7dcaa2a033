"""The bar an export must clear (export/verify.py) and `mcreid-export --verify` failing when it does not."""

from __future__ import annotations

import math

import numpy as np
import pytest

from export.verify import THRESHOLDS, Agreement, agreement


def test_the_bars_are_the_documented_ones():
    # README "ONNX export": fp32 cosine >= 0.9999 and max abs diff <= 1e-3; fp16 0.999; int8 0.98
    assert THRESHOLDS == {"fp32": (0.9999, 1e-3), "fp16": (0.999, None), "int8": (0.98, None)}


@pytest.mark.parametrize(("precision", "passes", "fails"), [
    ("fp32", 0.9999, 0.99989),
    ("fp16", 0.999, 0.99899),
    ("int8", 0.98, 0.97999),
])
def test_cosine_bar_per_precision(precision, passes, fails):
    assert Agreement(passes, 1.0, 0.0).failures(precision) == []  # exactly at the bar passes
    (problem,) = Agreement(fails, 1.0, 0.0).failures(precision, "bn_feature")
    assert problem.startswith("bn_feature: cosine ") and f"< {THRESHOLDS[precision][0]}" in problem


def test_fp32_also_bounds_the_absolute_difference_and_the_others_do_not():
    assert Agreement(1.0, 1.0, 1e-3).failures("fp32") == []
    (problem,) = Agreement(1.0, 1.0, 1.01e-3).failures("fp32")
    assert problem == "raw_feature: max abs difference 1.01e-03 > 1e-03"
    assert Agreement(1.0, 1.0, 0.5).failures("fp16") == Agreement(1.0, 1.0, 0.5).failures("int8") == []
    # both misses reported, in order
    assert len(Agreement(0.5, 0.5, 2.0).failures("fp32")) == 2


def test_nan_never_passes():
    assert len(Agreement(math.nan, math.nan, math.nan).failures("fp32")) == 2
    assert len(Agreement(math.nan, math.nan, math.nan).failures("int8")) == 1


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match=r"unknown precision 'bf16'; choose from \['fp16', 'fp32', 'int8'\]"):
        Agreement(1.0, 1.0, 0.0).failures("bf16")


def test_agreement_numbers_against_a_hand_computed_case():
    reference = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    candidate = np.array([[1.0, 1.0], [0.0, 2.5], [3.0, 4.0]])
    result = agreement(reference, candidate.astype(np.float32))
    cosines = [1 / math.sqrt(2), 1.0, 1.0]
    assert result.min_cosine == pytest.approx(cosines[0])
    assert result.mean_cosine == pytest.approx(sum(cosines) / 3)
    assert result.max_abs_diff == pytest.approx(1.0)
    assert str(result) == "cosine min 0.707107 mean 0.902369, max abs diff 1.00e+00"
    zero = agreement(np.zeros((1, 3)), np.ones((1, 3)))  # a zero vector: cosine 0, not NaN
    assert zero.min_cosine == 0.0


def test_short_feature_vectors_are_compared_by_angle_not_length():
    # norms below 1 (small raw features) must not be floored: the same direction is cosine 1
    result = agreement(np.array([[0.03, 0.04], [0.0, 0.001]]), np.array([[0.03, 0.04], [0.0, 0.002]]))
    assert result.min_cosine == pytest.approx(1.0) and result.mean_cosine == pytest.approx(1.0)
    assert result.max_abs_diff == pytest.approx(0.001)


@pytest.mark.parametrize(("a", "b"), [((2, 3), (2, 4)), ((3,), (3,)), ((1, 2, 3), (1, 2, 3))])
def test_agreement_wants_two_equal_n_by_d_arrays(a, b):
    with pytest.raises(ValueError, match=r"features must both be \(N, D\)"):
        agreement(np.zeros(a), np.zeros(b))


def test_verify_fails_with_exit_1_when_onnx_disagrees_with_pytorch(sta_checkpoint, tmp_path, monkeypatch, caplog):
    """The real export and the real comparison, with onnxruntime's raw features nudged by 0.01:
    fp32 must refuse it (max abs diff 1e-2 > 1e-3) and the command exit 1."""
    pytest.importorskip("torch")
    from export import onnx_export
    from export.onnx_embedder import OnnxClipEmbedder

    original = OnnxClipEmbedder.embed_with_bn

    def nudged(self, clips):
        raw, bn = original(self, clips)
        return raw + np.float32(0.01), bn

    monkeypatch.setattr(OnnxClipEmbedder, "embed_with_bn", nudged)
    out = tmp_path / "nudged.onnx"
    with caplog.at_level("ERROR"):
        code = onnx_export.main(["--checkpoint", str(sta_checkpoint), "--out", str(out), "--verify",
                                 "--exporter", "torchscript"])
    assert code == 1
    assert out.is_file()  # written, then refused
    assert "verification FAILED" in caplog.text and "raw_feature: max abs difference" in caplog.text
    assert "bn_feature" not in caplog.text  # only what missed the bar is named
