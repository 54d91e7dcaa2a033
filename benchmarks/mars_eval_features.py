"""Sequence features for ``mars_eval``: embedder choice, AAS extraction, the feature cache, ``--features``.

A test tracklet's feature is the mean of its clip features (AAS, paper Eq. 5), kept both raw
(FC1 output) and after BN. Several clip settings (``1``, ``4``, ``all``) come from ONE pass over
the images: the clips of ``1`` and ``k`` are a subset of the ``all`` clips, so every ``all`` clip
is embedded once and each setting averages its own subset.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ClipSetting = int | str


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


def parse_clips(text: str) -> ClipSetting:
    """``"all"``, ``"restricted"`` or a positive int from the command line."""
    if text in ("all", "restricted"):
        return text
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"--clips must be a positive integer, 'all' or 'restricted', got {text!r}") from None
    if value < 1:
        raise ValueError(f"--clips must be >= 1, got {value}")
    return value


def _torch_embedder(path: Path, device: str | None, batch_size: int):
    from reid_model.inference import TorchEmbedder

    return TorchEmbedder(path, device=device, batch_size=batch_size)


def _onnx_embedder(path: Path, device: str | None, batch_size: int):
    from export.onnx_embedder import OnnxClipEmbedder

    providers = None if device is None else device.split(":")[0]
    return OnnxClipEmbedder(path, providers=providers, batch_size=batch_size)


EMBEDDERS: dict[str, Callable] = {".pt": _torch_embedder, ".pth": _torch_embedder, ".onnx": _onnx_embedder}


def load_embedder(path: Path, device: str | None = None, batch_size: int = 32):
    """``TorchEmbedder`` for a ``.pt``/``.pth`` checkpoint, ``OnnxClipEmbedder`` for ``.onnx``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EMBEDDERS:
        raise ValueError(f"--model must end in one of {', '.join(EMBEDDERS)}, got {path.name!r}")
    if not path.is_file():
        raise FileNotFoundError(f"model not found: {path} (expected a checkpoint from `reid_model train` or an .onnx from mcreid-export)")
    return EMBEDDERS[suffix](path, device, batch_size)


def cache_path(out: Path, model_sha: str, setting: ClipSetting, seq_len: int, size: tuple[int, int],
               seed: int, test_tracks: np.ndarray) -> Path:
    """The cache file of one (model, clip setting, clip shape, split) combination under ``out``."""
    split = hashlib.sha256(np.ascontiguousarray(test_tracks, dtype=np.int64).tobytes()).hexdigest()[:8]
    random_part = f"_seed{seed}" if setting in (1, "restricted") else ""
    name = f"features_{model_sha[:16]}_clips-{setting}{random_part}_T{seq_len}_{size[0]}x{size[1]}_split{split}.npz"
    return Path(out) / "feature_cache" / name


def save_features(path: Path, features: SequenceFeatures, meta: dict) -> None:
    """Write ``features``/``bn_features`` (the ``--features`` format) plus a JSON ``meta``, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is shared like any result file
        with os.fdopen(fd, "wb") as f:
            arrays = {"features": features.raw, "meta": np.array(json.dumps(meta))}
            if features.bn is not None:
                arrays["bn_features"] = features.bn
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_features(path: Path, num_tracklets: int) -> SequenceFeatures:
    """Read a ``--features`` file: ``features (N, D)`` and optional ``bn_features (N, D)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an npz, no ``features`` array, or a row count other than ``num_tracklets``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"features file not found: {path} (expected an .npz with 'features' of shape ({num_tracklets}, D), "
            "one row per row of tracks_test_info.mat)"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:
        raise ValueError(f"cannot read features file {path} as .npz: {exc}") from exc
    if "features" not in arrays:
        raise ValueError(f"{path} has no 'features' array (found {sorted(arrays)})")
    out = {}
    for key in ("features", "bn_features"):
        if key not in arrays:
            continue
        arr = arrays[key]
        if arr.ndim != 2 or arr.shape[0] != num_tracklets:
            raise ValueError(
                f"{path}: '{key}' must have shape ({num_tracklets}, D), one row per row of tracks_test_info.mat, "
                f"got {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"{path}: '{key}' holds NaN or infinite values")
        out[key] = arr.astype(np.float32, copy=False)
    return SequenceFeatures(raw=out["features"], bn=out.get("bn_features"))


def _subset_positions(num_frames: int, seq_len: int, setting: ClipSetting, seed: int, index: int) -> np.ndarray:
    """Which of the tracklet's ``all`` clips the clips of ``setting`` are (same RNG as TestClipDataset)."""
    from reid_model.data.sampling import test_clip_indices

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
        num_frames = len(self.tracklets[item.index].paths)
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
    from tqdm import tqdm

    from reid_model.data.sampling import TestClipDataset, test_clip_loader

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
