"""Detector lookup, Ultralytics' offline switches, and the command line's bad-input messages."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

from tracker.cli import main
from tracker.detector import detections_from_result, resolve_detector


def test_missing_bundled_detector_names_the_file_and_the_alternative(tmp_path, monkeypatch):
    monkeypatch.setenv("MCREID_ASSETS", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        resolve_detector(None)
    assert "weights/yolov8n_coco_int8.onnx" in str(err.value) and "--detector yolo11n.pt" in str(err.value)


def test_missing_local_weights_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="detector weights not found"):
        resolve_detector(str(tmp_path / "best.onnx"))
    assert resolve_detector("yolo11n.pt") == "yolo11n.pt"  # a hub name: Ultralytics fetches it when online


def test_results_are_read_by_duck_typing():
    class Boxes:
        xyxy = np.array([[1, 2, 30, 80]], np.float32)
        conf = np.array([0.7], np.float32)

        def __len__(self):
            return 1

    class Result:
        boxes = Boxes()

    dets = detections_from_result(Result())
    assert dets.xyxy.tolist() == [[1, 2, 30, 80]] and dets.confidence.tolist() == pytest.approx([0.7])


def test_ultralytics_runs_offline_without_installing_anything():
    pytest.importorskip("ultralytics")
    code = ("from tracker.detector import import_ultralytics; import_ultralytics();"
            "from ultralytics.utils import ONLINE; from ultralytics.utils.checks import AUTOINSTALL;"
            "print(ONLINE, AUTOINSTALL)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["False", "False"], out.stderr


@pytest.mark.parametrize("argv, message", [
    (["--max-frames", "0"], "--max-frames must be >= 1"),
    (["--clip-len", "0"], "clip_len must be in"),
    (["--detector", "/nonexistent/det.onnx"], "detector weights not found: /nonexistent/det.onnx"),
    (["--reid", "/nonexistent/sta.onnx"], "re-ID model not found: /nonexistent/sta.onnx"),
])
def test_cli_bad_input_exits_2_with_the_reason(tmp_path, caplog, argv, message):
    with caplog.at_level(logging.ERROR):
        code = main(["run", "--source", "x.mp4", "--out", str(tmp_path), *argv])
    assert code == 2
    assert message in caplog.text
