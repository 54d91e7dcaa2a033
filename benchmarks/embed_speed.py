"""Embedding speed: PyTorch eager vs onnxruntime fp32 / int8 (and GPU rows), one run, same inputs.

    python benchmarks/embed_speed.py [--backbone resnet50] [--clips 8] [--repeats 7] [--json out.json]

Rows for the STA model at seq_len x H x W (random-init weights unless --checkpoint; speed does
not depend on the weights): PyTorch eager fp32 (``TorchEmbedder``), ORT fp32, ORT int8 dynamic,
ORT int8 static (QDQ, per-channel, calibrated on real PETS09 clips), and with a GPU: PyTorch
CUDA, ORT CUDA fp32/fp16 and TensorRT. Then the OSNet image embedder. Columns: clips/s, ms per
clip p50/p95 (one call embeds ``--clips`` clips; ms/clip = call time / clips), speed ratio to
PyTorch, cosine to PyTorch (min over clips) and GFLOP/s (the model's fp32 FLOPs per second).
PyTorch and onnxruntime get the same thread count.

Yardsticks (``embed_speed_reference.py``): this CPU's fp32 peak (onnxruntime's 2048x2048 MatMul),
against which the GFLOP/s are read, and a bare torchvision backbone (``--backbone-check``,
ResNet50 at 224x224 by default) timed PyTorch vs ORT, the issue's reference measurement.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.embed_speed_reference import backbone_rows, gflop_per_clip, matmul_peak_gflops
from benchmarks.timing import round_robin, time_calls
from export.crops import pets_clips, real_or_random_clips
from export.onnx_embedder import OnnxClipEmbedder, OnnxImageEmbedder
from export.runtime import CPU, CUDA, TENSORRT, cuda_device_count, default_threads, usable_providers
from export.verify import agreement
from mcreid.assets import find_asset

logger = logging.getLogger("benchmarks.embed_speed")
OSNET = "weights/osnet_x0_25_msmt17.onnx"


def row(name: str, times: list[float], clips: int, out: np.ndarray, reference: np.ndarray | None,
        gflop_per_clip: float | None = None) -> dict:
    per_clip = np.array(times) * 1000.0 / clips
    result = {
        "name": name,
        "clips_per_s": clips / statistics.median(times),
        "ms_per_clip_p50": float(np.percentile(per_clip, 50)),
        "ms_per_clip_p95": float(np.percentile(per_clip, 95)),
        "repeats": len(times),
    }
    if reference is not None:
        result["cosine_min"] = agreement(reference, out).min_cosine
    if gflop_per_clip is not None:  # the model's fp32 FLOPs, whatever the precision that ran them
        result["gflops"] = result["clips_per_s"] * gflop_per_clip
    return result


def build_sta(args: argparse.Namespace, workdir: Path) -> Path:
    """The checkpoint to benchmark: ``--checkpoint`` or a random-init STA written to ``workdir``."""
    if args.checkpoint:
        return Path(args.checkpoint)
    import torch

    from reid_model.checkpoint import save_checkpoint
    from reid_model.models.sta import STA, ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(backbone=args.backbone, height=args.height, width=args.width, seq_len=args.seq_len)
    model = STA(config)
    path = workdir / f"sta_{args.backbone}.pt"
    save_checkpoint(path, {"model_config": config.to_dict(), "model": model.state_dict()})
    return path


def model_name(args: argparse.Namespace) -> str:
    """The STA model benchmarked: the checkpoint's backbone and file, or the random-init backbone."""
    if not args.checkpoint:
        return f"{args.backbone} (random-init)"
    import torch

    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    return f"{state['model_config']['backbone']} ({Path(args.checkpoint).name})"


def export_all(checkpoint: Path, workdir: Path, seq_len: int, size: tuple[int, int], gpu: bool,
               held_out: int) -> dict[str, Path]:
    """fp32 export once, then its int8 (dynamic, static on real PETS clips) and fp16 versions.

    Static int8 is calibrated on PETS clips after the first ``held_out`` (the timed inputs), so
    its cosine is measured on clips it was not calibrated on.
    """
    from dataclasses import replace

    from export.onnx_export import export_checkpoint, write_metadata
    from export.quantize import quantize_int8, to_fp16

    models = {"fp32": workdir / "fp32.onnx", "int8_dynamic": workdir / "int8_dynamic.onnx"}
    meta = export_checkpoint(checkpoint, models["fp32"], "fp32")
    quantize_int8(models["fp32"], models["int8_dynamic"])
    write_metadata(models["int8_dynamic"], replace(meta, precision="int8", quantization="dynamic"))
    calib = pets_clips(size, seq_len, max_clips=held_out + 32)
    calib = calib[held_out:] if calib is not None and len(calib) > held_out else None
    if calib is not None:
        models["int8_static"] = workdir / "int8_static.onnx"
        quantize_int8(models["fp32"], models["int8_static"], calib)
        write_metadata(models["int8_static"], replace(meta, precision="int8", quantization="static"))
    if gpu:
        models["fp16"] = workdir / "fp16.onnx"
        to_fp16(models["fp32"], models["fp16"])
        write_metadata(models["fp16"], replace(meta, precision="fp16"))
    return models


