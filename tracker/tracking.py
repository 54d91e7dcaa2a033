"""Per-camera tracking with Ultralytics' ByteTrack / BoT-SORT classes, one instance per camera.

Ultralytics' Kalman filter and association do the work; this module only adapts our
``Detections`` to the Results-like object those classes read (``conf``, ``cls``, ``xywh``,
``xyxy``, boolean indexing) and maps their track ids to a counter owned by each camera, so no id
or state is shared between cameras whatever the Ultralytics version does with its id counter
(older releases used the class-level ``BaseTrack._count``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tracker.config import TrackerConfig
from tracker.detector import import_ultralytics
from tracker.types import Detections


REMOVED_KEPT = 64  # removed Ultralytics tracks kept (its own cap is 1,000 a camera, ~1.2 KB each)


class _BoxesView:
    """The slice of Ultralytics' ``Boxes`` API its trackers use, over plain numpy arrays."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray) -> None:
        self.xyxy = xyxy
        self.conf = conf
        self.cls = np.zeros(len(conf), np.float32)

    @property
    def xywh(self) -> np.ndarray:
        xywh = np.empty_like(self.xyxy)
        xywh[:, :2] = (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2
        xywh[:, 2:] = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return xywh

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: Any) -> _BoxesView:
        return _BoxesView(self.xyxy[index], self.conf[index])


def tracker_classes() -> dict[str, type]:
    """Registry: tracker name -> Ultralytics class."""
    import_ultralytics()
    from ultralytics.trackers.bot_sort import BOTSORT
    from ultralytics.trackers.byte_tracker import BYTETracker

    return {"bytetrack": BYTETracker, "botsort": BOTSORT}


class CameraTracker:
    """One camera's multi-object tracker.

    Args:
        config: tracker type and thresholds.
        first_track_id: the id of the camera's first track (a camera restarted after a crash
            continues after the ids it had given, so no id names two tracks).
    """

    def __init__(self, config: TrackerConfig, first_track_id: int = 1) -> None:
        if first_track_id < 1:
            raise ValueError(f"first_track_id must be >= 1, got {first_track_id}")
        import_ultralytics()
        from ultralytics.utils import IterableSimpleNamespace

        classes = tracker_classes()
        if config.tracker_type not in classes:
            raise ValueError(f"unknown tracker {config.tracker_type!r}; choose one of {', '.join(classes)}")
        self._tracker = classes[config.tracker_type](IterableSimpleNamespace(**config.ultralytics_args()))
        self._local_ids: dict[int, int] = {}
        self._next_id = first_track_id

    def _local_id(self, ultralytics_id: int) -> int:
        local = self._local_ids.get(ultralytics_id)
        if local is None:
            local = self._local_ids[ultralytics_id] = self._next_id
            self._next_id += 1
        return local

    def update(self, detections: Detections, frame: np.ndarray | None = None) -> Detections:
        """Detections of one frame -> the tracked ones, with per-camera ``track_id``.

        Boxes are the detector's (so crops come from what was seen, not the Kalman prediction).

        Args:
            detections: this frame's boxes (no track ids).
            frame: ``(H, W, 3)`` BGR frame (BoT-SORT's motion compensation reads it).

        Returns:
            The detections matched to confirmed tracks, ``track_id`` filled.
        """
        view = _BoxesView(detections.xyxy, detections.confidence)
        rows = self._tracker.update(view, frame)
        if len(rows) == 0:
            self._forget_removed()
            return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
        rows = np.asarray(rows)
        index = rows[:, -1].astype(np.int64)  # the detection each track matched
        ids = np.array([self._local_id(int(i)) for i in rows[:, 4]], np.int64)
        self._forget_removed()
        return Detections(detections.xyxy[index], detections.confidence[index], ids)

    def bookkeeping(self) -> dict[str, int]:
        """Records held: id mappings and Ultralytics' tracked, lost and removed track lists."""
        return {"tracker_id_map": len(self._local_ids),
                **{f"ultralytics_{name}": len(getattr(self._tracker, f"{name}_stracks", ()) or ())
                   for name in ("tracked", "lost", "removed")}}

    def _forget_removed(self) -> None:
        """Drop id mappings of tracks Ultralytics removed this frame, so the map stays bounded, and
        trim Ultralytics' removed-track history (it keeps 1,000, each with its Kalman state)."""
        latest = getattr(self._tracker, "removed_stracks_frame", ()) or ()
        for track in latest:
            self._local_ids.pop(int(track.track_id), None)
        removed = getattr(self._tracker, "removed_stracks", None)
        keep = max(REMOVED_KEPT, len(latest))  # this frame's removals are the last ones: always kept
        if isinstance(removed, list) and len(removed) > keep:
            # Ultralytics drops lost tracks found in this list at the next update (the ones removed
            # this frame); older entries only repeat tracks that are gone from every other list.
            self._tracker.removed_stracks = removed[-keep:]
