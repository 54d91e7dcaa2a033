"""The synchronous core: frames of several cameras in, boxes with global identities out.

``Pipeline.step`` runs one round over the cameras that have a frame: detect (one batched call or
one per frame) -> per-camera tracking -> crops into clips -> the scheduler picks clips -> the
embedder -> running-mean signatures -> global identities. It knows nothing about threads or
sources; ``tracker.runner.PipelineRunner`` drives it from readers.

A step is two halves joined by small values: ``process`` (the camera half: everything that needs
the frames) turns frames into ``CameraUpdate``s (tracked boxes, the raw features of the clips
embedded, the tracks that ended, best crops), and ``identify`` (the identity half) feeds them to
the ``IdentityMatcher``. ``tracker.cluster`` runs the two halves on different machines: each camera
actor runs ``process`` for its camera, one matcher actor runs ``identify`` for all of them.
"""

from __future__ import annotations

import colorsys
import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from mcreid.assets import asset_path
from mcreid.embedder import Embedder
from tracker.camera_stage import CameraStage
from tracker.clips import ClipBuilder, CropFilter
from tracker.config import TrackerConfig
from tracker.detector import Detector, YoloDetector
from tracker.matching import matcher_from_config
from tracker.scheduler import ClipScheduler
from tracker.tracking import CameraTracker
from tracker.signatures import Signature
from tracker.store.base import TrackSighting
from tracker.types import CameraFrame, CameraUpdate, Clip, Detections, FrameResult, GlobalIdentity, TrackMember

log = logging.getLogger(__name__)

OSNET_REID = "weights/osnet_x0_25_msmt17.onnx"  # in the assets: --reid osnet
BUNDLED_STA = Path(__file__).resolve().parents[1] / "export" / "models" / "sta_osnet_x0_25_mars_dap.onnx"
STAGES = ("decode", "detect", "track", "crop", "embed", "match")
GREY = (160, 160, 160)
THUMBNAIL_HEIGHT = 128  # identities keep their best crop at most this high (a viewer shows 80 px)


def colour_for(global_id: int) -> tuple[int, int, int]:
    """A stable, well-spread BGR colour per global id (golden-ratio hues); grey for 0."""
    if global_id <= 0:
        return GREY
    hue = (global_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return (int(b * 255), int(g * 255), int(r * 255))


def build_embedder(reid: str | None, reid_input: str | None = None, threads: int | None = None) -> Embedder:
    """The re-ID embedder: the bundled trained STA clip model (default), ``"osnet"`` for the OSNet
    x0.25 image model in the assets, or any STA export / per-image re-ID ONNX file.

    ``reid_input`` is a per-image model's colour order and normalisation
    (``export.onnx_embedder.INPUT_FORMATS``; None: the model's metadata, else ``rgb-imagenet``).
    ``threads``: onnxruntime's CPU threads (None: every core this process may use).

    Raises:
        FileNotFoundError: the given model (or the bundled one) is missing.
        ValueError: the model is not a re-ID model this tracker can run (one line saying why).
        ImportError: onnxruntime is not installed.
    """
    try:
        from export.onnx_embedder import NotAClipModel, OnnxClipEmbedder, OnnxImageEmbedder
    except ImportError as exc:
        raise ImportError(f"the re-ID embedders need onnxruntime: pip install -e '.[onnx]' ({exc})") from exc
    if reid is None:
        if not BUNDLED_STA.is_file():
            raise FileNotFoundError(f"the bundled STA re-ID model is missing: {BUNDLED_STA} (it ships with the "
                                    "repository; see export/models/MODEL_CARD.md), or pass --reid osnet")
        log.info("re-ID: the bundled STA-OSNet clip model trained on mars_dap (%s; export/models/MODEL_CARD.md); "
                 "--reid osnet for the OSNet x0.25 image model", BUNDLED_STA)
        return OnnxClipEmbedder(BUNDLED_STA, threads=threads)
    if reid == "osnet":
        path = asset_path(OSNET_REID, "the OSNet x0.25 re-ID model (ONNX)", "or pass --reid MODEL.onnx")
        log.info("re-ID: the OSNet x0.25 *image* model (%s), frame features averaged per clip", path)
        return OnnxImageEmbedder(path, input_format=reid_input, threads=threads)
    path = Path(reid).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"re-ID model not found: {path}; expected an .onnx file (an STA export from "
                                "mcreid-export, or a per-image model such as osnet_x0_25_msmt17.onnx)")
    try:
        embedder = OnnxClipEmbedder(path, threads=threads)
        log.info("re-ID: STA clip model %s", path)
    except NotAClipModel:  # no STA outputs: a per-image model (or the wrong kind, which it reports)
        embedder = OnnxImageEmbedder(path, input_format=reid_input, threads=threads)
        log.info("re-ID: per-image model %s (%s), frame features averaged per clip", path, embedder.input_format)
    return embedder


