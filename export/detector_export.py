"""The detector a machine should run, made from the weights we have: ``mcreid-export detector``.

The bundled YOLOv8n ONNX is rebuilt as a PyTorch model (``export.yolo_weights``) and Ultralytics
exports it to the format the machine runs best, with its own exporter and loader:

- ``openvino`` (CPUs): fp32, fp16 weights, or int8 calibrated with NNCF on real frames of
  ``../shared/data/videos`` (Ultralytics' own int8 path: it keeps the detection head in float);
- ``onnx`` (onnxruntime, fp32);
- ``engine`` (TensorRT, fp16 or int8; needs an NVIDIA GPU and the ``tensorrt`` package).

Inputs are dynamic by default (``--static`` fixes them), so Ultralytics letterboxes a 16:9 frame to
640x384 instead of padding it to 640x640.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

FORMATS = ("openvino", "onnx", "engine")
PRECISIONS = ("fp32", "fp16", "int8")
CALIB_VIDEOS = ("videos/lab_4cam", "videos/pets09_s2l1", "videos/street_1080p.mp4")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")


@dataclass(frozen=True)
class DetectorSpec:
    """What to export.

    Attributes:
        fmt: one of ``FORMATS``.
        precision: one of ``PRECISIONS``.
        imgsz: the longest side Ultralytics letterboxes to (dynamic), or the fixed input (static).
        static: a fixed ``imgsz`` x ``imgsz`` input (else height and width follow each frame).
    """

    fmt: str = "openvino"
    precision: str = "int8"
    imgsz: int = 640
    static: bool = False

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise ValueError(f"detector format {self.fmt!r} unknown; expected one of {', '.join(FORMATS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"detector precision {self.precision!r} unknown; expected one of {', '.join(PRECISIONS)}")
        if self.fmt == "onnx" and self.precision != "fp32":
            raise ValueError("the onnx detector export is fp32 only; use --format openvino or engine for fp16/int8")
        if self.imgsz < 32 or self.imgsz % 32:
            raise ValueError(f"detector imgsz must be a multiple of 32 (YOLO's stride), got {self.imgsz}")

    @property
    def tag(self) -> str:
        """A short name for folders and logs, e.g. ``openvino-int8-640-dynamic``."""
        return f"{self.fmt}-{self.precision}-{self.imgsz}-{'static' if self.static else 'dynamic'}"


def video_files(paths: Sequence[str | Path]) -> list[Path]:
    """The videos in ``paths`` (files, or folders searched one level deep), sorted."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES))
        elif path.is_file():
            found.append(path)
    return found


def default_calibration_videos() -> list[Path]:
    """The real videos under the assets root used for int8 calibration (none when it is absent)."""
    from mcreid.assets import find_asset

    return video_files([p for p in (find_asset(v) for v in CALIB_VIDEOS) if p is not None])


def calibration_frames(videos: Sequence[Path], count: int) -> list[np.ndarray]:
    """``count`` BGR frames spread evenly over ``videos`` (and over each video's length).

    Raises:
        ValueError: no video given, or none of them decodes.
    """
    import cv2

    if not videos:
        raise ValueError("int8 calibration needs real frames: no video found; pass --calib-videos DIR_OR_FILE "
                         "(e.g. ../shared/data/videos)")
    per_video = [count // len(videos) + (i < count % len(videos)) for i in range(len(videos))]
    frames: list[np.ndarray] = []
    for video, wanted in zip(videos, per_video):
        cap = cv2.VideoCapture(str(video))
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        for index in np.linspace(0, max(total - 1, 0), wanted).astype(int) if wanted else []:
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, frame = cap.read()
            if ok and frame is not None:
                frames.append(frame)
        cap.release()
    if not frames:
        raise ValueError(f"int8 calibration: none of {', '.join(map(str, videos))} gave a frame")
    return frames


def _calibration_dataset(frames: Sequence[np.ndarray], folder: Path) -> Path:
    """An Ultralytics dataset YAML over ``frames`` written as JPEGs (images only: calibration needs no labels)."""
    import cv2

    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(images / f"{i:04d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    data = folder / "calibration.yaml"
    data.write_text(f"path: {folder}\ntrain: images\nval: images\nnames:\n  0: person\n")
    return data


def export_detector(spec: DetectorSpec, out_dir: str | Path, source: str | Path | None = None,
                    calib_videos: Sequence[str | Path] | None = None, calib_frames: int = 64,
                    device: str | None = None) -> Path:
    """Export the detector ``source`` (default: the bundled YOLOv8n ONNX) as ``spec`` into ``out_dir``.

    Returns:
        the exported model: a ``*_openvino_model`` folder, an ``.onnx`` or an ``.engine`` file.

    Raises:
        FileNotFoundError: the source weights are missing.
        ValueError: a bad spec, no calibration frames, or an engine export without a CUDA GPU.
    """
    from export.yolo_weights import yolo_from_onnx
    from tracker.detector import resolve_detector

    source = Path(resolve_detector(None if source is None else str(source)))
    if spec.fmt == "engine":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("a TensorRT engine is built on the NVIDIA GPU that runs it; no CUDA GPU here. "
                             "On a CPU use --format openvino")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    yolo = yolo_from_onnx(source)
    yolo.model.pt_path = str(out_dir / f"{source.stem}.pt")  # Ultralytics writes its export beside this name
    kwargs = {"format": spec.fmt, "imgsz": spec.imgsz, "dynamic": not spec.static, "batch": 1,
              "half": spec.precision == "fp16", "int8": spec.precision == "int8", "verbose": False}
    if spec.fmt == "onnx":
        kwargs["simplify"] = False  # onnxslim is not a dependency; Ultralytics would try to install it
    if device is not None:
        kwargs["device"] = device
    with tempfile.TemporaryDirectory(prefix="mcreid_calib_") as tmp:
        if spec.precision == "int8":
            videos = video_files(calib_videos) if calib_videos else default_calibration_videos()
            frames = calibration_frames(videos, calib_frames)
            log.info("int8 calibration on %d real frames of %d videos", len(frames), len(videos))
            kwargs["data"] = str(_calibration_dataset(frames, Path(tmp)))
        exported = yolo.export(**kwargs)
    if not exported:
        raise ValueError(f"Ultralytics could not export {source} as {spec.tag}; see its log above")
    log.info("exported %s as %s: %s", source.name, spec.tag, exported)
    return Path(exported)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="folder for the exported detector")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="openvino")
    parser.add_argument("--precision", choices=PRECISIONS, default="int8")
    parser.add_argument("--imgsz", type=int, default=640, help="longest input side (multiple of 32)")
    parser.add_argument("--static", action="store_true", help="fixed square input instead of dynamic")
    parser.add_argument("--source", help="Ultralytics YOLO detect ONNX to rebuild (default: the bundled YOLOv8n)")
    parser.add_argument("--calib-videos", nargs="+", help="videos or folders for int8 calibration "
                        "(default: the lab, PETS09 and street videos of ../shared/data)")
    parser.add_argument("--calib-frames", type=int, default=64, help="frames for int8 calibration")
    parser.add_argument("--device", help="Ultralytics device for the export (engine: 0)")


def main(argv: Sequence[str] | None = None) -> int:
    """``mcreid-export detector ...``: 0 on success, 1 on a bad input."""
    from mcreid.logs import setup_logging

    parser = argparse.ArgumentParser(prog="mcreid-export detector", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        spec = DetectorSpec(args.fmt, args.precision, args.imgsz, args.static)
        path = export_detector(spec, args.out, args.source, args.calib_videos, args.calib_frames, args.device)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        log.error("%s", exc)
        return 1
    print(path)
    return 0

