"""The ``Embedder`` seam: clips of crops in, one raw feature per clip out.

PyTorch (``reid_model.inference.TorchEmbedder``) and ONNX Runtime
(``export.onnx_embedder.OnnxClipEmbedder`` / ``OnnxImageEmbedder``) backends satisfy it,
so the tracker never cares which one runs.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Embeds clips of person crops.

    Attributes:
        input_size: ``(height, width)`` every crop must have.
        seq_len: frames per clip the model was built for (clips of other lengths may work).
        feature_dim: length D of the returned features.
    """

    input_size: tuple[int, int]
    seq_len: int
    feature_dim: int

    def embed(self, clips: np.ndarray) -> np.ndarray:
        """``(N, T, H, W, 3)`` uint8 RGB clips -> ``(N, D)`` float32 raw features."""
        ...


def validate_clips(clips: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """Check ``clips`` is uint8 ``(N, T, H, W, 3)`` with ``(H, W) == input_size``; every backend calls it.

    Raises:
        ValueError: saying what was expected and what arrived.
    """
    clips = np.asarray(clips)
    if clips.dtype != np.uint8:
        raise ValueError(f"clips must be uint8 RGB, got dtype {clips.dtype}")
    if clips.ndim != 5 or clips.shape[-1] != 3 or clips.shape[1] < 1:
        raise ValueError(f"clips must be (N, T, H, W, 3) with T >= 1, got shape {clips.shape}")
    if tuple(clips.shape[2:4]) != tuple(input_size):
        raise ValueError(
            f"crops must be {input_size[0]}x{input_size[1]} (HxW), got {clips.shape[2]}x{clips.shape[3]}"
        )
    return clips
