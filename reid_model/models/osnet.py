"""OSNet x0.25 (MSMT17 re-ID weights) as an STA backbone, converted from its ONNX file.

Why a converter and not a native OSNet module: the only OSNet weights on these machines are an
ONNX export (``weights/osnet_x0_25_msmt17.onnx``) whose BatchNorms are folded into the convs, so a
native torchreid module would not load its initializers without re-deriving every fold. ``onnx2torch``
(maintained, MIT) rebuilds the graph as a ``torch.fx.GraphModule`` whose convs are ordinary trainable
``nn.Conv2d``. It fails on the head's 1-D BatchNormalization, so the graph is cut at the input of the
last GlobalAveragePool (the conv5 map, ``(B, 128, H/16, W/16)``: 16x8 at 256x128, the same stride as
the last-stride-1 ResNets) and the head is read from the initializers instead.

How OSNet's head maps onto STA (``head_weights``): OSNet's embedding is
``ReLU(BN1d(Linear_128->512(GAP(map))))``. STA's FC1 is initialised from that Linear and STA's BN
from that BN1d (affine and running statistics); the ReLU is dropped, because the paper's raw feature
(FC1 output, used by RFU and AAS) and BN feature have no activation. GAP and FC1 are linear, so an
untrained STA-OSNet's raw feature is OSNet's pre-BN feature of the attention-weighted mean map, and
with equal attention it is exactly the mean of OSNet's per-frame pre-BN features: the model starts
from the image model and training only has to learn what the clip adds.

The ONNX file is needed to build the architecture even when a checkpoint supplies the weights; it is
found through ``mcreid.assets`` (``$MCREID_ASSETS`` or ``../shared/data``) as ``OSNET_ASSET``.
"""

from __future__ import annotations

import copy
import functools
import logging
from pathlib import Path

import torch
from torch import nn

logger = logging.getLogger(__name__)

OSNET_ASSET = "weights/osnet_x0_25_msmt17.onnx"
OSNET_CHANNELS = 128
# Accepted ``pretrained`` values that mean "the ONNX found through mcreid.assets".
OSNET_DEFAULT_WEIGHTS = "msmt17"


def _needs(package: str, exc: ImportError) -> ImportError:
    return ImportError(
        f"the osnet_x0_25 backbone needs {package} (converting the OSNet ONNX): pip install -e '.[onnx]' ({exc})"
    )


def osnet_onnx_path(pretrained: str | Path | None) -> Path:
    """The OSNet ONNX file for ``pretrained``: None, ``"msmt17"`` -> the asset; else a path to an ``.onnx``.

    Raises:
        ValueError: ``"none"``/``"imagenet"`` (the architecture itself comes from the ONNX).
        FileNotFoundError: the file is missing; names it and how to point to it.
    """
    if pretrained is None or str(pretrained) == OSNET_DEFAULT_WEIGHTS:
        from mcreid.assets import asset_path

        return asset_path(OSNET_ASSET, "the OSNet x0.25 MSMT17 ONNX (the osnet_x0_25 backbone's graph and weights)",
                          "or pass --pretrained PATH/TO/osnet_x0_25_msmt17.onnx")
    if str(pretrained) in ("none", "imagenet"):
        raise ValueError(
            f"osnet_x0_25 is built from its ONNX file, so --pretrained {pretrained} is not possible; "
            f"use --pretrained {OSNET_DEFAULT_WEIGHTS} (the asset {OSNET_ASSET}) or a path to that .onnx"
        )
    path = Path(pretrained)
    if not path.is_file():
        raise FileNotFoundError(f"OSNet ONNX not found: {path} (expected osnet_x0_25_msmt17.onnx, see shared/data/SOURCES.md)")
    return path


def _last_pool_input(model) -> str:
    pools = [node for node in model.graph.node if node.op_type == "GlobalAveragePool"]
    if not pools:
        raise ValueError("the OSNet ONNX has no GlobalAveragePool node; is it an OSNet re-ID export?")
    return pools[-1].input[0]


def convert_osnet(path: Path) -> nn.Module:
    """The ONNX graph up to the last conv map as a ``torch.fx.GraphModule``: ``(B,3,H,W) -> (B,128,H/16,W/16)``.

    Each call returns a fresh copy of one conversion per file (converting takes seconds).
    """
    return copy.deepcopy(_convert_cached(str(Path(path).resolve()), Path(path).stat().st_mtime_ns))


@functools.lru_cache(maxsize=2)
def _convert_cached(path: str, mtime_ns: int) -> nn.Module:
    try:
        import onnx
        import onnx.utils
    except ImportError as exc:
        raise _needs("onnx", exc) from exc
    try:
        from onnx2torch import convert
    except ImportError as exc:
        raise _needs("onnx2torch", exc) from exc
    model = onnx.load(str(path))
    body = onnx.utils.Extractor(model).extract_model([model.graph.input[0].name], [_last_pool_input(model)])
    return convert(body)


def head_weights(path: Path) -> dict[str, torch.Tensor]:
    """OSNet's head (Gemm + BatchNormalization after the last pool) as STA ``fc1.*``/``bn.*`` tensors."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = {i.name: i for i in model.graph.initializer}
    consumers = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    gemm = next((n for n in model.graph.node if n.op_type == "Gemm"), None)
    if gemm is None:
        raise ValueError(f"{path}: no Gemm (fc) node after the pooling; cannot initialise FC1 from OSNet")
    bn = next((n for n in consumers.get(gemm.output[0], []) if n.op_type == "BatchNormalization"), None)
    if bn is None:
        raise ValueError(f"{path}: the fc Gemm is not followed by a BatchNormalization")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in gemm.attribute}
    weight = numpy_helper.to_array(init[gemm.input[1]])
    if not attrs.get("transB", 0):
        weight = weight.T
    arrays = {
        "fc1.weight": weight, "fc1.bias": numpy_helper.to_array(init[gemm.input[2]]),
        "bn.weight": numpy_helper.to_array(init[bn.input[1]]), "bn.bias": numpy_helper.to_array(init[bn.input[2]]),
        "bn.running_mean": numpy_helper.to_array(init[bn.input[3]]),
        "bn.running_var": numpy_helper.to_array(init[bn.input[4]]),
    }
    return {k: torch.from_numpy(v.copy()).float() for k, v in arrays.items()}


class OSNetBackbone(nn.Module):
    """OSNet x0.25 up to conv5 (ReLU'd): ``(B, 3, H, W) -> (B, 128, H/16, W/16)``.

    Args:
        pretrained: None or ``"msmt17"`` (the asset ``OSNET_ASSET``), or a path to the ``.onnx``.
    """

    out_channels = OSNET_CHANNELS

    def __init__(self, pretrained: str | Path | None = None) -> None:
        super().__init__()
        self.onnx_path = osnet_onnx_path(pretrained)
        self.body = convert_osnet(self.onnx_path)
        self.name = "osnet_x0_25"
        logger.info("backbone osnet_x0_25 converted from %s", self.onnx_path)

    def head_weights(self) -> dict[str, torch.Tensor]:
        """OSNet's fc/BN head as STA ``fc1``/``bn`` tensors (see the module docstring)."""
        return head_weights(self.onnx_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
