"""OnnxImageEmbedder on any [B or 1, 3, H, W] re-ID model: fixed batches, input formats, wrong kinds refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export.onnx_embedder import INPUT_FORMATS, OnnxImageEmbedder
from tests.export.helpers import (batch_mixing_model, normalise_like_imagenet, pooled_image_model, sequence_model,
                                  yolo_like_model)

H, W = 256, 128


def _clips(n: int = 2, t: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, t, H, W, 3), dtype=np.uint8)


def _channel_means(clips: np.ndarray, input_format: str) -> np.ndarray:
    """``(N, T, 3)``: what the pooled model returns per frame, computed independently of the embedder."""
    n, t = clips.shape[:2]
    images = clips.reshape(n * t, H, W, 3)
    order, norm = input_format.split("-")
    x = normalise_like_imagenet(images) if norm == "imagenet" else images.transpose(0, 3, 1, 2).astype(np.float64)
    means = x.mean(axis=(2, 3))  # (n*t, 3) in RGB order
    return (means[:, ::-1] if order == "bgr" else means).reshape(n, t, 3)


@pytest.mark.parametrize("batch", [1, 3, "batch"])
def test_fixed_batch_model_embeds_clips_like_one_image_at_a_time(tmp_path: Path, batch: int | str) -> None:
    """2 clips x 4 frames through a [1, 3, 256, 128] model (the 'Got: 4 Expected: 1' crash), and a batch of 3
    (chunks 3, 3, 2: the last one padded); each equals the frames embedded one by one."""
    model = pooled_image_model(tmp_path / "reid.onnx", batch=batch)
    clips = _clips()
    embedder = OnnxImageEmbedder(model, providers="cpu", normalize_frames=False)
    assert embedder.model_batch == (batch if isinstance(batch, int) else None)
    assert embedder.input_size == (H, W) and embedder.feature_dim == 3
    frames = embedder.embed_frames(clips)
    one_by_one = np.stack([[embedder.embed(clips[i, j][None, None])[0] for j in range(4)] for i in range(2)])
    np.testing.assert_allclose(frames, one_by_one, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(frames, _channel_means(clips, "rgb-imagenet"), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(embedder.embed(clips), frames.mean(axis=1), rtol=1e-5, atol=1e-5)
    assert embedder.embed(clips[:0]).shape == (0, 3)


def test_pooled_map_output_is_squeezed_and_float16_inputs_are_fed(tmp_path: Path) -> None:
    model = pooled_image_model(tmp_path / "map.onnx", batch=1, flatten=False, half=True)
    clips = _clips(1, 3)
    embedder = OnnxImageEmbedder(model, providers="cpu", normalize_frames=False)
    assert embedder.feature_dim == 3
    features = embedder.embed_frames(clips)
    assert features.shape == (1, 3, 3) and features.dtype == np.float32
    np.testing.assert_allclose(features, _channel_means(clips, "rgb-imagenet"), atol=2e-2)


@pytest.mark.parametrize("input_format", INPUT_FORMATS)
def test_input_formats_set_colour_order_and_normalisation(tmp_path: Path, input_format: str) -> None:
    model = pooled_image_model(tmp_path / "reid.onnx", batch=1)
    clips = _clips(1, 2, seed=3)
    embedder = OnnxImageEmbedder(model, providers="cpu", normalize_frames=False, input_format=input_format)
    assert embedder.input_format == input_format
    np.testing.assert_allclose(embedder.embed_frames(clips), _channel_means(clips, input_format), rtol=1e-4,
                               atol=1e-3)


def test_input_format_comes_from_the_model_metadata_unless_given(tmp_path: Path) -> None:
    model = pooled_image_model(tmp_path / "omz.onnx", batch=1, metadata={"mcreid.input_format": "BGR-255"})
    clips = _clips(1, 2, seed=4)
    from_props = OnnxImageEmbedder(model, providers="cpu", normalize_frames=False)
    assert from_props.input_format == "bgr-255"
    np.testing.assert_allclose(from_props.embed_frames(clips), _channel_means(clips, "bgr-255"), rtol=1e-4)
    assert OnnxImageEmbedder(model, providers="cpu", input_format="rgb-imagenet").input_format == "rgb-imagenet"
    assert OnnxImageEmbedder(pooled_image_model(tmp_path / "plain.onnx"), providers="cpu").input_format \
        == "rgb-imagenet"


def test_unknown_input_format_lists_the_choices(tmp_path: Path) -> None:
    model = pooled_image_model(tmp_path / "reid.onnx")
    with pytest.raises(ValueError, match="'yuv-255'.*rgb-imagenet, bgr-imagenet, rgb-255, bgr-255"):
        OnnxImageEmbedder(model, input_format="yuv-255")
    bad_props = pooled_image_model(tmp_path / "bad.onnx", metadata={"mcreid.input_format": "rgb-1"})
    with pytest.raises(ValueError, match="bad.onnx's metadata prop mcreid.input_format"):
        OnnxImageEmbedder(bad_props)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda p: yolo_like_model(p), r"YOLO-style detector.*output0 \[1, 84, 1024\].*goes to --detector"),
        (lambda p: yolo_like_model(p, metadata={"task": "detect"}),
         r"Ultralytics detect model.*task 'detect'.*goes to --detector"),
        (lambda p: sequence_model(p), r"3-D input.*x \[batch, 3, 100\], not \[B, 3, H, W\]"),
        (lambda p: batch_mixing_model(p), r"4 dummy images gave an output of shape \(1, 3\), not \(4, D\)"),
    ],
    ids=["yolo-output", "ultralytics-detect", "rank-3-input", "batch-mixing"],
)
def test_wrong_kind_of_model_is_refused_at_construction(tmp_path: Path, build, message: str) -> None:
    path = build(tmp_path / "wrong.onnx")
    with pytest.raises(ValueError, match=message) as err:
        OnnxImageEmbedder(path, providers="cpu", input_size=(16, 8))
    text = str(err.value)
    assert "\n" not in text and str(path) in text and "expected a person re-ID model" in text


def test_real_osnet_with_a_fixed_batch_of_1_matches_the_dynamic_one(shared_data: Path, tmp_path: Path) -> None:
    """OSNet re-saved with input [1, 3, 256, 128], like an Open Model Zoo model, gives the same clip features."""
    import onnx

    source = shared_data / "weights" / "osnet_x0_25_msmt17.onnx"
    model = onnx.load(source)
    for value in (model.graph.input[0], model.graph.output[0]):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_value = 1
    fixed = tmp_path / "osnet_b1.onnx"
    onnx.save(model, fixed)
    clips = _clips(2, 4, seed=5)
    one = OnnxImageEmbedder(fixed, providers="cpu")
    assert one.model_batch == 1 and one.feature_dim == 512
    np.testing.assert_allclose(one.embed(clips), OnnxImageEmbedder(source, providers="cpu").embed(clips), atol=1e-5)
