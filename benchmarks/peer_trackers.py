"""BoxMOT's trackers as peers in ``track_eval.py --boxmot``: same detector weights, same detections,
the same OSNet ONNX for their re-ID.

BoxMOT (PyPI ``boxmot``, AGPL-3.0) is not a dependency of mcreid: install it beside, e.g. in a
virtual environment that sees this one's packages, so that its own onnxruntime pin does not replace
``onnxruntime-gpu`` here (both install the same module)::

    python -m venv --system-site-packages .venv-peers && .venv-peers/bin/pip install boxmot==25.0.0
    .venv-peers/bin/python benchmarks/track_eval.py --parts pets --boxmot

Detections come from Ultralytics' ``predict`` on the same weights, person class, the same NMS IoU
and input size as ``model.track()`` in ``track_eval``, at confidence 0.1 (what ``model.track()``
feeds its trackers, which keep their own high/low thresholds). Each tracker runs with BoxMOT's
defaults, as a new user would.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from mcreid.assets import asset_path
from tracker.config import TrackerConfig

BOXMOT_TRACKERS = ("BotSort", "ByteTrack", "StrongSort")  # BoxMOT class names; ByteTrack has no re-ID
REID_WEIGHTS = "weights/osnet_x0_25_msmt17.onnx"
TRACK_CONF = 0.1


def import_boxmot():
    try:
        import boxmot
    except ImportError as error:
        raise RuntimeError(
            "--boxmot needs BoxMOT, which mcreid does not install: `pip install boxmot==25.0.0` in a separate "
            "virtual environment (see benchmarks/peer_trackers.py; it pins onnxruntime, which would replace "
            "onnxruntime-gpu here)") from error
    return boxmot


def detect(config: TrackerConfig, video: Path, frames: int) -> list[np.ndarray]:
    """Per frame, ``(N, 6)`` person boxes ``x1, y1, x2, y2, conf, cls`` from Ultralytics' predict."""
    from benchmarks.track_eval import ultralytics_model

    model, imgsz = ultralytics_model(config)
    capture, out = cv2.VideoCapture(str(video)), []
    for _ in range(frames):
        ok, frame = capture.read()
        if not ok:
            break
        boxes = model.predict(frame, classes=[0], conf=TRACK_CONF, iou=config.det_iou, imgsz=imgsz,
                              verbose=False)[0].boxes
        out.append(np.concatenate([boxes.xyxy.numpy(), boxes.conf.numpy()[:, None], boxes.cls.numpy()[:, None]], 1)
                   .astype(np.float32) if len(boxes) else np.empty((0, 6), np.float32))
    capture.release()
    return out


def boxmot_track(name: str, detections: Sequence[np.ndarray], video: Path, out: Path) -> float:
    """Run BoxMOT's ``name`` tracker over ``detections`` (one array per frame of ``video``); writes MOT
    rows to ``out`` and returns the tracker's frames per second (detection excluded)."""
    boxmot = import_boxmot()
    options = {} if name == "ByteTrack" else {
        "reid_weights": asset_path(REID_WEIGHTS, "the OSNet x0.25 re-ID ONNX"), "device": "cpu", "half": False}
    tracker = getattr(boxmot, name)(**options)
    capture, rows, spent = cv2.VideoCapture(str(video)), [], 0.0
    for index, dets in enumerate(detections, start=1):
        ok, frame = capture.read()
        if not ok:
            raise RuntimeError(f"{video} ended at frame {index}, before its detections")
        tic = time.perf_counter()
        tracks = tracker.update(dets, frame)
        spent += time.perf_counter() - tic
        tracks = np.asarray(tracks, dtype=float)  # (M, 8): x1, y1, x2, y2, id, conf, cls, detection index
        for x1, y1, x2, y2, tid, conf in tracks[:, :6] if tracks.size else ():
            rows.append(f"{index},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{conf:.4f},-1,-1,-1\n")
    capture.release()
    out.write_text("".join(rows))
    return len(detections) / max(spent, 1e-9)
