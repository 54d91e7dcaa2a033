"""Person crops as every embedder wants them: cut from a BGR frame, resized, RGB."""

from __future__ import annotations

import cv2
import numpy as np


def resize_rgb(bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A BGR image resized to ``size`` = (H, W), as ``(H, W, 3)`` uint8 RGB."""
    resized = cv2.resize(bgr, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)


def crop_rgb(frame: np.ndarray, xyxy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The box ``xyxy`` (pixels, clipped to the frame, at least 1 px) of a BGR frame, resized to
    ``size`` = (H, W), as ``(H, W, 3)`` uint8 RGB."""
    height, width = frame.shape[:2]
    x1, y1, x2, y2 = np.round(xyxy).astype(int)
    x1, y1 = max(0, x1), max(0, y1)
    x2, y2 = min(width, max(x2, x1 + 1)), min(height, max(y2, y1 + 1))
    return resize_rgb(frame[y1:y2, x1:x2], size)
