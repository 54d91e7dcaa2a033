"""OSNet x0.25 converted from the MSMT17 ONNX: same features as onnxruntime, head mapped onto FC1/BN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reid_model.models.osnet import OSNET_ASSET, OSNetBackbone, osnet_onnx_path
from reid_model.models.sta import STA, ModelConfig
from reid_model.preprocess import preprocess_clips


def _real_crops(shared_data: Path, count: int = 12) -> np.ndarray:
    from reid_model.data.transforms import read_frame

    files = sorted((shared_data / "reid_crops" / "images").glob("*/*.jpg"))[:count]
    if len(files) < count:
        pytest.skip(f"fewer than {count} real crops under {shared_data / 'reid_crops'}")
    return np.stack([read_frame(f, 256, 128) for f in files])


@pytest.fixture(scope="module")
def osnet_sta() -> STA:
    return STA(ModelConfig(backbone="osnet_x0_25", num_classes=5)).eval()


def test_converted_backbone_reproduces_the_onnx_features(shared_data, osnet_sta):
    """STA-OSNet on one-frame clips, ReLU(BN feature), is OSNet's own 512-d output (cosine >= 0.9999)."""
    import onnxruntime as ort

    crops = _real_crops(shared_data)
    x = preprocess_clips(torch.from_numpy(crops)[:, None])  # (12, 1, 3, 256, 128)
    session = ort.InferenceSession(str(shared_data / OSNET_ASSET), providers=["CPUExecutionProvider"])
    reference = session.run(None, {session.get_inputs()[0].name: x[:, 0].numpy()})[0]
    with torch.no_grad():
        maps = osnet_sta.backbone(x[:, 0])
        features = torch.relu(osnet_sta(x).bn_feature).numpy()
    assert maps.shape == (12, 128, 16, 8)
    cosine = (features * reference).sum(1) / np.linalg.norm(features, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() >= 0.9999
    # and the features really differ between people: not a constant output
    assert np.corrcoef(reference)[0, 1:].min() < 0.9


def test_equal_frames_give_the_mean_of_per_frame_raw_features(shared_data, osnet_sta):
    """With identical frames the attention is uniform, so the untrained raw feature is OSNet's pre-BN feature."""
    crops = _real_crops(shared_data, 2)
    clip = preprocess_clips(torch.from_numpy(np.repeat(crops[:1], 4, axis=0))[None])
    single = preprocess_clips(torch.from_numpy(crops[:1])[None])
    with torch.no_grad():
        out, ref = osnet_sta(clip), osnet_sta(single)
    torch.testing.assert_close(out.attention, torch.full((1, 4, 4), 0.25))
    torch.testing.assert_close(out.raw_feature, ref.raw_feature, rtol=1e-4, atol=1e-4)


def test_missing_onnx_names_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("MCREID_ASSETS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="osnet_x0_25_msmt17.onnx") as info:
        OSNetBackbone()
    assert str(tmp_path) in str(info.value) and "MCREID_ASSETS" in str(info.value)
    with pytest.raises(FileNotFoundError, match="elsewhere.onnx"):
        osnet_onnx_path(tmp_path / "elsewhere.onnx")


@pytest.mark.parametrize("pretrained", ["none", "imagenet"])
def test_osnet_without_its_onnx_is_refused(pretrained):
    with pytest.raises(ValueError, match="built from its ONNX"):
        osnet_onnx_path(pretrained)
