"""Which re-ID embedder the tracker builds: the bundled trained STA clip model by default,
the OSNet image model with ``--reid osnet``, clear errors otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from tracker.pipeline import BUNDLED_STA, build_embedder


def test_default_is_the_bundled_trained_sta_clip_model(caplog):
    from export.onnx_embedder import OnnxClipEmbedder

    with caplog.at_level("INFO"):
        embedder = build_embedder(None)
    assert isinstance(embedder, OnnxClipEmbedder)
    assert embedder.path == BUNDLED_STA and BUNDLED_STA.is_file()
    assert embedder.seq_len == 4 and embedder.feature_dim == 512
    assert "STA-OSNet" in caplog.text and "--reid osnet" in caplog.text  # the start-up log names it
    clips = np.random.default_rng(0).integers(0, 255, (2, 4, *embedder.input_size, 3), dtype=np.uint8)
    features = embedder.embed(clips)
    assert features.shape == (2, 512) and np.isfinite(features).all()


def test_osnet_selects_the_image_model(shared_data):
    from export.onnx_embedder import OnnxImageEmbedder

    embedder = build_embedder("osnet")
    assert isinstance(embedder, OnnxImageEmbedder)
    assert embedder.path.name == "osnet_x0_25_msmt17.onnx"


def test_a_missing_model_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        build_embedder(str(tmp_path / "nothing.onnx"))


def test_the_bundled_model_is_package_data_so_a_wheel_ships_it():
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["export"]
    inside = BUNDLED_STA.relative_to(root / "export").as_posix()
    assert any(fnmatch.fnmatch(inside, g) for g in globs), f"{inside} is not in export's package-data {globs}"
    card = (BUNDLED_STA.parent / "MODEL_CARD.md").relative_to(root / "export").as_posix()
    assert any(fnmatch.fnmatch(card, g) for g in globs)


def test_reid_input_choices_are_the_embedders_formats():
    from export.onnx_embedder import INPUT_FORMATS
    from tracker.config import REID_INPUTS, TrackerConfig

    assert REID_INPUTS == INPUT_FORMATS
    with pytest.raises(ValueError, match="unknown reid_input 'yuv'"):
        TrackerConfig(reid_input="yuv")


def test_a_broken_clip_export_reports_its_own_problem_not_the_image_models(tmp_path):
    import onnx

    from export.onnx_embedder import OnnxClipEmbedder

    model = onnx.load(str(BUNDLED_STA))
    del model.metadata_props[:]  # the STA outputs are there, its metadata is gone
    broken = tmp_path / "broken_sta.onnx"
    onnx.save(model, str(broken))
    with pytest.raises(ValueError) as info:
        build_embedder(str(broken))
    assert "metadata" in str(info.value) and "looks like" not in str(info.value)  # not the image model's check
    with pytest.raises(ValueError):
        OnnxClipEmbedder(broken)
