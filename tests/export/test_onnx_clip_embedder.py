"""OnnxClipEmbedder: batching, bad inputs, missing files, models without mcreid metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export.metadata import ExportMetadata
from export.verify import agreement
from export.onnx_embedder import NotAClipModel, OnnxClipEmbedder
from export.runtime import CUDA, TENSORRT, cuda_device_count
from tests.export.conftest import H, SEQ_LEN, W
from tests.export.helpers import tiny_image_model


def _clips(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, SEQ_LEN, H, W, 3), dtype=np.uint8)


def test_batch_size_does_not_change_features(sta_onnx: Path) -> None:
    clips = _clips(5)
    one = OnnxClipEmbedder(sta_onnx, batch_size=1).embed(clips)
    three = OnnxClipEmbedder(sta_onnx, batch_size=3).embed(clips)
    np.testing.assert_allclose(one, three, rtol=1e-5, atol=1e-5)
    raw, bn = OnnxClipEmbedder(sta_onnx).embed_with_bn(clips[:0])
    assert raw.shape == bn.shape == (0, 512)


@pytest.mark.parametrize(
    ("clips", "message"),
    [
        (np.zeros((1, SEQ_LEN, H, W, 3), np.float32), "uint8"),
        (np.zeros((SEQ_LEN, H, W, 3), np.uint8), r"\(N, T, H, W, 3\)"),
        (np.zeros((1, SEQ_LEN, W, H, 3), np.uint8), f"{H}x{W}"),
        (np.zeros((1, SEQ_LEN, H, W, 4), np.uint8), r"\(N, T, H, W, 3\)"),
    ],
)
def test_bad_clips_raise_value_error(sta_onnx: Path, clips: np.ndarray, message: str) -> None:
    embedder = OnnxClipEmbedder(sta_onnx)
    with pytest.raises(ValueError, match=message):
        embedder.embed(clips)
    with pytest.raises(ValueError, match=message):
        embedder.embed_with_bn(clips)


def test_missing_file_and_foreign_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        OnnxClipEmbedder(tmp_path / "missing.onnx")
    image_model = tmp_path / "image.onnx"
    tiny_image_model(image_model)
    with pytest.raises(NotAClipModel, match="image.onnx is not an STA clip export.*raw_feature and bn_feature"):
        OnnxClipEmbedder(image_model)


def test_metadata_round_trip_and_checks() -> None:
    meta = ExportMetadata("sta-resnet50", 256, 128, 4, 512, precision="int8", quantization="static")
    assert ExportMetadata.from_props(meta.to_props()) == meta
    with pytest.raises(ValueError, match="input_height"):
        ExportMetadata("m", 0, 128, 4, 512)
    with pytest.raises(ValueError, match="precision"):
        ExportMetadata("m", 256, 128, 4, 512, precision="int4")
    with pytest.raises(ValueError, match="mcreid.seq_len"):
        ExportMetadata.from_props({k: v for k, v in meta.to_props().items() if k != "mcreid.seq_len"})


@pytest.mark.gpu
@pytest.mark.skipif(cuda_device_count() == 0, reason="needs an NVIDIA GPU")
def test_cuda_provider_runs_and_agrees_with_cpu(sta_onnx: Path) -> None:
    clips = _clips(3, seed=5)
    gpu = OnnxClipEmbedder(sta_onnx, providers="cuda")
    assert gpu.providers[0] == CUDA
    # CUDA convolutions may use TF32, so compare as the fp16 bar does: by cosine.
    result = agreement(OnnxClipEmbedder(sta_onnx, providers="cpu").embed(clips), gpu.embed(clips))
    assert result.failures("fp16") == [], str(result)
    assert OnnxClipEmbedder(sta_onnx).providers[0] in (TENSORRT, CUDA)  # the default prefers the GPU