@dataclass
class StageTimings:
    """Recent seconds per stage (bounded), for stats and benchmarks."""

    window: int = 500
    samples: dict[str, deque] = field(default_factory=dict)

    def add(self, stage: str, seconds: float) -> None:
        self.samples.setdefault(stage, deque(maxlen=self.window)).append(seconds)

    def mean_ms(self) -> dict[str, float]:
        return {s: float(np.mean(v)) * 1000 for s, v in self.samples.items() if v}

    def median_ms(self) -> dict[str, float]:
        return {s: float(np.median(v)) * 1000 for s, v in self.samples.items() if v}

    def total_s(self) -> dict[str, float]:
        return {s: float(np.sum(v)) for s, v in self.samples.items()}


class Pipeline:
    """Detection, tracking, clips, signatures and global identities over several cameras.

    Args:
        config: the options.
        detector: finds people (``YoloDetector`` or any ``Detector``); None for a pipeline that only
            runs the identity half (``identify``: a cluster's matcher).
        embedder: clips -> raw features (``Embedder``); the identity half reads only its
            ``feature_dim`` (and the store its model file).
        tracker_factory: ``config -> CameraTracker``-like object with ``update(detections, frame)``.
        clock: seconds, for stage timings.
        thumbnail_every: frames between two hand-overs of a live track's improved best crop from
            the camera half to the identity half (``CameraStage``).
    """

    def __init__(self, config: TrackerConfig, detector: Detector | None, embedder: Embedder,
                 tracker_factory: Callable[[TrackerConfig], CameraTracker] = CameraTracker,
                 clock: Callable[[], float] = time.perf_counter, thumbnail_every: int = 1) -> None:
        self.config, self.detector, self.embedder = config, detector, embedder
        self._tracker_factory, self._clock = tracker_factory, clock
        self.thumbnail_every = thumbnail_every
        self.matcher = matcher_from_config(config, embedder.feature_dim)
        self.scheduler = ClipScheduler(config.embed_budget_ms / 1000 if config.realtime else None)
        self.crop_filter = CropFilter(config.min_crop_height, config.min_crop_width, config.min_crop_conf,
                                      config.border_margin)
        self.timings = StageTimings()
        self._cameras: dict[str, CameraStage] = {}  # the camera half
        # the identity half: cameras that delivered updates, live tracks' best crops, identities' best crops
        self._feeds: dict[str, None] = {}
        self._crops: dict[tuple[str, int], tuple[np.ndarray, float]] = {}
        self._thumbnails: dict[int, tuple[float, np.ndarray]] = {}  # global id -> (score, BGR crop)
        self.recorder = None  # tracker.store.StoreRecorder (attach_recorder)
        self._settled_now: list[tuple[int, TrackMember, Signature]] = []

    # -- identity store --------------------------------------------------------------------------
    def attach_recorder(self, recorder) -> None:
        """Report sightings to ``recorder`` (``tracker.store.StoreRecorder``): each ended identified
        track with its signature and best crop as it ends, and ``after_step(self)`` after every step
        (it snapshots ``live_sightings()`` when a commit is due)."""
        self.recorder = recorder
        self.matcher.on_settle = lambda gid, member, signature: self._settled_now.append((gid, member, signature))

    @property
    def next_global_id(self) -> int:
        return self.matcher.next_global_id

    def live_sightings(self) -> list[TrackSighting]:
        """Every live track that has a global id, with its signature and best crop so far."""
        out = []
        for gid, member, signature in self.matcher.live_members():
            image, score = self._crops.get((member.camera_id, member.track_id), (None, -1.0))
            out.append(TrackSighting(gid, member, signature, image, score))
        return out

    def _record_settled(self) -> None:
        """Hand the tracks the matcher just settled to the recorder, with their best crops (before
        the crops are dropped)."""
        for gid, member, signature in self._settled_now:
            image, score = self._crops.get((member.camera_id, member.track_id), (None, -1.0))
            self.recorder.ended(TrackSighting(gid, member, signature, image, score, ended=True))
        self._settled_now.clear()

    # -- cameras -------------------------------------------------------------------------------
    def add_camera(self, camera_id: str) -> None:
        """Start a camera (its own tracker and clip state); ValueError if the name is taken."""
        if camera_id in self._cameras:
            raise ValueError(f"camera {camera_id!r} already exists")
        clips = ClipBuilder(camera_id, self.embedder.input_size, self.config.clip_len, self.config.clip_stride,
                            self.crop_filter)
        self._cameras[camera_id] = CameraStage(self._tracker_factory(self.config), clips, self.thumbnail_every)

    @property
    def camera_ids(self) -> list[str]:
        return list(dict.fromkeys([*self._cameras, *self._feeds]))

    def release_camera(self, camera_id: str) -> dict[int, tuple[np.ndarray, float]] | None:
        """The camera half forgets a camera that stopped; returns the best crops of the tracks it
        ends that were not handed over yet (None: no such camera here)."""
        camera = self._cameras.pop(camera_id, None)
        return None if camera is None else camera.thumbnails(camera.end_all())

    def end_camera(self, camera_id: str,
                   thumbnails: dict[int, tuple[np.ndarray, float]] | None = None) -> dict[int, int]:
        """End every track of a camera that stopped; returns ``{track_id: final global id (0: none)}``.

        Args:
            thumbnails: best crops of its tracks from a camera half that runs elsewhere (a cluster
                camera's last message), as in ``CameraUpdate.thumbnails``.
        """
        crops = self.release_camera(camera_id)
        if crops is None and camera_id not in self._feeds:
            return {}
        self._take_crops(camera_id, {**(crops or {}), **(thumbnails or {})})
        self._feeds.pop(camera_id, None)
        for camera, track_id in list(self.matcher.clip_counts()):  # its live tracks
            if camera == camera_id:
                self.matcher.end_track(camera_id, track_id)
        ended = self.matcher.resolve()
        self._keep_thumbnails(ended)
        return {tid: gid for (cam, tid), gid in ended.items() if cam == camera_id}

    def finish(self) -> dict[str, dict[int, int]]:
        """End every camera; ``{camera_id: {track_id: final global id}}``."""
        return {camera_id: self.end_camera(camera_id) for camera_id in self.camera_ids}

    # -- one step ------------------------------------------------------------------------------
    def step(self, frames: Sequence[CameraFrame]) -> list[FrameResult]:
        """Process one frame from each of some cameras (each camera at most once): ``process`` then
        ``identify``.

        Returns:
            One ``FrameResult`` per input frame, in the same order.
        """
        updates = self.process(frames)
        ended = self.identify(updates)
        return [self.frame_result(u, ended, f.image) for f, u in zip(frames, updates)]

    def _lap(self, stage: str, tic: float) -> float:
        toc = self._clock()
        self.timings.add(stage, toc - tic)
        return toc

    # -- the camera half -----------------------------------------------------------------------
    def process(self, frames: Sequence[CameraFrame]) -> list[CameraUpdate]:
        """Detect, track, cut clips and embed the chosen ones: one ``CameraUpdate`` per frame, in
        the same order (each camera at most once)."""
        if self.detector is None:
            raise RuntimeError("this pipeline has no detector: it only runs the identity half (identify)")
        if len({f.camera_id for f in frames}) != len(frames):
            raise ValueError(f"one frame per camera per step, got cameras {[f.camera_id for f in frames]}")
        for frame in frames:
            if frame.camera_id not in self._cameras:
                self.add_camera(frame.camera_id)
        tic = self._clock()
        detections = self.detector.detect([f.image for f in frames])
        tic = self._lap("detect", tic)
        tracked = [self._cameras[f.camera_id].tracker.update(d, f.image) for f, d in zip(frames, detections)]
        tic = self._lap("track", tic)
        clips = [c for f, t in zip(frames, tracked) for c in self._cameras[f.camera_id].advance(f, t)]
        tic = self._lap("crop", tic)
        features = self._embed(clips)
        self._lap("embed", tic)
        return [self._update(f, t, features) for f, t in zip(frames, tracked)]

    def _embed(self, clips: list[Clip]) -> list[tuple[Clip, np.ndarray]]:
        counts = {(cid, tid): n for cid, camera in self._cameras.items() for tid, n in camera.embedded.items()}
        chosen = self.scheduler.select(clips, counts)
        batch = self.config.embed_batch
        out = []
        for start in range(0, len(chosen), batch):
            part = chosen[start:start + batch]
            tic = time.perf_counter()
            features = self.embedder.embed(np.stack([c.crops for c in part]))
            self.scheduler.record(len(part), time.perf_counter() - tic)
            for clip, feature in zip(part, features):
                self._cameras[clip.camera_id].count_embedded(clip.track_id)
                out.append((clip, feature))
        return out

    def _update(self, frame: CameraFrame, boxes: Detections, features: list[tuple[Clip, np.ndarray]]) -> CameraUpdate:
        """The frame's ``CameraUpdate``; tracks unseen for longer than the tracker keeps them end."""
        camera = self._cameras[frame.camera_id]
        mine = [(clip.track_id, feature) for clip, feature in features if clip.camera_id == frame.camera_id]
        dim = self.embedder.feature_dim
        ended = camera.end_stale(self.config.track_buffer)
        return CameraUpdate(frame.camera_id, frame.frame_index, frame.time_s, boxes,
                            np.array([t for t, _ in mine], np.int64),
                            np.array([f for _, f in mine], np.float32).reshape(len(mine), dim),
                            ended, camera.thumbnails(ended), frame.captured_at)

    # -- the identity half ---------------------------------------------------------------------
    def identify(self, updates: Sequence[CameraUpdate]) -> dict[tuple[str, int], int]:
        """Feed one step's updates (each camera at most once) to the matcher in a fixed order:
        every camera's observations, then every camera's clip features, then the ended tracks; then
        resolve identities. Returns ``{ended track: its final global id (0: none)}``."""
        tic = self._clock()
        for update in updates:
            self._feeds.setdefault(update.camera_id)
            self._take_crops(update.camera_id, update.thumbnails)
            for track_id, xyxy in zip(update.boxes.track_id, update.boxes.xyxy):
                self.matcher.observe(update.camera_id, int(track_id), update.frame_index, update.time_s, xyxy)
        for update in updates:
            for track_id, feature in zip(update.feature_track_ids, update.features):
                self.matcher.add_feature(update.camera_id, int(track_id), feature)
        for update in updates:
            for track_id in update.ended:
                self.matcher.end_track(update.camera_id, track_id)
        ended = self.matcher.resolve()
        self._keep_thumbnails(ended)
        tic = self._lap("match", tic)
        if self.recorder is not None:
            self.recorder.after_step(self)
            self._lap("store", tic)
        return ended

    def _take_crops(self, camera_id: str, thumbnails: dict[int, tuple[np.ndarray, float]]) -> None:
        for track_id, (image, score) in thumbnails.items():
            self._crops[camera_id, int(track_id)] = (image, float(score))

    def _keep_thumbnails(self, ended: dict[tuple[str, int], int]) -> None:
        """Fold ended tracks' best crops into their identity, then forget the tracks."""
        if self.recorder is not None:
            self._record_settled()
        for key, gid in ended.items():
            image, score = self._crops.pop(key, (None, -1.0))
            if gid:
                self._offer_thumbnail(gid, image, score)

    def _offer_thumbnail(self, gid: int, image: np.ndarray | None, score: float) -> None:
        if image is not None and score > self._thumbnails.get(gid, (-1.0, None))[0]:
            self._thumbnails[gid] = (score, _small(image))

    def frame_result(self, update: CameraUpdate, ended: dict[tuple[str, int], int],
                     image: np.ndarray) -> FrameResult:
        """The ``FrameResult`` of an identified update: each box's global id (0: none yet) and colour.

        Args:
            update: from ``process``.
            ended: what ``identify`` returned for the step.
            image: the frame (a cluster's matcher, which never sees frames, passes an empty one).
        """
        boxes = update.boxes
        gids = np.array([self.matcher.global_id(update.camera_id, int(t)) for t in boxes.track_id], np.int64)
        now = time.monotonic()
        return FrameResult(
            camera_id=update.camera_id, frame_index=update.frame_index, image=image, xyxy=boxes.xyxy,
            confidence=boxes.confidence, track_id=boxes.track_id, global_id=gids,
            colours=tuple(colour_for(int(g)) for g in gids),
            ended_tracks={tid: gid for (cam, tid), gid in ended.items() if cam == update.camera_id},
            captured_at=update.captured_at,
            latency_s=max(0.0, now - update.captured_at) if update.captured_at else 0.0)

    def bookkeeping(self) -> dict[str, int]:
        """Records held per track and identity, summed over the cameras (soak tests watch these)."""
        counts = dict(self.matcher.bookkeeping())
        counts["thumbnails"] = len(self._thumbnails)
        counts["live_crops"] = len(self._crops)
        counts["clip_states"] = sum(len(c.clips.track_ids) for c in self._cameras.values())
        counts["camera_tracks"] = sum(len(c.last_step) for c in self._cameras.values())
        for camera in self._cameras.values():
            for name, value in getattr(camera.tracker, "bookkeeping", dict)().items():
                counts[name] = counts.get(name, 0) + value
        return counts

    # -- identities ----------------------------------------------------------------------------
    def identities(self, recent: int | None = None) -> list[GlobalIdentity]:
        """Every global identity with its members, best thumbnail (BGR) and colour.

        Args:
            recent: None lists every member track (for ``identities.json`` and the final MOT
                ids: reads the archive of ended tracks back); a number lists only the latest
                ``recent`` ended members of each identity and summarises the rest
                (``GlobalIdentity.older``), at a cost that does not grow with the run (for viewers).
        """
        best = dict(self._thumbnails)
        for (camera_id, track_id), (image, score) in self._crops.items():
            gid = self.matcher.global_id(camera_id, track_id)
            if gid and image is not None and score > best.get(gid, (-1.0, None))[0]:
                best[gid] = (score, _small(image))
        return [replace(ident, thumbnail=best.get(ident.global_id, (0, None))[1], colour=colour_for(ident.global_id))
                for ident in self.matcher.identities(recent)]


def _small(image: np.ndarray) -> np.ndarray:
    """The crop at most ``THUMBNAIL_HEIGHT`` high (aspect kept)."""
    height, width = image.shape[:2]
    if height <= THUMBNAIL_HEIGHT:
        return image
    import cv2

    size = (max(1, round(width * THUMBNAIL_HEIGHT / height)), THUMBNAIL_HEIGHT)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def build_pipeline(config: TrackerConfig, embedder: Embedder | None = None,
                   detector: Detector | None = None) -> Pipeline:
    """A ``Pipeline`` with the configured YOLO detector and re-ID embedder (loaded now, errors raised now)."""
    embedder = embedder or build_embedder(config.reid, config.reid_input)
    detector = detector or YoloDetector(config.detector, config.imgsz, config.det_conf, config.device,
                                        config.batch_detect, config.det_iou)
    return Pipeline(config, detector, embedder)
