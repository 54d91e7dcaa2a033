"""TorchEmbedder: batching, agreement with the model, the Embedder contract, bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mcreid.embedder import Embedder
from reid_model.checkpoint import load_model
from reid_model.inference import TorchEmbedder
from reid_model.preprocess import preprocess_clips
from tests.tiny_model import save_tiny_checkpoint

H, W = 64, 32


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", 5, H, W)


def _clips(n: int, t: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, t, H, W, 3), dtype=np.uint8)


def test_batching_does_not_change_features(checkpoint: Path) -> None:
    clips = _clips(5)
    one = TorchEmbedder(checkpoint, device="cpu", batch_size=1).embed(clips)
    many = TorchEmbedder(checkpoint, device="cpu", batch_size=3).embed(clips)
    assert one.shape == (5, 512) and one.dtype == np.float32
    np.testing.assert_allclose(one, many, rtol=1e-4, atol=1e-5)


def test_features_match_the_model_and_bn_on_request(checkpoint: Path) -> None:
    clips = _clips(3, t=2, seed=1)
    embedder = TorchEmbedder(checkpoint, device="cpu")
    raw, bn = embedder.embed_with_bn(clips)
    model, _ = load_model(checkpoint)
    with torch.no_grad():
        out = model(preprocess_clips(torch.from_numpy(clips)))
    np.testing.assert_allclose(raw, out.raw_feature.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn, out.bn_feature.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(embedder.embed(clips), raw)
    assert not np.allclose(raw, bn)


def test_embedder_contract(checkpoint: Path) -> None:
    embedder = TorchEmbedder(checkpoint, device="cpu")
    assert isinstance(embedder, Embedder)
    assert embedder.input_size == (H, W) and embedder.seq_len == 4 and embedder.feature_dim == 512
    empty = embedder.embed(np.zeros((0, 4, H, W, 3), np.uint8))
    assert empty.shape == (0, 512) and empty.dtype == np.float32


@pytest.mark.parametrize(
    ("clips", "match"),
    [
        (np.zeros((2, 4, H, W, 3), np.float32), "uint8"),
        (np.zeros((2, H, W, 3), np.uint8), r"\(N, T, H, W, 3\)"),
        (np.zeros((2, 4, H, W, 4), np.uint8), r"\(N, T, H, W, 3\)"),
        (np.zeros((2, 4, H + 16, W, 3), np.uint8), "crops must be"),
    ],
)
def test_bad_clips_raise(checkpoint: Path, clips: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TorchEmbedder(checkpoint, device="cpu").embed(clips)


def test_bad_checkpoints_raise(tmp_path: Path, checkpoint: Path) -> None:
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        TorchEmbedder(tmp_path / "missing.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(ValueError, match="not an mcreid STA checkpoint"):
        TorchEmbedder(foreign)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        TorchEmbedder(garbage)
    with pytest.raises(ValueError, match="batch_size"):
        TorchEmbedder(checkpoint, batch_size=0)
