"""Training-step throughput of STA: fp32 vs AMP (and channels-last), on the current device.

Times ``reid_model.train.train_step`` (forward, CE + batch-hard triplet, backward, Adam update) on
random normalised clips, so the figures are the model step alone, without JPEG decoding or
augmentation. Every variant runs in this one process on identical inputs; the table gives the
median step time, clips/s and the speed-up over fp32, and a JSON file keeps the raw step times.

    python benchmarks/train_speed.py                           # paper batch: 8 ids x 4 clips, 256x128
    python benchmarks/train_speed.py --batch-ids 2 --clips-per-id 2 --iters 3   # CPU-sized

AMP is fp16 autocast + GradScaler on CUDA and bf16 autocast on CPU, as ``reid_model train --amp``.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import time
from pathlib import Path

import torch

from reid_model.losses import ReIDLoss
from reid_model.models.sta import ModelConfig, build_model
from reid_model.train import train_step

logger = logging.getLogger("train_speed")

# name -> (amp, channels_last)
VARIANTS: dict[str, tuple[bool, bool]] = {
    "fp32": (False, False),
    "amp": (True, False),
    "fp32+channels_last": (False, True),
    "amp+channels_last": (True, True),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_variant(
    name: str, args: argparse.Namespace, device: torch.device, clips: torch.Tensor, labels: torch.Tensor
) -> list[float]:
    """Seconds per training step of one variant (after ``args.warmup`` untimed steps)."""
    amp, channels_last = VARIANTS[name]
    torch.manual_seed(0)
    config = ModelConfig(backbone=args.backbone, num_classes=625, height=args.height, width=args.width,
                         seq_len=args.seq_len)
    model = build_model(config).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4, weight_decay=5e-4)
    scaler = torch.amp.GradScaler("cuda") if amp and device.type == "cuda" else None
    criterion = ReIDLoss()
    times = []
    for i in range(args.warmup + args.iters):
        _sync(device)
        start = time.perf_counter()
        losses = train_step(model, criterion, optimizer, clips, labels, amp, scaler)
        _sync(device)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
        if not torch.isfinite(losses.total):
            raise RuntimeError(f"{name}: loss became {losses.total.item()}")
    del model, optimizer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return times


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backbone", default="resnet50", choices=("resnet50", "resnet18"))
    p.add_argument("--batch-ids", type=int, default=8)
    p.add_argument("--clips-per-id", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=4)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--iters", type=int, default=10, help="timed steps per variant")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per variant")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/train_speed.json"))
    args = p.parse_args(argv)
    if min(args.batch_ids, args.clips_per_id, args.seq_len, args.iters) < 1 or args.batch_ids < 2 or args.warmup < 0:
        p.error("need batch-ids >= 2, clips-per-id, seq-len, iters >= 1 and warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batch = args.batch_ids * args.clips_per_id
    gen = torch.Generator().manual_seed(0)
    clips = torch.randn(batch, args.seq_len, 3, args.height, args.width, generator=gen).to(device)
    labels = torch.arange(args.batch_ids).repeat_interleave(args.clips_per_id).to(device)
    results = {}
    for name in args.variants:
        logger.info("timing %s: %d warm-up + %d steps of %d clips", name, args.warmup, args.iters, batch)
        times = time_variant(name, args, device, clips, labels)
        median = statistics.median(times)
        results[name] = {"median_s": median, "clips_per_s": batch / median, "step_s": times}
    base = results.get("fp32", {}).get("median_s")
    describe = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'cpu'} x{torch.get_num_threads()} threads"
    print(f"\nSTA {args.backbone} training step, {batch} clips x {args.seq_len} frames at {args.height}x{args.width}, "
          f"{device} ({describe}), median of {args.iters}")
    print(f"{'variant':<22}{'step ms':>10}{'clips/s':>10}{'vs fp32':>9}")
    for name, r in results.items():
        ratio = f"{base / r['median_s']:.2f}x" if base else "-"
        print(f"{name:<22}{r['median_s'] * 1e3:>10.1f}{r['clips_per_s']:>10.2f}{ratio:>9}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {"device": str(device), "device_name": describe, "torch": torch.__version__,
              "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "batch_clips": batch, "results": results}
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    logger.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
