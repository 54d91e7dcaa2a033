"""``TorchEmbedder``: a trained STA checkpoint behind the ``Embedder`` protocol."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mcreid.embedder import validate_clips
from mcreid.malloc import keep_freed_memory
from reid_model.checkpoint import load_model
from reid_model.preprocess import preprocess_clips


class TorchEmbedder:
    """Embeds uint8 RGB clips with a PyTorch STA checkpoint, batched, without gradients.

    Args:
        checkpoint: a ``.pt`` file from ``reid_model train``.
        device: "cpu", "cuda", "cuda:1"...; default CUDA when available.
        batch_size: clips per forward pass.

    On the CPU it calls ``keep_freed_memory()`` (glibc), so activations are not faulted back in
    every pass: the ResNet50 STA at 8 clips ran 1.5x-2x faster (``mcreid/malloc.py``).
    """

    def __init__(self, checkpoint: str | Path, device: str | None = None, batch_size: int = 16) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if self.device.type == "cpu":
            keep_freed_memory()
        self.model, self.config = load_model(checkpoint, map_location=self.device)
        self.model.to(self.device).eval()
        if self.config.backbone.startswith("osnet"):
            # OSNet's depthwise convs run several times faster channels-last on the CPU (oneDNN).
            self.model.to(memory_format=torch.channels_last)
        self.batch_size = batch_size
        self.input_size = (self.config.height, self.config.width)
        self.seq_len = self.config.seq_len
        self.feature_dim = self.config.feature_dim

    def embed(self, clips: np.ndarray) -> np.ndarray:
        """``(N, T, H, W, 3)`` uint8 RGB -> ``(N, feature_dim)`` float32 raw features."""
        return self.embed_with_bn(clips)[0]

    def embed_with_bn(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw and BN features, each ``(N, feature_dim)`` float32."""
        clips = validate_clips(clips, self.input_size)
        raws, bns = [], []
        with torch.inference_mode():
            for start in range(0, len(clips), self.batch_size):
                batch = torch.from_numpy(clips[start : start + self.batch_size]).to(self.device)
                out = self.model(preprocess_clips(batch))
                raws.append(out.raw_feature.float().cpu().numpy())
                bns.append(out.bn_feature.float().cpu().numpy())
        if not raws:
            empty = np.zeros((0, self.feature_dim), np.float32)
            return empty, empty.copy()
        return np.concatenate(raws), np.concatenate(bns)
