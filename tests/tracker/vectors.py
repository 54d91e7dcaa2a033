"""Feature vectors with a known cosine between them, for the matcher's tests."""

from __future__ import annotations

import numpy as np


def at_cosine(base: np.ndarray, cos: float, axis: int) -> np.ndarray:
    """A unit vector at cosine ``cos`` from ``base`` (turned towards ``axis``)."""
    b = base / np.linalg.norm(base)
    o = np.zeros(len(base))
    o[axis] = 1.0
    o -= (o @ b) * b
    o /= np.linalg.norm(o)
    return cos * b + np.sqrt(1 - cos ** 2) * o


def feed(m, camera: str, track: int, frames, feature, clips: int, box=None, end: bool = False) -> None:
    """Observe ``track`` over ``frames`` (``box``: a box, or a function of the frame), add ``clips``
    clips of ``feature``, optionally end it, then resolve."""
    for f in frames:
        m.observe(camera, track, f, f / 10, box(f) if callable(box) else box)
    for _ in range(clips):
        m.add_feature(camera, track, feature)
    if end:
        m.end_track(camera, track)
    m.resolve()
