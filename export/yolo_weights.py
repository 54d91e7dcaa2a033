"""A PyTorch YOLO detector rebuilt from an Ultralytics ONNX export, so Ultralytics can export it again.

The bundled detector is an Ultralytics YOLOv8n ONNX whose weights onnxruntime quantised dynamically
(``ConvInteger`` with per-tensor uint8 weights). Ultralytics can export only from PyTorch, and the
original ``yolov8n.pt`` does not reach these machines, so we rebuild it: Ultralytics builds the
architecture from its own YAML (``yolov8n.yaml``, shipped inside the package), and every conv takes
its weights from the ONNX initializers of the same name, dequantised (``(q - zero_point) * scale``).
The ONNX was exported from the *fused* model (BatchNorm folded into the conv bias), so each
``Conv`` gets the folded weights and an identity BatchNorm carrying the bias; Ultralytics fuses it
again when it exports. Plain float initializers (an fp32 ONNX) load the same way.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

QUANT_SUFFIX = ".weight_quantized"


def onnx_conv_weights(path: str | Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray | None]], dict[str, str]]:
    """``{conv module name: (float weight, bias or None)}`` and the file's metadata.

    Raises:
        FileNotFoundError: ``path`` is missing.
        ValueError: the file holds no conv weights by Ultralytics' module names.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"detector ONNX not found: {path}; expected an Ultralytics YOLO detect export")
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    arrays = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    weights: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for name, value in arrays.items():
        if name.endswith(QUANT_SUFFIX):
            module = name[: -len(QUANT_SUFFIX)]
            scale = arrays[f"{module}.weight_scale"].astype(np.float32)
            zero = arrays[f"{module}.weight_zero_point"].astype(np.float32)
            if scale.ndim == 1:  # per-channel: one scale per output channel
                shape = (-1,) + (1,) * (value.ndim - 1)
                scale, zero = scale.reshape(shape), zero.reshape(shape)
            weight = (value.astype(np.float32) - zero) * scale
        elif name.endswith(".weight") and value.ndim == 4:
            module, weight = name[: -len(".weight")], value.astype(np.float32)
        else:
            continue
        bias = arrays.get(f"{module}.bias")
        weights[module] = (weight, None if bias is None else bias.astype(np.float32))
    if not weights:
        raise ValueError(f"{path} holds no conv weights named like an Ultralytics export (model.0.conv.weight...); "
                         "expected a YOLO detect ONNX exported by Ultralytics")
    meta = {prop.key: prop.value for prop in model.metadata_props}
    return weights, meta


def yolo_from_onnx(path: str | Path, cfg: str = "yolov8n.yaml") -> Any:
    """An Ultralytics ``YOLO`` (PyTorch) with the weights of the ONNX export at ``path``.

    Args:
        path: an Ultralytics detect ONNX (fp32 or onnxruntime-quantised).
        cfg: the Ultralytics architecture YAML it was exported from.

    Raises:
        ValueError: the ONNX weights do not fit ``cfg`` (names or shapes), naming the first misfit.
    """
    import torch

    from tracker.detector import import_ultralytics

    import_ultralytics()
    from ultralytics import YOLO

    weights, meta = onnx_conv_weights(path)
    names = ast.literal_eval(meta["names"]) if "names" in meta else None
    yolo = YOLO(cfg, task="detect")
    net = yolo.model
    modules = dict(net.named_modules())
    loaded = 0
    with torch.no_grad():
        for name, (weight, bias) in weights.items():
            conv = modules.get(name)
            if not isinstance(conv, torch.nn.Conv2d) or tuple(conv.weight.shape) != weight.shape:
                shape = None if conv is None else tuple(getattr(conv, "weight", torch.empty(0)).shape)
                raise ValueError(f"{path}: weight {name} {weight.shape} does not fit {cfg} (there: {shape}); "
                                 "expected an export of that architecture")
            if not conv.weight.requires_grad:  # fixed by the architecture (the DFL's arange): keep it exact
                continue
            conv.weight.copy_(torch.from_numpy(weight))
            parent = modules.get(name.rsplit(".", 1)[0]) if name.endswith(".conv") else None
            bn = getattr(parent, "bn", None)
            if bias is None:
                loaded += 1
                continue
            if conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(bias))
            elif isinstance(bn, torch.nn.BatchNorm2d):  # folded: identity BatchNorm that adds the bias
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(bias))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
            else:
                raise ValueError(f"{path}: {name} has a bias but {cfg} has no place for it")
            loaded += 1
    convs = sum(1 for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.requires_grad)
    if loaded < convs:
        raise ValueError(f"{path} gave weights for {loaded} of the {convs} convs of {cfg}; expected all of them")
    if names:
        net.names = names
    net.eval()
    log.info("rebuilt %s from %s (%d convs)", cfg, path, loaded)
    return yolo
