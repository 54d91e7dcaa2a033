"""benchmarks/embed_speed.py runs end to end on a tiny model and writes its table and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from benchmarks.embed_speed import main  # noqa: E402


@pytest.mark.slow
def test_benchmark_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "speed.json"
    assert main(["--backbone", "resnet18", "--height", "64", "--width", "32", "--clips", "2",
                 "--repeats", "1", "--warmup", "0", "--backbone-check", "resnet18", "--backbone-size", "32",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    names = [r["name"] for r in report["sta"]]
    assert names[:3] == ["PyTorch eager fp32 (CPU)", "ORT fp32 (CPU)", "ORT int8 dynamic (CPU)"]
    for r in report["sta"]:
        assert r["clips_per_s"] > 0 and r["ms_per_clip_p95"] >= r["ms_per_clip_p50"] > 0
        assert r["cosine_min"] > 0.98  # every row embeds the same clips as PyTorch
        assert r["gflops"] == pytest.approx(r["clips_per_s"] * report["sta"][0]["gflops"] / report["sta"][0]["clips_per_s"])
    assert report["fp32_matmul_peak_gflops"] > 0
    assert [r["name"] for r in report["backbone"]] == [
        f"resnet18 32x32 {runtime} ({malloc})" for malloc in ("glibc malloc defaults", "keep_freed_memory")
        for runtime in ("PyTorch eager fp32", "ORT fp32")]
    assert all(r["images_per_s"] > 0 for r in report["backbone"])
    assert report["sta"][0]["ratio_to_pytorch"] == pytest.approx(1.0)
    printed = capsys.readouterr().out
    assert "| ORT fp32 (CPU)" in printed and "target >= 3x" in printed
    assert "fp32 peak (ORT MatMul 2048x2048)" in printed and "| resnet18 32x32 ORT fp32 (keep_freed_memory)" in printed
