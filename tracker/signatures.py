"""Track signatures: the running mean of a track's clip raw features (the paper's AAS, online).

AAS averages the raw features of all non-overlapping clips of a sequence and compares averages
with cosine similarity. Online, the average is kept as a running mean with its clip count, so it
equals the batch mean of the clips seen so far without storing them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Signature:
    """Running mean of clip raw features.

    Attributes:
        mean: ``(D,)`` float64 mean raw feature (float64 so long runs do not drift).
        count: clips behind it.
    """

    mean: np.ndarray
    count: int

    def __post_init__(self) -> None:
        if self.mean.ndim != 1:
            raise ValueError(f"mean must be a (D,) vector, got shape {self.mean.shape}")
        if self.count < 0:
            raise ValueError(f"count must be >= 0, got {self.count}")

    @classmethod
    def empty(cls, feature_dim: int) -> Signature:
        """No clip yet."""
        return cls(np.zeros(feature_dim, np.float64), 0)

    def add(self, feature: np.ndarray) -> Signature:
        """The signature with one more clip's ``(D,)`` raw feature folded in."""
        feature = np.asarray(feature, np.float64).reshape(-1)
        if feature.shape != self.mean.shape:
            raise ValueError(f"feature must have shape {self.mean.shape}, got {feature.shape}")
        count = self.count + 1
        return Signature(self.mean + (feature - self.mean) / count, count)

    def combine(self, other: Signature) -> Signature:
        """Clip-weighted mean of two signatures."""
        count = self.count + other.count
        if count == 0:
            return self
        return Signature((self.mean * self.count + other.mean * other.count) / count, count)

    def remove(self, other: Signature) -> Signature:
        """This signature without ``other``'s clips (the inverse of ``combine``)."""
        count = self.count - other.count
        if count < 0:
            raise ValueError(f"cannot remove {other.count} clips from a signature of {self.count}")
        if count == 0:
            return Signature.empty(len(self.mean))
        return Signature((self.mean * self.count - other.mean * other.count) / count, count)

    def normalized(self) -> np.ndarray:
        """``(D,)`` float32 unit vector (zeros when empty)."""
        norm = float(np.linalg.norm(self.mean))
        if norm == 0.0:
            return np.zeros(len(self.mean), np.float32)
        return (self.mean / norm).astype(np.float32)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity between rows: ``(N, D)`` x ``(M, D)`` -> ``(N, M)`` float32."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T
