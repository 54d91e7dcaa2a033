"""MARS data: the real layout and split files (``mars``, numpy/scipy only) and clip sampling
(``sampling``, torch: restricted random training clips, the P x K identity sampler, AAS test clips).

The torch-free MARS reader is re-exported here; import samplers and datasets from
``reid_model.data.sampling``.
"""

from __future__ import annotations

from reid_model.data.mars import (
    PROTOCOLS,
    MarsDataset,
    MarsSplitInfo,
    Tracklet,
    load_mars,
    load_split_info,
    protocol_split,
    true_match_counts,
)

__all__ = [
    "PROTOCOLS",
    "MarsDataset",
    "MarsSplitInfo",
    "Tracklet",
    "load_mars",
    "load_split_info",
    "protocol_split",
    "true_match_counts",
]
