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
# Ultralytics tasks whose results carry person boxes (result.boxes).
DETECTOR_TASKS = ("detect", "segment", "pose")


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


def detector_weights(weights: str | None, device: str | None = None) -> str:
    """What ``--detector`` names, resolved: ``auto``/None (this machine's fastest, see
    ``tracker.detector_cache``), ``bundled`` (the YOLOv8n ONNX on onnxruntime), or weights as in
    ``resolve_detector``.
    """
    from tracker.detector_cache import AUTO, BUNDLED, auto_detector

    if weights in (None, AUTO):
        return auto_detector(device, resolve_detector(None))
    if weights == BUNDLED:
        return resolve_detector(None)
    return resolve_detector(weights)


def default_imgsz(weights: str) -> int:
    """The input size for ``weights`` when none is given: ``AUTO_IMGSZ`` for the detector that
    ``--detector auto`` made (it has a dynamic input), else Ultralytics' usual 640."""
    from tracker.detector_cache import AUTO_IMGSZ, cache_root

    return AUTO_IMGSZ if Path(weights).resolve().is_relative_to(cache_root().resolve()) else 640


def check_onnx_detector(path: str | Path, imgsz: int | None = None) -> None:
    """Refuse an ONNX file that is not a YOLO detector before Ultralytics loads it (it would fail only
    at the first frame, with an onnxruntime traceback): input ``[B, 3, H, W]``, a 3-D output such as
    ``[1, 84, 8400]``; a re-ID model (output ``(N, 512)``) is named as one.

    Raises:
        ValueError: one line naming the file, what it looks like and what was expected.
        ImportError: onnxruntime is missing.
    """
    from export.model_checks import check_detector, inspect_onnx

    check_detector(inspect_onnx(path, what="detector"), imgsz)


def runtime_name(weights: str) -> str:
    """The runtime Ultralytics picks for ``weights``, for the start-up log."""
    name = str(weights).rstrip("/")
    if name.endswith("_openvino_model"):
        meta = Path(name) / "metadata.yaml"
        int8 = meta.is_file() and "quantize: 8" in meta.read_text(errors="replace")
        return "OpenVINO, int8" if int8 else "OpenVINO"
    return {".onnx": "onnxruntime", ".engine": "TensorRT", ".pt": "PyTorch"}.get(Path(name).suffix, "Ultralytics")


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
        weights: see ``detector_weights``.
        imgsz: input size (longest side); None: ``default_imgsz`` of the weights.
        conf: confidence floor.
        iou: non-maximum-suppression IoU: of two boxes overlapping more than this, the less
            confident one is dropped.
        device: "cpu", "0", "cuda:0"... or None for Ultralytics' choice.
        batch: detect a list of frames in one call (else one call per frame).
    """

    def __init__(self, weights: str | None = None, imgsz: int | None = None, conf: float = 0.1,
                 device: str | None = None, batch: bool = False, iou: float = 0.7) -> None:
        self.weights = detector_weights(weights, device)
        imgsz = imgsz or default_imgsz(self.weights)
        if self.weights.lower().endswith(".onnx") and Path(self.weights).is_file():
            check_onnx_detector(self.weights, imgsz)
        import_ultralytics()
        from ultralytics import YOLO

        try:
            self.model = YOLO(self.weights, task="detect")
        except (ImportError, FileNotFoundError):
            raise
        except Exception as exc:  # Ultralytics raises many types for a file it cannot read
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise ValueError(f"Ultralytics cannot load the detector {self.weights} ({detail}); expected YOLO detect "
                             "weights: a .pt, .onnx or .engine file or an OpenVINO folder") from exc
        task = getattr(self.model, "task", "detect")
        if task not in DETECTOR_TASKS:
            raise ValueError(f"detector {self.weights} is an Ultralytics {task!r} model, which gives no boxes; "
                             f"expected a model of task {' or '.join(DETECTOR_TASKS)}")
        self.imgsz, self.conf, self.iou, self.device, self.batch = imgsz, conf, iou, device, batch
        log.info("detector: %s (%s, imgsz %d)", self.weights, runtime_name(self.weights), imgsz)

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
