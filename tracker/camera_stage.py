"""One camera's own state in the pipeline's camera half: its tracker, its open clips, when each
track was last seen, the clips embedded per track, and which best crops were handed over.

``Pipeline.process`` keeps one per camera; a cluster's camera actor runs a ``Pipeline`` with one
camera, so this is the same code on one machine or many.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tracker.clips import ClipBuilder
from tracker.types import CameraFrame, Clip, Detections


@dataclass
class CameraStage:
    """Per-camera state.

    Attributes:
        tracker: the camera's multi-object tracker (``update(detections, frame)``).
        clips: its clip builder (open clips and each track's best crop).
        thumbnail_every: frames between two hand-overs of a live track's improved best crop
            (1: every frame; a cluster camera sends fewer over the network). A track that ends
            hands over its final best crop whatever this is.
        steps: frames processed.
        last_step: track id -> the step it was last seen in.
        embedded: track id -> clips embedded so far (the scheduler's counts).
    """

    tracker: object
    clips: ClipBuilder
    thumbnail_every: int = 1
    steps: int = 0
    last_step: dict[int, int] = field(default_factory=dict)
    embedded: dict[int, int] = field(default_factory=dict)
    _handed: dict[int, tuple[float, int]] = field(default_factory=dict)  # track -> (score, step) handed over

    def __post_init__(self) -> None:
        if self.thumbnail_every < 1:
            raise ValueError(f"thumbnail_every must be >= 1 frame, got {self.thumbnail_every}")

    def advance(self, frame: CameraFrame, boxes: Detections) -> list[Clip]:
        """Count the frame, note when each tracked box's track was seen, cut clips; returns the
        clips the frame completes."""
        self.steps += 1
        for track_id in boxes.track_id:
            self.last_step[int(track_id)] = self.steps
        return self.clips.update(frame.image, frame.frame_index, boxes)

    def count_embedded(self, track_id: int) -> None:
        self.embedded[track_id] = self.embedded.get(track_id, 0) + 1

    def end_stale(self, track_buffer: int) -> tuple[int, ...]:
        """Tracks unseen for more than ``track_buffer`` frames are over: returned (in the order they
        were first seen) and forgotten, except their best crops until ``thumbnails`` handed them."""
        ended = tuple(t for t, last in self.last_step.items() if self.steps - last > track_buffer)
        for track_id in ended:
            del self.last_step[track_id]
            self.embedded.pop(track_id, None)
        return ended

    def end_all(self) -> tuple[int, ...]:
        """The camera stopped: every live track is over (returned and forgotten like ``end_stale``'s)."""
        return self.end_stale(-1)

    def thumbnails(self, ended: tuple[int, ...] = ()) -> dict[int, tuple[np.ndarray, float]]:
        """Best crops to hand over now: the live tracks' that improved (at most every
        ``thumbnail_every`` frames each) and the ``ended`` tracks' final ones; the ended tracks'
        clip state is dropped after."""
        out = {}
        for track_id in (*self.last_step, *ended):
            image, score = self.clips.thumbnail(track_id)
            handed_score, handed_at = self._handed.get(track_id, (-1.0, -self.thumbnail_every))
            due = track_id in ended or self.steps - handed_at >= self.thumbnail_every
            if image is not None and score > handed_score and due:
                out[track_id] = (image, score)
                self._handed[track_id] = (score, self.steps)
        for track_id in ended:
            self._handed.pop(track_id, None)
            self.clips.drop_track(track_id)
        return out