def sta_rows(args: argparse.Namespace, workdir: Path, threads: int) -> list[dict]:
    import torch

    from reid_model.inference import TorchEmbedder

    torch.set_num_threads(threads)
    size = (args.height, args.width)
    gpu = cuda_device_count() > 0 and CUDA in usable_providers()
    checkpoint = build_sta(args, workdir)
    models = export_all(checkpoint, workdir, args.seq_len, size, gpu, held_out=args.clips)
    clips, source = real_or_random_clips(size, args.seq_len, count=args.clips)
    logger.info("STA inputs: %s", source)
    n = len(clips)
    plans: list[tuple[str, Callable[[], object]]] = [
        ("PyTorch eager fp32 (CPU)", lambda: TorchEmbedder(checkpoint, device="cpu", batch_size=n)),
        ("ORT fp32 (CPU)", lambda: OnnxClipEmbedder(models["fp32"], "cpu", n, threads)),
        ("ORT int8 dynamic (CPU)", lambda: OnnxClipEmbedder(models["int8_dynamic"], "cpu", n, threads)),
    ]
    if "int8_static" in models:
        plans.append(("ORT int8 static QDQ (CPU)", lambda: OnnxClipEmbedder(models["int8_static"], "cpu", n, threads)))
    if gpu:
        plans += [
            ("PyTorch eager fp32 (CUDA)", lambda: TorchEmbedder(checkpoint, device="cuda", batch_size=n)),
            ("ORT fp32 (CUDA)", lambda: OnnxClipEmbedder(models["fp32"], "cuda", n)),
            ("ORT fp16 (CUDA)", lambda: OnnxClipEmbedder(models["fp16"], "cuda", n)),
        ]
        if TENSORRT in usable_providers():
            plans.append(("ORT TensorRT fp16", lambda: OnnxClipEmbedder(models["fp32"], "tensorrt", n)))
    embedders = {}
    for name, make in plans:
        embedder = make()
        if ("CUDA" in name or "TensorRT" in name) and getattr(embedder, "providers", [CUDA])[0] == CPU:
            logger.warning("%s fell back to the CPU; row skipped", name)
            continue
        embedders[name] = embedder
    gflop = gflop_per_clip(embedders[plans[0][0]].model, args.seq_len, size)
    # int8 dynamic is an order of magnitude slower on CPU: it joins only the first 3 rounds
    calls = {name: (lambda e=e: e.embed(clips)) for name, e in embedders.items()}
    times, outs = round_robin(calls, args.repeats, args.warmup, {n: 3 for n in embedders if "dynamic" in n})
    reference = outs[plans[0][0]]
    rows = [row(name, times[name], n, outs[name], reference, gflop) for name in embedders]
    base = rows[0]["clips_per_s"]
    for r in rows:
        r["ratio_to_pytorch"] = r["clips_per_s"] / base
    return rows


def osnet_rows(args: argparse.Namespace, threads: int) -> list[dict]:
    path = Path(args.osnet) if args.osnet else find_asset(OSNET)
    if path is None or not path.is_file():
        logger.warning("OSNet model not found (%s); OSNet rows skipped", OSNET)
        return []
    clips, _ = real_or_random_clips((256, 128), args.seq_len, count=args.clips)
    rows = []
    for providers in ["cpu"] + (["cuda"] if CUDA in usable_providers() and cuda_device_count() else []):
        embedder = OnnxImageEmbedder(path, providers, batch_size=len(clips) * args.seq_len, threads=threads)
        times, out = time_calls(lambda: embedder.embed(clips), args.repeats, args.warmup)
        rows.append(row(f"OSNet x0.25 image embedder ORT fp32 ({providers.upper()})", times, len(clips), out, None))
    return rows


def _rule(head: str) -> str:
    return "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"


def table(rows: list[dict]) -> str:
    head = f"| {'row':<42} | clips/s | ms/clip p50 | ms/clip p95 | x PyTorch | cosine  | GFLOP/s |"
    lines = [head, _rule(head)]
    for r in rows:
        ratio = f"{r['ratio_to_pytorch']:.2f}" if "ratio_to_pytorch" in r else "-"
        cosine = f"{r['cosine_min']:.5f}" if "cosine_min" in r else "-"
        gflops = f"{r['gflops']:.0f}" if "gflops" in r else "-"
        lines.append(f"| {r['name']:<42} | {r['clips_per_s']:7.2f} | {r['ms_per_clip_p50']:11.1f} | "
                     f"{r['ms_per_clip_p95']:11.1f} | {ratio:>9} | {cosine:>7} | {gflops:>7} |")
    return "\n".join(lines)


