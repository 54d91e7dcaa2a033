"""What a camera view draws over its frame, without Qt: box styles, hit tests, trails.

The styles follow ``tracker.draw.draw_result`` (identity colour, ``#gid`` or ``t<track>`` labels,
the highlighted identity thicker and the others dimmed); the tile paints them with QPainter in
widget coordinates so labels stay readable however small the tile is.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from tracker.types import FrameResult

GREY = (160, 160, 160)


@dataclass(frozen=True)
class BoxStyle:
    """How to draw one box.

    Attributes:
        xyxy: the box in the source's pixels.
        colour: BGR.
        width: line width in pixels.
        label: ``#gid``, or ``t<track>`` while the track has no global id.
        global_id: 0 while the track has none.
        highlighted: the box belongs to the selected identity.
    """

    xyxy: tuple[float, float, float, float]
    colour: tuple[int, int, int]
    width: int
    label: str
    global_id: int
    highlighted: bool


def box_styles(result: FrameResult, highlight: int | None = None, thickness: int = 2) -> list[BoxStyle]:
    """One ``BoxStyle`` per box of ``result``; with ``highlight`` set, that identity's boxes are three
    times thicker and every other box is dimmed to half brightness."""
    styles = []
    for i, (xyxy, track_id, gid) in enumerate(zip(result.xyxy, result.track_id, result.global_id)):
        colour = tuple(result.colours[i]) if i < len(result.colours) else GREY
        gid = int(gid)
        chosen = highlight is not None and highlight > 0 and gid == highlight
        width = thickness * 3 if chosen else thickness
        if highlight and not chosen:
            colour = tuple(int(c * 0.5) for c in colour)
        label = f"#{gid}" if gid else f"t{int(track_id)}"
        styles.append(BoxStyle(tuple(float(v) for v in xyxy), colour, width, label, gid, chosen))
    return styles


def box_at(result: FrameResult, x: float, y: float) -> int | None:
    """Index of the box under the source-pixel point ``(x, y)``; the smallest one when boxes overlap."""
    if len(result.xyxy) == 0:
        return None
    boxes = np.asarray(result.xyxy, np.float32)
    inside = (boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3])
    if not inside.any():
        return None
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    areas[~inside] = np.inf
    return int(np.argmin(areas))


@dataclass
class _Trail:
    points: deque
    last_frame: int
    colour: tuple[int, int, int]
    global_id: int


class Trails:
    """The last ``length`` foot points (bottom centre of the box) of every track of one camera.

    Args:
        length: frames of history; 0 keeps none.
    """

    def __init__(self, length: int = 20) -> None:
        if length < 0:
            raise ValueError(f"trail length must be >= 0 frames, got {length}")
        self.length = length
        self._trails: dict[int, _Trail] = {}

    def update(self, result: FrameResult) -> None:
        """Add this frame's foot points; forget tracks unseen for ``length`` frames."""
        if self.length == 0:
            return
        for i, (xyxy, track_id, gid) in enumerate(zip(result.xyxy, result.track_id, result.global_id)):
            colour = tuple(result.colours[i]) if i < len(result.colours) else GREY
            point = (float(xyxy[0] + xyxy[2]) / 2, float(xyxy[3]))
            trail = self._trails.get(int(track_id))
            if trail is None:
                trail = self._trails[int(track_id)] = _Trail(deque(maxlen=self.length), 0, colour, 0)
            trail.points.append((result.frame_index, point))
            trail.last_frame, trail.colour, trail.global_id = result.frame_index, colour, int(gid)
        oldest = result.frame_index - self.length
        for track_id in [t for t, trail in self._trails.items() if trail.last_frame <= oldest]:
            del self._trails[track_id]

    def lines(self) -> list[tuple[int, tuple[int, int, int], list[tuple[float, float]]]]:
        """``(global_id, BGR colour, points)`` per track with at least two recent points."""
        out = []
        for trail in self._trails.values():
            oldest = trail.last_frame - self.length
            points = [p for frame, p in trail.points if frame > oldest]
            if len(points) >= 2:
                out.append((trail.global_id, trail.colour, points))
        return out

    def clear(self) -> None:
        self._trails.clear()
