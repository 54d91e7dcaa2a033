"""``TrackerConfig``: every option of the tracking pipeline, shared by the headless runner and the app.

``add_tracker_arguments(parser)`` puts the options on an argparse parser and
``config_from_args(args)`` builds the config back, so every command line offers exactly the same
options with the same defaults.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

TRACKER_TYPES = ("bytetrack", "botsort")
GMC_METHODS = ("none", "sparseOptFlow", "orb", "sift", "ecc")
# colour order + normalisation of a per-image re-ID model (export.onnx_embedder.INPUT_FORMATS)
REID_INPUTS = ("rgb-imagenet", "bgr-imagenet", "rgb-255", "bgr-255")

# Defaults chosen on the real material; README "Choosing the thresholds" says how.
DEFAULT_MATCH_THRESHOLD = 0.86
DEFAULT_LINK_SECONDS = 2.0
DEFAULT_LINK_RELAX = 0.10


@dataclass(frozen=True)
class TrackerConfig:
    """Options of detection, per-camera tracking, clips, signatures and matching.

    Attributes:
        detector: detector weights Ultralytics loads (.pt, .onnx, .engine, OpenVINO folder);
            None = the bundled ``weights/yolov8n_coco_int8.onnx``.
        reid: re-ID ONNX model; None = the bundled trained STA-OSNet clip model, "osnet" = the OSNet
            x0.25 image model in the assets. A file whose input is
            ``raw_feature`` and ``bn_feature`` outputs is an STA clip export (``mcreid-export``);
            any other is checked as a per-image person re-ID model ``[B or 1, 3, H, W] -> (B, D)``.
        reid_input: a per-image re-ID model's colour order and normalisation, one of
            ``REID_INPUTS``; None: the model's ``mcreid.input_format`` metadata, else rgb-imagenet.
        imgsz: detector input size in pixels (the longest side); None: the detector's own, 512 for
            the OpenVINO detector ``--detector auto`` makes on a CPU (the smallest that kept PETS09
            accuracy, README "Detector"), else 640.
        det_conf: detector confidence floor (ByteTrack's second stage wants low-score boxes).
        det_iou: detector NMS IoU (Ultralytics' ``iou``): of two person boxes overlapping more than
            this, the less confident is dropped.
        device: detector device ("cpu", "0", "cuda:0"); None lets Ultralytics choose.
        batch_detect: detect all cameras' frames in one batched call instead of one by one.
        tracker_type: "bytetrack" or "botsort" (Ultralytics' classes, one instance per camera).
        track_high_thresh, track_low_thresh, new_track_thresh, match_thresh, track_buffer:
            the Ultralytics tracker settings of the same names.
        gmc_method: BoT-SORT camera-motion compensation ("none" for fixed cameras).
        clip_len: crops per clip (the paper's T = 4).
        clip_stride: take every k-th frame of a track, so a clip spans ``clip_len * k`` frames.
        min_crop_height, min_crop_width: smaller boxes (source pixels) give no crop.
        min_crop_conf: boxes less confident than this give no crop.
        border_margin: boxes closer than this many pixels to the image border give no crop.
        min_clips: clips a track needs before it gets a global id.
        match_threshold: cosine similarity a track needs to join an existing identity.
        revise_margin: an active track moves to another identity only when that one beats its
            current identity by this much.
        covisible_frames: frames two tracks of one camera may be seen together and still be one
            identity (a duplicate box on one person for a moment); beyond that they never are.
        link_seconds: a new track that appears within this many seconds after a track of the same
            camera was lost, close to where it was lost, is likely the same person (0: off).
        link_relax: how much lower ``match_threshold`` is for such a likely continuation.
        embed_batch: clips per embedder call.
        realtime: run at the source rate and drop frames when behind.
        embed_budget_ms: in real-time mode, embedder time per pipeline step; surplus clips are dropped.
        connect_timeout: seconds a stream or webcam that never delivered a frame is tried before it
            is an error (0: forever).
        reconnect_limit: reconnection attempts before a stream or webcam that dropped is an error
            (0: never give up, as a service watching cameras that reboot should).
    """

    detector: str | None = None
    reid: str | None = None
    reid_input: str | None = None
    imgsz: int | None = None
    det_conf: float = 0.1
    det_iou: float = 0.5
    device: str | None = None
    batch_detect: bool = False
    tracker_type: str = "bytetrack"
    track_high_thresh: float = 0.25
    track_low_thresh: float = 0.1
    new_track_thresh: float = 0.25
    match_thresh: float = 0.8
    track_buffer: int = 30
    gmc_method: str = "none"
    clip_len: int = 4
    clip_stride: int = 1
    min_crop_height: int = 32
    min_crop_width: int = 12
    min_crop_conf: float = 0.4
    border_margin: int = 2
    min_clips: int = 2
    match_threshold: float = DEFAULT_MATCH_THRESHOLD
    revise_margin: float = 0.05
    covisible_frames: int = 3
    link_seconds: float = DEFAULT_LINK_SECONDS
    link_relax: float = DEFAULT_LINK_RELAX
    embed_batch: int = 32
    realtime: bool = False
    embed_budget_ms: float = 40.0
    connect_timeout: float = 30.0
    reconnect_limit: int = 0

    def __post_init__(self) -> None:
        if self.tracker_type not in TRACKER_TYPES:
            raise ValueError(f"unknown tracker_type {self.tracker_type!r}; choose one of {', '.join(TRACKER_TYPES)}")
        if self.reid_input is not None and self.reid_input not in REID_INPUTS:
            raise ValueError(f"unknown reid_input {self.reid_input!r}; choose one of {', '.join(REID_INPUTS)}")
        if self.gmc_method not in GMC_METHODS:
            raise ValueError(f"unknown gmc_method {self.gmc_method!r}; choose one of {', '.join(GMC_METHODS)}")
        if self.imgsz is not None:
            _check_range("imgsz", self.imgsz, 32, 4096)
        for name in ("det_conf", "det_iou", "track_high_thresh", "track_low_thresh", "new_track_thresh", "match_thresh",
                     "min_crop_conf"):
            _check_range(name, getattr(self, name), 0.0, 1.0)
        if self.track_low_thresh > self.track_high_thresh:
            raise ValueError(f"track_low_thresh ({self.track_low_thresh}) must not exceed "
                             f"track_high_thresh ({self.track_high_thresh})")
        _check_range("match_threshold", self.match_threshold, -1.0, 1.0)
        _check_range("revise_margin", self.revise_margin, 0.0, 2.0)
        _check_range("covisible_frames", self.covisible_frames, 0, 100_000)
        _check_range("link_seconds", self.link_seconds, 0.0, 3600.0)
        _check_range("link_relax", self.link_relax, 0.0, 2.0)
        _check_range("track_buffer", self.track_buffer, 1, 100_000)
        _check_range("clip_len", self.clip_len, 1, 64)
        _check_range("clip_stride", self.clip_stride, 1, 64)
        _check_range("min_crop_height", self.min_crop_height, 1, 10_000)
        _check_range("min_crop_width", self.min_crop_width, 1, 10_000)
        _check_range("border_margin", self.border_margin, 0, 1000)
        _check_range("min_clips", self.min_clips, 1, 1000)
        _check_range("embed_batch", self.embed_batch, 1, 4096)
        _check_range("embed_budget_ms", self.embed_budget_ms, 0.1, 60_000.0)
        _check_range("connect_timeout", self.connect_timeout, 0.0, 1e9)
        _check_range("reconnect_limit", self.reconnect_limit, 0, 1_000_000_000)

    def ultralytics_args(self) -> dict[str, object]:
        """The settings Ultralytics' tracker classes read from their YAML, with ours filled in."""
        args: dict[str, object] = {
            "tracker_type": self.tracker_type,
            "track_high_thresh": self.track_high_thresh,
            "track_low_thresh": self.track_low_thresh,
            "new_track_thresh": self.new_track_thresh,
            "track_buffer": self.track_buffer,
            "match_thresh": self.match_thresh,
            "fuse_score": True,
        }
        if self.tracker_type == "botsort":
            args.update(gmc_method=None if self.gmc_method == "none" else self.gmc_method,
                        proximity_thresh=0.5, appearance_thresh=0.8, with_reid=False, model="auto")
        return args


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")


# name -> (flag, help); the type and default come from the dataclass field.
_HELP = {
    "detector": "auto (default: on a CPU the OpenVINO build of the bundled YOLOv8n, made once and cached), bundled "
                "(yolov8n_coco_int8.onnx on onnxruntime), or weights (.pt, .onnx, .engine, OpenVINO folder)",
    "reid": "re-ID ONNX model (STA clip export or image model), or 'osnet' for the OSNet x0.25 image model; "
            "default: the bundled STA-OSNet clip model (export/models)",
    "reid_input": "per-image re-ID model input: rgb-imagenet (torchreid, OSNet), bgr-255 (OpenVINO Open Model "
                  "Zoo), bgr-imagenet, rgb-255; default: the model's mcreid.input_format metadata, else rgb-imagenet",
    "imgsz": "detector input size (longest side); default: 512 for the auto OpenVINO detector, else 640",
    "det_conf": "detector confidence floor",
    "det_iou": "detector NMS IoU: the weaker of two boxes overlapping more than this is dropped",
    "device": "detector device (cpu, 0, cuda:0); default: Ultralytics' choice",
    "batch_detect": "detect all cameras' frames in one batch",
    "tracker_type": "per-camera tracker: " + ", ".join(TRACKER_TYPES),
    "track_high_thresh": "tracker first-stage score threshold",
    "track_low_thresh": "tracker second-stage score threshold",
    "new_track_thresh": "score needed to start a track",
    "match_thresh": "per-camera tracker: IoU association threshold (Ultralytics' match_thresh)",
    "track_buffer": "frames a lost track is kept",
    "gmc_method": "BoT-SORT camera-motion compensation: " + ", ".join(GMC_METHODS),
    "clip_len": "crops per clip",
    "clip_stride": "take every k-th frame of a track into its clips",
    "min_crop_height": "boxes lower than this (pixels) give no crop",
    "min_crop_width": "boxes narrower than this (pixels) give no crop",
    "min_crop_conf": "boxes less confident than this give no crop",
    "border_margin": "boxes this close to the image border (pixels) give no crop",
    "min_clips": "clips a track needs before it gets a global id",
    "match_threshold": "re-ID: cosine similarity a track needs to join an existing global identity",
    "revise_margin": "margin by which another identity must win before an active track moves",
    "covisible_frames": "frames two tracks of one camera may be seen together and still be one identity",
    "link_seconds": "a new track this soon after a track of the same camera was lost, close to it, is likely "
                    "the same person (0: off)",
    "link_relax": "how much lower the re-ID threshold is for such a likely continuation",
    "embed_batch": "clips per embedder call",
    "realtime": "run at the source frame rate, dropping frames when behind",
    "embed_budget_ms": "real-time mode: embedder milliseconds per step (surplus clips are dropped)",
    "connect_timeout": "seconds a stream or webcam that never delivered a frame is tried before it is an "
                       "error (0: forever)",
    "reconnect_limit": "reconnection attempts before a stream or webcam that dropped is an error (0: never "
                       "give up)",
}


# Flags that differ from the field name (``--match-thresh`` would be too close to ``--match-threshold``).
_FLAGS = {"tracker_type": "--tracker", "match_thresh": "--track-match-thresh"}
_CHOICES = {"tracker_type": TRACKER_TYPES, "gmc_method": GMC_METHODS, "reid_input": REID_INPUTS}
_TYPES = {"imgsz": int}  # fields whose default None hides their type


def add_tracker_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add one ``--option`` per ``TrackerConfig`` field (``--match-threshold`` for ``match_threshold``;
    ``--tracker`` for ``tracker_type``, ``--track-match-thresh`` for ``match_thresh``)."""
    group = parser.add_argument_group("tracking pipeline")
    defaults = TrackerConfig()
    for f in fields(TrackerConfig):
        flag = _FLAGS.get(f.name, "--" + f.name.replace("_", "-"))
        default = getattr(defaults, f.name)
        if isinstance(default, bool):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default,
                               help=_HELP[f.name])
            continue
        kind = _TYPES.get(f.name, str if default is None else type(default))
        extra = {"choices": _CHOICES[f.name]} if f.name in _CHOICES else {}
        group.add_argument(flag, dest=f.name, type=kind, default=default,
                           help=f"{_HELP[f.name]} (default: {default})", **extra)
    return parser


def config_from_args(args: argparse.Namespace) -> TrackerConfig:
    """The ``TrackerConfig`` from options added by ``add_tracker_arguments``; ValueError on bad ranges."""
    return TrackerConfig(**{f.name: getattr(args, f.name) for f in fields(TrackerConfig)})
