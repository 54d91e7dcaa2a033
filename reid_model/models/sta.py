"""STA (spatial-temporal attention) on a last-stride-1 ResNet (the paper's baseline) or OSNet x0.25.

Pipeline (paper Fig. 2 and Fig. 4): clip ``(B, N, 3, H, W)`` -> backbone maps ``f_n`` ->
stripe attention (Eq. 1-4) -> clip map -> GAP -> FC1 (the **raw feature**) -> BatchNorm1d (the
BN feature) -> identity classifier (training logits).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from reid_model.models.backbones import BACKBONES, OUTPUT_STRIDE, build_backbone

_EPS = 1e-12


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an STA model; stored in every checkpoint.

    Attributes:
        backbone: a name in ``BACKBONES``.
        num_classes: training identities (the classifier's outputs).
        feature_dim: FC1 output, the raw feature length (512 in the paper).
        num_stripes: M horizontal stripes of the attention (4 in the paper).
        height, width: input frame size.
        seq_len: frames per clip used in training and export (N = 4 in the paper).
        fusion: the original STA's feature fusion (top-scoring frame per stripe beside the
            weighted sum); off for the paper's vanilla baseline.
    """

    backbone: str = "resnet50"
    num_classes: int = 625
    feature_dim: int = 512
    num_stripes: int = 4
    height: int = 256
    width: int = 128
    seq_len: int = 4
    fusion: bool = False

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; choose from {sorted(BACKBONES)}")
        for name in ("num_classes", "feature_dim", "num_stripes", "seq_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.height % OUTPUT_STRIDE or self.width % OUTPUT_STRIDE:
            raise ValueError(f"height and width must be multiples of {OUTPUT_STRIDE}, got {self.height}x{self.width}")
        map_height = self.height // OUTPUT_STRIDE
        if map_height % self.num_stripes:
            raise ValueError(
                f"feature map height {map_height} (input height {self.height}) is not divisible by "
                f"num_stripes={self.num_stripes}; use a height that is a multiple of {OUTPUT_STRIDE * self.num_stripes}"
            )

    def to_dict(self) -> dict:
        return asdict(self)


class STAOutput(NamedTuple):
    """What ``STA.forward`` returns.

    raw_feature: ``(B, feature_dim)`` FC1 output, no activation (used by RFU and AAS).
    bn_feature: ``(B, feature_dim)`` after BatchNorm1d.
    logits: ``(B, num_classes)`` in training mode, else None.
    attention: ``(B, N, M)`` the spatial-temporal scores S(n, m) of Eq. 4.
    """

    raw_feature: torch.Tensor
    bn_feature: torch.Tensor
    logits: torch.Tensor | None
    attention: torch.Tensor


def stripe_attention(maps: torch.Tensor, num_stripes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 1-4 of the paper and the weighted clip map.

    Args:
        maps: ``(B, N, C, H, W)`` backbone feature maps of the N frames of each clip.
        num_stripes: M; H must be divisible by it.

    Returns:
        ``(clip_map (B, C, H, W), scores (B, N, M))`` where the clip map of stripe m is
        ``sum_n S(n, m) * f_{n, m}``.
    """
    b, n, c, h, w = maps.shape
    if h % num_stripes:
        raise ValueError(f"feature map height {h} is not divisible by num_stripes={num_stripes}")
    # Eq. 1: per-position energy (sum over channels of f^2), normalised over the whole map.
    energy = maps.pow(2).sum(dim=2)  # (B, N, H, W)
    a = energy / energy.sum(dim=(-2, -1), keepdim=True).clamp_min(_EPS)
    # Eq. 2-3: M horizontal stripes; s_{n,m} sums a_n over stripe m.
    s = a.reshape(b, n, num_stripes, h // num_stripes, w).sum(dim=(-2, -1))  # (B, N, M)
    # Eq. 4: normalise each stripe's scores over the frames.
    scores = s / s.sum(dim=1, keepdim=True).clamp_min(_EPS)
    stripes = maps.reshape(b, n, c, num_stripes, h // num_stripes, w)
    weighted = (scores[:, :, None, :, None, None] * stripes).sum(dim=1)  # (B, C, M, H/M, W)
    return weighted.reshape(b, c, h, w), scores


def top_frame_map(maps: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Original STA feature fusion: per stripe, the map of the highest-scoring frame.

    ``maps (B, N, C, H, W)``, ``scores (B, N, M)`` -> ``(B, C, H, W)``.
    """
    b, n, c, h, w = maps.shape
    m = scores.shape[-1]
    best = scores.argmax(dim=1)  # (B, M)
    stripes = maps.reshape(b, n, c, m, h // m, w)
    index = best[:, None, None, :, None, None].expand(b, 1, c, m, h // m, w)
    return stripes.gather(1, index).reshape(b, c, h, w)


class STA(nn.Module):
    """The STA video re-ID model.

    ``forward(clips (B, N, 3, H, W) normalised float) -> STAOutput``. Any N >= 1 works.
    """

    def __init__(self, config: ModelConfig, pretrained: str | Path | None = None) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone, pretrained)
        channels = self.backbone.out_channels * (2 if config.fusion else 1)
        self.fc1 = nn.Linear(channels, config.feature_dim)
        self.bn = nn.BatchNorm1d(config.feature_dim)
        self.classifier = nn.Linear(config.feature_dim, config.num_classes, bias=False)
        nn.init.kaiming_normal_(self.fc1.weight, mode="fan_out")
        nn.init.zeros_(self.fc1.bias)
        nn.init.normal_(self.classifier.weight, std=0.001)
        self._init_from_backbone_head()
        self.last_attention: torch.Tensor | None = None

    def _init_from_backbone_head(self) -> None:
        """FC1 and BN from the backbone's own re-ID head when it has one of the right shape (OSNet:
        fc Linear -> FC1, fc BN1d -> BN; see ``reid_model.models.osnet``)."""
        head = getattr(self.backbone, "head_weights", None)
        if head is None:
            return
        weights = head()
        if weights["fc1.weight"].shape != self.fc1.weight.shape:
            return  # fusion doubles the input, or another feature_dim: keep the random FC1
        with torch.no_grad():
            self.fc1.weight.copy_(weights["fc1.weight"])
            self.fc1.bias.copy_(weights["fc1.bias"])
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(self.bn, name).copy_(weights[f"bn.{name}"])

    def forward(self, clips: torch.Tensor) -> STAOutput:
        if clips.dim() != 5 or clips.shape[2] != 3:
            raise ValueError(f"clips must be (B, N, 3, H, W), got shape {tuple(clips.shape)}")
        b, n = clips.shape[:2]
        maps = self.backbone(clips.flatten(0, 1))
        maps = maps.reshape(b, n, *maps.shape[1:])
        clip_map, scores = stripe_attention(maps, self.config.num_stripes)
        if self.config.fusion:
            clip_map = torch.cat([clip_map, top_frame_map(maps, scores)], dim=1)
        pooled = clip_map.mean(dim=(-2, -1))  # GAP
        raw = self.fc1(pooled)
        bn = self.bn(raw)
        logits = self.classifier(bn) if self.training else None
        self.last_attention = scores.detach()
        return STAOutput(raw, bn, logits, scores)


def build_model(config: ModelConfig, pretrained: str | Path | None = None) -> STA:
    """An STA model for ``config``; ``pretrained`` = None/"none", "imagenet" or a state-dict path."""
    return STA(config, pretrained)
