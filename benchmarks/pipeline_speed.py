"""Pipeline speed per stage and end to end, for 1, 2 and 4 cameras of the lab recording.

Frames are decoded first (timed as the ``decode`` stage), then fed to ``Pipeline.step`` in
lockstep, one frame per camera per step, every frame processed (offline mode), so each stage's
time is measured without thread interplay. Per stage: mean milliseconds per step (embedding is
bursty: a track finishes a clip every 4th frame). End to end:
steps per second and the real-time factor (source seconds / wall seconds; >= 1 keeps up with the
10 fps cameras). Compared in the same run: each detector given (``--detector``: ``auto``, the
tracker's default, and ``bundled``, the YOLOv8n ONNX on onnxruntime), each re-ID model given
(``--reid``: ``default`` is the bundled STA-OSNet, ``osnet`` the image model, or ONNX paths) and,
for several cameras, batched vs one-by-one detection. Decoding is also timed with one thread per
camera (as the runner's readers decode), as wall milliseconds per step.

    python benchmarks/pipeline_speed.py --frames 60 --cameras 1 2 4 --detector auto bundled --json speed.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from mcreid.assets import asset_path
from mcreid.logs import setup_logging
from tracker.config import TrackerConfig
from tracker.detector import YoloDetector
from tracker.pipeline import STAGES, Pipeline, build_embedder
from tracker.runner import PipelineRunner
from tracker.types import CameraFrame

log = logging.getLogger("pipeline_speed")
WARMUP_STEPS = 3


def _read(path: Path, frames: int, times: list[float] | None = None) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    images = []
    for _ in range(frames):
        tic = time.perf_counter()
        ok, image = capture.read()
        if times is not None:
            times.append(time.perf_counter() - tic)
        if not ok:
            break
        images.append(image)
    capture.release()
    return images


def decode(cameras: int, frames: int) -> tuple[dict[str, list[np.ndarray]], float, float]:
    """The first ``frames`` frames of ``cam0..`` -> (frames per camera, median decode ms/frame, fps)."""
    folder = asset_path("videos/lab_4cam", "the 4-camera lab recording")
    times: list[float] = []
    out = {f"cam{i}": _read(folder / f"cam{i}.mp4", frames, times) for i in range(cameras)}
    fps = cv2.VideoCapture(str(folder / "cam0.mp4")).get(cv2.CAP_PROP_FPS) or 10.0
    return out, float(np.median(times)) * 1000, fps


def threaded_decode_ms(cameras: int, frames: int) -> float:
    """Wall ms per step (one frame of each camera) with one decoding thread per camera."""
    from concurrent.futures import ThreadPoolExecutor

    folder = asset_path("videos/lab_4cam", "the 4-camera lab recording")
    tic = time.perf_counter()
    with ThreadPoolExecutor(cameras) as pool:
        list(pool.map(lambda i: _read(folder / f"cam{i}.mp4", frames), range(cameras)))
    return (time.perf_counter() - tic) / frames * 1000


def run_case(config: TrackerConfig, detector: YoloDetector, embedder, videos: dict[str, list[np.ndarray]],
             decode_ms: float, fps: float) -> dict[str, object]:
    """One pipeline over the given cameras; per-stage medians (ms per step) and end-to-end rates."""
    detector.batch = config.batch_detect
    pipeline = Pipeline(config, detector, embedder)
    steps = min(len(v) for v in videos.values())
    tic = 0.0
    for index in range(steps):
        if index == WARMUP_STEPS:
            pipeline.timings.samples.clear()
            tic = time.perf_counter()
        frames = [CameraFrame(cid, index + 1, v[index], time_s=index / fps) for cid, v in videos.items()]
        pipeline.step(frames)
    wall = time.perf_counter() - tic
    timed = steps - WARMUP_STEPS
    stages = pipeline.timings.mean_ms()
    stages["decode"] = decode_ms * len(videos)
    wall += decode_ms / 1000 * len(videos) * timed  # decoding runs on reader threads; counted serially here
    return {"cameras": len(videos), "steps": timed, "stages_ms": {s: stages.get(s, 0.0) for s in STAGES},
            "step_ms": wall / timed * 1000, "fps_per_camera": timed / wall, "realtime_factor": timed / fps / wall,
            "clips_embedded": pipeline.scheduler.embedded, "identities": len(pipeline.matcher.identities())}


def realtime_case(config: TrackerConfig, detector: YoloDetector, embedder, cameras: int,
                  seconds: float) -> dict[str, object]:
    """The threaded runner in real-time mode on ``cameras`` lab videos for ``seconds``: what it
    keeps up with (processed fps per camera, dropped frames, latency, clips dropped by the scheduler)."""
    folder = asset_path("videos/lab_4cam", "the 4-camera lab recording")
    config = replace(config, realtime=True)
    detector.batch = config.batch_detect
    pipeline = Pipeline(config, detector, embedder)
    latencies: list[float] = []
    runner = PipelineRunner(config, [str(folder / f"cam{i}.mp4") for i in range(cameras)], pipeline=pipeline,
                            on_result=lambda r: latencies.append(r.latency_s))
    runner.start()
    time.sleep(seconds)
    states = runner.camera_states()
    runner.stop()
    read = sum(s.frames_read for s in states)
    return {"cameras": cameras, "seconds": seconds, "batch_detect": config.batch_detect,
            "fps_per_camera": float(np.mean([s.frames_processed for s in states])) / seconds,
            "dropped_frames": sum(s.dropped for s in states) / max(read, 1),
            "latency_ms_median": float(np.median(latencies)) * 1000 if latencies else float("nan"),
            "clips_dropped": pipeline.scheduler.dropped, "clips_embedded": pipeline.scheduler.embedded}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60, help="frames per camera")
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--detector", nargs="+", default=["auto"],
                        help="detectors to compare: auto (the default), bundled, or weights")
    parser.add_argument("--reid", nargs="+", default=["default"],
                        help="re-ID models to compare: default (the bundled STA-OSNet), osnet, or ONNX paths")
    parser.add_argument("--realtime-seconds", type=float, default=20.0,
                        help="also run the threaded runner in real-time mode this long per camera count (0: skip)")
    parser.add_argument("--json", type=Path, default=Path("pipeline_speed.json"))
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if args.frames <= WARMUP_STEPS:
        parser.error(f"--frames must exceed the {WARMUP_STEPS} warm-up steps")
    config = TrackerConfig()
    detectors = {name: YoloDetector(None if name == "auto" else name, config.imgsz, config.det_conf, config.device,
                                    iou=config.det_iou) for name in args.detector}
    embedders = {name: build_embedder(None if name == "default" else name) for name in args.reid}
    videos, decode_ms, fps = decode(max(args.cameras), args.frames)
    threaded = {n: threaded_decode_ms(n, args.frames) for n in args.cameras}
    rows = []
    for det_name, detector in detectors.items():
        for name, embedder in embedders.items():
            for n in args.cameras:
                subset = dict(list(videos.items())[:n])
                for batch in ([False, True] if n > 1 else [False]):
                    case = replace(config, batch_detect=batch, clip_len=config.clip_len)
                    row = run_case(case, detector, embedder, subset, decode_ms, fps)
                    row.update(detector=det_name, embedder=name, batch_detect=batch, decode_threaded_ms=threaded[n])
                    rows.append(row)
                    log.info("%s + %s, %d cameras, batch=%s: %.1f ms/step", det_name, name, n, batch, row["step_ms"])
    live = []
    if args.realtime_seconds > 0:
        for det_name, detector in detectors.items():
            for name, embedder in embedders.items():
                for n in args.cameras:
                    row = realtime_case(replace(config, batch_detect=n > 1), detector, embedder, n,
                                        args.realtime_seconds)
                    row.update(detector=det_name, embedder=name)
                    live.append(row)
    print_table(rows, args.frames)
    print_realtime(live)
    args.json.write_text(json.dumps({"frames": args.frames, "source_fps": fps, "decode_ms_per_frame": decode_ms,
                                     "decode_threaded_ms_per_step": threaded, "rows": rows, "realtime": live},
                                    indent=1) + "\n")
    log.info("wrote %s", args.json)
    return 0


def print_table(rows: list[dict], frames: int) -> None:
    print(f"\npipeline speed, lab_4cam 1288x728 @10 fps, {frames} frames per camera, mean ms per step "
          "(one frame of every camera)")
    head = " ".join(f"{s:>7s}" for s in STAGES)
    print(f"{'detector':10s} {'embedder':10s} {'cams':>4s} {'batch':>5s} {head} {'dec-thr':>7s} {'step':>7s} "
          f"{'fps/cam':>7s} {'RTF':>5s}")
    for r in rows:
        stages = " ".join(f"{r['stages_ms'][s]:7.1f}" for s in STAGES)
        print(f"{r['detector'][:10]:10s} {r['embedder'][:10]:10s} {r['cameras']:4d} {str(r['batch_detect']):>5s} "
              f"{stages} {r['decode_threaded_ms']:7.1f} {r['step_ms']:7.1f} {r['fps_per_camera']:7.1f} "
              f"{r['realtime_factor']:5.2f}")


def print_realtime(rows: list[dict]) -> None:
    if not rows:
        return
    print(f"\n--realtime (threaded runner, files paced at 10 fps, {rows[0]['seconds']:.0f} s)")
    print(f"{'detector':10s} {'embedder':10s} {'cams':>4s} {'fps/cam':>7s} {'dropped':>8s} {'latency':>8s} "
          f"{'clips embedded/dropped':>23s}")
    for r in rows:
        print(f"{r['detector'][:10]:10s} {r['embedder'][:10]:10s} {r['cameras']:4d} {r['fps_per_camera']:7.1f} {r['dropped_frames']:8.0%} "
              f"{r['latency_ms_median']:6.0f}ms {r['clips_embedded']:>11d}/{r['clips_dropped']:<11d}")


if __name__ == "__main__":
    sys.exit(main())
