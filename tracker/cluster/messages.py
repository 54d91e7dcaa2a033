"""What crosses the network in a cluster run: small typed values, never frames.

A camera actor sends ``CameraBatch``es (a few ``WireStep``s: one per processed frame, with its
boxes, clip features, ended tracks and best crops as JPEG) and gets ``Ack``s back; a restarted
camera asks for its ``ResumePoint``; a viewer reads ``JobSnapshot``s. Sizes, for the STA model's
512-d features: a frame's boxes are 36 bytes per person, a clip's feature 2 KB (one per track
every 4 frames), a best crop about 3 KB of JPEG (at most one per live track every
``thumbnail_every`` frames).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tracker.config import TrackerConfig
from tracker.types import CameraState, CameraStatus, CameraUpdate, GlobalIdentity

JPEG_QUALITY = 90
THUMBNAIL_HEIGHT = 128  # as tracker.pipeline: identities keep their best crop at most this high


def encode_jpeg(image: np.ndarray) -> bytes:
    """A ``(H, W, 3)`` uint8 BGR crop as JPEG, at most ``THUMBNAIL_HEIGHT`` high."""
    import cv2

    height, width = image.shape[:2]
    if height > THUMBNAIL_HEIGHT:
        size = (max(1, round(width * THUMBNAIL_HEIGHT / height)), THUMBNAIL_HEIGHT)
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"cannot JPEG-encode a crop of shape {image.shape}")
    return data.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """The BGR image of ``encode_jpeg``'s bytes."""
    import cv2

    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"not a JPEG image ({len(data)} bytes)")
    return image


@dataclass(frozen=True)
class WireStep:
    """One processed camera frame on the wire: a ``CameraUpdate`` with its crops as JPEG.

    Attributes:
        seq: the camera's step number, 1-based; it goes on across restarts of the camera's actor.
        update: the update, ``thumbnails`` left empty.
        thumbnails: ``(track_id, JPEG bytes, score)`` of the best crops handed over.
    """

    seq: int
    update: CameraUpdate
    thumbnails: tuple[tuple[int, bytes, float], ...] = ()

    @classmethod
    def from_update(cls, seq: int, update: CameraUpdate) -> WireStep:
        thumbnails = tuple((int(t), encode_jpeg(image), float(score))
                           for t, (image, score) in update.thumbnails.items())
        bare = CameraUpdate(update.camera_id, update.frame_index, update.time_s, update.boxes,
                            update.feature_track_ids, update.features, tuple(update.ended), {}, update.captured_at)
        return cls(seq, bare, thumbnails)

    def to_update(self) -> CameraUpdate:
        """The ``CameraUpdate`` with its crops decoded."""
        u = self.update
        crops = {track_id: (decode_jpeg(data), score) for track_id, data, score in self.thumbnails}
        return CameraUpdate(u.camera_id, u.frame_index, u.time_s, u.boxes, u.feature_track_ids, u.features,
                            u.ended, crops, u.captured_at)

    @property
    def nbytes(self) -> int:
        """Payload bytes (arrays and JPEG), for the benchmarks."""
        u = self.update
        return (u.boxes.xyxy.nbytes + u.boxes.confidence.nbytes + u.boxes.track_id.nbytes + u.features.nbytes
                + u.feature_track_ids.nbytes + 8 * len(u.ended) + sum(len(d) + 12 for _, d, _ in self.thumbnails))


@dataclass(frozen=True)
class CameraReport:
    """A camera's state as its actor sees it (``CameraState`` without what only the matcher knows).

    Attributes:
        status, message: the reader's ``CameraStatus`` and reason.
        frames_read: the frame index reached (across restarts).
        dropped: frames dropped by the reader (``--realtime``) or unreadable, this incarnation.
        fps: frames processed per second lately.
        latency_s: read to update, for the last frame (on the camera's machine).
        total_frames: the file's frame count, 0 for streams.
        frame_size: ``(width, height)`` of the frames, (0, 0) before the first.
        node: where the actor runs (host name).
    """

    status: CameraStatus = CameraStatus.OPENING
    message: str = ""
    frames_read: int = 0
    dropped: int = 0
    fps: float = 0.0
    latency_s: float = 0.0
    total_frames: int = 0
    frame_size: tuple[int, int] = (0, 0)
    node: str = ""


@dataclass(frozen=True)
class CameraBatch:
    """A camera's message to the matcher.

    Attributes:
        camera_id: the camera.
        incarnation: from the camera's ``ResumePoint``; a batch of an incarnation that has been
            replaced (an actor that died while this was on its way) is ignored.
        steps: frames processed, in order (``seq`` consecutive).
        report: the camera's state now.
        final: the camera is over (its source ended, failed or was stopped): no step follows, and
            its live tracks end once these steps are applied.
        final_thumbnails: with ``final``: the best crops of the tracks it ends, as in ``WireStep``.
    """

    camera_id: str
    incarnation: int
    steps: tuple[WireStep, ...] = ()
    report: CameraReport = field(default_factory=CameraReport)
    final: bool = False
    final_thumbnails: tuple[tuple[int, bytes, float], ...] = ()

    @property
    def last_seq(self) -> int:
        return self.steps[-1].seq if self.steps else 0


@dataclass(frozen=True)
class Ack:
    """The matcher's answer once a batch is applied.

    Attributes:
        applied_seq: the camera's last step the matcher has applied.
        stop: the job is stopping: the camera stops reading, sends what it processed and ends.
        ignored: the batch came from a replaced incarnation and was dropped.
    """

    applied_seq: int
    stop: bool = False
    ignored: bool = False


@dataclass(frozen=True)
class ResumePoint:
    """Where a camera's actor starts (a restarted one: where the previous one stopped).

    Attributes:
        incarnation: this actor's number for the camera (1 for the first).
        next_seq: the ``seq`` of its first step.
        start_frame: frames of the source already received by the matcher (a file resumes after them).
        first_track_id: above every track id the camera has used.
        stop: the job is already stopping.
    """

    incarnation: int
    next_seq: int = 1
    start_frame: int = 0
    first_track_id: int = 1
    stop: bool = False


@dataclass(frozen=True)
class FrameBoxes:
    """A camera's latest boxes with their global ids, for an attached viewer."""

    frame_index: int
    xyxy: np.ndarray
    confidence: np.ndarray
    track_id: np.ndarray
    global_id: np.ndarray


@dataclass(frozen=True)
class JobSnapshot:
    """What an attached viewer shows, refreshed by the matcher about twice a second.

    Attributes:
        job: the job's name.
        cameras: one ``CameraState`` per camera, in source order.
        frame_sizes: camera -> ``(width, height)``.
        identities: the identities with their latest members, thumbnails left out.
        thumbnails: global id -> its best crop as JPEG.
        boxes: camera -> its latest ``FrameBoxes``.
        applied_steps: steps applied so far (all cameras).
        finished: the job has written its outputs.
        error: why the job stopped early, "" while healthy.
        config: the job's pipeline options.
    """

    job: str
    cameras: tuple[CameraState, ...]
    frame_sizes: dict[str, tuple[int, int]]
    identities: tuple[GlobalIdentity, ...]
    thumbnails: dict[int, bytes]
    boxes: dict[str, FrameBoxes]
    applied_steps: int = 0
    finished: bool = False
    error: str = ""
    config: TrackerConfig | None = None

