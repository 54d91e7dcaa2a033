"""Small stand-ins for the heavy parts: a scripted detector, a colour embedder, a fake stream."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from tracker.types import Detections


class ScriptedDetector:
    """Finds the bright rectangles drawn by ``write_video`` (one per person)."""

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        out = []
        for frame in frames:
            mask = (frame.max(axis=2) > 100).astype(np.uint8)
            n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            boxes = [[x, y, x + w, y + h] for x, y, w, h, area in stats[1:] if area > 200]
            out.append(Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9)))
        return out


class ColourEmbedder:
    """Feature = mean RGB of the clip plus a constant: one colour, one person."""

    input_size = (32, 16)
    seq_len = 4
    feature_dim = 4

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, clips: np.ndarray) -> np.ndarray:
        self.calls += 1
        rgb = clips.reshape(len(clips), -1, 3).mean(axis=1) / 255.0
        return np.hstack([rgb, np.full((len(clips), 1), 0.1)]).astype(np.float32)


def write_video(path: Path, frames: int = 20, colours: Sequence[tuple[int, int, int]] = ((0, 0, 230),),
                size: tuple[int, int] = (160, 120)) -> Path:
    """A small MJPG video of coloured rectangles (people) walking right."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    for f in range(frames):
        image = np.zeros((size[1], size[0], 3), np.uint8)
        for i, colour in enumerate(colours):
            x = 10 + 2 * f + 50 * i
            cv2.rectangle(image, (x, 30), (x + 20, 90), colour, -1)
        writer.write(image)
    writer.release()
    return path


class FakeStream:
    """A ``cv2.VideoCapture``-like stream: ``frames`` frames, then it drops; ``opens`` successful opens."""

    def __init__(self, frames: int, image: np.ndarray, ok: bool = True) -> None:
        self.left, self.image, self.ok = frames, image, ok

    def isOpened(self) -> bool:
        return self.ok

    def read(self):
        if self.left <= 0:
            return False, None
        self.left -= 1
        return True, self.image.copy()

    def get(self, prop: int) -> float:
        return 10.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self) -> None:
        pass


class StreamFactory:
    """``open_capture`` for tests: fake streams for ``fake://`` URLs, OpenCV for the rest.

    The first open of a fake URL delivers ``frames`` frames; later opens fail (the stream is gone)
    unless ``comes_back`` frames are given for the second open.
    """

    def __init__(self, frames: int = 5, comes_back: int = 0) -> None:
        self.frames, self.comes_back = frames, comes_back
        self.opens: dict[str, int] = {}
        self.image = np.zeros((120, 160, 3), np.uint8)
        cv2.rectangle(self.image, (60, 30), (80, 90), (0, 230, 0), -1)

    def __call__(self, uri: str):
        if not uri.startswith("fake://"):
            return cv2.VideoCapture(uri)
        n = self.opens[uri] = self.opens.get(uri, 0) + 1
        if n == 1:
            return FakeStream(self.frames, self.image)
        if n == 2 and self.comes_back:
            return FakeStream(self.comes_back, self.image)
        return FakeStream(0, self.image, ok=False)
