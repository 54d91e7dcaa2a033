"""Edges of the STA model that mutation testing found undefended (README "Development": mutation
testing): the config's bounds and messages, the initialisation the training recipe relies on
(BNNeck classifier without bias, FC1 kaiming fan-out, classifier std 0.001), a pretrained path
reaching the backbone, and the shape error."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision

from reid_model.models.backbones import BACKBONES
from reid_model.models.sta import STA, ModelConfig, build_model

SMALL = {"backbone": "resnet18", "num_classes": 3, "height": 64, "width": 32}


@pytest.mark.parametrize("name", ["num_classes", "feature_dim", "num_stripes", "seq_len"])
def test_each_size_may_be_one_not_zero(name):
    assert getattr(ModelConfig(**{name: 1}), name) == 1  # one stripe: a 16-row map divides by it
    with pytest.raises(ValueError) as err:
        ModelConfig(**{name: 0})
    assert str(err.value) == f"{name} must be >= 1, got 0"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"backbone": "vgg16"}, f"unknown backbone 'vgg16'; choose from {sorted(BACKBONES)}"),
    ({"height": 70, "width": 32}, "height and width must be multiples of 16, got 70x32"),
    ({"height": 64, "width": 40}, "height and width must be multiples of 16, got 64x40"),
    ({"height": 80, "width": 32}, "feature map height 5 (input height 80) is not divisible by num_stripes=4; "
                                  "use a height that is a multiple of 64"),
])
def test_bad_configs_say_what_arrived_and_what_fits(kwargs, message):
    with pytest.raises(ValueError) as err:
        ModelConfig(**kwargs)
    assert str(err.value) == message


def test_initialisation_follows_the_recipe():
    torch.manual_seed(0)
    model = STA(ModelConfig(**SMALL, feature_dim=64))
    assert model.classifier.bias is None  # BNNeck: the classifier after BN has no bias
    fan_out_std = math.sqrt(2 / 64)  # kaiming fan-out over FC1's 64 outputs (fan-in would be sqrt(2/512))
    assert float(model.fc1.weight.detach().std()) == pytest.approx(fan_out_std, rel=0.05)
    assert not model.fc1.bias.any()
    assert float(model.classifier.weight.detach().std()) == pytest.approx(0.001, rel=0.2)
    assert model.last_attention is None  # until the first forward


def test_build_model_passes_the_pretrained_path_to_the_backbone(tmp_path):
    source = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    model = build_model(ModelConfig(**SMALL), path)
    assert torch.equal(model.backbone.body[0].weight, source.conv1.weight)


def test_clips_with_other_than_three_channels_are_refused_with_their_shape():
    model = STA(ModelConfig(**SMALL))
    with pytest.raises(ValueError) as err:
        model(torch.zeros(2, 4, 1, 64, 32))
    assert str(err.value) == "clips must be (B, N, 3, H, W), got shape (2, 4, 1, 64, 32)"
