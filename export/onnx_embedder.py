"""ONNX Runtime embedders behind the ``Embedder`` protocol: onnxruntime + numpy, never torch.

- :class:`OnnxClipEmbedder` runs an STA export from ``mcreid-export``: uint8 clips go straight
  into the graph (cast, ImageNet normalisation and layout change are inside it).
- :class:`OnnxImageEmbedder` runs a per-image re-ID model such as OSNet
  (``weights/osnet_x0_25_msmt17.onnx``: ``[B, 3, 256, 128]`` normalised RGB -> 512-d), embeds
  every frame of a clip and averages the L2-normalised frame features into the clip feature.

Execution providers (TensorRT -> CUDA -> CPU), threads and errors: see :mod:`export.runtime`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from export.metadata import ExportMetadata
from mcreid.embedder import validate_clips
from export.runtime import create_session

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


class OnnxClipEmbedder:
    """An STA export (from ``mcreid-export``) on onnxruntime.

    Args:
        path: the ``.onnx`` file; its metadata gives the input size, seq_len and feature_dim.
        providers: onnxruntime provider names (or "tensorrt", "cuda", "cpu") in order of
            preference; None picks TensorRT -> CUDA -> CPU from what is usable here.
        batch_size: clips per ``session.run``.
        threads: intra-op CPU threads (default: the cores this process may use).

    Attributes:
        input_size: ``(H, W)``; seq_len; feature_dim; metadata (:class:`ExportMetadata`);
        providers: the providers the session actually runs on.
    """

    def __init__(self, path: str | Path, providers: Sequence[str] | str | None = None,
                 batch_size: int = 16, threads: int | None = None) -> None:
        _check_batch_size(batch_size)
        self.path = Path(path)
        self.session = create_session(self.path, providers, threads, what="STA ONNX export")
        props = self.session.get_modelmeta().custom_metadata_map
        self.metadata = ExportMetadata.from_props(props, source=str(self.path))
        outputs = [o.name for o in self.session.get_outputs()]
        if "raw_feature" not in outputs or "bn_feature" not in outputs:
            raise ValueError(f"{self.path} must have outputs raw_feature and bn_feature, has {outputs}")
        self._input = self.session.get_inputs()[0].name
        self.batch_size = batch_size
        self.input_size = (self.metadata.input_height, self.metadata.input_width)
        self.seq_len = self.metadata.seq_len
        self.feature_dim = self.metadata.feature_dim
        self.providers = self.session.get_providers()

    def embed(self, clips: np.ndarray) -> np.ndarray:
        """``(N, T, H, W, 3)`` uint8 RGB clips -> ``(N, feature_dim)`` float32 raw features."""
        return self._run(clips, ["raw_feature"])[0]

    def embed_with_bn(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw and BN features of ``(N, T, H, W, 3)`` uint8 clips, each ``(N, feature_dim)`` float32."""
        raw, bn = self._run(clips, ["raw_feature", "bn_feature"])
        return raw, bn

    def _run(self, clips: np.ndarray, names: list[str]) -> list[np.ndarray]:
        clips = validate_clips(clips, self.input_size)
        results: list[list[np.ndarray]] = [[] for _ in names]
        for start in range(0, len(clips), self.batch_size):
            batch = np.ascontiguousarray(clips[start : start + self.batch_size])
            for store, out in zip(results, self.session.run(names, {self._input: batch})):
                store.append(out.astype(np.float32, copy=False))
        if not len(clips):
            return [np.zeros((0, self.feature_dim), np.float32) for _ in names]
        return [np.concatenate(store) for store in results]


