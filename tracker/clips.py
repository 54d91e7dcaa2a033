"""Per-track crops gathered into non-overlapping clips (frames t..t+3, then t+4..t+7, ...).

A track holds only the crops of its open clip plus one best thumbnail, so memory is bounded by
the number of live tracks, not by how long they live.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mcreid.crops import crop_rgb
from tracker.types import Clip, Detections


@dataclass(frozen=True)
class CropFilter:
    """Which boxes may give a crop: the ones that would poison a signature do not.

    Attributes:
        min_height, min_width: smallest box, in source pixels.
        min_conf: lowest detector confidence.
        border_margin: a box closer than this to an image edge is cut by the border.
    """

    min_height: int = 32
    min_width: int = 12
    min_conf: float = 0.4
    border_margin: int = 2

    def reject_reason(self, xyxy: np.ndarray, confidence: float, frame_shape: tuple[int, ...]) -> str | None:
        """Why the box gives no crop ("small", "low confidence", "border"), or None if it is good."""
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        if y2 - y1 < self.min_height or x2 - x1 < self.min_width:
            return "small"
        if confidence < self.min_conf:
            return "low confidence"
        height, width = frame_shape[:2]
        m = self.border_margin
        if x1 < m or y1 < m or x2 > width - m or y2 > height - m:
            return "border"
        return None


@dataclass
class _OpenClip:
    seen: int = 0  # frames the track was observed in (the stride counts these)
    last_step: int = 0  # the builder's update count when the track was last seen
    crops: list[np.ndarray] = field(default_factory=list)
    frame_indices: list[int] = field(default_factory=list)
    thumbnail: np.ndarray | None = None  # BGR, at the embedder's input size
    thumbnail_score: float = -1.0


class ClipBuilder:
    """Turns one camera's tracked boxes into clips.

    Args:
        camera_id: the camera's name.
        input_size: ``(H, W)`` crops are resized to.
        clip_len: crops per clip.
        clip_stride: take every k-th observation of a track.
        crop_filter: which boxes may give a crop.
    """

    def __init__(self, camera_id: str, input_size: tuple[int, int], clip_len: int = 4, clip_stride: int = 1,
                 crop_filter: CropFilter | None = None) -> None:
        if clip_len < 1 or clip_stride < 1:
            raise ValueError(f"clip_len and clip_stride must be >= 1, got {clip_len} and {clip_stride}")
        self.camera_id = camera_id
        self.input_size = tuple(input_size)
        self.clip_len = clip_len
        self.clip_stride = clip_stride
        self.crop_filter = crop_filter or CropFilter()
        self._tracks: dict[int, _OpenClip] = {}
        self._step = 0  # updates so far: gaps are counted in processed frames, so frames dropped
        # in real-time mode do not break clips
        self.rejected: dict[str, int] = {}

    def update(self, frame: np.ndarray, frame_index: int, tracked: Detections) -> list[Clip]:
        """Add this frame's tracked boxes; return the clips they complete. Call once per processed
        frame of the camera, also when it has no boxes.

        Args:
            frame: ``(H, W, 3)`` uint8 BGR frame.
            frame_index: 1-based frame index.
            tracked: boxes with ``track_id``.
        """
        if tracked.track_id is None:
            raise ValueError("ClipBuilder.update needs tracked detections (track_id set)")
        self._step += 1
        finished = []
        for box, conf, track_id in zip(tracked.xyxy, tracked.confidence, tracked.track_id):
            state = self._tracks.setdefault(int(track_id), _OpenClip())
            clip = self._observe(state, int(track_id), frame, frame_index, box, float(conf))
            if clip is not None:
                finished.append(clip)
        return finished

    def _observe(self, state: _OpenClip, track_id: int, frame: np.ndarray, frame_index: int,
                 box: np.ndarray, conf: float) -> Clip | None:
        if state.crops and self._step - state.last_step > self.clip_len * self.clip_stride:
            state.crops.clear()  # a long gap: the open clip would not be one moment any more
            state.frame_indices.clear()
        state.last_step = self._step
        take = state.seen % self.clip_stride == 0
        state.seen += 1
        if not take:
            return None
        reason = self.crop_filter.reject_reason(box, conf, frame.shape)
        if reason is not None:
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
            return None
        crop = crop_rgb(frame, box, self.input_size)
        score = conf * float(np.sqrt((box[2] - box[0]) * (box[3] - box[1])))
        if score > state.thumbnail_score:
            state.thumbnail, state.thumbnail_score = crop[..., ::-1].copy(), score
        state.crops.append(crop)
        state.frame_indices.append(frame_index)
        if len(state.crops) < self.clip_len:
            return None
        clip = Clip(self.camera_id, track_id, np.stack(state.crops), tuple(state.frame_indices))
        state.crops.clear()
        state.frame_indices.clear()
        return clip

    def thumbnail(self, track_id: int) -> tuple[np.ndarray | None, float]:
        """The track's best crop so far (BGR) and its score (confidence x sqrt(area))."""
        state = self._tracks.get(track_id)
        return (None, -1.0) if state is None else (state.thumbnail, state.thumbnail_score)

    def open_crops(self, track_id: int) -> int:
        """Crops waiting in the track's open clip."""
        state = self._tracks.get(track_id)
        return 0 if state is None else len(state.crops)

    def drop_track(self, track_id: int) -> None:
        """Forget an ended track (its open clip is discarded)."""
        self._tracks.pop(track_id, None)

    @property
    def track_ids(self) -> list[int]:
        """Tracks with state held."""
        return list(self._tracks)