def backbone_table(rows: list[dict], images: int) -> str:
    head = f"| {'bare backbone, ' + str(images) + ' images per call':<62} | images/s | x PyTorch |"
    lines = [head, _rule(head)]
    lines += [f"| {r['name']:<62} | {r['images_per_s']:8.1f} | {r['ratio_to_pytorch']:9.2f} |" for r in rows]
    return "\n".join(lines)


def targets(rows: list[dict], peak_gflops: float | None) -> str:
    """The issue's CPU targets, checked against this run, and against this CPU's fp32 peak."""
    by_name = {r["name"]: r for r in rows}
    torch_cpu, fp32 = by_name.get("PyTorch eager fp32 (CPU)"), by_name.get("ORT fp32 (CPU)")
    int8 = by_name.get("ORT int8 static QDQ (CPU)")
    lines = []
    if torch_cpu and fp32:
        ratio = fp32["clips_per_s"] / torch_cpu["clips_per_s"]
        lines.append(f"ORT fp32 / PyTorch eager = {ratio:.2f}x (target >= 3x): {'met' if ratio >= 3 else 'MISSED'}")
        if peak_gflops:
            lines.append(
                f"fp32 peak (ORT MatMul 2048x2048): {peak_gflops:.0f} GFLOP/s; ORT fp32 runs the STA at "
                f"{fp32['gflops']:.0f} GFLOP/s ({fp32['gflops'] / peak_gflops:.0%} of it), PyTorch eager at "
                f"{torch_cpu['gflops']:.0f} ({torch_cpu['gflops'] / peak_gflops:.0%}); 3x PyTorch would need "
                f"{3 * torch_cpu['gflops']:.0f} GFLOP/s ({3 * torch_cpu['gflops'] / peak_gflops:.0%} of the peak)")
    if fp32 and int8:
        ratio = int8["clips_per_s"] / fp32["clips_per_s"]
        ok = ratio >= 1.5 and int8["cosine_min"] >= 0.98
        lines.append(f"ORT int8 static / ORT fp32 = {ratio:.2f}x, cosine {int8['cosine_min']:.5f} "
                     f"(target >= 1.5x, >= 0.98): {'met' if ok else 'MISSED'}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet50", choices=["resnet50", "resnet18"])
    parser.add_argument("--checkpoint", help="a trained STA checkpoint (default: random-init weights)")
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--seq-len", type=int, default=4)
    parser.add_argument("--clips", type=int, default=8, help="clips per embed call")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, help="CPU threads for PyTorch and onnxruntime alike")
    parser.add_argument("--osnet", help=f"OSNet ONNX file (default: assets {OSNET})")
    parser.add_argument("--skip-sta", action="store_true")
    parser.add_argument("--backbone-check", default="resnet50", metavar="NAME",
                        help="bare torchvision backbone timed PyTorch vs ORT (the issue's reference); 'none' skips it")
    parser.add_argument("--backbone-size", type=int, default=224, help="its square input side")
    parser.add_argument("--json", type=Path, default=Path("embed_speed.json"))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from mcreid.logs import setup_logging

    args = parse_args(argv)
    setup_logging()
    for name in ("onnxscript", "onnx_ir", "torch.onnx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    threads = args.threads or default_threads()
    with tempfile.TemporaryDirectory(prefix="mcreid_embed_speed_") as tmp:
        rows = [] if args.skip_sta else sta_rows(args, Path(tmp), threads)
    osnet = osnet_rows(args, threads)
    images = args.clips * args.seq_len
    backbone = [] if args.backbone_check == "none" else backbone_rows(
        args.backbone_check, args.backbone_size, images, threads, args.repeats, args.warmup)
    peak = matmul_peak_gflops(threads) if rows else None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    title = (f"STA {model_name(args)} {args.seq_len}x{args.height}x{args.width}, {args.clips} clips per call, "
             f"{threads} threads, {os.cpu_count()} CPUs ({platform.machine()}), load average {load:.1f} at the end")
    print(title)
    for part in (rows, osnet):
        if part:
            print(table(part))
    if backbone:
        print(backbone_table(backbone, images))
    if rows:
        print(targets(rows, peak))
    report = {"title": title, "threads": threads, "load_average": load, "args": {k: str(v) for k, v in vars(args).items()},
              "sta": rows, "osnet": osnet, "backbone": backbone, "fp32_matmul_peak_gflops": peak}
    args.json.write_text(json.dumps(report, indent=2))
    logger.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
