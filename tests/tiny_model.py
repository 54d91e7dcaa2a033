"""A tiny random STA checkpoint for tests: resnet18, small frames, non-trivial BN statistics."""

from __future__ import annotations

from pathlib import Path


def save_tiny_checkpoint(path: Path, num_classes: int = 5, height: int = 64, width: int = 32,
                         seq_len: int = 4, seed: int = 0) -> Path:
    """Write a random resnet18 STA checkpoint to ``path``; raw and BN features differ."""
    import torch

    from reid_model.checkpoint import save_checkpoint
    from reid_model.models.sta import STA, ModelConfig

    torch.manual_seed(seed)
    model = STA(ModelConfig(backbone="resnet18", num_classes=num_classes, height=height, width=width,
                            seq_len=seq_len))
    # Non-trivial BatchNorm statistics, so raw and BN features differ.
    model.bn.running_mean.normal_()
    model.bn.running_var.uniform_(0.5, 2.0)
    return save_checkpoint(path, {"model_config": model.config.to_dict(), "model": model.state_dict()})
