"""Small typed values that flow between the tracker's stages.

One box format everywhere: ``xyxy`` in the source's pixels, float32. Conversions happen only at
the edges (the MOT writer, the Ultralytics adapter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


def _as_array(value: object, dtype: type) -> np.ndarray:
    array = np.asarray(value, dtype=dtype)
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    return array


@dataclass(frozen=True)
class Detections:
    """Boxes of one camera frame.

    Attributes:
        xyxy: ``(N, 4)`` float32 pixel boxes (x1, y1, x2, y2).
        confidence: ``(N,)`` float32 detector confidences.
        track_id: ``(N,)`` int64 per-camera track ids after tracking, else None.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    track_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        xyxy = _as_array(self.xyxy, np.float32)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must be an (N, 4) array, got shape {xyxy.shape}")
        confidence = _as_array(self.confidence, np.float32).reshape(-1)
        if len(confidence) != len(xyxy):
            raise ValueError(f"confidence must have {len(xyxy)} entries (one per box), got {len(confidence)}")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "confidence", confidence)
        if self.track_id is not None:
            track_id = _as_array(self.track_id, np.int64).reshape(-1)
            if len(track_id) != len(xyxy):
                raise ValueError(f"track_id must have {len(xyxy)} entries (one per box), got {len(track_id)}")
            object.__setattr__(self, "track_id", track_id)

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls) -> Detections:
        """No boxes."""
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))


@dataclass(frozen=True)
class Clip:
    """Crops of one track gathered into one clip.

    Attributes:
        camera_id: the camera's name.
        track_id: the per-camera track id.
        crops: ``(T, H, W, 3)`` uint8 RGB crops at the embedder's input size.
        frame_indices: the camera frame index (1-based) of each crop.
    """

    camera_id: str
    track_id: int
    crops: np.ndarray
    frame_indices: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.crops.ndim != 4 or self.crops.shape[-1] != 3 or self.crops.dtype != np.uint8:
            raise ValueError(f"crops must be uint8 (T, H, W, 3), got {self.crops.dtype} {self.crops.shape}")
        if len(self.frame_indices) != len(self.crops):
            raise ValueError(f"need one frame index per crop: {len(self.crops)} crops, "
                             f"{len(self.frame_indices)} indices")

    @property
    def key(self) -> tuple[str, int]:
        """``(camera_id, track_id)``."""
        return (self.camera_id, self.track_id)


@dataclass(frozen=True)
class CameraFrame:
    """One decoded frame handed to the pipeline.

    Attributes:
        camera_id: the camera's name.
        frame_index: 1-based index of the frame in its source.
        image: ``(H, W, 3)`` uint8 BGR frame, as OpenCV decodes it.
        captured_at: ``time.monotonic()`` when it was read (for latency).
        time_s: the frame's time in its source, seconds from the start.
    """

    camera_id: str
    frame_index: int
    image: np.ndarray
    captured_at: float = 0.0
    time_s: float = 0.0


@dataclass(frozen=True)
class CameraUpdate:
    """One camera frame as the identity side sees it: no image, only what the matcher needs.

    ``Pipeline.process`` (the camera half: detect, track, clips, embed) makes one per frame and
    ``Pipeline.identify`` (the identity half: signatures, global ids) consumes them; in a cluster
    they are what a camera sends to the matcher.

    Attributes:
        camera_id, frame_index, time_s, captured_at: as in ``CameraFrame``.
        boxes: the tracked boxes (``track_id`` set).
        feature_track_ids: ``(K,)`` int64, the track of each embedded clip.
        features: ``(K, D)`` float32 raw features of the clips embedded in this frame, in clip order.
        ended: tracks of this camera that are over (unseen for more than ``track_buffer`` frames).
        thumbnails: track id -> (its best crop so far, ``(H, W, 3)`` uint8 BGR, and the crop's score),
            for tracks whose best crop improved since it was last handed over.
    """

    camera_id: str
    frame_index: int
    time_s: float
    boxes: Detections
    feature_track_ids: np.ndarray
    features: np.ndarray
    ended: tuple[int, ...] = ()
    thumbnails: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)
    captured_at: float = 0.0

    def __post_init__(self) -> None:
        if self.boxes.track_id is None:
            raise ValueError(f"camera {self.camera_id!r} frame {self.frame_index}: boxes need track ids")
        tracks = _as_array(self.feature_track_ids, np.int64).reshape(-1)
        features = _as_array(self.features, np.float32)
        if features.ndim != 2 or len(features) != len(tracks):
            raise ValueError(f"features must be a (K, D) array with K = {len(tracks)} (one per feature track id), "
                             f"got shape {features.shape}")
        object.__setattr__(self, "feature_track_ids", tracks)
        object.__setattr__(self, "features", features)


