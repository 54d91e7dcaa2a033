"""Detector speed and agreement on real frames: runtime x precision x input size, one run.

Every row is the same YOLOv8n weights (the bundled ONNX, rebuilt by ``export.yolo_weights`` and
exported by Ultralytics, see ``export/detector_export.py``), run through Ultralytics' ``predict``
as the tracker runs it (person class, conf 0.1; letterbox, inference and NMS all timed), on frames
spread over the lab recording (4 cameras, 1288x728) and PETS09-S2L1 (480x360). Rows are timed
round-robin, one frame per row per round, so other load on the machine spreads evenly.

Agreement: person AP50 of each row's boxes against the bundled model's boxes of confidence >= 0.5
on the same frames (the bundled row scores below 1.0 only through its own low-confidence boxes).

    python benchmarks/detector_speed.py --json detector_speed.json

Yardstick: YOLOv8n is 8.7 GFLOP at 640x640, scaling with the input area; at this CPU's fp32 MatMul
peak (measured in the same run) that is the fp32 limit per frame.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from export.detector_export import DetectorSpec, calibration_frames, video_files

log = logging.getLogger("benchmarks.detector_speed")

GFLOP_640 = 8.7
VIDEOS = {"lab": "videos/lab_4cam", "pets": "videos/pets09_s2l1"}
# (label, spec or None for the bundled ONNX, imgsz given to predict)
CANDIDATES: list[tuple[str, DetectorSpec | None, int]] = [
    ("bundled ONNX int8 (dynamic quant), onnxruntime", None, 640),
    ("ONNX fp32, onnxruntime", DetectorSpec("onnx", "fp32", 640), 640),
    ("OpenVINO fp32 640 square", DetectorSpec("openvino", "fp32", 640, static=True), 640),
    ("OpenVINO fp32 640", DetectorSpec("openvino", "fp32", 640), 640),
    ("OpenVINO int8 640 (NNCF)", DetectorSpec("openvino", "int8", 640), 640),
    ("OpenVINO fp32 512", DetectorSpec("openvino", "fp32", 640), 512),
    ("OpenVINO fp32 416", DetectorSpec("openvino", "fp32", 640), 416),
    ("OpenVINO fp32 320", DetectorSpec("openvino", "fp32", 640), 320),
]


def load_frames(per_video: int) -> dict[str, list[np.ndarray]]:
    from mcreid.assets import asset_path

    return {name: calibration_frames(video_files([asset_path(rel, f"the {name} videos")]), per_video)
            for name, rel in VIDEOS.items()}


def boxes_of(result) -> tuple[np.ndarray, np.ndarray]:
    b = result.boxes
    return b.xyxy.cpu().numpy(), b.conf.cpu().numpy()


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    tl = np.maximum(a[:, None, :2], b[None, :, :2])
    br = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(br - tl, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter + 1e-9)


def ap50(preds: list[tuple[np.ndarray, np.ndarray]], refs: list[np.ndarray]) -> float:
    """VOC-style all-point AP at IoU 0.5 of ``preds`` (boxes, scores per frame) against ``refs``."""
    scored, total = [], sum(len(r) for r in refs)
    for (boxes, scores), ref in zip(preds, refs):
        taken = np.zeros(len(ref), bool)
        overlaps = iou(boxes, ref) if len(boxes) and len(ref) else np.zeros((len(boxes), len(ref)))
        for i in np.argsort(-scores):
            j = int(np.argmax(overlaps[i])) if len(ref) else -1
            hit = j >= 0 and overlaps[i, j] >= 0.5 and not taken[j]
            if hit:
                taken[j] = True
            scored.append((scores[i], hit))
    if not total:
        return float("nan")
    scored.sort(key=lambda s: -s[0])
    hits = np.cumsum([h for _, h in scored])
    recall = hits / total
    precision = hits / np.arange(1, len(scored) + 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(np.concatenate([[0], recall])) * precision))


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.embed_speed_reference import matmul_peak_gflops
    from mcreid.logs import setup_logging
    from tracker.detector import import_ultralytics, resolve_detector
    from tracker.detector_cache import cache_root, cached_detector

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=16, help="frames per video set (lab: over its 4 cameras)")
    parser.add_argument("--rounds", type=int, default=2, help="timed passes over the frames")
    parser.add_argument("--cache", type=Path, help="where built detectors are kept (default: the tracker's cache)")
    parser.add_argument("--only", nargs="+", help="row labels (substrings) to run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    setup_logging(0)
    import_ultralytics()
    from ultralytics import YOLO

    bundled = Path(resolve_detector(None))
    frames = load_frames(args.frames)
    rows = [c for c in CANDIDATES if not args.only or any(o in c[0] for o in args.only)]
    models = {}
    for label, spec, _ in rows:
        weights = bundled if spec is None else cached_detector(bundled, spec, args.cache or cache_root())
        models[label] = YOLO(str(weights), task="detect")
    def predictor(model, size: int):
        return lambda frame: model.predict(frame, classes=[0], conf=0.1, imgsz=size, verbose=False)[0]

    predict = {label: predictor(models[label], size) for label, _, size in rows}

    reference = {name: [boxes_of(predict[rows[0][0]](f)) for f in fs] for name, fs in frames.items()}
    refs = {name: [b[c >= 0.5] for b, c in r] for name, r in reference.items()}
    times = {label: {name: [] for name in frames} for label, _, _ in rows}
    dets = {label: {name: [] for name in frames} for label, _, _ in rows}
    for label, _, _ in rows:  # warm-up: compile, first-shape reshapes
        for fs in frames.values():
            predict[label](fs[0])
            predict[label](fs[0])
    for round_ in range(args.rounds):
        for name, fs in frames.items():
            for frame in fs:
                for label, _, _ in rows:
                    start = time.perf_counter()
                    result = predict[label](frame)
                    times[label][name].append(time.perf_counter() - start)
                    if round_ == 0:
                        dets[label][name].append(boxes_of(result))
        log.info("round %d/%d done", round_ + 1, args.rounds)

    threads = os.cpu_count() or 1
    peak = matmul_peak_gflops(threads)
    out_rows = []
    for label, spec, size in rows:
        row = {"row": label, "spec": None if spec is None else spec.tag, "imgsz": size}
        for name, fs in frames.items():
            ms = 1000 * np.asarray(times[label][name])
            h, w = fs[0].shape[:2]
            area = size * size if spec is None or spec.static else size * (-(-int(size * min(h, w) / max(h, w)) // 32) * 32)
            row[name] = {"ms_p50": float(np.median(ms)), "ms_p95": float(np.percentile(ms, 95)),
                         "ap50": ap50(dets[label][name], refs[name]), "input": f"{h}x{w}",
                         "fp32_limit_ms": 1000 * GFLOP_640 * area / 640**2 / peak}
        out_rows.append(row)
    base = out_rows[0]
    head = "| row | lab ms p50 | lab p95 | x bundled | lab AP50 | PETS ms p50 | PETS p95 | x bundled | PETS AP50 |"
    lines = [f"YOLOv8n person detection, Ultralytics predict, {threads} CPUs ({platform.machine()}), "
             f"{args.frames} frames per set x {args.rounds} rounds, load average {os.getloadavg()[0]:.1f} at the end",
             head, "|" + "---|" * (head.count("|") - 1)]
    for row in out_rows:
        cells = [row["row"]]
        for name in frames:
            r = row[name]
            cells += [f"{r['ms_p50']:.1f}", f"{r['ms_p95']:.1f}", f"{base[name]['ms_p50'] / r['ms_p50']:.2f}",
                      f"{r['ap50']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    limits = ", ".join(f"{1000 * GFLOP_640 * h * w / 640**2 / peak:.1f} ms at {w}x{h}"
                       for w, h in ((640, 640), (640, 384), (512, 320)))
    lines.append(f"fp32 MatMul peak {peak:.0f} GFLOP/s: the fp32 limit for YOLOv8n is {limits} "
                 "(lab frames: 640x384 at imgsz 640, 512x320 at 512; int8 could go lower)")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"title": lines[0], "rows": out_rows, "fp32_matmul_peak_gflops": peak}, indent=2))
        log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
