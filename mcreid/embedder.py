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
