"""Sequence features with AAS and CMC/mAP on the MARS test split, for an in-memory model.

AAS (paper Sec. 3.2, Eq. 5): a sequence is cut into its non-overlapping ``seq_len``-frame clips,
every clip is embedded, and the sequence feature is the mean of the clip features. RFU (Sec. 3.3):
the clip features are the raw features (FC1 output). Sequences are compared with cosine distance.
``extract_features`` does it for any embedder (``benchmarks/mars_eval.py`` uses it for
checkpoints and ONNX exports); ``reid_model train --eval-every`` calls ``evaluate_model`` with
the model being trained.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from reid_model.data.mars import MarsDataset, protocol_split
from reid_model.data.sampling import TestClipDataset, test_clip_indices, test_clip_loader
from reid_model.metrics import Scores, distance_matrix, evaluate
from reid_model.preprocess import preprocess_clips

log = logging.getLogger(__name__)

ClipSetting = int | str


class ModelEmbedder:
    """An in-memory STA model behind the embedder interface (eval mode, no grad).

    Args:
        model: an ``STA`` (not a DDP wrapper); its config gives ``seq_len`` and ``input_size``.
        device: where the model lives.
        amp: autocast (fp16 on CUDA, bf16 on CPU) for the forward pass.
    """

    def __init__(self, model: torch.nn.Module, device: torch.device, amp: bool = False) -> None:
        self.model, self.device, self.amp = model, torch.device(device), amp
        config = model.config
        self.seq_len, self.input_size, self.feature_dim = config.seq_len, (config.height, config.width), config.feature_dim

    def embed(self, clips: np.ndarray) -> np.ndarray:
        """``(N, T, H, W, 3)`` uint8 RGB -> ``(N, D)`` float32 raw features."""
        return self.embed_with_bn(clips)[0]

    def embed_with_bn(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw and BN features, each ``(N, D)`` float32."""
        was_training = self.model.training
        self.model.eval()
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        autocast = torch.autocast(self.device.type, dtype=dtype) if self.amp else nullcontext()
        try:
            with torch.inference_mode(), autocast:
                out = self.model(preprocess_clips(torch.from_numpy(np.ascontiguousarray(clips)).to(self.device)))
        finally:
            self.model.train(was_training)
        return out.raw_feature.float().cpu().numpy(), out.bn_feature.float().cpu().numpy()


@dataclass(frozen=True)
class SequenceFeatures:
    """One AAS feature per test tracklet, rows in ``tracks_test_info`` order.

    Attributes:
        raw: ``(N, D)`` float32 mean of the raw clip features.
        bn: ``(N, D)`` float32 mean of the BN clip features, or None when not available.
    """

    raw: np.ndarray
    bn: np.ndarray | None = None

    def select(self, feature: str) -> np.ndarray:
        """The ``raw`` or ``bn`` array; ValueError when absent or unknown."""
        if feature == "raw":
            return self.raw
        if feature == "bn":
            if self.bn is None:
                raise ValueError("BN features requested (--feature bn) but none are available (no bn_features array)")
            return self.bn
        raise ValueError(f"unknown feature {feature!r}; choices: raw, bn")


def _subset_positions(num_frames: int, seq_len: int, setting: ClipSetting, seed: int, index: int) -> np.ndarray:
    """Which of the tracklet's ``all`` clips the clips of ``setting`` are (same RNG as TestClipDataset)."""
    every = test_clip_indices(num_frames, seq_len, "all")
    chosen = test_clip_indices(num_frames, seq_len, setting, np.random.default_rng([seed, index]))
    positions = chosen[:, 0] // seq_len
    if positions.max() >= len(every) or not np.array_equal(every[positions], chosen):
        raise ValueError(f"clips={setting!r} are not a subset of the 'all' clips; extract it on its own")
    return positions