@dataclass(frozen=True)
class FrameResult:
    """What the pipeline made of one camera frame.

    Attributes:
        camera_id: the camera's name.
        frame_index: 1-based frame index in its source.
        image: the BGR frame the boxes belong to (``(H, W, 3)`` uint8).
        xyxy: ``(N, 4)`` float32 boxes in the source's pixels.
        confidence: ``(N,)`` float32 detector confidences.
        track_id: ``(N,)`` int64 per-camera track ids.
        global_id: ``(N,)`` int64 global identity ids, 0 while a track has none yet.
        colours: one BGR colour per box (its identity's; grey without one).
        ended_tracks: per-camera tracks that ended at this step -> their final global id (0: none).
        captured_at: ``time.monotonic()`` when the frame was read.
        latency_s: seconds from reading the frame to this result.
    """

    camera_id: str
    frame_index: int
    image: np.ndarray
    xyxy: np.ndarray
    confidence: np.ndarray
    track_id: np.ndarray
    global_id: np.ndarray
    colours: tuple[tuple[int, int, int], ...] = ()
    ended_tracks: dict[int, int] = field(default_factory=dict)
    captured_at: float = 0.0
    latency_s: float = 0.0


@dataclass(frozen=True)
class TrackMember:
    """One per-camera track inside a global identity."""

    camera_id: str
    track_id: int
    first_frame: int
    last_frame: int
    first_time_s: float
    last_time_s: float
    clip_count: int


@dataclass(frozen=True)
class MemberSummary:
    """The member tracks of an identity that a snapshot does not list one by one.

    Attributes:
        count: how many tracks.
        clip_count: their clips.
        cameras: the cameras they were seen in.
        first: the one seen first (earliest ``first_time_s``).
        last: the one seen last (latest ``last_time_s``).
    """

    count: int
    clip_count: int
    cameras: tuple[str, ...]
    first: TrackMember
    last: TrackMember


@dataclass(frozen=True)
class GlobalIdentity:
    """A person across cameras: a global id and the per-camera tracks it covers.

    Attributes:
        global_id: positive id, never reused.
        members: the tracks it covers, in order of joining (in a snapshot of recent members only,
            the latest ones; ``older`` summarises the rest).
        clip_count: clips behind its signature (all members).
        thumbnail: best crop seen, ``(H, W, 3)`` uint8 BGR, or None.
        colour: its BGR drawing colour.
        older: members not listed in ``members`` (None: every member is listed).
    """

    global_id: int
    members: tuple[TrackMember, ...]
    clip_count: int
    thumbnail: np.ndarray | None = None
    colour: tuple[int, int, int] = (128, 128, 128)
    older: MemberSummary | None = None

    @property
    def track_count(self) -> int:
        """Member tracks, listed or not."""
        return len(self.members) + (self.older.count if self.older else 0)

    @property
    def cameras(self) -> tuple[str, ...]:
        """Cameras it was seen in, in order of first appearance."""
        older = self.older.cameras if self.older else ()
        return tuple(dict.fromkeys([*older, *(m.camera_id for m in self.members)]))

    @property
    def first_member(self) -> TrackMember:
        """The member track seen first (listed or not)."""
        candidates = [*self.members, *([self.older.first] if self.older else [])]
        return min(candidates, key=lambda m: (m.first_time_s, m.first_frame))

    @property
    def last_member(self) -> TrackMember:
        """The member track seen last (listed or not)."""
        candidates = [*self.members, *([self.older.last] if self.older else [])]
        return max(candidates, key=lambda m: (m.last_time_s, m.last_frame))

    @property
    def first_seen_s(self) -> float:
        """Earliest source time over its members, seconds."""
        return self.first_member.first_time_s

    @property
    def last_seen_s(self) -> float:
        """Latest source time over its members, seconds."""
        return self.last_member.last_time_s


class CameraStatus(str, Enum):
    """Life of one source, as a viewer tile shows it."""

    OPENING = "opening"
    RUNNING = "running"
    RECONNECTING = "reconnecting"
    ENDED = "ended"
    ERROR = "error"
    STOPPED = "stopped"


@dataclass(frozen=True)
class CameraState:
    """A snapshot of one camera's status and statistics.

    Attributes:
        camera_id: the camera's name.
        source: what was asked for (path, URL or webcam index).
        status: its ``CameraStatus``.
        message: the reason for an error, reconnection or end ("" when running).
        frames_read: frames decoded so far.
        frames_processed: frames that went through the pipeline.
        dropped: frames decoded but skipped to keep up (``--realtime``) plus unreadable frames.
        fps: frames processed per second over the last seconds.
        latency_s: read-to-result time of the last processed frame.
        total_frames: the file's frame count, 0 for streams.
    """

    camera_id: str
    source: str
    status: CameraStatus
    message: str = ""
    frames_read: int = 0
    frames_processed: int = 0
    dropped: int = 0
    fps: float = 0.0
    latency_s: float = 0.0
    total_frames: int = 0
