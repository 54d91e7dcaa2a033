"""The one preprocessing function shared by TorchEmbedder and the ONNX export.

Crops arrive as OpenCV gives them after BGR->RGB: uint8 ``(N, T, H, W, 3)``. The model wants
ImageNet-normalised float ``(N, T, 3, H, W)``. The ONNX export traces this very function into the
graph, so the runtime does no preprocessing in Python.
"""

from __future__ import annotations

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocess_clips(clips: torch.Tensor) -> torch.Tensor:
    """uint8 (or float 0..255) ``(N, T, H, W, 3)`` RGB -> normalised float32 ``(N, T, 3, H, W)``."""
    if clips.dim() != 5 or clips.shape[-1] != 3:
        raise ValueError(f"clips must be (N, T, H, W, 3) RGB, got shape {tuple(clips.shape)}")
    x = clips.to(torch.float32).permute(0, 1, 4, 2, 3) / 255.0
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=x.device).view(1, 1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=x.device).view(1, 1, 3, 1, 1)
    return (x - mean) / std
