"""One contract for every ``Embedder``: TorchEmbedder, OnnxClipEmbedder and OnnxImageEmbedder."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from mcreid.embedder import Embedder
from tests.export.helpers import tiny_image_model


@pytest.fixture(scope="module")
def image_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("contract") / "image.onnx"
    tiny_image_model(path, height=64, width=32, dim=24)
    return path


def _torch(request: pytest.FixtureRequest) -> Embedder:
    pytest.importorskip("torch")
    from reid_model.inference import TorchEmbedder

    return TorchEmbedder(request.getfixturevalue("sta_checkpoint"), device="cpu", batch_size=2)


def _onnx_clip(request: pytest.FixtureRequest) -> Embedder:
    from export.onnx_embedder import OnnxClipEmbedder

    return OnnxClipEmbedder(request.getfixturevalue("sta_onnx"), batch_size=2)


def _onnx_image(request: pytest.FixtureRequest) -> Embedder:
    from export.onnx_embedder import OnnxImageEmbedder

    return OnnxImageEmbedder(request.getfixturevalue("image_model"), batch_size=3)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Embedder]] = {
    "TorchEmbedder": _torch,
    "OnnxClipEmbedder": _onnx_clip,
    "OnnxImageEmbedder": _onnx_image,
}


@pytest.fixture(params=sorted(BACKENDS))
def embedder(request: pytest.FixtureRequest) -> Embedder:
    return BACKENDS[request.param](request)


def _clips(embedder: Embedder, n: int, t: int | None = None, seed: int = 0) -> np.ndarray:
    h, w = embedder.input_size
    shape = (n, t or embedder.seq_len, h, w, 3)
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def test_attributes(embedder: Embedder) -> None:
    assert isinstance(embedder, Embedder)
    h, w = embedder.input_size
    assert isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0
    assert isinstance(embedder.seq_len, int) and embedder.seq_len >= 1
    assert isinstance(embedder.feature_dim, int) and embedder.feature_dim >= 1


def test_embed_shape_dtype_and_purity(embedder: Embedder) -> None:
    clips = _clips(embedder, 5)
    before = clips.copy()
    features = embedder.embed(clips)
    assert features.shape == (5, embedder.feature_dim) and features.dtype == np.float32
    assert np.isfinite(features).all()
    np.testing.assert_array_equal(clips, before)  # the input is left alone
    # Different clips give different features; the same clip gives the same one, in any batch.
    assert not np.allclose(features[0], features[1])
    np.testing.assert_allclose(embedder.embed(clips[3:4])[0], features[3], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(embedder.embed(clips), features, rtol=1e-5, atol=1e-5)


def test_empty_batch_and_other_clip_lengths(embedder: Embedder) -> None:
    assert embedder.embed(_clips(embedder, 0)).shape == (0, embedder.feature_dim)
    assert embedder.embed(_clips(embedder, 2, t=1)).shape == (2, embedder.feature_dim)
    assert embedder.embed(_clips(embedder, 2, t=embedder.seq_len + 2)).shape == (2, embedder.feature_dim)


def test_bad_inputs_raise_value_error(embedder: Embedder) -> None:
    good = _clips(embedder, 2)
    h, w = embedder.input_size
    bad = {
        "float32": good.astype(np.float32),
        "4-d": good[0],
        "BGRA": np.concatenate([good, good[..., :1]], axis=-1),
        "wrong size": np.zeros((2, embedder.seq_len, h + 16, w, 3), np.uint8),
    }
    for name, clips in bad.items():
        with pytest.raises(ValueError):
            embedder.embed(clips)
            pytest.fail(f"{name} clips were accepted")
