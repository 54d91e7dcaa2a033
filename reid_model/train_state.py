"""What a training checkpoint holds beyond the model, and how a run resumes from it.

Everything stored is ``torch.load(weights_only=True)``-safe: tensors, dicts, lists, ints, floats
and strings. The RNG states of every rank (python, numpy, torch, CUDA) are stored so that a killed
run resumed from ``last.pt`` continues exactly as if it had never stopped.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reid_model.checkpoint import load_checkpoint
from reid_model.train_config import RESUME_MUST_MATCH, TrainConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """Where training stands: ``epoch`` (0-based) and ``batch`` batches done in it; ``step`` in all."""

    epoch: int = 0
    batch: int = 0
    step: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch, "step": self.step}


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict[str, Any]:
    """This process's RNG states as weights_only-safe values."""
    version, mt_state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(mt_state), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": [],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [s.cpu() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of ``capture_rng``."""
    version, mt_state, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in mt_state), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
        else:
            logger.warning("checkpoint holds %d CUDA RNG states, this machine has %d GPUs: not restored",
                           len(state["cuda"]), torch.cuda.device_count())


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if hasattr(model, "module") else model


def training_payload(
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler | None,
    config: TrainConfig,
    progress: Progress,
    rng_per_rank: list[dict[str, Any]],
    best_map: float | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The dict ``save_checkpoint`` writes as last.pt / best.pt."""
    net = unwrap(model)
    return {
        "model_config": net.config.to_dict(),
        "model": net.state_dict(),
        "train_config": config.to_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else {},
        "progress": progress.to_dict(),
        "rng": rng_per_rank,
        "best_map": best_map if best_map is not None else -1.0,
        **(extra or {}),
    }


def load_resume(path: Path, config: TrainConfig, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a training checkpoint and check it belongs to a run compatible with ``config``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not an mcreid checkpoint, an inference-only checkpoint, or one from a run whose
            model or sample stream differs (backbone, frame size, seq_len, batch shape, seed...).
    """
    payload = load_checkpoint(path, map_location=map_location)
    missing = [k for k in ("train_config", "optimizer", "scheduler", "progress", "rng") if k not in payload]
    if missing:
        raise ValueError(f"{path} is not a training checkpoint (lacks {missing}); resume from OUT/last.pt of a `reid_model train` run")
    saved = payload["train_config"]
    mine = config.to_dict()
    differs = {k: (saved.get(k), mine[k]) for k in RESUME_MUST_MATCH if saved.get(k) != mine[k]}
    if differs:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in differs.items())
        raise ValueError(f"cannot resume from {path}: the run differs in {detail}")
    changed = [k for k in mine if k not in ("resume", "out", "data_root") and saved.get(k) != mine[k]]
    if changed:
        logger.warning("resuming with changed options %s: the run will not replay the original exactly", changed)
    return payload
