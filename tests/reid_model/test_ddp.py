"""DDP: two CPU processes on the gloo backend, launched with the environment torchrun sets."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from reid_model.train import train
from reid_model.train_config import TrainConfig
from tests.synthetic_mars import build_synthetic_mars

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank: int, world_size: int, port: int, config: TrainConfig, dump: Path) -> None:
    """One torchrun-like rank: env as torchrun sets it, then the real entry point."""
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    result = train(config)
    state = {k: v.detach().clone() for k, v in result.model.state_dict().items()}
    torch.save({"state": state, "step": result.progress.step, "losses": result.losses,
                "wrote": result.last_checkpoint is not None}, dump / f"rank{rank}.pt")


def test_two_gloo_ranks_end_with_identical_weights(tmp_path: Path) -> None:
    root = build_synthetic_mars(tmp_path / "MARS", tracklets_per_cam=2, width=16)
    # 8 batches of 2 ids x 2 clips per epoch, 4 per rank; 3 iterations each.
    config = TrainConfig(
        data_root=root, out=tmp_path / "run", epochs=10, max_iters=3, batch_ids=2, clips_per_id=2, epoch_size="tracklets",
        height=64, width=16, backbone="resnet18", pretrained="none", workers=0, device="cpu", checkpoint_every=0,
    )
    mp.spawn(_rank_main, args=(2, _free_port(), config, tmp_path), nprocs=2, join=True)

    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["step"] == r1["step"] == 3
    assert r0["wrote"] and not r1["wrote"]  # only rank 0 writes
    assert r0["losses"] == r1["losses"]  # logged losses are the mean over ranks
    assert all(torch.equal(r0["state"][k], r1["state"][k]) for k in r0["state"])

    last = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert last["world_size"] == 2 and len(last["rng"]) == 2  # both ranks' RNG states for resuming
    assert all(torch.equal(last["model"][k], r0["state"][k]) for k in r0["state"])
    # A mid-epoch DDP checkpoint cannot continue in one process (the batch position is per rank).
    with pytest.raises(ValueError, match="mid-epoch by 2"):
        train(TrainConfig(**{**config.to_dict(), "resume": tmp_path / "run" / "last.pt"}))
    # The ranks trained on different batches: a single process with the same seed ends elsewhere.
    assert not torch.equal(last["model"]["fc1.weight"], train(
        TrainConfig(**{**config.to_dict(), "out": tmp_path / "single"})
    ).model.state_dict()["fc1.weight"])
