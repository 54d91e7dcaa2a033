"""A small random STA checkpoint and its fp32 ONNX export, built once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_model import save_tiny_checkpoint

H, W, SEQ_LEN = 64, 32, 4


@pytest.fixture(scope="session")
def sta_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("sta") / "sta_r18.pt", 5, H, W, SEQ_LEN)


@pytest.fixture(scope="session")
def sta_onnx(sta_checkpoint: Path) -> Path:
    """The fp32 export, made through the command line with --verify (so verification passes)."""
    from export.onnx_export import main

    out = sta_checkpoint.parent / "sta_r18_fp32.onnx"
    assert main(["--checkpoint", str(sta_checkpoint), "--out", str(out), "--verify"]) == 0
    return out
