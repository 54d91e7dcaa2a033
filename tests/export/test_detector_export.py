"""The detector rebuilt from the bundled ONNX, exported by Ultralytics, and cached for the tracker."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

from export.detector_export import DetectorSpec, calibration_frames, export_detector, main, video_files
from mcreid.assets import asset_path

pytest.importorskip("ultralytics")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def bundled():
    return asset_path("weights/yolov8n_coco_int8.onnx", "the bundled detector")


@pytest.fixture(scope="module")
def pets_frames():
    video = asset_path("videos/pets09_s2l1/view001_480x360.avi", "PETS09-S2L1")
    return calibration_frames([video], 3)


def _person_boxes(model, frame, imgsz=640, conf=0.5):
    result = model.predict(frame, classes=[0], conf=conf, imgsz=imgsz, verbose=False)[0]
    return result.boxes.xyxy.cpu().numpy(), result.boxes.conf.cpu().numpy()


def _matched(a: np.ndarray, b: np.ndarray, min_iou: float) -> int:
    """How many boxes of ``a`` have a box of ``b`` overlapping at least ``min_iou``."""
    from benchmarks.detector_speed import iou

    return int((iou(a, b).max(axis=1) >= min_iou).sum()) if len(a) and len(b) else 0


def test_dequantised_weights_are_q_minus_zero_point_times_scale(bundled):
    import onnx
    from onnx import numpy_helper

    from export.yolo_weights import onnx_conv_weights

    weights, meta = onnx_conv_weights(bundled)
    arrays = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(bundled)).graph.initializer}
    q = arrays["model.0.conv.weight_quantized"].astype(np.float64)
    expected = (q - float(arrays["model.0.conv.weight_zero_point"])) * float(arrays["model.0.conv.weight_scale"])
    weight, bias = weights["model.0.conv"]
    np.testing.assert_allclose(weight, expected, rtol=1e-6)
    np.testing.assert_array_equal(bias, arrays["model.0.conv.bias"])
    assert len(weights) == 64 and "person" in meta["names"]


def test_rebuilt_pytorch_model_finds_the_people_the_bundled_onnx_finds(bundled, pets_frames):
    from export.yolo_weights import yolo_from_onnx
    from tracker.detector import import_ultralytics

    import_ultralytics()
    from ultralytics import YOLO

    rebuilt, onnx_model = yolo_from_onnx(bundled), YOLO(str(bundled), task="detect")
    assert rebuilt.model.names[0] == "person"
    for frame in pets_frames:
        mine, mine_conf = _person_boxes(rebuilt, frame)
        ref, ref_conf = _person_boxes(onnx_model, frame)
        assert len(ref) >= 2 and abs(len(mine) - len(ref)) <= 1
        assert _matched(ref, mine, 0.9) >= len(ref) - 1  # dynamic activation quantisation moves a box slightly
        assert abs(np.sort(mine_conf).mean() - np.sort(ref_conf).mean()) < 0.05


def test_a_non_yolo_onnx_is_refused_with_the_reason(tmp_path):
    from export.yolo_weights import onnx_conv_weights, yolo_from_onnx

    osnet = asset_path("weights/osnet_x0_25_msmt17.onnx", "the OSNet re-ID model")
    with pytest.raises(ValueError, match="does not fit yolov8n.yaml|no conv weights"):
        yolo_from_onnx(osnet)
    with pytest.raises(FileNotFoundError, match="detector ONNX not found: .*none.onnx"):
        onnx_conv_weights(tmp_path / "none.onnx")


@pytest.mark.parametrize("kwargs, message", [
    ({"fmt": "tflite"}, "detector format 'tflite' unknown"),
    ({"precision": "int4"}, "detector precision 'int4' unknown"),
    ({"fmt": "onnx", "precision": "int8"}, "onnx detector export is fp32 only"),
    ({"imgsz": 500}, "multiple of 32"),
])
def test_bad_specs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DetectorSpec(**kwargs)


def test_calibration_frames_are_spread_over_every_video(tmp_path):
    lab = video_files([asset_path("videos/lab_4cam", "the lab recording")])
    assert [p.name for p in lab] == ["cam0.mp4", "cam1.mp4", "cam2.mp4", "cam3.mp4"]
    frames = calibration_frames(lab[:2], 5)
    assert len(frames) == 5 and all(f.shape == (728, 1288, 3) for f in frames)
    assert not np.array_equal(frames[0], frames[1])  # not the same frame twice
    with pytest.raises(ValueError, match="no video found; pass --calib-videos"):
        calibration_frames([], 4)


def test_openvino_export_loads_in_the_tracker_and_agrees(tmp_path, bundled, pets_frames):
    from export.yolo_weights import yolo_from_onnx
    from tracker.detector import YoloDetector

    folder = export_detector(DetectorSpec("openvino", "fp32", 320), tmp_path, bundled)
    assert folder.name.endswith("_openvino_model") and (folder / "metadata.yaml").is_file()
    detector = YoloDetector(str(folder), imgsz=320, conf=0.5)
    rebuilt = yolo_from_onnx(bundled)
    for frame, dets in zip(pets_frames, detector.detect(pets_frames)):
        ref, _ = _person_boxes(rebuilt, frame, imgsz=320)
        assert len(ref) >= 1 and len(dets.xyxy) == len(ref)
        assert _matched(ref, dets.xyxy, 0.95) == len(ref)  # same weights, fp32 both: only rounding differs


def test_int8_export_calibrates_on_the_given_frames(tmp_path, bundled, pets_frames, caplog):
    from tracker.detector import YoloDetector

    video = asset_path("videos/pets09_s2l1/view001_480x360.avi", "PETS09-S2L1")
    with caplog.at_level(logging.INFO, logger="export.detector_export"):
        folder = export_detector(DetectorSpec("openvino", "int8", 320), tmp_path, bundled, [video], calib_frames=4)
    assert "int8 calibration on 4 real frames of 1 videos" in caplog.text
    assert "_int8_" in folder.name
    xml = next(folder.glob("*.xml")).read_text()
    assert "FakeQuantize" in xml  # really quantised
    from tracker.detector import runtime_name

    assert runtime_name(str(folder)) == "OpenVINO, int8" and runtime_name(str(bundled)) == "onnxruntime"
    dets = YoloDetector(str(folder), imgsz=320, conf=0.5).detect(pets_frames[:1])[0]
    ref, _ = _person_boxes(YoloDetector(str(bundled)).model, pets_frames[0], imgsz=640)
    assert _matched(ref, dets.xyxy, 0.5) >= len(ref) - 1


def test_command_line_bad_input_exits_1(tmp_path, caplog):
    from export.onnx_export import main as export_main

    with caplog.at_level(logging.ERROR):
        assert export_main(["detector", "--out", str(tmp_path), "--format", "onnx", "--precision", "int8"]) == 1
        assert main(["--out", str(tmp_path), "--source", str(tmp_path / "x.onnx")]) == 1
    assert "fp32 only" in caplog.text and "detector weights not found" in caplog.text


def test_engine_export_needs_a_gpu(tmp_path, bundled, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU here"):
        export_detector(DetectorSpec("engine", "fp16"), tmp_path, bundled)


def test_cache_builds_once_and_never_leaves_half_a_model(tmp_path, bundled, monkeypatch):
    from tracker import detector_cache

    calls = []

    def fake_export(spec, out_dir, source, *args, **kwargs):
        calls.append(spec.tag)
        if spec.precision == "fp16":
            (out_dir / "partial.xml").write_text("x")
            raise ValueError("export failed")
        model = out_dir / "yolov8n_openvino_model"
        model.mkdir()
        (out_dir / "yolov8n.pt").write_text("leftover")
        return model

    monkeypatch.setattr("export.detector_export.export_detector", fake_export)
    spec = DetectorSpec("openvino", "fp32", 640)
    results = []
    threads = [threading.Thread(target=lambda: results.append(detector_cache.cached_detector(bundled, spec, tmp_path)))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["openvino-fp32-640-dynamic"] and len(set(results)) == 1
    assert results[0].name == "yolov8n_openvino_model" and not list(results[0].parent.glob("*.pt"))
    with pytest.raises(ValueError, match="export failed"):
        detector_cache.cached_detector(bundled, DetectorSpec("openvino", "fp16", 640), tmp_path)
    built = sorted(p.name for p in (tmp_path / "detectors").iterdir() if not p.name.endswith(".lock"))
    assert built == [results[0].parent.name]  # the failed build left nothing behind
    assert detector_cache.cache_key(bundled, spec) != detector_cache.cache_key(bundled, DetectorSpec("openvino", "int8"))


def test_auto_falls_back_to_the_bundled_onnx_and_says_why(bundled, monkeypatch, caplog):
    from tracker import detector_cache
    from tracker.detector import detector_weights

    monkeypatch.setattr(detector_cache, "openvino_ready", lambda: "openvino is not installed (test)")
    with caplog.at_level(logging.WARNING, logger="tracker.detector_cache"):
        assert detector_weights("auto", "cpu") == str(bundled)
    assert "openvino is not installed (test); falling back to the bundled ONNX on onnxruntime" in caplog.text
    assert detector_weights("bundled") == str(bundled)
    assert detector_cache.auto_detector("cuda:0", bundled) == str(bundled)


def test_cache_root_follows_the_environment(tmp_path, monkeypatch):
    from tracker.detector_cache import cache_root

    monkeypatch.setenv("MCREID_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    monkeypatch.delenv("MCREID_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_root() == tmp_path / "x" / "mcreid"


def test_auto_on_a_cpu_builds_the_openvino_detector_once(tmp_path, monkeypatch, caplog):
    from tracker.detector import YoloDetector, detector_weights

    monkeypatch.setenv("MCREID_CACHE", str(tmp_path))
    with caplog.at_level(logging.INFO):
        first = detector_weights(None, "cpu")
        assert "building the openvino-fp32-640-dynamic detector" in caplog.text
        caplog.clear()
        detector = YoloDetector("auto", device="cpu")
    assert detector.weights == first and first.endswith("_openvino_model") and first.startswith(str(tmp_path))
    assert "building the" not in caplog.text and "(OpenVINO, imgsz 512)" in caplog.text  # reused; the log names it
