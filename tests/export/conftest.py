"""A small random STA checkpoint and its fp32 ONNX export, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

H, W, SEQ_LEN = 64, 32, 4


@pytest.fixture(scope="session")
def sta_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    from reid_model.checkpoint import save_checkpoint
    from reid_model.models.sta import STA, ModelConfig

    torch.manual_seed(0)
    model = STA(ModelConfig(backbone="resnet18", num_classes=5, height=H, width=W, seq_len=SEQ_LEN))
    # Non-trivial BatchNorm statistics, so raw and BN features differ.
    model.bn.running_mean.normal_()
    model.bn.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("sta") / "sta_r18.pt"
    save_checkpoint(path, {"model_config": model.config.to_dict(), "model": model.state_dict()})
    return path


@pytest.fixture(scope="session")
def sta_onnx(sta_checkpoint: Path) -> Path:
    """The fp32 export, made through the command line with --verify (so verification passes)."""
    from export.onnx_export import main

    out = sta_checkpoint.parent / "sta_r18_fp32.onnx"
    assert main(["--checkpoint", str(sta_checkpoint), "--out", str(out), "--verify"]) == 0
    return out