class OnnxImageEmbedder:
    """A per-image re-ID ONNX model (input ``[B, 3, H, W]`` normalised RGB) as a clip embedder.

    Every frame is embedded on its own; the clip feature is the mean over frames of the
    L2-normalised frame features (``normalize_frames=True``). Why normalise first: the direction
    of the mean of unit vectors is the direction with the largest summed cosine similarity to the
    frames, which is the metric the tracker matches signatures with; every frame gets the same
    vote whatever its activation scale (OSNet's frame norms range 29-44 on the 24 real crops);
    and the clip feature's norm (1 when all frames agree) tells how consistent the clip is. On
    the real crops the choice matters little: with one frame of another person in a 4-frame clip,
    the margin of the true match over the best wrong identity averages 0.179 normalised vs 0.171
    plain (same identity ranked first in 91% vs 92% of the 182 such clips).

    Args:
        path: the ``.onnx`` file, e.g. ``weights/osnet_x0_25_msmt17.onnx``.
        providers: as for :class:`OnnxClipEmbedder`.
        batch_size: frames per ``session.run``.
        threads: intra-op CPU threads (default: the cores this process may use).
        seq_len: frames per clip the caller should build (the model itself takes any T).
        normalize_frames: L2-normalise each frame feature before averaging.
        input_size: ``(H, W)``; only needed when the model's input height/width are dynamic.

    Attributes:
        input_size: ``(H, W)``; seq_len; feature_dim; providers (what the session runs on).
    """

    def __init__(self, path: str | Path, providers: Sequence[str] | str | None = None,
                 batch_size: int = 32, threads: int | None = None, seq_len: int = 4,
                 normalize_frames: bool = True, input_size: tuple[int, int] | None = None) -> None:
        _check_batch_size(batch_size)
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        self.path = Path(path)
        self.session = create_session(self.path, providers, threads, what="per-image re-ID ONNX model")
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        if len(inp.shape) != 4 or inp.shape[1] not in (3, "3"):
            raise ValueError(f"{self.path}: expected an image model with input [B, 3, H, W], got {inp.shape}")
        self.input_size = _static_size(inp.shape[2:], input_size, self.path)
        self._input, self._output = inp.name, out.name
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.normalize_frames = normalize_frames
        dim = out.shape[-1]
        self.feature_dim = int(dim) if isinstance(dim, int) else self._probe_dim()
        self.providers = self.session.get_providers()
        # (x / 255 - mean) / std == x * scale + offset, one fused pass over the pixels.
        self._scale = (1.0 / (255.0 * IMAGENET_STD)).reshape(1, 3, 1, 1)
        self._offset = (-IMAGENET_MEAN / IMAGENET_STD).reshape(1, 3, 1, 1)

    def embed(self, clips: np.ndarray) -> np.ndarray:
        """``(N, T, H, W, 3)`` uint8 RGB clips -> ``(N, feature_dim)`` float32 clip features."""
        frames = self.embed_frames(clips)
        return frames.mean(axis=1, dtype=np.float64).astype(np.float32)

    def embed_frames(self, clips: np.ndarray) -> np.ndarray:
        """Per-frame features ``(N, T, feature_dim)`` float32 (L2-normalised if ``normalize_frames``)."""
        clips = validate_clips(clips, self.input_size)
        n, t = clips.shape[:2]
        images = clips.reshape(n * t, *clips.shape[2:])
        features = np.empty((n * t, self.feature_dim), np.float32)
        for start in range(0, len(images), self.batch_size):
            stop = min(start + self.batch_size, len(images))
            batch = self._preprocess(images[start:stop])
            features[start:stop] = self.session.run([self._output], {self._input: batch})[0]
        if self.normalize_frames:
            features /= np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
        return features.reshape(n, t, self.feature_dim)

    def _preprocess(self, images: np.ndarray) -> np.ndarray:
        """uint8 ``(B, H, W, 3)`` RGB -> float32 ``(B, 3, H, W)`` ImageNet-normalised."""
        x = images.transpose(0, 3, 1, 2).astype(np.float32)
        x *= self._scale
        x += self._offset
        return np.ascontiguousarray(x)

    def _probe_dim(self) -> int:
        probe = np.zeros((1, 3, *self.input_size), np.float32)
        return int(self.session.run([self._output], {self._input: probe})[0].shape[-1])


def _static_size(dims: Sequence[object], given: tuple[int, int] | None, path: Path) -> tuple[int, int]:
    if all(isinstance(d, int) for d in dims):
        size = (int(dims[0]), int(dims[1]))  # type: ignore[call-overload]
        if given is not None and tuple(given) != size:
            raise ValueError(f"{path} takes {size[0]}x{size[1]} crops, input_size={given} was passed")
        return size
    if given is None:
        raise ValueError(f"{path} has a dynamic input size {list(dims)}; pass input_size=(H, W)")
    return (int(given[0]), int(given[1]))
