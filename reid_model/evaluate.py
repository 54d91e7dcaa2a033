"""Sequence features with AAS and CMC/mAP on the MARS test split, for an in-memory model.

AAS (paper Sec. 3.2, Eq. 5): a sequence is cut into its non-overlapping ``seq_len``-frame clips,
every clip is embedded, and the sequence feature is the mean of the clip features. RFU (Sec. 3.3):
the clip features are the raw features (FC1 output). Sequences are compared with cosine distance.
``reid_model train --eval-every`` calls ``evaluate_model`` with the model being trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from reid_model.data.mars import MarsDataset, Tracklet, protocol_split
from reid_model.data.sampling import TestClipDataset, test_clip_loader
from reid_model.metrics import Scores, distance_matrix, evaluate
from reid_model.preprocess import preprocess_clips


class ClipEmbedder(Protocol):
    """Anything with ``embed((N, T, H, W, 3) uint8) -> (N, D) float32`` (e.g. ``TorchEmbedder``)."""

    def embed(self, clips: np.ndarray) -> np.ndarray: ...


class ModelEmbedder:
    """An in-memory STA model as a ``ClipEmbedder`` (eval mode, no grad; raw or BN features).

    Args:
        model: an ``STA`` (not a DDP wrapper).
        device: where the model lives.
        feature: "raw" (RFU, default) or "bn".
        amp: autocast (fp16 on CUDA, bf16 on CPU) for the forward pass.
    """

    def __init__(self, model: torch.nn.Module, device: torch.device, feature: str = "raw", amp: bool = False) -> None:
        if feature not in ("raw", "bn"):
            raise ValueError(f"feature must be 'raw' or 'bn', got {feature!r}")
        self.model, self.device, self.feature, self.amp = model, torch.device(device), feature, amp

    def embed(self, clips: np.ndarray) -> np.ndarray:
        """``(N, T, H, W, 3)`` uint8 RGB -> ``(N, D)`` float32."""
        was_training = self.model.training
        self.model.eval()
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        autocast = torch.autocast(self.device.type, dtype=dtype) if self.amp else nullcontext()
        try:
            with torch.inference_mode(), autocast:
                out = self.model(preprocess_clips(torch.from_numpy(np.ascontiguousarray(clips)).to(self.device)))
        finally:
            self.model.train(was_training)
        feature = out.raw_feature if self.feature == "raw" else out.bn_feature
        return feature.float().cpu().numpy()


def sequence_features(
    embedder: ClipEmbedder,
    tracklets: Sequence[Tracklet],
    seq_len: int = 4,
    clips: int | str = "all",
    height: int = 256,
    width: int = 128,
    batch_size: int = 64,
    workers: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> np.ndarray:
    """AAS sequence features (Eq. 5): the mean clip feature of each tracklet.

    Clips of consecutive tracklets are packed into batches of ``batch_size`` for the embedder.

    Returns:
        ``(len(tracklets), D)`` float32.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    loader = test_clip_loader(TestClipDataset(tracklets, seq_len, clips, height, width, seed), workers)
    sums: np.ndarray | None = None
    counts = np.zeros(len(tracklets), np.int64)
    pending: list[np.ndarray] = []
    owners: list[np.ndarray] = []

    def flush() -> None:
        nonlocal sums
        features = embedder.embed(np.concatenate(pending))
        owner = np.concatenate(owners)
        if sums is None:
            sums = np.zeros((len(tracklets), features.shape[1]), np.float64)
        np.add.at(sums, owner, features)
        pending.clear()
        owners.clear()

    for item in tqdm(loader, total=len(tracklets), desc="features", disable=not progress, leave=False):
        pending.append(item.clips)
        owners.append(np.full(len(item.clips), item.index))
        counts[item.index] = len(item.clips)
        if sum(len(p) for p in pending) >= batch_size:
            flush()
    if pending:
        flush()
    if sums is None:
        raise ValueError("no tracklets to embed")
    return (sums / counts[:, None]).astype(np.float32)


def evaluate_model(
    embedder: ClipEmbedder,
    data: MarsDataset,
    protocol: str = "official",
    seq_len: int = 4,
    height: int = 256,
    width: int = 128,
    metric: str = "cosine",
    batch_size: int = 64,
    workers: int = 0,
    progress: bool = False,
) -> Scores:
    """CMC/mAP of ``embedder`` on the test split of ``data`` with AAS over all clips.

    Only the tracklets the protocol uses (queries and gallery) are embedded.
    """
    query_rows, gallery_rows = protocol_split(data.info, protocol)
    needed = np.union1d(query_rows, gallery_rows)
    features = sequence_features(
        embedder, [data.test[i] for i in needed], seq_len, "all", height, width, batch_size, workers,
        progress=progress,
    )
    position = {row: i for i, row in enumerate(needed.tolist())}
    query = features[[position[r] for r in query_rows.tolist()]]
    gallery = features[[position[r] for r in gallery_rows.tolist()]]
    tracks = data.info.test_tracks
    distmat = distance_matrix(query, gallery, metric)
    return evaluate(
        distmat, tracks[query_rows, 2], tracks[query_rows, 3], tracks[gallery_rows, 2], tracks[gallery_rows, 3],
        protocol=protocol,
    )
