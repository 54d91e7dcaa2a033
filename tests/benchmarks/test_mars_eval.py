"""benchmarks/mars_eval.py end to end: --features on the real split, a checkpoint and an ONNX export
on a synthetic MARS tree, the feature cache, the ablation, re-ranking, pictures and bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks import mars_eval, mars_eval_features
from benchmarks.mars_eval import evaluate_protocol, main
from benchmarks.mars_eval_features import load_features
from reid_model.evaluate import extract_features
from reid_model.data.mars import load_mars, load_split_info, protocol_split
from reid_model.metrics import cosine_distance, evaluate
from reid_model.rerank import k_reciprocal_rerank
from tests.synthetic_mars import build_synthetic_mars
from tests.tiny_model import save_tiny_checkpoint

H, W = 64, 16  # the smallest frame the STA model accepts, to keep the CPU work small
CELL_H, CELL_W = 128 + 8, 64 + 8  # a picture cell: the frame at 128x64 in a 4-pixel border
RESULT_KEYS = {"rank1", "rank5", "rank10", "rank20", "mAP", "num_queries"}


# ---------------------------------------------------------------- --features on the real split files


@pytest.fixture(scope="module")
def mars_info_dir(shared_data: Path) -> Path:
    return shared_data / "mars_info"


def _identity_features(info, seed: int = 0, noise: float = 0.0) -> np.ndarray:
    """One random unit direction per MARS label (+ optional noise): identical within an identity."""
    pids = info.test_tracks[:, 2]
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(pids.max() + 2, 32))
    return (directions[pids + 1] + noise * rng.normal(size=(len(pids), 32))).astype(np.float32)


def test_features_file_end_to_end(tmp_path: Path, mars_info_dir: Path) -> None:
    info = load_split_info(mars_info_dir)
    perfect = _identity_features(info)
    noisy = _identity_features(info, seed=1, noise=0.8)
    np.savez(tmp_path / "feats.npz", features=perfect, bn_features=noisy)
    out = tmp_path / "out"
    args = ["--features", str(tmp_path / "feats.npz"), "--info-dir", str(mars_info_dir), "--out", str(out)]
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"official", "torchreid"}
    for protocol, expected_queries in (("official", 1980), ("torchreid", 1840)):
        assert set(results[protocol]) == RESULT_KEYS
        assert results[protocol]["num_queries"] == expected_queries
        # identical features within each identity: every true match ties at distance 0, first
        assert results[protocol]["rank1"] == 100.0 and results[protocol]["mAP"] == 100.0
    assert (out / "cmc.png").stat().st_size > 1000
    assert Image.open(out / "cmc.png").format == "PNG"

    assert main([*args, "--feature", "bn", "--distance", "euclidean", "--protocol", "torchreid"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"torchreid"}
    expected = evaluate_protocol(info, noisy, "torchreid", "euclidean")[0].summary()
    assert results["torchreid"] == pytest.approx(expected)
    assert 5.0 < results["torchreid"]["mAP"] < 95.0
    run = json.loads((out / "run.json").read_text())
    assert run["feature"] == "bn" and run["distance"] == "euclidean" and run["protocols"] == ["torchreid"]


def test_features_file_bad_input(tmp_path: Path, mars_info_dir: Path) -> None:
    base = ["--info-dir", str(mars_info_dir), "--out", str(tmp_path / "out")]
    with pytest.raises(FileNotFoundError, match="features file not found"):
        main(["--features", str(tmp_path / "none.npz"), *base])
    np.savez(tmp_path / "short.npz", features=np.zeros((100, 8), np.float32))
    with pytest.raises(ValueError, match=r"\(12180, D\)"):
        main(["--features", str(tmp_path / "short.npz"), *base])
    np.savez(tmp_path / "raw_only.npz", features=np.ones((12180, 8), np.float32))
    with pytest.raises(ValueError, match="bn_features"):
        main(["--features", str(tmp_path / "raw_only.npz"), "--feature", "bn", *base])
    with pytest.raises(FileNotFoundError, match="split file not found"):
        main(["--features", str(tmp_path / "raw_only.npz"), "--info-dir", str(tmp_path), "--out", str(tmp_path)])


@pytest.mark.parametrize(
    "argv",
    [
        [],  # neither --model nor --features
        ["--features", "f.npz"],  # no split files
        ["--features", "f.npz", "--info-dir", "x", "--ablation"],
        ["--data-root", "x", "--model", "m.pt", "--clips", "0"],
        ["--data-root", "x", "--model", "m.pt", "--clips", "some"],
    ],
)
def test_bad_command_lines_exit_with_usage(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


# ---------------------------------------------------------------- a synthetic MARS tree and a tiny model


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 4 ids x 3 cameras (queries in cameras 1 and 2), tracklets long enough for 4 of several clips.
    return build_synthetic_mars(
        tmp_path_factory.mktemp("mars"), num_test_ids=4, cameras=(1, 2, 3), query_cameras=(1, 2),
        frames_per_tracklet=(4, 18), height=H, width=W,
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", 4, H, W)


def _hand_made_aas(tree: Path, checkpoint: Path) -> tuple[np.ndarray, np.ndarray]:
    """AAS written out plainly: every non-overlapping 4-frame clip (the last completed by
    repeating its frames in order), embedded by TorchEmbedder, averaged per tracklet."""
    from reid_model.inference import TorchEmbedder

    clips, owner = [], []
    for i, tracklet in enumerate(load_mars(tree).test):
        frames = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in tracklet.paths])
        for start in range(0, len(frames), 4):
            length = min(4, len(frames) - start)
            clips.append(frames[[start + (j * length) // 4 for j in range(4)]])
            owner.append(i)
    # One call (one input shape: oneDNN re-plans its convolutions for every new batch size).
    raw, bn = TorchEmbedder(checkpoint, device="cpu", batch_size=len(clips)).embed_with_bn(np.stack(clips))
    owner = np.array(owner)
    return (np.stack([raw[owner == i].mean(axis=0) for i in range(owner.max() + 1)]),
            np.stack([bn[owner == i].mean(axis=0) for i in range(owner.max() + 1)]))


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory: pytest.TempPathFactory, tree: Path, checkpoint: Path) -> tuple[Path, list[str]]:
    """``mars_eval`` with the checkpoint (clips all, 1 decoding worker, small batches, pictures)."""
    out = tmp_path_factory.mktemp("torch_run")
    base = ["--data-root", str(tree), "--model", str(checkpoint), "--out", str(out), "--device", "cpu"]
    assert main([*base, "--workers", "1", "--batch-size", "16", "--visualize", "3"]) == 0
    return out, base


def test_checkpoint_end_to_end_matches_hand_made_aas(torch_run, tree: Path, checkpoint: Path, caplog) -> None:
    out, base = torch_run
    raw, bn = _hand_made_aas(tree, checkpoint)
    cached = list((out / "feature_cache").glob(f"*clips-all_T4_{H}x{W}*.npz"))
    assert len(cached) == 1
    feats = load_features(cached[0], len(raw))
    np.testing.assert_allclose(feats.raw, raw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(feats.bn, bn, rtol=1e-4, atol=1e-4)

    info = load_split_info(tree / "info")
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"official", "torchreid"} and results["official"]["num_queries"] == 8
    for protocol in ("official", "torchreid"):
        q, g = protocol_split(info, protocol)
        pids, cams = info.test_tracks[:, 2], info.test_tracks[:, 3]
        expected = evaluate(cosine_distance(raw[q], raw[g]), pids[q], cams[q], pids[g], cams[g], protocol)
        assert results[protocol] == pytest.approx(expected.summary())
        top10 = Image.open(out / f"top10_{protocol}.png")
        assert top10.size == (11 * CELL_W, 3 * CELL_H)  # 3 queries x (query + 10 gallery cells)

    # Another distance and feature reuse the cache: no image is decoded again.
    caplog.set_level(logging.INFO)
    assert main([*base, "--workers", "0", "--distance", "euclidean", "--feature", "bn"]) == 0
    assert "features from cache" in caplog.text and "extracting features" not in caplog.text
    results = json.loads((out / "results.json").read_text())
    expected = evaluate_protocol(info, bn, "official", "euclidean")[0].summary()
    assert results["official"] == pytest.approx(expected)


def test_topk_picture_borders_follow_the_ranking(tmp_path: Path, tree: Path) -> None:
    info = load_split_info(tree / "info")
    feats = _identity_features(info, seed=3, noise=2.0)
    np.savez(tmp_path / "f.npz", features=feats)
    out = tmp_path / "out"
    assert main(["--features", str(tmp_path / "f.npz"), "--data-root", str(tree), "--out", str(out),
                 "--protocol", "official", "--visualize", "8"]) == 0
    scores, _ = evaluate_protocol(info, feats, "official")
    picture = np.asarray(Image.open(out / "top10_official.png").convert("RGB"))
    for q in range(8):  # all 8 queries, in order; first gallery cell's border: green iff rank-1 hit
        corner = picture[q * CELL_H + 1, CELL_W + 1]
        assert tuple(corner) == ((0, 200, 0) if scores.first_rank[q] == 1 else (230, 0, 0))
    assert 0 < scores.rank(1) < 1  # both colours occur


class HistogramEmbedder:
    """A deterministic stand-in model: per-channel colour histograms of the clip."""

    input_size, seq_len, feature_dim = (H, W), 4, 24

    def __init__(self) -> None:
        self.calls = 0

    def embed_with_bn(self, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        hist = np.stack([
            np.concatenate([np.bincount(c[..., ch].ravel() // 32, minlength=8) for ch in range(3)]) for c in clips
        ]).astype(np.float32) / clips[0, ..., 0].size
        return hist, hist - hist.mean(axis=1, keepdims=True)


def test_ablation_from_one_extraction(tmp_path: Path, tree: Path, monkeypatch) -> None:
    embedders = []

    def fake_loader(path, device, batch_size):
        embedders.append(HistogramEmbedder())
        return embedders[-1]

    monkeypatch.setattr(mars_eval, "load_embedder", fake_loader)
    model = tmp_path / "stand_in.pt"
    model.write_bytes(b"weights")
    out = tmp_path / "out"
    assert main(["--data-root", str(tree), "--model", str(model), "--out", str(out), "--workers", "0",
                 "--ablation", "--protocol", "torchreid", "--batch-size", "1000"]) == 0
    assert embedders[0].calls == 1  # one extraction (one batch) for clips 1, 4 and all
    ablation = json.loads((out / "ablation.json").read_text())
    table1 = [(r["clips"], r["distance"], r["feature"], r["paper"]["rank1"]) for r in ablation["table1"]]
    assert table1 == [("1", "euclidean", "bn", 83.5), ("4", "euclidean", "bn", 85.3), ("all", "euclidean", "bn", 85.7),
                      ("4", "cosine", "bn", 85.9), ("all", "cosine", "bn", 86.5)]
    assert [r["feature"] for r in ablation["table2"]] == ["bn", "raw"]
    assert ablation["table2"][1]["paper"][-1]["mAP"] == 82.3
    results = json.loads((out / "results.json").read_text())
    assert ablation["table2"][1]["results"]["torchreid"] == results["torchreid"]  # all clips, cosine, raw
    info = load_split_info(tree / "info")
    caches = {p.name.split("_clips-")[1].split("_")[0]: p for p in (out / "feature_cache").glob("*.npz")}
    assert sorted(caches) == ["1", "4", "all"]
    one_clip = load_features(caches["1"], len(info.test_tracks)).bn
    expected = evaluate_protocol(info, one_clip, "torchreid", "euclidean")[0].summary()
    assert ablation["table1"][0]["results"]["torchreid"] == pytest.approx(expected)
    # A later run with one of those settings takes it from the cache: no new embedder call.
    assert main(["--data-root", str(tree), "--model", str(model), "--out", str(out), "--clips", "4"]) == 0
    assert embedders[1].calls == 0


def test_clip_settings_from_one_pass_equal_separate_extraction(tree: Path) -> None:
    tracklets = load_mars(tree).test
    together = extract_features(tracklets, HistogramEmbedder(), [1, 4, "all"], seed=5, progress=False)
    for setting in (1, 4, "all"):
        alone = extract_features(tracklets, HistogramEmbedder(), [setting], seed=5, progress=False)[setting]
        np.testing.assert_allclose(together[setting].raw, alone.raw, atol=1e-6)
        np.testing.assert_allclose(together[setting].bn, alone.bn, atol=1e-6)
    assert not np.allclose(together[1].raw, together["all"].raw)
    embedder = HistogramEmbedder()
    extract_features(tracklets, embedder, ["all"], batch_size=1000, progress=False)
    assert embedder.calls == 1  # clips of all tracklets batched into one call
    with pytest.raises(ValueError, match="restricted"):
        extract_features(tracklets, HistogramEmbedder(), [1, "restricted"], progress=False)


def test_rerank_end_to_end(tmp_path: Path, tree: Path) -> None:
    info = load_split_info(tree / "info")
    feats = _identity_features(info, seed=4, noise=2.0)
    np.savez(tmp_path / "f.npz", features=feats)
    out = tmp_path / "out"
    assert main(["--features", str(tmp_path / "f.npz"), "--info-dir", str(tree / "info"), "--out", str(out),
                 "--rerank"]) == 0
    results = json.loads((out / "results.json").read_text())
    for protocol in ("official", "torchreid"):
        q, g = protocol_split(info, protocol)
        pids, cams = info.test_tracks[:, 2], info.test_tracks[:, 3]
        distmat = k_reciprocal_rerank(feats[q], feats[g], "cosine")
        expected = evaluate(distmat, pids[q], cams[q], pids[g], cams[g], protocol).summary()
        assert results[protocol] == pytest.approx(expected)
        plain = evaluate_protocol(info, feats, protocol)[0].summary()
        assert results[protocol] != pytest.approx(plain)


def test_model_errors(tmp_path: Path, tree: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model not found"):
        main(["--data-root", str(tree), "--model", str(tmp_path / "none.pt"), "--out", str(tmp_path)])
    (tmp_path / "model.h5").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"\.pt, \.pth, \.onnx"):
        main(["--data-root", str(tree), "--model", str(tmp_path / "model.h5"), "--out", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="MARS root not found"):
        main(["--data-root", str(tmp_path / "nowhere"), "--model", str(tmp_path / "model.h5"), "--out", str(tmp_path)])
    assert set(mars_eval_features.EMBEDDERS) == {".pt", ".pth", ".onnx"}


def test_onnx_export_end_to_end_matches_checkpoint(tmp_path: Path, torch_run, tree: Path, checkpoint: Path) -> None:
    from export.onnx_export import export_checkpoint

    onnx_path = tmp_path / "tiny.onnx"
    export_checkpoint(checkpoint, onnx_path)
    torch_out, onnx_out = torch_run[0], tmp_path / "onnx"
    assert main(["--data-root", str(tree), "--model", str(onnx_path), "--out", str(onnx_out), "--device", "cpu",
                 "--workers", "0"]) == 0
    from_torch = load_features(next((torch_out / "feature_cache").glob("*clips-all*.npz")), 16)
    from_onnx = load_features(next((onnx_out / "feature_cache").glob("*clips-all*.npz")), 16)
    np.testing.assert_allclose(from_onnx.raw, from_torch.raw, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(from_onnx.bn, from_torch.bn, rtol=1e-3, atol=1e-3)
    assert json.loads((onnx_out / "run.json").read_text())["model"] == str(onnx_path)
    onnx_results = json.loads((onnx_out / "results.json").read_text())
    info = load_split_info(tree / "info")
    for protocol in ("official", "torchreid"):
        assert onnx_results[protocol] == pytest.approx(evaluate_protocol(info, from_torch.raw, protocol)[0].summary())
