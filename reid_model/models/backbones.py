"""Backbone registry: ResNets with the last spatial down-sampling removed (last stride 1), and OSNet.

With last stride 1, a 256x128 frame gives a 16x8 map: ResNet50 -> 2048 channels, ResNet18 -> 512.
``osnet_x0_25`` (``reid_model.models.osnet``, converted from the MSMT17 ONNX) also has stride 16:
128 channels at 16x8. ``build_backbone(name, pretrained)`` builds any of them; every backbone has
``out_channels`` and maps ``(B, 3, H, W) -> (B, C, H/16, W/16)``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

import torch
from torch import nn

logger = logging.getLogger(__name__)


def _resnet(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(weights=None)

    return build


# name -> (constructor, output channels, torchvision weights enum name)
RESNETS: dict[str, tuple[Callable[[], nn.Module], int, str]] = {
    "resnet50": (_resnet("resnet50"), 2048, "ResNet50_Weights"),
    "resnet18": (_resnet("resnet18"), 512, "ResNet18_Weights"),
}

# The whole network down-samples by this much once the last stride is 1.
OUTPUT_STRIDE = 16


class ResNetBackbone(nn.Module):
    """A torchvision ResNet up to layer4, last stride 1: ``(B, 3, H, W) -> (B, C, H/16, W/16)``."""

    def __init__(self, name: str = "resnet50", pretrained: str | Path | None = None) -> None:
        super().__init__()
        if name not in RESNETS:
            raise ValueError(f"unknown backbone {name!r}; choose from {sorted(BACKBONES)}")
        build, self.out_channels, weights_enum = RESNETS[name]
        resnet = build()
        _set_last_stride_1(resnet)
        if pretrained not in (None, "none"):
            state = _pretrained_state(name, weights_enum, pretrained)
            missing, unexpected = resnet.load_state_dict(state, strict=False)
            missing = [k for k in missing if not k.startswith("fc.")]
            if missing:
                raise ValueError(f"pretrained weights for {name} lack {len(missing)} tensors, e.g. {missing[:3]}")
            logger.info("backbone %s initialised from %s", name, pretrained)
        self.name = name
        self.body = nn.Sequential(
            resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool,
            resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def _osnet(pretrained: str | Path | None) -> nn.Module:
    from reid_model.models.osnet import OSNetBackbone

    return OSNetBackbone(pretrained)


# name -> builder(pretrained) of a module with ``out_channels``. resnet50 is the paper's (default).
BACKBONES: dict[str, Callable[[str | Path | None], nn.Module]] = {
    "resnet50": lambda pretrained: ResNetBackbone("resnet50", pretrained),
    "resnet18": lambda pretrained: ResNetBackbone("resnet18", pretrained),
    "osnet_x0_25": _osnet,
}
# The ``pretrained`` value a training run uses when none is given.
DEFAULT_PRETRAINED = {"resnet50": "imagenet", "resnet18": "imagenet", "osnet_x0_25": "msmt17"}


def build_backbone(name: str, pretrained: str | Path | None = None) -> nn.Module:
    """The backbone ``name`` (ValueError listing the choices when unknown)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose from {sorted(BACKBONES)}")
    return BACKBONES[name](pretrained)


def _set_last_stride_1(resnet: nn.Module) -> None:
    block = resnet.layer4[0]
    # Bottleneck strides in conv2, BasicBlock in conv1; the shortcut strides in downsample[0].
    conv = block.conv2 if hasattr(block, "conv3") else block.conv1
    conv.stride = (1, 1)
    if block.downsample is not None:
        block.downsample[0].stride = (1, 1)


def _pretrained_state(name: str, weights_enum: str, pretrained: str | Path) -> dict[str, torch.Tensor]:
    """ImageNet weights from torchvision's cache (or download), or a local state-dict file."""
    if str(pretrained) != "imagenet":
        path = Path(pretrained)
        if not path.is_file():
            raise FileNotFoundError(f"pretrained backbone weights not found: {path} (expected a torchvision {name} state dict)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        return state.get("state_dict", state) if isinstance(state, dict) else state
    import torchvision

    weights = getattr(torchvision.models, weights_enum).IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    try:
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # offline: urllib raises URLError, hub may raise RuntimeError
        raise FileNotFoundError(
            f"ImageNet weights for {name} are not cached at {cached} and could not be downloaded ({exc}). "
            f"Download {weights.url} on a connected machine and pass --pretrained PATH, or use --pretrained none."
        ) from exc
