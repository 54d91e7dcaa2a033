"""``reid_model`` command line: ``reid_model train ...`` (also ``python -m reid_model train``).

Multi-GPU: ``torchrun --nproc_per_node=N -m reid_model train ...`` (DDP, one process per GPU).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from reid_model.models.backbones import BACKBONES
from reid_model.train_config import DATASETS, STA_EPOCHS, STA_MILESTONES, TrainConfig

logger = logging.getLogger("reid_model")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train STA on MARS or mars_dap", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Train the STA video re-ID model on MARS with CE + batch-hard triplet (RFU by default).",
    )
    p.add_argument("--data-root", type=Path, required=True,
                   help="MARS root (bbox_train/, bbox_test/, info/) or a mars_dap folder (tracklets/, tracklets.csv, queries.csv)")
    p.add_argument("--dataset", choices=DATASETS, default="mars",
                   help="mars, or mars_dap: trains on its training identities (fixed 2/3 split), evaluates on the rest")
    p.add_argument("--out", type=Path, required=True, help="run folder for checkpoints, config.json, metrics")
    p.add_argument("--epochs", type=_positive_int, default=STA_EPOCHS)
    p.add_argument("--max-iters", type=_positive_int, default=None, help="stop after this many iterations")
    p.add_argument("--batch-ids", type=_positive_int, default=8, help="P identities per batch")
    p.add_argument("--clips-per-id", type=_positive_int, default=4, help="K clips per identity")
    p.add_argument("--epoch-size", choices=("identities", "tracklets"), default="identities",
                   help="an epoch = every identity once (Video-Person-ReID/STA, default) or about every tracklet once")
    p.add_argument("--seq-len", type=_positive_int, default=4, help="frames per clip (N)")
    p.add_argument("--height", type=_positive_int, default=256)
    p.add_argument("--width", type=_positive_int, default=128)
    p.add_argument("--backbone", choices=tuple(BACKBONES), default="resnet50",
                   help="resnet50 (the paper's), resnet18, or osnet_x0_25 (converted from the MSMT17 ONNX)")
    p.add_argument("--pretrained", default=None,
                   help="ResNets: imagenet (default) | none | PATH to a torchvision state dict; "
                        "osnet_x0_25: msmt17 (default, weights/osnet_x0_25_msmt17.onnx via MCREID_ASSETS) | PATH to that .onnx")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--milestones", type=_positive_int, nargs="+", default=list(STA_MILESTONES),
                   help="epochs where the learning rate is multiplied by --gamma (STA: every 200)")
    p.add_argument("--gamma", type=float, default=0.1, help="learning-rate decay factor")
    p.add_argument("--triplet-feature", choices=("raw", "bn"), default="raw",
                   help="raw = RFU (paper), bn = triplet on the BN feature")
    p.add_argument("--margin", type=float, default=0.3, help="triplet margin")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="cross-entropy label smoothing (0 = off)")
    p.add_argument("--random-erasing", type=float, default=0.0, metavar="P",
                   help="erase a random rectangle of each clip with probability P (0 = off)")
    p.add_argument("--circle-weight", type=float, default=0.0, metavar="W",
                   help="add W x circle loss (cosine, margin 0.25, scale 64) on the triplet's feature (0 = off)")
    p.add_argument("--fusion", action="store_true", help="STA feature fusion (off = vanilla baseline)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if available)")
    p.add_argument("--amp", action="store_true", help="mixed precision: fp16 on CUDA, bf16 on CPU")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers (0 = main process)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                   help="continue a run; without a value from OUT/last.pt")
    p.add_argument("--eval-every", type=int, default=0, help="evaluate every N epochs (0 = never): MARS test split, or the mars_dap validation identities")
    p.add_argument("--checkpoint-every", type=int, default=500, help="also write last.pt every N iterations (0 = epoch ends only)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reid_model", description="mcreid video re-ID model tools")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_parser(sub)
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` of parsed ``train`` arguments (ValueError on bad values)."""
    resume = None
    if args.resume is not None:
        resume = args.out / "last.pt" if args.resume == "auto" else Path(args.resume)
    return TrainConfig(
        data_root=args.data_root, out=args.out, dataset=args.dataset, epochs=args.epochs, max_iters=args.max_iters,
        batch_ids=args.batch_ids, clips_per_id=args.clips_per_id, epoch_size=args.epoch_size, seq_len=args.seq_len,
        height=args.height, width=args.width, backbone=args.backbone, pretrained=args.pretrained,
        lr=args.lr, weight_decay=args.weight_decay, milestones=tuple(args.milestones), gamma=args.gamma,
        triplet_feature=args.triplet_feature, margin=args.margin, label_smoothing=args.label_smoothing,
        random_erasing=args.random_erasing, circle_weight=args.circle_weight,
        fusion=args.fusion, device=args.device, amp=args.amp, channels_last=args.channels_last,
        workers=args.workers, seed=args.seed, resume=resume, eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
    )


def _setup_logging(level: str) -> None:
    rank = int(os.environ.get("RANK", 0))
    # Under torchrun only rank 0 talks, unless something goes wrong elsewhere.
    logging.basicConfig(
        level=level if rank == 0 else "WARNING",
        format=f"%(asctime)s %(levelname)s [rank {rank}] %(name)s: %(message)s" if "RANK" in os.environ
        else "%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``reid_model`` console script; returns the exit status.

    Bad option values exit through argparse (status 2); a missing data root, split file or
    checkpoint, or an incompatible checkpoint, is logged as an error and returns 1.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.log_level)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))  # exits with status 2
    from reid_model.train import train

    try:
        result = train(config)
    except (FileNotFoundError, ValueError) as exc:
        logger.error("%s", exc)
        return 1
    logger.info("done: %d iterations, last checkpoint %s", result.progress.step, result.last_checkpoint)
    return 0
