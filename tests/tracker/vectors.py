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
