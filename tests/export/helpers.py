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
