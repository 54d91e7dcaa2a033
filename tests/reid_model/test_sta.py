"""STA: the attention of Eq. 1-4 at equation level, shapes, fusion, bad inputs."""

from __future__ import annotations

import pytest
import torch

from reid_model.models.backbones import ResNetBackbone
from reid_model.models.sta import STA, ModelConfig, build_model, stripe_attention, top_frame_map


def loop_attention(maps: torch.Tensor, num_stripes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 1-4 written out with explicit loops, for one clip ``(N, C, H, W)``."""
    n_frames, c, h, w = maps.shape
    rows = h // num_stripes
    s = torch.zeros(n_frames, num_stripes, dtype=torch.float64)
    for n in range(n_frames):
        energy = [[float((maps[n, :, i, j].double() ** 2).sum()) for j in range(w)] for i in range(h)]
        total = sum(map(sum, energy))
        for m in range(num_stripes):
            s[n, m] = sum(energy[i][j] / total for i in range(m * rows, (m + 1) * rows) for j in range(w))
    scores = s / s.sum(dim=0, keepdim=True)
    clip = torch.zeros(c, h, w, dtype=torch.float64)
    for m in range(num_stripes):
        for n in range(n_frames):
            clip[:, m * rows : (m + 1) * rows] += scores[n, m] * maps[n, :, m * rows : (m + 1) * rows].double()
    return clip, scores


def test_attention_matches_equations_written_out() -> None:
    maps = torch.randn(2, 3, 5, 8, 3)
    clip, scores = stripe_attention(maps, 4)
    for b in range(2):
        ref_clip, ref_scores = loop_attention(maps[b], 4)
        torch.testing.assert_close(scores[b].double(), ref_scores, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(clip[b].double(), ref_clip, rtol=1e-5, atol=1e-5)


def test_uniform_energy_gives_uniform_weights() -> None:
    maps = torch.ones(1, 4, 6, 8, 2)
    clip, scores = stripe_attention(maps, 4)
    torch.testing.assert_close(scores, torch.full((1, 4, 4), 0.25))
    torch.testing.assert_close(clip, maps.mean(dim=1))


def test_frame_holding_all_of_a_stripes_energy_gets_weight_one() -> None:
    maps = torch.rand(1, 3, 4, 8, 2) + 0.1
    maps[0, 1:, :, 0:2] = 0.0  # stripe 0 (rows 0-1): only frame 0 has energy there
    clip, scores = stripe_attention(maps, 4)
    torch.testing.assert_close(scores[0, :, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(clip[0, :, 0:2], maps[0, 0, :, 0:2])
    assert (scores[0, :, 1:] > 0).all()  # the other stripes are shared by all frames


def test_scores_sum_to_one_over_frames_for_any_length() -> None:
    for n_frames in (1, 2, 7):
        _, scores = stripe_attention(torch.randn(3, n_frames, 4, 8, 4), 4)
        assert scores.shape == (3, n_frames, 4)
        torch.testing.assert_close(scores.sum(dim=1), torch.ones(3, 4))
        assert (scores >= 0).all()


def test_gradient_flows_through_the_attention_scores() -> None:
    """Eq. 1-4 are differentiable: the backbone is trained through S(n, m), not only the weighted sum."""
    maps = torch.rand(1, 3, 4, 8, 2, requires_grad=True)
    _, scores = stripe_attention(maps, 4)
    scores[0, 0, 0].backward()  # depends on the maps only through the attention
    assert maps.grad.abs().sum() > 0
    assert maps.grad[0, 0, :, 2:].abs().sum() > 0  # Eq. 1 normalises over the whole map of frame 0
    assert maps.grad[0, 1:, :, :2].abs().sum() > 0  # Eq. 4 normalises stripe 0 over the frames


def test_height_not_divisible_by_stripes_raises() -> None:
    with pytest.raises(ValueError, match="not divisible"):
        stripe_attention(torch.randn(1, 2, 4, 6, 4), 4)
    with pytest.raises(ValueError, match="not divisible"):
        ModelConfig(backbone="resnet18", height=80, width=32)  # 5-row map, 4 stripes
    with pytest.raises(ValueError, match="multiples of 16"):
        ModelConfig(backbone="resnet18", height=70, width=32)


def test_top_frame_map_picks_best_frame_per_stripe() -> None:
    maps = torch.arange(2 * 3 * 8 * 2, dtype=torch.float32).reshape(1, 2, 3, 8, 2)
    scores = torch.tensor([[[0.9, 0.1, 0.6, 0.2], [0.1, 0.9, 0.4, 0.8]]])
    fused = top_frame_map(maps, scores)
    for m, frame in enumerate([0, 1, 0, 1]):
        torch.testing.assert_close(fused[0, :, 2 * m : 2 * m + 2], maps[0, frame, :, 2 * m : 2 * m + 2])


def test_resnet50_shapes_at_256x128() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone="resnet50", num_classes=7)).train()
    clips = torch.randn(2, 1, 3, 256, 128)
    with torch.no_grad():
        maps = model.backbone(clips.flatten(0, 1))
        assert maps.shape == (2, 2048, 16, 8)  # last stride 1
        out = model(clips)
    assert out.raw_feature.shape == (2, 512) and out.bn_feature.shape == (2, 512)
    assert out.logits.shape == (2, 7)
    assert out.attention.shape == (2, 1, 4)
    assert not torch.allclose(out.raw_feature, out.bn_feature)
    assert model.last_attention is not None


# The paper's backbone and the converted OSNet (needs ../shared/data: skipped where absent).
BOTH_BACKBONES = ["resnet50", "osnet_x0_25"]


def _skip_without_osnet(backbone: str) -> None:
    from mcreid.assets import find_asset
    from reid_model.models.osnet import OSNET_ASSET

    if backbone == "osnet_x0_25" and find_asset(OSNET_ASSET) is None:
        pytest.skip(f"{OSNET_ASSET} not found (set MCREID_ASSETS)")


@pytest.mark.slow  # converting OSNet takes a few seconds
@pytest.mark.parametrize("backbone", BOTH_BACKBONES)
def test_model_forward_is_eq_1_to_4_on_the_backbone_maps(backbone: str) -> None:
    """The whole STA forward on each backbone: its maps -> Eq. 1-4 (written out) -> GAP -> FC1 -> BN."""
    _skip_without_osnet(backbone)
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone=backbone, num_classes=3, height=64, width=32)).eval()
    clips = torch.randn(2, 3, 3, 64, 32)
    with torch.no_grad():
        out = model(clips)
        maps = model.backbone(clips.flatten(0, 1)).reshape(2, 3, -1, 4, 2)
        for b in range(2):
            ref_clip, ref_scores = loop_attention(maps[b], 4)
            torch.testing.assert_close(out.attention[b].double(), ref_scores, rtol=1e-5, atol=1e-6)
            raw = model.fc1(ref_clip.float().mean(dim=(-2, -1)))
            torch.testing.assert_close(out.raw_feature[b], raw, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(out.bn_feature[b], model.bn(raw[None])[0], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["resnet18", *BOTH_BACKBONES])
def test_eval_mode_has_no_logits_and_any_clip_length(backbone: str) -> None:
    _skip_without_osnet(backbone)
    torch.manual_seed(0)
    model = build_model(ModelConfig(backbone=backbone, num_classes=3, height=64, width=32)).eval()
    with torch.no_grad():
        for n_frames in (1, 3):
            out = model(torch.randn(2, n_frames, 3, 64, 32))
            assert out.logits is None and out.raw_feature.shape == (2, 512)
            torch.testing.assert_close(out.attention.sum(dim=1), torch.ones(2, 4))


def test_fusion_option_shapes() -> None:
    torch.manual_seed(0)
    model = STA(ModelConfig(backbone="resnet18", num_classes=3, height=64, width=32, fusion=True)).train()
    assert model.fc1.in_features == 2 * 512
    out = model(torch.randn(2, 4, 3, 64, 32))
    assert out.raw_feature.shape == (2, 512) and out.logits.shape == (2, 3)


def test_bad_model_inputs_raise() -> None:
    with pytest.raises(ValueError, match="unknown backbone"):
        ModelConfig(backbone="vgg16")
    with pytest.raises(ValueError, match="unknown backbone"):
        ResNetBackbone("resnet101")
    with pytest.raises(ValueError, match=">= 1"):
        ModelConfig(num_classes=0)
    model = STA(ModelConfig(backbone="resnet18", num_classes=3, height=64, width=32))
    with pytest.raises(ValueError, match=r"\(B, N, 3, H, W\)"):
        model(torch.randn(2, 3, 64, 32))
    with pytest.raises(FileNotFoundError, match="not found"):
        ResNetBackbone("resnet18", "/nonexistent/weights.pth")
