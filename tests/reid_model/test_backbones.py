"""Backbone registry, last stride 1 and the three ways to initialise it."""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torchvision

from reid_model.models.backbones import BACKBONES, RESNETS, ResNetBackbone, build_backbone


def test_last_stride_is_one_for_every_resnet():
    for name, (_, channels, _) in RESNETS.items():
        maps = ResNetBackbone(name).eval()(torch.zeros(1, 3, 64, 32))
        assert maps.shape == (1, channels, 4, 2), name  # stride 16, not 32


def test_unknown_backbone_lists_the_choices():
    with pytest.raises(ValueError, match="resnet18.*resnet50"):
        ResNetBackbone("vgg16")
    with pytest.raises(ValueError, match="osnet_x0_25.*resnet18.*resnet50"):
        build_backbone("vgg16")
    assert set(BACKBONES) == {"resnet50", "resnet18", "osnet_x0_25"}


def test_pretrained_path_loads_those_weights(tmp_path):
    source = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    backbone = ResNetBackbone("resnet18", pretrained=path)
    assert torch.equal(backbone.body[0].weight, source.conv1.weight)
    assert torch.equal(backbone.body[7][1].conv2.weight, source.layer4[1].conv2.weight)


def test_missing_pretrained_file_names_it(tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        ResNetBackbone("resnet18", pretrained=missing)


def test_imagenet_offline_without_cache_says_to_pass_a_path(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache

    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    with pytest.raises(FileNotFoundError, match=r"--pretrained PATH") as info:
        ResNetBackbone("resnet18", pretrained="imagenet")
    assert "resnet18-f37072fd.pth" in str(info.value) and str(tmp_path) in str(info.value)
