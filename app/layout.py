"""Where each camera view goes in the grid."""

from __future__ import annotations

import math

MAX_CAMERAS = 9


def grid_shape(n_cameras: int) -> tuple[int, int]:
    """``(rows, columns)`` of the view grid: 1 -> 1x1, 2 -> 1x2, 3-4 -> 2x2, 5-6 -> 2x3, 7-9 -> 3x3.

    Raises:
        ValueError: fewer than 0 or more than ``MAX_CAMERAS`` cameras.
    """
    if not 0 <= n_cameras <= MAX_CAMERAS:
        raise ValueError(f"the viewer shows 0 to {MAX_CAMERAS} cameras, got {n_cameras}")
    if n_cameras == 0:
        return (1, 1)
    cols = math.ceil(math.sqrt(n_cameras))
    return (math.ceil(n_cameras / cols), cols)


def grid_positions(n_cameras: int) -> list[tuple[int, int]]:
    """``(row, column)`` of each camera, row by row."""
    _, cols = grid_shape(n_cameras)
    return [(i // cols, i % cols) for i in range(n_cameras)]


def fit_rect(frame_w: int, frame_h: int, area_w: int, area_h: int) -> tuple[int, int, int, int]:
    """The largest ``(x, y, w, h)`` with the frame's aspect ratio centred in an area (letterboxed)."""
    if frame_w <= 0 or frame_h <= 0 or area_w <= 0 or area_h <= 0:
        return (0, 0, 0, 0)
    scale = min(area_w / frame_w, area_h / frame_h)
    w, h = max(1, round(frame_w * scale)), max(1, round(frame_h * scale))
    return ((area_w - w) // 2, (area_h - h) // 2, w, h)
