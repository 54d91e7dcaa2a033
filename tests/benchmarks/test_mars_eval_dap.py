"""benchmarks/mars_eval.py --dataset mars_dap: the protocol end to end on a tiny folder with known ranks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.mars_eval import main
from reid_model.data.mars_dap import load_mars_dap, select_split
from reid_model.preprocess import IMAGENET_MEAN, IMAGENET_STD
from tests.reid_model.synthetic_mars_dap import EXPECTED, write_mars_dap
from tests.tiny_model import save_tiny_checkpoint


def _colour_image_model(path: Path, height: int = 64, width: int = 32) -> Path:
    """An ONNX image model ``[B, 3, H, W]`` normalised -> ``[B, 3]`` the mean RGB in 0..1 (undoes the normalisation)."""
    import onnx
    from onnx import TensorProto, helper

    std = helper.make_tensor("std", TensorProto.FLOAT, [3], list(IMAGENET_STD))
    mean = helper.make_tensor("mean", TensorProto.FLOAT, [3], list(IMAGENET_MEAN))
    nodes = [helper.make_node("ReduceMean", ["images"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("Mul", ["m", "std"], ["s"]), helper.make_node("Add", ["s", "mean"], ["output"])]
    graph = helper.make_graph(
        nodes, "colour", [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, height, width])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])], initializer=[std, mean])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture()
def dap_root(tmp_path: Path) -> Path:
    return write_mars_dap(tmp_path / "dap")


def test_image_model_baseline_gives_the_hand_computed_scores(tmp_path, dap_root):
    model = _colour_image_model(tmp_path / "colour.onnx")
    out = tmp_path / "out"
    argv = ["--dataset", "mars_dap", "--data-root", str(dap_root), "--model", str(model), "--out", str(out),
            "--workers", "0", "--ablation"]
    assert main(argv) == 0
    result = json.loads((out / "results.json").read_text())["mars_dap"]
    for key, value in EXPECTED.items():
        assert result[key] == pytest.approx(value), key
    assert result["percent"] is True and result["split"] == "all"
    ablation = json.loads((out / "ablation.json").read_text())
    assert [(r["clips"], r["distance"], r["feature"]) for r in ablation["table1"]] == [
        ("1", "euclidean", "bn"), ("all", "euclidean", "bn"), ("1", "cosine", "bn"), ("all", "cosine", "bn")]
    assert [r["feature"] for r in ablation["table2"]] == ["bn", "raw"]
    # uniform strips: one clip or both, the features are the same, so every row is the hand answer
    assert all(r["mAP"] == pytest.approx(75.0) for rows in ablation.values() for r in rows)
    assert list((out / "feature_cache").glob("*.npz"))  # the second run reads the cache
    assert main(argv) == 0


def test_checkpoint_on_a_split_counts_that_splits_queries(tmp_path, dap_root):
    checkpoint = save_tiny_checkpoint(tmp_path / "tiny.pt", height=64, width=32)
    data = load_mars_dap(dap_root)
    split = next(s for s in ("val", "train") if select_split(data, s).queries)
    out = tmp_path / "out"
    assert main(["--dataset", "mars_dap", "--data-root", str(dap_root), "--model", str(checkpoint), "--out", str(out),
                 "--workers", "0", "--split", split, "--feature", "bn", "--distance", "euclidean"]) == 0
    result = json.loads((out / "results.json").read_text())["mars_dap"]
    assert result["num_queries"] == len(select_split(data, split).queries)
    assert 0 <= result["mAP"] <= 100 and result["rank1"] <= result["rank5"] <= result["rank20"]
    assert (result["feature"], result["distance"]) == ("bn", "euclidean")


@pytest.mark.parametrize("extra", [["--rerank"], ["--protocol", "official"], ["--features", "x.npz"], ["--visualize", "2"]])
def test_mars_only_options_are_refused(tmp_path, dap_root, extra):
    with pytest.raises(SystemExit) as info:
        main(["--dataset", "mars_dap", "--data-root", str(dap_root), "--model", "m.onnx", "--out", str(tmp_path), *extra])
    assert info.value.code == 2


def test_split_needs_mars_dap(tmp_path):
    with pytest.raises(SystemExit):
        main(["--data-root", str(tmp_path), "--model", "m.pt", "--split", "val"])


def test_missing_folder_fails_with_its_name(tmp_path):
    model = _colour_image_model(tmp_path / "colour.onnx")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        main(["--dataset", "mars_dap", "--data-root", str(tmp_path / "nowhere"), "--model", str(model),
              "--out", str(tmp_path / "o")])
