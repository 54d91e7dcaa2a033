"""Models checked at load: the wrong kind of ONNX as detector or re-ID model is one clear line and exit 2."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from export.model_checks import check_detector, inspect_onnx
from mcreid.assets import find_asset
from tests.export.helpers import pooled_image_model, sequence_model, yolo_like_model
from tracker.cli import main
from tracker.detector import YoloDetector, check_onnx_detector

OSNET = "weights/osnet_x0_25_msmt17.onnx"
YOLO = "weights/yolov8n_coco_int8.onnx"


def test_a_yolo_like_onnx_passes_the_detector_check(tmp_path: Path) -> None:
    check_onnx_detector(yolo_like_model(tmp_path / "det.onnx", size=64), imgsz=64)
    check_onnx_detector(yolo_like_model(tmp_path / "dyn.onnx", batch="batch", size=64), imgsz=64)
    meta = yolo_like_model(tmp_path / "meta.onnx", size=32, metadata={"task": "detect", "imgsz": "[32, 32]"})
    check_onnx_detector(meta, imgsz=640)  # Ultralytics reads the size from its own metadata


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda p: pooled_image_model(p), r"its output is features \[batch, 3\], not \[1, 4 \+ classes, anchors\].*--reid"),
        (lambda p: pooled_image_model(p, flatten=False), r"features \[batch, 3, 1, 1\].*--reid"),
        (lambda p: sequence_model(p), r"its input is x \[batch, 3, 100\], not \[B, 3, H, W\]"),
        (lambda p: yolo_like_model(p, metadata={"task": "segment"}),
         "task 'segment'; the tracker needs a 'detect'"),
    ],
    ids=["reid-model", "pooled-map", "rank-3-input", "segment-model"],
)
def test_wrong_kind_of_onnx_detector_is_refused_before_ultralytics(tmp_path: Path, build, message: str) -> None:
    path = build(tmp_path / "wrong.onnx")
    with pytest.raises(ValueError, match=message) as err:
        YoloDetector(str(path))
    text = str(err.value)
    assert "\n" not in text and str(path) in text and "cannot be the detector" in text
    assert "expected an Ultralytics YOLO detect model" in text


def test_static_size_without_metadata_must_match_imgsz(tmp_path: Path) -> None:
    path = yolo_like_model(tmp_path / "det.onnx", size=64)
    with pytest.raises(ValueError, match=r"takes 64x64 images.*pass --imgsz 64"):
        check_detector(inspect_onnx(path), imgsz=640)


def test_unreadable_detector_files_are_value_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "broken.onnx"
    garbage.write_bytes(b"not an onnx model")
    with pytest.raises(ValueError, match="broken.onnx: onnxruntime cannot load it"):
        YoloDetector(str(garbage))
    pytest.importorskip("ultralytics")
    weights = tmp_path / "broken.pt"
    weights.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"Ultralytics cannot load the detector .*broken\.pt") as err:
        YoloDetector(str(weights))
    assert "\n" not in str(err.value)


def _error_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("option", "asset", "expected"),
    [
        ("--detector", OSNET, r"cannot be the detector: it looks like an image embedding"),
        ("--reid", YOLO, r"cannot be the re-ID model: it looks like an Ultralytics detect model"),
    ],
    ids=["osnet-as-detector", "yolo-as-reid"],
)
def test_real_models_cross_swapped_exit_2_with_one_line(shared_data: Path, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture, option: str, asset: str,
                                                        expected: str) -> None:
    model, video = find_asset(asset), shared_data / "videos" / "lab_4cam" / "cam0.mp4"
    assert model is not None and video.is_file()
    caplog.set_level(logging.INFO)
    code = main(["run", "--source", str(video), "--out", str(tmp_path / "out"), "--no-progress", option, str(model)])
    assert code == 2
    errors = _error_lines(caplog)
    assert len(errors) == 1, errors
    assert "\n" not in errors[0] and str(model) in errors[0]
    assert re.search(expected, errors[0]), errors[0]


def test_the_tracker_takes_a_fixed_batch_image_model_as_reid(tmp_path: Path) -> None:
    """``--reid`` with an OMZ-style ``data [1, 3, 256, 128]`` model: loaded as an image model, embeds 2 x 4 frames."""
    import numpy as np

    from tracker.pipeline import build_embedder

    embedder = build_embedder(str(pooled_image_model(tmp_path / "omz.onnx", batch=1)))
    assert getattr(embedder, "model_batch", None) == 1
    clips = np.random.default_rng(0).integers(0, 256, size=(2, 4, 256, 128, 3), dtype=np.uint8)
    assert embedder.embed(clips).shape == (2, 3)
