"""OnnxImageEmbedder: frame averaging, batching, bad inputs, providers, and OSNet on real crops."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from export.onnx_embedder import OnnxImageEmbedder
from export.runtime import CPU, cuda_device_count, resolve_providers, usable_providers
from mcreid.embedder import Embedder
from tests.export.helpers import cosine_matrix, load_crops, normalise_like_imagenet, tiny_image_model

OSNET = "weights/osnet_x0_25_msmt17.onnx"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    path = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    return path, tiny_image_model(path)


def _clips(n: int, t: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, t, 16, 8, 3), dtype=np.uint8)


def _expected_frames(clips: np.ndarray, weight: np.ndarray) -> np.ndarray:
    n, t = clips.shape[:2]
    x = normalise_like_imagenet(clips.reshape(n * t, *clips.shape[2:])).reshape(n * t, -1)
    return (x @ weight).reshape(n, t, -1)


@pytest.mark.parametrize("normalize_frames", [True, False])
def test_clip_feature_is_the_mean_of_frame_features(tiny, normalize_frames: bool) -> None:
    path, weight = tiny
    clips = _clips(3, 4)
    frames = _expected_frames(clips, weight)
    if normalize_frames:
        frames = frames / np.linalg.norm(frames, axis=-1, keepdims=True)
    embedder = OnnxImageEmbedder(path, providers="cpu", normalize_frames=normalize_frames)
    features = embedder.embed(clips)
    assert features.shape == (3, 6) and features.dtype == np.float32
    np.testing.assert_allclose(features, frames.mean(axis=1), rtol=1e-4, atol=1e-4)
    assert embedder.input_size == (16, 8) and embedder.feature_dim == 6 and embedder.seq_len == 4
    assert isinstance(embedder, Embedder)


def test_batching_and_clip_length_do_not_change_features(tiny) -> None:
    path, _ = tiny
    clips = _clips(5, 3, seed=1)  # 15 frames: batches of 4 leave a partial batch
    one = OnnxImageEmbedder(path, batch_size=1).embed(clips)
    four = OnnxImageEmbedder(path, batch_size=4).embed(clips)
    np.testing.assert_allclose(one, four, rtol=1e-5, atol=1e-6)
    single = OnnxImageEmbedder(path).embed(clips[:, :1])
    assert single.shape == (5, 6)
    assert OnnxImageEmbedder(path).embed(clips[:0]).shape == (0, 6)


@pytest.mark.parametrize(
    ("clips", "message"),
    [
        (np.zeros((2, 4, 16, 8, 3), np.float32), "uint8"),
        (np.zeros((4, 16, 8, 3), np.uint8), r"\(N, T, H, W, 3\)"),
        (np.zeros((2, 4, 16, 8, 1), np.uint8), r"\(N, T, H, W, 3\)"),
        (np.zeros((2, 0, 16, 8, 3), np.uint8), "T >= 1"),
        (np.zeros((2, 4, 32, 8, 3), np.uint8), "16x8"),
    ],
)
def test_bad_clips_raise_value_error(tiny, clips: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OnnxImageEmbedder(tiny[0]).embed(clips)


def test_bad_construction_raises(tiny, tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    with pytest.raises(FileNotFoundError, match="nope.onnx"):
        OnnxImageEmbedder(missing)
    with pytest.raises(ValueError, match="batch_size"):
        OnnxImageEmbedder(tiny[0], batch_size=0)
    with pytest.raises(ValueError, match="not available.*choose from"):
        OnnxImageEmbedder(tiny[0], providers=["NoSuchExecutionProvider"])
    with pytest.raises(ValueError, match="input_size"):
        OnnxImageEmbedder(tiny[0], input_size=(32, 16))
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an onnx model")
    with pytest.raises(ValueError, match="cannot load"):
        OnnxImageEmbedder(garbage)


def test_provider_choice_matches_the_machine(tiny) -> None:
    chosen = usable_providers()
    assert chosen[-1] == CPU
    if cuda_device_count() == 0:
        # onnxruntime-gpu lists CUDA/TensorRT here, but without a GPU they are never asked for.
        assert chosen == [CPU]
        assert OnnxImageEmbedder(tiny[0]).providers == [CPU]
    assert resolve_providers("cpu") == [CPU]


def test_default_session_prints_no_provider_warnings(tiny) -> None:
    code = (
        "import numpy as np\n"
        "from export.onnx_embedder import OnnxImageEmbedder\n"
        f"e = OnnxImageEmbedder({str(tiny[0])!r})\n"
        "print(e.embed(np.zeros((1, 2, 16, 8, 3), np.uint8)).shape)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "(1, 6)" in done.stdout
    if cuda_device_count() == 0:
        assert "Failed to" not in done.stderr and "CUDAExecutionProvider" not in done.stderr, done.stderr


def test_importing_the_embedders_does_not_import_torch() -> None:
    code = "import sys, export.onnx_embedder, export.runtime, export.metadata; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_osnet_ranks_the_same_identity_first_on_real_crops(shared_data: Path) -> None:
    """Each query's best gallery crop, its own file left out, is the same person."""
    model = shared_data / OSNET
    crops = shared_data / "reid_crops" / "images"
    query_names, queries = load_crops(crops / "query")
    gallery_names, gallery = load_crops(crops / "gallery")
    embedder = OnnxImageEmbedder(model, batch_size=8)
    assert embedder.input_size == (256, 128) and embedder.feature_dim == 512
    sim = cosine_matrix(embedder.embed(queries[:, None]), embedder.embed(gallery[:, None]))
    gallery_ids = np.array([name[:4] for name in gallery_names])
    checked = 0
    for row, name in zip(sim, query_names):
        same_file = np.array([g == name for g in gallery_names])
        assert row[same_file].max() == pytest.approx(1.0, abs=1e-4)  # the identical crop
        others = ~same_file
        if not (gallery_ids[others] == name[:4]).any():
            continue  # this person has no other crop in the gallery
        best = np.flatnonzero(others)[np.argmax(row[others])]
        assert gallery_ids[best] == name[:4], f"{name}: best other crop is {gallery_names[best]}"
        checked += 1
    assert checked >= 2


def test_osnet_clips_rank_the_same_identity_first_on_real_crops(shared_data: Path) -> None:
    """Leave-one-out over every gallery crop with a same-person partner, as 2-frame clips."""
    names, crops = load_crops(shared_data / "reid_crops" / "images" / "gallery")
    ids = np.array([name[:4] for name in names])
    clips = np.stack([crops, crops[:, :, ::-1]], axis=1)  # a crop and its mirror image
    embedder = OnnxImageEmbedder(shared_data / OSNET, batch_size=16)
    sim = cosine_matrix(embedder.embed(clips), embedder.embed(clips))
    np.fill_diagonal(sim, -np.inf)
    with_partner = [i for i in range(len(ids)) if (ids == ids[i]).sum() > 1]
    assert len(with_partner) >= 8
    for i in with_partner:
        assert ids[np.argmax(sim[i])] == ids[i], f"{names[i]} ranks {names[np.argmax(sim[i])]} first"