class _Accumulator:
    """Clips of several tracklets batched into one embedder call, then averaged per setting (AAS).

    With one setting a tracklet's decoded clips are exactly that setting's; with several they
    are its ``all`` clips and each setting averages its subset.
    """

    def __init__(self, embedder, settings: list[ClipSetting], tracklets: Sequence, seed: int) -> None:
        self.embedder, self.settings, self.tracklets, self.seed = embedder, settings, tracklets, seed
        self.raw: dict[ClipSetting, np.ndarray] = {}
        self.bn: dict[ClipSetting, np.ndarray] = {}
        self.pending: list = []
        self.pending_clips = 0

    def add(self, item, batch_size: int) -> None:
        """Queue a ``TestClips``; embed the queue once it holds ``batch_size`` clips."""
        self.pending.append(item)
        self.pending_clips += len(item.clips)
        if self.pending_clips >= batch_size:
            self.flush()

    def _rows(self, item, setting: ClipSetting, start: int):
        if len(self.settings) == 1:
            return slice(start, start + len(item.clips))
        num_frames = self.tracklets[item.index].num_frames
        return start + _subset_positions(num_frames, self.embedder.seq_len, setting, self.seed, item.index)

    def flush(self) -> None:
        if not self.pending:
            return
        raw, bn = self.embedder.embed_with_bn(np.concatenate([item.clips for item in self.pending]))
        if not self.raw:
            shape = (len(self.tracklets), raw.shape[1])
            self.raw = {s: np.zeros(shape, np.float32) for s in self.settings}
            self.bn = {s: np.zeros(shape, np.float32) for s in self.settings}
        start = 0
        for item in self.pending:
            for setting in self.settings:
                rows = self._rows(item, setting, start)
                self.raw[setting][item.index] = raw[rows].mean(axis=0)  # AAS, Eq. 5
                self.bn[setting][item.index] = bn[rows].mean(axis=0)
            start += len(item.clips)
        self.pending, self.pending_clips = [], 0

    def result(self) -> dict[ClipSetting, SequenceFeatures]:
        if not self.raw:
            raise ValueError("no tracklets to extract features from")
        return {s: SequenceFeatures(self.raw[s], self.bn[s]) for s in self.settings}


def extract_features(
    tracklets: Sequence,
    embedder,
    settings: Sequence[ClipSetting],
    seed: int = 0,
    batch_size: int = 32,
    workers: int = 0,
    progress: bool = True,
) -> dict[ClipSetting, SequenceFeatures]:
    """AAS features of every tracklet for each clip setting, from one pass over the images.

    Args:
        tracklets: ``Tracklet`` objects (``paths``) in test-row order.
        embedder: ``embed_with_bn(clips (N, T, H, W, 3) uint8) -> (raw, bn)`` each ``(N, D)``,
            with ``input_size`` and ``seq_len``.
        settings: clip settings; with more than one, the ``all`` clips are decoded and each
            setting takes its subset (so ``restricted`` must come alone).
        seed: clip randomness (per tracklet ``default_rng([seed, index])``, as TestClipDataset).
        batch_size: clips gathered across tracklets before each embedder call.
        workers: DataLoader processes decoding JPEGs (0 = in this process).

    Returns:
        ``{setting: SequenceFeatures}``, each ``(len(tracklets), D)`` float32.
    """
    settings = list(dict.fromkeys(settings))
    if len(settings) > 1 and "restricted" in settings:
        raise ValueError("clips='restricted' is not a subset of the 'all' clips; evaluate it on its own")
    decode = settings[0] if len(settings) == 1 else "all"
    seq_len, (height, width) = embedder.seq_len, embedder.input_size
    dataset = TestClipDataset(tracklets, seq_len=seq_len, clips=decode, height=height, width=width, seed=seed)
    log.info("extracting features: %d tracklets, clips=%s, %dx%d, seq_len=%d, %d workers",
             len(dataset), "/".join(map(str, settings)), height, width, seq_len, workers)
    acc = _Accumulator(embedder, settings, tracklets, seed)
    loader = test_clip_loader(dataset, num_workers=workers)
    for item in tqdm(loader, total=len(dataset), desc="extracting", unit="tracklet", disable=not progress):
        acc.add(item, batch_size)
    acc.flush()
    return acc.result()


def evaluate_model(
    embedder,
    data: MarsDataset,
    protocol: str = "official",
    metric: str = "cosine",
    batch_size: int = 64,
    workers: int = 0,
    progress: bool = False,
) -> Scores:
    """CMC/mAP of ``embedder`` (``embed_with_bn``, ``seq_len``, ``input_size``) on the test split of
    ``data`` with AAS over all clips and raw features (RFU).

    Only the tracklets the protocol uses (queries and gallery) are embedded.
    """
    query_rows, gallery_rows = protocol_split(data.info, protocol)
    needed = np.union1d(query_rows, gallery_rows)
    tracklets = [data.test[i] for i in needed]
    features = extract_features(tracklets, embedder, ["all"], batch_size=batch_size, workers=workers,
                                progress=progress)["all"].raw
    position = {row: i for i, row in enumerate(needed.tolist())}
    query = features[[position[r] for r in query_rows.tolist()]]
    gallery = features[[position[r] for r in gallery_rows.tolist()]]
    tracks = data.info.test_tracks
    distmat = distance_matrix(query, gallery, metric)
    return evaluate(
        distmat, tracks[query_rows, 2], tracks[query_rows, 3], tracks[gallery_rows, 2], tracks[gallery_rows, 3],
        protocol=protocol,
    )
