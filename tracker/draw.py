"""Boxes and labels drawn with OpenCV (never Ultralytics' plotting, which fetches fonts online)."""

from __future__ import annotations

import cv2
import numpy as np

from tracker.types import FrameResult


def draw_result(result: FrameResult, image: np.ndarray | None = None, highlight: int | None = None,
                thickness: int = 2) -> np.ndarray:
    """A copy of the frame with every box in its identity's colour, labelled ``#gid`` (or ``t<track>``
    while the track has no global id yet).

    Args:
        result: the pipeline's output for one frame.
        image: draw on this ``(H, W, 3)`` BGR image instead of ``result.image``.
        highlight: a global id drawn thicker, the others dimmed.
        thickness: line width in pixels.
    """
    canvas = (result.image if image is None else image).copy()
    for i, (xyxy, track_id, gid) in enumerate(zip(result.xyxy, result.track_id, result.global_id)):
        colour = result.colours[i] if i < len(result.colours) else (160, 160, 160)
        width = thickness
        if highlight is not None:
            if int(gid) == highlight:
                width = thickness * 3
            else:
                colour = tuple(int(c * 0.5) for c in colour)
        x1, y1, x2, y2 = (int(round(float(v))) for v in xyxy)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, width)
        label = f"#{int(gid)}" if gid else f"t{int(track_id)}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y1 - th - base - 2)
        cv2.rectangle(canvas, (x1, top), (x1 + tw + 4, top + th + base + 2), colour, -1)
        cv2.putText(canvas, label, (x1 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return canvas
