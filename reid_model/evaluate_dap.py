"""AAS features and the ``mars_dap`` protocol for an embedder (``benchmarks/mars_eval.py --dataset
mars_dap`` and ``reid_model train --dataset mars_dap --eval-every``).

Every tracklet (8 frames) gives its non-overlapping 4-frame clips (2), embedded and averaged (AAS,
Eq. 5); queries are ranked against every other tracklet of the folder (``true_match_masks``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reid_model.data.mars_dap import MarsDap, true_match_masks
from reid_model.evaluate import ClipSetting, SequenceFeatures, extract_features
from reid_model.metrics import Scores, distance_matrix, evaluate_matches


def dap_features(
    embedder, data: MarsDap, settings: Sequence[ClipSetting] = ("all",), seed: int = 0, batch_size: int = 32,
    workers: int = 0, progress: bool = True,
) -> dict[ClipSetting, SequenceFeatures]:
    """AAS features of every tracklet of ``data`` per clip setting (see ``extract_features``)."""
    return extract_features(data.tracklets, embedder, settings, seed, batch_size, workers, progress)


def score_dap(features: np.ndarray, data: MarsDap, distance: str = "cosine") -> Scores:
    """CMC/mAP of ``features`` (``(len(data.tracklets), D)``) under the mars_dap protocol."""
    if len(features) != len(data.tracklets):
        raise ValueError(f"features has {len(features)} rows, the data {len(data.tracklets)} tracklets")
    if not data.queries:
        raise ValueError(f"no queries in {data.root} (after the identity selection)")
    good, ignored = true_match_masks(data)
    rows = [q.row for q in data.queries]
    return evaluate_matches(distance_matrix(features[rows], features, distance), good, ignored)


def evaluate_dap(embedder, data: MarsDap, distance: str = "cosine", feature: str = "raw", workers: int = 0,
                 progress: bool = False) -> Scores:
    """AAS over all clips, ``feature`` (raw = RFU) and ``distance``: the mars_dap scores of ``embedder``."""
    features = dap_features(embedder, data, ["all"], workers=workers, progress=progress)["all"]
    return score_dap(features.select(feature), data, distance)
