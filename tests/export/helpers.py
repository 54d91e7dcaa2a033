"""Small ONNX models and real crops shared by the export tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CROP_SIZE = (256, 128)  # (H, W) of the OSNet model


def tiny_image_model(path: Path, height: int = 16, width: int = 8, dim: int = 6, seed: int = 0) -> np.ndarray:
    """Write a per-image model ``images [B,3,H,W] -> output [B,dim] = flatten(x) @ weight``.

    Returns the weight ``(3*H*W, dim)`` so tests can compute the expected features in numpy.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(seed).normal(size=(3 * height * width, dim)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["images"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "weight"], ["output"]),
        ],
        "tiny_image_model",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, height, width])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", dim])],
        initializer=[numpy_helper.from_array(weight, "weight")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return weight


def normalise_like_imagenet(images: np.ndarray) -> np.ndarray:
    """uint8 ``(B, H, W, 3)`` -> float ``(B, 3, H, W)``, written out independently of the embedder."""
    mean = np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    return (images.transpose(0, 3, 1, 2) / 255.0 - mean) / std


def load_crops(folder: Path, size: tuple[int, int] = CROP_SIZE) -> tuple[list[str], np.ndarray]:
    """The JPEG crops in ``folder`` as the tracker makes them: resized (bilinear), BGR -> RGB.

    Returns ``(file names, (N, H, W, 3) uint8)``, sorted by name.
    """
    import cv2

    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise FileNotFoundError(f"no .jpg crops in {folder}")
    crops = [
        cv2.cvtColor(cv2.resize(cv2.imread(str(f)), (size[1], size[0]), interpolation=cv2.INTER_LINEAR),
                     cv2.COLOR_BGR2RGB)
        for f in files
    ]
    return [f.name for f in files], np.stack(crops)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def _save(graph: object, path: Path, metadata: dict[str, str] | None = None) -> Path:
    import onnx
    from onnx import helper

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, path)
    return path


def pooled_image_model(path: Path, batch: int | str = "batch", height: int = 256, width: int = 128,
                       flatten: bool = True, half: bool = False, metadata: dict[str, str] | None = None) -> Path:
    """``data [batch, 3, H, W] -> features [batch, 3]``: each channel's mean (GlobalAveragePool, Flatten).

    The features are the per-channel means of what the embedder feeds, so a test can tell the
    colour order and normalisation. ``flatten=False`` leaves the ``[batch, 3, 1, 1]`` pooled map;
    ``batch=1`` makes a fixed-batch model like Open Model Zoo's ``data [1, 3, 256, 128]``.
    """
    from onnx import TensorProto, helper

    kind = TensorProto.FLOAT16 if half else TensorProto.FLOAT
    nodes = [helper.make_node("GlobalAveragePool", ["data"], ["pooled" if flatten else "features"])]
    if flatten:
        nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], axis=1))
    out_shape = [batch, 3] if flatten else [batch, 3, 1, 1]
    graph = helper.make_graph(nodes, "pooled_image_model",
                              [helper.make_tensor_value_info("data", kind, [batch, 3, height, width])],
                              [helper.make_tensor_value_info("features", kind, out_shape)])
    return _save(graph, path, metadata)


def yolo_like_model(path: Path, batch: int | str = 1, size: int = 32, classes: int = 80,
                    metadata: dict[str, str] | None = None) -> Path:
    """``images [batch, 3, size, size] -> output0 [batch, 4 + classes, size * size]`` (a 1x1 conv, reshaped)."""
    from onnx import TensorProto, helper, numpy_helper

    channels = 4 + classes
    weight = np.random.default_rng(0).normal(size=(channels, 3, 1, 1)).astype(np.float32)
    shape = np.array([0, channels, -1], np.int64)  # 0 keeps the batch
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "weight"], ["map"]),
         helper.make_node("Reshape", ["map", "shape"], ["output0"])],
        "yolo_like_model",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [batch, channels, size * size])],
        initializer=[numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(shape, "shape")],
    )
    return _save(graph, path, metadata)


def sequence_model(path: Path, length: int = 100) -> Path:
    """A rank-3 input ``x [batch, 3, length] -> y [batch, 3]`` (not an image model)."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x"], ["y"], axes=[2], keepdims=0)], "sequence_model",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, length])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    return _save(graph, path)


def batch_mixing_model(path: Path, height: int = 16, width: int = 8) -> Path:
    """Declares ``[n, 3]`` features but averages over the batch too: any batch gives ``(1, 3)``."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["data"], ["y"], axes=[0, 2, 3], keepdims=1),
         helper.make_node("Flatten", ["y"], ["features"], axis=1)], "batch_mixing_model",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["n", 3, height, width])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["n", 3])],
    )
    return _save(graph, path)
