"""`reid_model train`: end to end and learning on a synthetic MARS tree, exact resume, bad inputs."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reid_model.cli import main
from reid_model.data.mars import load_mars
from reid_model.evaluate import ModelEmbedder, evaluate_model
from reid_model.inference import TorchEmbedder
from reid_model.losses import ReIDLoss
from reid_model.models.sta import ModelConfig, build_model
from reid_model.train import train
from reid_model.train_config import TrainConfig
from tests.synthetic_mars import build_synthetic_mars

H, W = 64, 16  # the smallest frame the 4 stripes allow: a 4x1 feature map
SMALL = ["--backbone", "resnet18", "--pretrained", "none", "--height", str(H), "--width", str(W), "--workers", "0"]


def _shift_hue(root: Path, camera: int, shift: float) -> None:
    """Recolour every frame of ``camera``: a cross-camera appearance change a random network cannot undo."""
    for path in root.rglob(f"*C{camera}T*.jpg"):
        hsv = np.asarray(Image.open(path).convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int64) + int(shift * 256)) % 256
        Image.fromarray(hsv, "HSV").convert("RGB").save(path, quality=95)


@pytest.fixture(scope="module")
def mars_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 train ids x 2 cameras x 2 tracklets (4 batches of 2 ids x 2 clips per epoch); test ids = train ids."""
    return build_synthetic_mars(
        tmp_path_factory.mktemp("mars") / "MARS", tracklets_per_cam=2, width=W, test_ids_from_train=True
    )


@pytest.fixture(scope="module")
def hue_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = build_synthetic_mars(
        tmp_path_factory.mktemp("mars_hue") / "MARS", tracklets_per_cam=2, width=W, test_ids_from_train=True
    )
    _shift_hue(root, camera=2, shift=0.16)
    return root


def small_config(root: Path, out: Path, **changes) -> TrainConfig:
    base = TrainConfig(
        data_root=root, out=out, epochs=100, batch_ids=2, clips_per_id=2, epoch_size="tracklets", height=H, width=W,
        backbone="resnet18", pretrained="none", workers=0, checkpoint_every=0,
    )
    return replace(base, **changes)


def read_rows(out: Path, kind: str) -> list[dict[str, str]]:
    with open(out / "metrics.csv", newline="") as f:
        return [row for row in csv.DictReader(f) if row["kind"] == kind]


def test_cli_trains_to_rank1_100_through_attention_and_both_losses(hue_root: Path, tmp_path: Path) -> None:
    """Learning: camera 2 is hue-shifted, so a random STA ranks the wrong ids first; 40 iterations
    of CE + raw-feature triplet through the attention fix that (rank-1 = 100% via --eval-every)."""
    data = load_mars(hue_root)
    torch.manual_seed(0)
    untrained = build_model(ModelConfig(backbone="resnet18", num_classes=4, height=H, width=W))
    before = evaluate_model(ModelEmbedder(untrained, torch.device("cpu")), data).summary()
    assert before["rank1"] < 100.0

    out = tmp_path / "run"
    argv = ["train", "--data-root", str(hue_root), "--out", str(out), *SMALL, "--batch-ids", "4",
            "--clips-per-id", "2", "--epoch-size", "tracklets", "--epochs", "20", "--max-iters", "40", "--eval-every", "5",
            "--checkpoint-every", "0"]
    assert main(argv) == 0

    train_rows, eval_rows = read_rows(out, "train"), read_rows(out, "eval")
    assert [int(r["step"]) for r in train_rows] == list(range(1, 41))
    assert [int(r["step"]) for r in eval_rows] == [10, 20, 30, 40]  # 2 batches per epoch, eval every 5
    assert float(eval_rows[-1]["rank1"]) == 100.0
    for loss in ("cross_entropy", "triplet"):  # both terms fall
        values = [float(r[loss]) for r in train_rows]
        assert np.mean(values[-8:]) < 0.7 * np.mean(values[:8]), loss

    # The outputs: config.json, TensorBoard events, last.pt (weights_only), best.pt usable for inference.
    saved = json.loads((out / "config.json").read_text())
    assert saved["train_config"]["max_iters"] == 40 and saved["model_config"]["num_classes"] == 4
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    last = torch.load(out / "last.pt", map_location="cpu", weights_only=True)
    assert last["progress"] == {"epoch": 20, "batch": 0, "step": 40}
    assert set(last["rng"][0]["global"]) == {"python", "numpy", "torch", "cuda"}
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    assert best["eval"]["mAP"] == pytest.approx(max(float(r["mAP"]) for r in eval_rows), abs=1e-3)
    after = evaluate_model(TorchEmbedder(out / "best.pt", device="cpu"), data).summary()
    assert after["rank1"] == 100.0 and after["mAP"] == pytest.approx(best["eval"]["mAP"], abs=1e-3)


