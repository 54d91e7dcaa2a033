"""Sequence features for ``mars_eval``: embedder choice, AAS extraction, the feature cache, ``--features``.

The AAS extraction itself (``extract_features``, ``SequenceFeatures``) lives in
``reid_model.evaluate``, shared with ``reid_model train --eval-every``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from reid_model.evaluate import ClipSetting, SequenceFeatures

log = logging.getLogger(__name__)

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


class ImageModelEmbedder:
    """A per-image ONNX re-ID model (e.g. OSNet) as an AAS clip embedder: each frame embedded,
    L2-normalised and averaged (``OnnxImageEmbedder``). An image model has no raw/BN pair, so
    ``embed_with_bn`` returns its one feature twice."""

    def __init__(self, path: Path, providers: str | None, batch_size: int, seq_len: int = 4) -> None:
        from export.onnx_embedder import OnnxImageEmbedder

        self.inner = OnnxImageEmbedder(path, providers=providers, batch_size=batch_size * seq_len, seq_len=seq_len)
        self.seq_len, self.input_size, self.feature_dim = seq_len, self.inner.input_size, self.inner.feature_dim

    def embed(self, clips: np.ndarray) -> np.ndarray:
        return self.inner.embed(clips)

    def embed_with_bn(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features = self.inner.embed(clips)
        return features, features


def _onnx_input_rank(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return len(model.graph.input[0].type.tensor_type.shape.dim)


def _onnx_embedder(path: Path, device: str | None, batch_size: int):
    """``OnnxClipEmbedder`` for an STA export (5-D clip input), ``ImageModelEmbedder`` for a 4-D image model."""
    from export.onnx_embedder import OnnxClipEmbedder

    providers = None if device is None else device.split(":")[0]
    if _onnx_input_rank(path) == 4:
        log.info("%s takes single images: frames embedded, L2-normalised and averaged", path.name)
        return ImageModelEmbedder(path, providers, batch_size)
    return OnnxClipEmbedder(path, providers=providers, batch_size=batch_size)


EMBEDDERS: dict[str, Callable] = {".pt": _torch_embedder, ".pth": _torch_embedder, ".onnx": _onnx_embedder}


def load_embedder(path: Path, device: str | None = None, batch_size: int = 32):
    """``TorchEmbedder`` for a ``.pt``/``.pth`` checkpoint; for ``.onnx`` an ``OnnxClipEmbedder`` (STA
    export) or ``ImageModelEmbedder`` (per-image model, frames averaged)."""
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

