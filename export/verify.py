"""How closely an exported model agrees with PyTorch, and the bar each precision must clear.

numpy only, so benchmarks and tests share it with the exporter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# precision -> (lowest cosine, largest absolute difference or None)
THRESHOLDS: dict[str, tuple[float, float | None]] = {
    "fp32": (0.9999, 1e-3),
    "fp16": (0.999, None),
    "int8": (0.98, None),
}


@dataclass(frozen=True)
class Agreement:
    """Per-clip agreement of two ``(N, D)`` feature sets.

    Attributes:
        min_cosine: the worst clip's cosine similarity.
        mean_cosine: the average over clips.
        max_abs_diff: the largest absolute difference of any element.
    """

    min_cosine: float
    mean_cosine: float
    max_abs_diff: float

    def failures(self, precision: str, what: str = "raw_feature") -> list[str]:
        """What misses the bar for ``precision`` (empty when it passes)."""
        if precision not in THRESHOLDS:
            raise ValueError(f"unknown precision {precision!r}; choose from {sorted(THRESHOLDS)}")
        min_cos, max_abs = THRESHOLDS[precision]
        problems = []
        if not self.min_cosine >= min_cos:  # also catches NaN
            problems.append(f"{what}: cosine {self.min_cosine:.6f} < {min_cos}")
        if max_abs is not None and not self.max_abs_diff <= max_abs:
            problems.append(f"{what}: max abs difference {self.max_abs_diff:.2e} > {max_abs:.0e}")
        return problems

    def __str__(self) -> str:
        return (f"cosine min {self.min_cosine:.6f} mean {self.mean_cosine:.6f}, "
                f"max abs diff {self.max_abs_diff:.2e}")


def agreement(reference: np.ndarray, candidate: np.ndarray) -> Agreement:
    """Compare ``candidate`` features with ``reference``, both ``(N, D)``."""
    reference = np.asarray(reference, np.float64)
    candidate = np.asarray(candidate, np.float64)
    if reference.shape != candidate.shape or reference.ndim != 2:
        raise ValueError(f"features must both be (N, D), got {reference.shape} and {candidate.shape}")
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
    cosine = (reference * candidate).sum(axis=1) / np.maximum(norms, 1e-12)
    return Agreement(float(cosine.min()), float(cosine.mean()), float(np.abs(reference - candidate).max()))
