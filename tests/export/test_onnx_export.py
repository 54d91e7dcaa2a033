"""mcreid-export: graph interface, metadata, parity with PyTorch, fp16/int8 paths, bad inputs."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from export.crops import folder_clips  # noqa: E402
from export.metadata import ExportMetadata  # noqa: E402
from export.onnx_embedder import OnnxClipEmbedder  # noqa: E402
from export.onnx_export import export_fp32, export_wrapper, main, write_metadata  # noqa: E402
from export.quantize import quantize_int8, to_fp16  # noqa: E402
from export.verify import agreement  # noqa: E402
from reid_model.checkpoint import file_sha256, load_model  # noqa: E402
from tests.export.conftest import H, SEQ_LEN, W  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _clips(n: int, t: int = SEQ_LEN, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, t, H, W, 3), dtype=np.uint8)


def _torch_features(checkpoint: Path, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    model, _ = load_model(checkpoint)
    with torch.no_grad():
        raw, bn = export_wrapper(model)(torch.from_numpy(clips))
    return raw.numpy(), bn.numpy()


def test_graph_takes_uint8_clips_and_gives_both_features(sta_onnx: Path) -> None:
    model = onnx.load(str(sta_onnx))
    onnx.checker.check_model(model)
    assert max(op.version for op in model.opset_import if op.domain in ("", "ai.onnx")) >= 17
    (clips,) = model.graph.input
    assert clips.name == "clips"
    assert clips.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    dims = clips.type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[1].dim_param  # dynamic batch and clip length
    assert [d.dim_value for d in dims[2:]] == [H, W, 3]
    assert [o.name for o in model.graph.output] == ["raw_feature", "bn_feature"]


def test_metadata_is_written_and_read_back(sta_onnx: Path, sta_checkpoint: Path) -> None:
    props = {p.key: p.value for p in onnx.load(str(sta_onnx)).metadata_props}
    meta = ExportMetadata.from_props(props)
    assert (meta.input_height, meta.input_width, meta.seq_len, meta.feature_dim) == (H, W, SEQ_LEN, 512)
    assert meta.model_name == "sta-resnet18" and meta.channel_order == "RGB" and meta.precision == "fp32"
    assert meta.checkpoint_sha256 == file_sha256(sta_checkpoint)
    assert "torch" in meta.exporter and "onnx" in meta.exporter and "0.485" in meta.normalization
    embedder = OnnxClipEmbedder(sta_onnx)
    assert embedder.metadata == meta
    assert (embedder.input_size, embedder.seq_len, embedder.feature_dim) == ((H, W), SEQ_LEN, 512)


@pytest.mark.parametrize("batch", [1, 5])
def test_fp32_matches_pytorch(sta_onnx: Path, sta_checkpoint: Path, batch: int) -> None:
    clips = _clips(batch, seed=batch)
    raw, bn = OnnxClipEmbedder(sta_onnx, batch_size=4).embed_with_bn(clips)
    ref_raw, ref_bn = _torch_features(sta_checkpoint, clips)
    for ref, got in ((ref_raw, raw), (ref_bn, bn)):
        assert got.shape == (batch, 512) and got.dtype == np.float32
        result = agreement(ref, got)
        assert result.failures("fp32") == [], str(result)
    assert not np.allclose(raw, bn)


def test_other_clip_lengths_run_through_the_same_graph(sta_onnx: Path, sta_checkpoint: Path) -> None:
    clips = _clips(2, t=2, seed=7)
    ref_raw, _ = _torch_features(sta_checkpoint, clips)
    np.testing.assert_allclose(OnnxClipEmbedder(sta_onnx).embed(clips), ref_raw, rtol=1e-3, atol=1e-4)


def test_fp16_and_int8_exports_run_and_agree(sta_onnx: Path, sta_checkpoint: Path, tmp_path: Path,
                                             shared_data: Path) -> None:
    clips = _clips(3, seed=3)
    ref_raw, _ = _torch_features(sta_checkpoint, clips)
    calib = folder_clips(shared_data / "reid_crops" / "images", (H, W), SEQ_LEN)
    base = ExportMetadata.from_props({p.key: p.value for p in onnx.load(str(sta_onnx)).metadata_props})
    cases = {"fp16": (to_fp16, "fp16", ""), "int8 dynamic": (None, "int8", "dynamic"), "int8 static": (calib, "int8", "static")}
    for name, (how, precision, quantization) in cases.items():
        out = tmp_path / f"{name.replace(' ', '_')}.onnx"
        if how is to_fp16:
            to_fp16(sta_onnx, out)
        else:
            assert quantize_int8(sta_onnx, out, how) == quantization
        write_metadata(out, ExportMetadata(**{**base.__dict__, "precision": precision, "quantization": quantization}))
        model = onnx.load(str(out))
        ops = {node.op_type for node in model.graph.node}
        if precision == "fp16":
            assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
        else:
            assert ops & {"QuantizeLinear", "DynamicQuantizeLinear", "ConvInteger", "QLinearConv", "MatMulInteger"}, ops
        embedder = OnnxClipEmbedder(out)
        assert embedder.metadata.precision == precision and embedder.metadata.quantization == quantization
        result = agreement(ref_raw, embedder.embed(clips))
        assert result.failures(precision) == [], f"{name}: {result}"


def test_cli_int8_static_with_calib_folder(sta_checkpoint: Path, tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "int8.onnx"
    calib = shared_data / "reid_crops" / "images"
    assert main(["--checkpoint", str(sta_checkpoint), "--out", str(out), "--precision", "int8",
                 "--calib", str(calib), "--verify", "--exporter", "torchscript"]) == 0
    meta = OnnxClipEmbedder(out).metadata
    assert (meta.precision, meta.quantization) == ("int8", "static")
    assert "torchscript" in meta.exporter


def test_script_runs_as_a_file(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "export" / "onnx_export.py"), "--help"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--checkpoint" in done.stdout and "--calib" in done.stdout


def test_missing_or_foreign_checkpoint_is_a_clear_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "x.onnx"
    with caplog.at_level(logging.ERROR):
        assert main(["--checkpoint", str(tmp_path / "missing.pt"), "--out", str(out)]) == 1
    assert "missing.pt" in caplog.text and "reid_model train" in caplog.text
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert main(["--checkpoint", str(foreign), "--out", str(out)]) == 1
    assert "foreign.pt" in caplog.text and "mcreid STA checkpoint" in caplog.text
    assert not out.exists()


def test_bad_options_are_rejected(sta_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--checkpoint", str(sta_checkpoint), "--out", str(tmp_path / "x.onnx"), "--calib", str(tmp_path)])
    with pytest.raises(ValueError, match="opset"):
        export_fp32(None, H, W, SEQ_LEN, tmp_path / "x.onnx", opset=13)
    with pytest.raises(ValueError, match="exporter"):
        export_fp32(None, H, W, SEQ_LEN, tmp_path / "x.onnx", exporter="tf")
    with pytest.raises(FileNotFoundError, match="crop folder"):
        folder_clips(tmp_path / "nothing", (H, W), SEQ_LEN)
