"""``reid_model train --dataset mars_dap``: trains on the training identities only, evaluates on the
validation identities with the mars_dap protocol, and resumes exactly."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from reid_model.cli import main
from reid_model.losses import ReIDLoss
from reid_model.train import load_dap_training, train
from reid_model.train_config import TrainConfig
from tests.reid_model.synthetic_mars_dap import write_mars_dap

H, W = 64, 16
SMALL = ["--backbone", "resnet18", "--pretrained", "none", "--height", str(H), "--width", str(W), "--workers", "0",
         "--batch-ids", "2", "--clips-per-id", "2", "--checkpoint-every", "0"]


@pytest.fixture(scope="module")
def dap_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mars_dap(tmp_path_factory.mktemp("dap") / "dap")


def _rows(out: Path, kind: str) -> list[dict[str, str]]:
    with open(out / "metrics.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["kind"] == kind]


def test_split_trains_on_train_ids_and_evaluates_val_ids(dap_root: Path) -> None:
    data = load_dap_training(dap_root)
    assert data.num_train_ids == 4  # 6 ids -> 4 train, 2 val (split_identities, seed 0)
    train_pids = {t.pid for t in data.train}
    assert not train_pids & set(data.val.pids.tolist())
    assert sorted({t.label for t in data.train}) == [0, 1, 2, 3]
    assert all(data.val.tracklets[q.row].pid == q.pid for q in data.val.queries)


@pytest.mark.slow
def test_cli_trains_and_evaluates_on_validation_ids(dap_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    argv = ["train", "--dataset", "mars_dap", "--data-root", str(dap_root), "--out", str(out), *SMALL,
            "--epochs", "2", "--eval-every", "1"]
    assert main(argv) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["train_config"]["dataset"] == "mars_dap" and saved["model_config"]["num_classes"] == 4
    train_rows, eval_rows = _rows(out, "train"), _rows(out, "eval")
    assert [int(r["epoch"]) for r in eval_rows] == [1, 2] and len(train_rows) == 2 * 2  # 4 ids / 2 = 2 batches
    assert all(0.0 <= float(r["mAP"]) <= 100.0 for r in eval_rows)
    best = torch.load(out / "best.pt", map_location="cpu", weights_only=True)
    assert best["train_config"]["dataset"] == "mars_dap"


class _Killed(Exception):
    pass


@pytest.mark.slow
def test_killed_dap_run_resumes_to_identical_weights(dap_root: Path, tmp_path: Path, monkeypatch) -> None:
    config = TrainConfig(data_root=dap_root, out=tmp_path / "a", dataset="mars_dap", epochs=3, batch_ids=2,
                         clips_per_id=2, height=H, width=W, backbone="resnet18", pretrained="none", workers=0,
                         checkpoint_every=1, milestones=(2,), gamma=0.5)
    straight = train(config)
    original, calls = ReIDLoss.__call__, {"n": 0}

    def dies_at_step_4(self, *args):
        calls["n"] += 1
        if calls["n"] == 4:
            raise _Killed
        return original(self, *args)

    monkeypatch.setattr(ReIDLoss, "__call__", dies_at_step_4)
    killed = replace(config, out=tmp_path / "b")
    with pytest.raises(_Killed):
        train(killed)
    monkeypatch.setattr(ReIDLoss, "__call__", original)
    resumed = train(replace(killed, resume=tmp_path / "b" / "last.pt"))
    assert resumed.progress == straight.progress
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _rows(tmp_path / "a", "train") == _rows(tmp_path / "b", "train")


def test_resume_refuses_another_dataset(dap_root: Path, tmp_path: Path) -> None:
    config = TrainConfig(data_root=dap_root, out=tmp_path / "a", dataset="mars_dap", epochs=1, batch_ids=2,
                         clips_per_id=2, height=H, width=W, backbone="resnet18", pretrained="none", workers=0,
                         max_iters=1)
    train(config)
    with pytest.raises(ValueError, match="dataset: checkpoint 'mars_dap' vs now 'mars'"):
        train(replace(config, dataset="mars", resume=tmp_path / "a" / "last.pt"), load_dap_training(dap_root))


@pytest.mark.parametrize("changes, match", [({"dataset": "dukev"}, "unknown dataset"),
                                            ({"backbone": "osnet_x0_25", "pretrained": "none"}, None)])
def test_bad_dataset_and_osnet_defaults(tmp_path: Path, changes: dict, match: str | None) -> None:
    if match:
        with pytest.raises(ValueError, match=match):
            TrainConfig(data_root=tmp_path, out=tmp_path / "o", **changes)
    else:  # validated where the model is built: osnet has no random initialisation
        assert TrainConfig(data_root=tmp_path, out=tmp_path / "o", backbone="osnet_x0_25").pretrained == "msmt17"