def test_the_circle_term_and_random_erasing_train_and_log(hue_root: Path, tmp_path: Path) -> None:
    runs = {}
    for name, extra in (("plain", []), ("circle", ["--circle-weight", "0.5", "--random-erasing", "0.5"])):
        out = tmp_path / name
        argv = ["train", "--data-root", str(hue_root), "--out", str(out), *SMALL, "--batch-ids", "4",
                "--clips-per-id", "2", "--epochs", "3", "--max-iters", "3", "--checkpoint-every", "0", *extra]
        assert main(argv) == 0
        runs[name] = read_rows(out, "train")
    assert len(runs["circle"]) == 3 and all(float(r["circle"]) > 0 for r in runs["circle"])
    assert all(float(r["total"]) > float(r["cross_entropy"]) + float(r["triplet"]) for r in runs["circle"])
    assert all(r["circle"] == "" for r in runs["plain"])  # off: no column value, as in the paper


class _Killed(Exception):
    """Stands in for SIGKILL in the middle of an iteration."""


def test_killed_run_resumes_to_identical_weights(mars_root: Path, tmp_path: Path, monkeypatch) -> None:
    # 4 batches per epoch; 7 iterations cross an epoch end (lr halves there) and stop mid-epoch.
    config = small_config(mars_root, tmp_path / "a", max_iters=7, checkpoint_every=3, milestones=(1,), gamma=0.5)
    data = load_mars(mars_root)
    straight = train(config, data)

    calls = {"n": 0}
    original = ReIDLoss.__call__

    def dies_at_step_7(self, *args):
        calls["n"] += 1
        if calls["n"] == 7:
            raise _Killed
        return original(self, *args)

    monkeypatch.setattr(ReIDLoss, "__call__", dies_at_step_7)
    killed = replace(config, out=tmp_path / "b")
    with pytest.raises(_Killed):
        train(killed, data)
    monkeypatch.setattr(ReIDLoss, "__call__", original)
    last = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert last["progress"] == {"epoch": 1, "batch": 2, "step": 6}  # mid-epoch checkpoint

    resumed = train(replace(killed, resume=tmp_path / "b" / "last.pt"), data)
    assert resumed.progress == straight.progress
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    opt_a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["optimizer"]["state"]
    opt_b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["optimizer"]["state"]
    assert all(torch.equal(opt_a[i]["exp_avg_sq"], opt_b[i]["exp_avg_sq"]) for i in opt_a)
    assert read_rows(tmp_path / "a", "train") == read_rows(tmp_path / "b", "train")
    assert float(read_rows(tmp_path / "b", "train")[-1]["lr"]) == pytest.approx(config.lr * 0.5)


def test_resume_bad_checkpoints_raise(mars_root: Path, tmp_path: Path) -> None:
    data = load_mars(mars_root)
    config = small_config(mars_root, tmp_path / "run", max_iters=1)
    train(config, data)
    last = tmp_path / "run" / "last.pt"
    with pytest.raises(ValueError, match="already holds a run"):
        train(config, data)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        train(replace(config, resume=tmp_path / "missing.pt"), data)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ValueError, match="not an mcreid STA checkpoint"):
        train(replace(config, resume=foreign), data)
    model_only = tmp_path / "model_only.pt"
    payload = torch.load(last, weights_only=True)
    torch.save({k: payload[k] for k in ("format", "model_config", "model")}, model_only)
    with pytest.raises(ValueError, match="not a training checkpoint"):
        train(replace(config, resume=model_only), data)
    with pytest.raises(ValueError, match="seed"):
        train(replace(config, resume=last, seed=5), data)
    with pytest.raises(ValueError, match="fusion"):
        train(replace(config, resume=last, fusion=True), data)


