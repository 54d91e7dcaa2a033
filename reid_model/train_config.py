"""``TrainConfig``: every option of ``reid_model train`` in one frozen, validated dataclass.

Defaults follow the paper (Sec. 4.1): ResNet50 at 256x128, N = 4 frame clips, 8 ids x 4 clips per
batch, triplet margin 0.3, raw-feature triplet (RFU); "all the other hyperparameters remain the same
with [9]" (STA): Adam, lr 3e-4, weight decay 5e-4, lr x0.1 every 200 epochs over 800 epochs.
An epoch is one pass of the identity sampler; by default (``epoch_size="identities"``, as in
Video-Person-ReID, the code STA re-implementations build on) every training identity appears once
with K clips: 625 // 8 = 78 batches on MARS, so 800 epochs are about 62k iterations.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from reid_model.data.sampling import EPOCH_SIZES
from reid_model.losses import TRIPLET_FEATURES
from reid_model.models.backbones import DEFAULT_PRETRAINED
from reid_model.models.sta import ModelConfig

# STA's schedule: 3e-4 decayed by 10 every 200 epochs, 800 epochs in all.
STA_EPOCHS = 800
STA_MILESTONES = (200, 400, 600)
DATASETS = ("mars", "mars_dap")


@dataclass(frozen=True)
class TrainConfig:
    """Options of one training run (see README "Training" for each flag).

    Attributes:
        data_root: MARS root (bbox_train/, bbox_test/, info/), or a mars_dap folder.
        dataset: "mars" (train split, test-split evaluation) or "mars_dap" (the training
            identities of ``reid_model.data.mars_dap.split_identities``; evaluation on the
            validation identities with the mars_dap protocol).
        out: output folder: last.pt, best.pt, config.json, metrics.csv, tensorboard/.
        epochs: epochs to train (800 as STA).
        max_iters: stop after this many iterations in all (smoke runs); None = no cap.
        batch_ids, clips_per_id: P identities x K clips per batch (8 x 4 = 32 in the paper).
        epoch_size: "identities" (each id once per epoch) or "tracklets" (about every tracklet once).
            Under DDP this is the global batch, split across the ranks.
        seq_len, height, width: clip length N and frame size.
        backbone: "resnet50", "resnet18" or "osnet_x0_25"; pretrained: for ResNets "imagenet",
            "none" or a state-dict path; for OSNet "msmt17" (the ONNX asset) or an .onnx path;
            None = the backbone's default (``DEFAULT_PRETRAINED``).
        lr, weight_decay: Adam settings; milestones, gamma: the step decay (epochs, factor).
        triplet_feature: "raw" (RFU) or "bn"; margin: triplet margin; label_smoothing: CE smoothing; random_erasing:
        probability of random erasing per clip (0 = off); circle_weight: weight of a circle
        loss term on the triplet's feature (0 = off, as in the paper).
        fusion: STA feature fusion (off = the paper's vanilla baseline).
        device: "cpu", "cuda", "cuda:1"...; None = CUDA if available. Under torchrun each rank
            uses cuda:LOCAL_RANK.
        amp: mixed precision (fp16 + GradScaler on CUDA, bf16 autocast on CPU).
        channels_last: channels-last memory format for the backbone.
        workers: DataLoader worker processes (0 = load in the main process).
        seed: seeds sampling, augmentation and initialisation.
        resume: a checkpoint to continue from (normally OUT/last.pt); None = start afresh.
        eval_every: evaluate on the test split every this many epochs (0 = never).
        checkpoint_every: also write last.pt every this many iterations (0 = only at epoch ends).
    """

    data_root: Path
    out: Path
    dataset: str = "mars"
    epochs: int = STA_EPOCHS
    max_iters: int | None = None
    batch_ids: int = 8
    clips_per_id: int = 4
    epoch_size: str = "identities"
    seq_len: int = 4
    height: int = 256
    width: int = 128
    backbone: str = "resnet50"
    pretrained: str | None = None
    lr: float = 3e-4
    weight_decay: float = 5e-4
    milestones: tuple[int, ...] = STA_MILESTONES
    gamma: float = 0.1
    triplet_feature: str = "raw"
    margin: float = 0.3
    label_smoothing: float = 0.0
    random_erasing: float = 0.0
    circle_weight: float = 0.0
    fusion: bool = False
    device: str | None = None
    amp: bool = False
    channels_last: bool = False
    workers: int = 4
    seed: int = 0
    resume: Path | None = None
    eval_every: int = 0
    checkpoint_every: int = 500

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_root", Path(self.data_root))
        object.__setattr__(self, "out", Path(self.out))
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        pretrained = DEFAULT_PRETRAINED.get(self.backbone, "imagenet") if self.pretrained is None else self.pretrained
        object.__setattr__(self, "pretrained", str(pretrained))
        if self.resume is not None:
            object.__setattr__(self, "resume", Path(self.resume))
        for name in ("epochs", "batch_ids", "clips_per_id", "seq_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_ids < 2:
            raise ValueError(f"batch_ids must be >= 2 (the triplet loss needs negatives), got {self.batch_ids}")
        for name in ("workers", "seed", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_iters is not None and self.max_iters < 1:
            raise ValueError(f"max_iters must be >= 1 (or None for no cap), got {self.max_iters}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}")
        if any(m < 1 for m in self.milestones) or list(self.milestones) != sorted(set(self.milestones)):
            raise ValueError(f"milestones must be strictly increasing positive epochs, got {list(self.milestones)}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {list(DATASETS)}")
        if self.epoch_size not in EPOCH_SIZES:
            raise ValueError(f"unknown epoch_size {self.epoch_size!r}; choose from {list(EPOCH_SIZES)}")
        if self.triplet_feature not in TRIPLET_FEATURES:
            raise ValueError(f"unknown triplet_feature {self.triplet_feature!r}; choose from {list(TRIPLET_FEATURES)}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.circle_weight < 0:
            raise ValueError(f"circle_weight must be >= 0, got {self.circle_weight}")
        if not 0.0 <= self.random_erasing <= 1.0:
            raise ValueError(f"random_erasing must be in [0, 1], got {self.random_erasing}")
        if self.device is not None:
            try:
                torch.device(self.device)
            except RuntimeError as exc:
                raise ValueError(f"invalid device {self.device!r} (use cpu, cuda or cuda:N): {exc}") from exc
        # Backbone name, frame size and stripes are checked where the model defines them.
        self.model_config(num_classes=1)

    @property
    def batch_size(self) -> int:
        """Clips per (global) batch: batch_ids x clips_per_id."""
        return self.batch_ids * self.clips_per_id

    def model_config(self, num_classes: int) -> ModelConfig:
        """The ``ModelConfig`` this run trains (``num_classes`` = training identities)."""
        return ModelConfig(
            backbone=self.backbone, num_classes=num_classes, height=self.height, width=self.width,
            seq_len=self.seq_len, fusion=self.fusion,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON- and ``weights_only``-safe dict (paths as str, tuples as lists)."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of ``to_dict``; unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {unknown}; known: {sorted(known)}")
        return cls(**data)


# Options that must match for a checkpoint to be resumed by a run (they shape the model or the
# sample stream); the others (lr, epochs, eval...) may change between a run and its resumption.
RESUME_MUST_MATCH = ("dataset", "backbone", "seq_len", "height", "width", "fusion", "batch_ids", "clips_per_id", "epoch_size", "seed")
