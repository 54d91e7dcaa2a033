"""Checkpoint files: written atomically, read with ``weights_only=True``.

A checkpoint is a dict with ``format``, ``model_config`` (a ``ModelConfig`` as a dict) and
``model`` (the state dict); training checkpoints add optimizer, scheduler, sampler and RNG state.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from reid_model.models.sta import STA, ModelConfig

FORMAT = "mcreid-sta/1"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the format tag) to ``path`` atomically: a killed write leaves the old file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; clear errors for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path} (expected a .pt file written by `reid_model train`)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"cannot read checkpoint {path}: not a PyTorch checkpoint, truncated or corrupt "
            f"({type(exc).__name__}: {exc}); expected a .pt file written by `reid_model train`"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(
            f"{path} is not an mcreid STA checkpoint (expected format {FORMAT!r}, found {found!r}); "
            "checkpoints come from `reid_model train`"
        )
    for key in ("model_config", "model"):
        if key not in payload:
            raise ValueError(f"checkpoint {path} lacks {key!r}")
    return payload


def model_from_payload(payload: dict[str, Any]) -> tuple[STA, ModelConfig]:
    """Rebuild the model of a loaded checkpoint (eval mode)."""
    try:
        config = ModelConfig(**payload["model_config"])
    except TypeError as exc:
        raise ValueError(f"checkpoint model_config does not match this mcreid version: {exc}") from exc
    model = STA(config)
    model.load_state_dict(payload["model"])
    return model.eval(), config


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[STA, ModelConfig]:
    """The STA model stored in ``path`` (eval mode, on ``map_location``) and its config."""
    return model_from_payload(load_checkpoint(path, map_location))


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, streamed (checkpoints can be hundreds of MB)."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
