"""``reid_model train``: STA on MARS with CE + batch-hard triplet, resumable, single process or DDP.

One iteration: a P x K batch of ``seq_len``-frame clips -> STA -> ``ReIDLoss`` -> Adam step. The
learning rate follows a step decay per epoch (``MultiStepLR``). ``last.pt`` is written atomically
at every epoch end and every ``checkpoint_every`` iterations; ``best.pt`` whenever an evaluation
beats the best mAP so far. A checkpoint carries model, optimizer, scheduler, AMP scaler, progress
(epoch, batch in the epoch, step) and every rank's RNG states, so ``--resume`` continues exactly
(bit-identical on CPU with ``--workers 0``; with workers the sample order is identical and the
augmentation draws restart per worker).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from reid_model.checkpoint import save_checkpoint
from reid_model.data.mars import MarsDataset, load_mars
from reid_model.data.sampling import IdentitySampler, TrainClipDataset
from reid_model.losses import LossOutput, ReIDLoss
from reid_model.models.sta import STA, build_model
from reid_model.train_config import TrainConfig
from reid_model.train_dist import (
    DistContext, all_gather_objects, barrier, broadcast_buffers, context_from_env, destroy_process_group,
    init_process_group, resolve_device,
)
from reid_model.train_log import MetricsWriter
from reid_model.train_state import Progress, capture_rng, load_resume, restore_rng, seed_everything, training_payload

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What ``train`` returns.

    Attributes:
        model: the trained STA (unwrapped, on its device, in training mode).
        progress: where training stopped.
        last_checkpoint, best_checkpoint: files written (None on non-main ranks / without evaluation).
        losses: the last iteration's loss components (averaged over ranks).
        best_map: best official-protocol mAP (percent) seen by ``--eval-every``, else None.
    """

    model: STA
    progress: Progress
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    losses: dict[str, float]
    best_map: float | None


class _SkipSampler(Sampler[int]):
    """The first ``skip`` indices of ``sampler`` dropped: resumes an epoch mid-way."""

    def __init__(self, sampler: Sampler[int], skip: int) -> None:
        self.sampler, self.skip = sampler, skip

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.skip, None)

    def __len__(self) -> int:
        return max(0, len(self.sampler) - self.skip)


def train_step(
    model: torch.nn.Module,
    criterion: ReIDLoss,
    optimizer: torch.optim.Optimizer,
    clips: torch.Tensor,
    labels: torch.Tensor,
    amp: bool = False,
    scaler: torch.amp.GradScaler | None = None,
) -> LossOutput:
    """One optimisation step: forward (autocast fp16 on CUDA / bf16 on CPU when ``amp``), loss, backward, update.

    Args:
        model: an ``STA`` (or its DDP wrapper) in training mode, on the device of ``clips``.
        clips: ``(B, N, 3, H, W)`` normalised float; labels: ``(B,)`` int64.
        scaler: a GradScaler for fp16 (CUDA); None for fp32 and bf16.
    """
    amp_dtype = torch.float16 if clips.device.type == "cuda" else torch.bfloat16
    with torch.autocast(clips.device.type, dtype=amp_dtype, enabled=amp):
        out = model(clips)
    losses = criterion(out.raw_feature, out.bn_feature, out.logits, labels)  # float32 inside
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(losses.total).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        losses.total.backward()
        optimizer.step()
    return losses