def test_missing_data_raises_file_not_found(mars_root: Path, tmp_path: Path, caplog) -> None:
    with pytest.raises(FileNotFoundError, match="MARS root not found"):
        train(small_config(tmp_path / "nowhere", tmp_path / "out"))
    broken = tmp_path / "broken"
    shutil.copytree(mars_root / "info", broken / "info")
    (broken / "info" / "query_IDX.mat").unlink()
    with pytest.raises(FileNotFoundError, match="query_IDX.mat"):
        train(small_config(broken, tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="pretrained backbone weights not found"):
        train(small_config(mars_root, tmp_path / "out", pretrained=str(tmp_path / "r18.pth")))
    # The CLI reports the same as an error and exit status 1.
    assert main(["train", "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), *SMALL]) == 1
    assert "MARS root not found" in caplog.text


@pytest.mark.parametrize(
    "changes",
    [
        {"epochs": 0}, {"max_iters": 0}, {"batch_ids": 1}, {"clips_per_id": 0}, {"seq_len": 0},
        {"lr": 0.0}, {"weight_decay": -1.0}, {"gamma": 0.0}, {"gamma": 1.5}, {"milestones": (3, 2)},
        {"milestones": (0,)}, {"triplet_feature": "pooled"}, {"margin": -0.1}, {"label_smoothing": 1.0},
        {"random_erasing": 1.5}, {"random_erasing": -0.1}, {"circle_weight": -0.5},
        {"device": "gpu0"}, {"backbone": "vgg16"}, {"height": 70}, {"height": 80}, {"workers": -1},
        {"eval_every": -1},
    ],
)
def test_bad_config_values_raise(changes: dict, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        small_config(tmp_path, tmp_path / "out", **changes)


@pytest.mark.parametrize(
    "extra",
    [
        ["--backbone", "vgg16"], ["--epochs", "0"], ["--lr", "fast"], ["--triplet-feature", "pooled"],
        ["--gamma", "2"], ["--height", "70"], ["--milestones", "300", "200"],
    ],
)
def test_cli_bad_options_exit_with_usage_error(extra: list[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--data-root", str(tmp_path), "--out", str(tmp_path / "o"), *extra])
    assert info.value.code == 2


def test_train_config_round_trip_and_cli_defaults(tmp_path: Path) -> None:
    config = small_config(tmp_path, tmp_path / "out", milestones=(2, 4), resume=tmp_path / "x.pt")
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError, match="unknown TrainConfig keys"):
        TrainConfig.from_dict({**config.to_dict(), "lr_decay": 3})
    from reid_model.cli import build_parser, config_from_args

    args = build_parser().parse_args(["train", "--data-root", "d", "--out", "o", "--resume"])
    paper = config_from_args(args)
    assert (paper.batch_ids, paper.clips_per_id, paper.seq_len, paper.height, paper.width) == (8, 4, 4, 256, 128)
    assert (paper.lr, paper.weight_decay, paper.margin, paper.triplet_feature) == (3e-4, 5e-4, 0.3, "raw")
    assert (paper.epochs, paper.milestones, paper.gamma, paper.label_smoothing) == (800, (200, 400, 600), 0.1, 0.0)
    assert paper.resume == Path("o") / "last.pt" and paper.backbone == "resnet50" and not paper.fusion
    assert paper.random_erasing == 0.0
    erasing = build_parser().parse_args(["train", "--data-root", "d", "--out", "o", "--random-erasing", "0.5"])
    assert config_from_args(erasing).random_erasing == 0.5 and paper.circle_weight == 0.0
    circle = build_parser().parse_args(["train", "--data-root", "d", "--out", "o", "--circle-weight", "0.5"])
    assert config_from_args(circle).circle_weight == 0.5


def test_python_dash_m_entry_point() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "reid_model", "train", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--triplet-feature" in done.stdout and "--resume" in done.stdout
