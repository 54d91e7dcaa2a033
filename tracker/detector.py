"""Person detection with Ultralytics YOLO, offline, person class only.

Ultralytics probes the network (online check, settings sync, pip AutoUpdate of missing
requirements, font downloads for its plotting). Before it is first imported we switch all of that
off through its environment variables, and we never call its plotting: boxes are drawn with OpenCV
(``tracker.draw``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from mcreid.assets import asset_path
from tracker.types import Detections

log = logging.getLogger(__name__)

DEFAULT_DETECTOR = "weights/yolov8n_coco_int8.onnx"
PERSON_CLASS = 0
# Names Ultralytics downloads itself when online (hub names, not local files).
_HUB_SUFFIXES = (".pt",)


class Detector(Protocol):
    """Finds people in frames."""

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """``(H, W, 3)`` uint8 BGR frames -> one ``Detections`` per frame."""
        ...


def ultralytics_offline() -> None:
    """Set Ultralytics' switches so it never waits on a network or installs anything.

    ``YOLO_OFFLINE`` makes its online check answer False without a DNS probe (so no settings sync,
    no events, no AutoUpdate), ``YOLO_AUTOINSTALL=false`` forbids pip installs of missing
    requirements. Must run before ``ultralytics`` is imported; harmless after.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    os.environ.setdefault("YOLO_VERBOSE", "false")


def import_ultralytics() -> Any:
    """The ``ultralytics`` module, imported offline; ImportError says how to install it."""
    ultralytics_offline()
    try:
        import ultralytics
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the tracker needs Ultralytics: pip install -e '.[tracker]'") from exc
    return ultralytics


def resolve_detector(weights: str | None) -> str:
    """The detector weights to load: the bundled default, a local path, or an Ultralytics hub name.

    Raises:
        FileNotFoundError: the bundled detector or a given local path is missing.
    """
    if weights is None:
        return str(asset_path(DEFAULT_DETECTOR, "the bundled COCO person detector (YOLOv8n int8 ONNX)",
                              "or pass --detector yolo11n.pt (Ultralytics downloads it when online)"))
    path = Path(weights).expanduser()
    if path.exists():
        return str(path)
    if path.parent == Path(".") and path.suffix in _HUB_SUFFIXES:
        log.info("detector %s is not a local file: Ultralytics will try to download it", weights)
        return weights
    raise FileNotFoundError(f"detector weights not found: {path}; expected a .pt, .onnx, .engine file or an "
                            "OpenVINO folder, or an Ultralytics model name such as yolo11n.pt")


def detections_from_result(result: Any) -> Detections:
    """``Detections`` from an Ultralytics ``Results`` (read by duck typing: ``result.boxes.xyxy``...)."""
    boxes = result.boxes
    if boxes is None or len(boxes) == 0:
        return Detections.empty()
    return Detections(_numpy(boxes.xyxy), _numpy(boxes.conf))


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "cpu"):
        value = value.cpu().numpy()
    return np.asarray(value)


class YoloDetector:
    """Ultralytics YOLO restricted to the person class.

    Args:
        weights: see ``resolve_detector``.
        imgsz: input size.
        conf: confidence floor.
        iou: non-maximum-suppression IoU: of two boxes overlapping more than this, the less
            confident one is dropped.
        device: "cpu", "0", "cuda:0"... or None for Ultralytics' choice.
        batch: detect a list of frames in one call (else one call per frame).
    """

    def __init__(self, weights: str | None = None, imgsz: int = 640, conf: float = 0.1,
                 device: str | None = None, batch: bool = False, iou: float = 0.7) -> None:
        self.weights = resolve_detector(weights)
        import_ultralytics()
        from ultralytics import YOLO

        self.model = YOLO(self.weights, task="detect")
        self.imgsz, self.conf, self.iou, self.device, self.batch = imgsz, conf, iou, device, batch

    def _predict(self, frames: list[np.ndarray]) -> list[Any]:
        kwargs = {"classes": [PERSON_CLASS], "conf": self.conf, "iou": self.iou, "imgsz": self.imgsz, "verbose": False}
        if self.device is not None:
            kwargs["device"] = self.device
        return self.model.predict(frames, **kwargs)

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """``(H, W, 3)`` uint8 BGR frames -> one ``Detections`` (person boxes) per frame."""
        frames = list(frames)
        if not frames:
            return []
        if self.batch:
            results = self._predict(frames)
        else:
            results = [self._predict([frame])[0] for frame in frames]
        return [detections_from_result(r) for r in results]