class Trainer:
    """One training run; ``run()`` trains and returns a ``TrainResult``. Built by ``train``."""

    def __init__(self, config: TrainConfig, ctx: DistContext, device: torch.device, data: MarsDataset) -> None:
        self.config, self.ctx, self.device, self.data = config, ctx, device, data
        payload = load_resume(config.resume, config, map_location="cpu") if config.resume else None
        if payload is None and (config.out / "last.pt").exists():
            raise ValueError(
                f"{config.out} already holds a run (last.pt); pass --resume to continue it or choose another --out"
            )
        seed_everything(config.seed)  # identical initialisation on every rank
        model_config = config.model_config(data.num_train_ids)
        if payload is not None and payload["model_config"] != model_config.to_dict():
            raise ValueError(
                f"cannot resume from {config.resume}: its model {payload['model_config']} differs from this "
                f"run's {model_config.to_dict()} (different data?)"
            )
        self.net = build_model(model_config, None if payload else config.pretrained).to(device)
        if config.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.model: torch.nn.Module = self.net
        if ctx.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(self.net, device_ids=[device.index] if device.type == "cuda" else None)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(config.milestones), config.gamma)
        self.scaler = torch.amp.GradScaler("cuda") if config.amp and device.type == "cuda" else None
        self.criterion = ReIDLoss(config.margin, config.label_smoothing, config.triplet_feature, config.circle_weight)
        self.sampler = IdentitySampler(
            [t.label for t in data.train], config.batch_ids, config.clips_per_id, config.seed, ctx.rank, ctx.world_size,
            epoch_size=config.epoch_size,
        )
        self.dataset = TrainClipDataset(data.train, config.seq_len, config.height, config.width,
                                        config.seed * 1024 + ctx.rank, erasing_prob=config.random_erasing)
        self.batches_per_epoch = len(self.sampler) // self.sampler.batch_size
        self.progress, self.best_map, self.losses = Progress(), None, {}
        seed_everything(config.seed * 1024 + ctx.rank)
        if payload is not None:
            self._restore(payload)
        self._saved_step = self.progress.step if payload is not None else -1

    def _restore(self, payload: dict[str, Any]) -> None:
        saved_world = int(payload.get("world_size", 1))
        if saved_world != self.ctx.world_size and payload["progress"]["batch"] > 0:
            raise ValueError(
                f"{self.config.resume} was written mid-epoch by {saved_world} process(es); resume it with "
                f"the same number (now {self.ctx.world_size}) or from an epoch-end checkpoint"
            )
        self.net.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        if self.scaler is not None and payload["scaler"]:
            self.scaler.load_state_dict(payload["scaler"])
        self.progress = Progress(**payload["progress"])
        self.best_map = payload["best_map"] if payload["best_map"] >= 0 else None
        states = payload["rng"]
        if len(states) == self.ctx.world_size:
            restore_rng(states[self.ctx.rank]["global"])
            self.dataset.set_epoch(self.progress.epoch)
            self.dataset.set_rng_state(states[self.ctx.rank]["dataset"])
        else:
            logger.warning("checkpoint from %d ranks, now %d: RNG states not restored", len(states), self.ctx.world_size)
        logger.info("resumed from %s at epoch %d, batch %d, step %d", self.config.resume,
                    self.progress.epoch + 1, self.progress.batch, self.progress.step)

    # ----------------------------------------------------------------------------- loop
    def run(self) -> TrainResult:
        cfg = self.config
        self.writer = MetricsWriter(cfg.out, self.progress.step if cfg.resume else None) if self.ctx.is_main else None
        if self.ctx.is_main:
            self._write_config_json()
        logger.info("training %s on %d tracklets / %d ids: %d batches of %d clips per epoch per rank, %d epochs",
                    cfg.backbone, len(self.data.train), self.data.num_train_ids, self.batches_per_epoch,
                    self.sampler.batch_size, cfg.epochs)
        try:
            while self.progress.epoch < cfg.epochs and not self._reached_max_iters():
                if self._run_epoch():
                    self._end_epoch()
            broadcast_buffers(self.net, self.ctx)
            if self.progress.step != self._saved_step:
                self._save_last()
        finally:
            if self.writer is not None:
                self.writer.close()
        main = self.ctx.is_main
        best = cfg.out / "best.pt"
        return TrainResult(self.net, self.progress, cfg.out / "last.pt" if main else None,
                           best if main and best.exists() else None, self.losses, self.best_map)

    def _reached_max_iters(self) -> bool:
        return self.config.max_iters is not None and self.progress.step >= self.config.max_iters

    def _loader(self) -> DataLoader:
        epoch = self.progress.epoch
        self.sampler.set_epoch(epoch)
        self.dataset.set_epoch(epoch)
        # A private generator: creating the iterator must not draw from torch's global RNG.
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        return DataLoader(
            self.dataset, batch_size=self.sampler.batch_size, drop_last=True, generator=generator,
            sampler=_SkipSampler(self.sampler, self.progress.batch * self.sampler.batch_size),
            num_workers=self.config.workers, pin_memory=self.device.type == "cuda",
        )

    def _run_epoch(self) -> bool:
        """Train the rest of the current epoch; True when it ran to its end."""
        cfg, total = self.config, self.batches_per_epoch
        batches = iter(self._loader())
        bar = tqdm(total=total, initial=self.progress.batch, disable=not self.ctx.is_main, leave=False,
                   desc=f"epoch {self.progress.epoch + 1}/{cfg.epochs}", dynamic_ncols=True)
        with bar:
            while self.progress.batch < total:
                if self._reached_max_iters():  # checked before fetching: no sample drawn in vain
                    return False
                clips, labels, _ = next(batches)
                self.losses = self._mean_over_ranks(self._step(clips, labels))
                p = self.progress
                self.progress = Progress(p.epoch, p.batch + 1, p.step + 1)
                self._log_step()
                bar.update(1)
                bar.set_postfix(loss=f"{self.losses['total']:.3f}", ce=f"{self.losses['cross_entropy']:.3f}",
                                tri=f"{self.losses['triplet']:.3f}", it=self.progress.step)
                every = cfg.checkpoint_every
                if every and self.progress.step % every == 0 and self.progress.batch < total:
                    self._save_last()
        return True

    def _step(self, clips: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        clips = clips.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        return train_step(self.model, self.criterion, self.optimizer, clips, labels, self.config.amp, self.scaler)

    def _mean_over_ranks(self, losses: LossOutput) -> dict[str, float]:
        parts = losses.parts()
        values = torch.stack([v.detach().float() for v in parts.values()]).cpu()
        if self.ctx.enabled:
            import torch.distributed as dist

            values = values.to(self.device)
            dist.all_reduce(values)
            values = values.cpu() / self.ctx.world_size
        return dict(zip(parts, values.tolist()))

    def _log_step(self) -> None:
        if self.writer is not None:
            lr = self.optimizer.param_groups[0]["lr"]
            self.writer.log(self.progress.step, self.progress.epoch + 1, "train", {"lr": lr, **self.losses})

    def _end_epoch(self) -> None:
        self.scheduler.step()
        self.progress = Progress(self.progress.epoch + 1, 0, self.progress.step)
        epoch, every = self.progress.epoch, self.config.eval_every
        if every and (epoch % every == 0 or epoch == self.config.epochs):
            self._evaluate()
        self._save_last()

    # ----------------------------------------------------------------------------- eval / save
    def _evaluate(self) -> None:
        if self.ctx.is_main:
            from reid_model.evaluate import ModelEmbedder, evaluate_model

            cfg = self.config
            embedder = ModelEmbedder(self.net, self.device, cfg.amp)
            if isinstance(self.data, DapTrainData):
                from reid_model.evaluate_dap import evaluate_dap

                scores, what = evaluate_dap(embedder, self.data.val, workers=cfg.workers, progress=True), "mars_dap val ids"
            else:
                scores, what = evaluate_model(embedder, self.data, "official", workers=cfg.workers, progress=True), "official"
            summary = scores.summary()
            logger.info("epoch %d eval (%s, AAS all clips, raw, cosine): rank-1 %.2f rank-5 %.2f mAP %.2f",
                        self.progress.epoch, what, summary["rank1"], summary["rank5"], summary["mAP"])
            self.writer.log(self.progress.step, self.progress.epoch, "eval", summary)
            if self.best_map is None or summary["mAP"] > self.best_map:
                self.best_map = summary["mAP"]
                # best.pt is for inference: model and provenance, no optimizer or RNG state.
                save_checkpoint(cfg.out / "best.pt", {
                    "model_config": self.net.config.to_dict(), "model": self.net.state_dict(),
                    "train_config": cfg.to_dict(), "progress": self.progress.to_dict(), "eval": summary,
                })
        barrier(self.ctx)

    def _rng_state(self) -> dict[str, Any]:
        return {"global": capture_rng(), "dataset": self.dataset.rng_state()}

    def _save_last(self) -> None:
        """Write ``out/last.pt`` on the main rank; every rank contributes its RNG state."""
        states = all_gather_objects(self._rng_state(), self.ctx)
        if self.ctx.is_main:
            payload = training_payload(
                model=self.net, optimizer=self.optimizer, scheduler=self.scheduler, scaler=self.scaler,
                config=self.config, progress=self.progress, rng_per_rank=states, best_map=self.best_map,
                extra={"world_size": self.ctx.world_size},
            )
            save_checkpoint(self.config.out / "last.pt", payload)
            logger.debug("wrote last.pt at step %d", self.progress.step)
        self._saved_step = self.progress.step

    def _write_config_json(self) -> None:
        out = self.config.out
        out.mkdir(parents=True, exist_ok=True)
        info = {"train_config": self.config.to_dict(),
                "model_config": self.net.config.to_dict(), "world_size": self.ctx.world_size,
                "num_train_tracklets": len(self.data.train), "torch": torch.__version__}
        tmp = out / "config.json.tmp"
        tmp.write_text(json.dumps(info, indent=2) + "\n")
        os.replace(tmp, out / "config.json")


@dataclass(frozen=True)
class DapTrainData:
    """mars_dap for training: ``train`` (relabelled training identities), ``val`` (validation identities)."""

    train: list
    num_train_ids: int
    val: object  # reid_model.data.mars_dap.MarsDap


def load_dap_training(root: Path) -> DapTrainData:
    """A mars_dap folder split by identity (``split_identities``: fixed seed, 2/3 train, 1/3 validation)."""
    from reid_model.data.mars_dap import load_mars_dap, select_split

    data = load_mars_dap(root)
    train = select_split(data, "train").relabel()
    val = select_split(data, "val")
    logger.info("mars_dap %s: %d training ids (%d tracklets), %d validation ids (%d tracklets, %d queries)",
                root, train.num_train_ids, len(train.tracklets), len(set(val.pids.tolist())), len(val.tracklets),
                len(val.queries))
    return DapTrainData(train.tracklets, train.num_train_ids, val)


def train(config: TrainConfig, data: MarsDataset | DapTrainData | None = None) -> TrainResult:
    """Train STA as ``config`` says; joins a DDP process group when launched by torchrun.

    Args:
        config: the run's options.
        data: MARS already loaded (tests, notebooks); default ``load_mars(config.data_root)``.

    Raises:
        FileNotFoundError: data root, a split file, ``--pretrained`` file or ``--resume`` checkpoint missing.
        ValueError: bad values, an incompatible or foreign checkpoint, or an existing run in ``--out``
            without ``--resume``.
    """
    ctx = context_from_env()
    device = resolve_device(config.device, ctx)
    if data is None:
        data = load_mars(config.data_root) if config.dataset == "mars" else load_dap_training(config.data_root)
    init_process_group(ctx, device)
    try:
        return Trainer(config, ctx, device, data).run()
    finally:
        destroy_process_group(ctx)
