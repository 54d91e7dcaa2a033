"""Soak test: does the pipeline's memory stay flat over a long run?

Two modes, both through the real ``Pipeline`` (its matcher, clip builder and Ultralytics trackers):

- ``video``: a long synthetic concatenation of real video (PETS09-S2L1 View 1 looped ``--loops``
  times, frame indices and source times running on across the loops) with the real detector and
  the default embedder. ``--detect-size 320`` and ``--stride 2`` (every 2nd frame) make it finish in
  a few minutes on 2 CPU cores.
- ``synthetic``: the bookkeeping alone. Coloured boxes walk across small blank frames along lanes
  (a new short track every few frames, people drawn from a fixed population so identities recur);
  the detector returns the scripted boxes and the embedder maps a clip's colour to that person's
  feature plus noise. Thousands of tracks end in a minute, so "no growth with the number of tracks
  ended" is measured quickly.

RSS is sampled every ``--sample-every`` frames (psutil, else ``/proc/self/statm``); growth is the
slope of a least-squares line through the samples after the warm-up, per 1,000 frames and per
1,000 ended tracks. ``--tracemalloc`` also fits the Python heap (exact, but slows the run) and lists
the source lines whose allocations grew most. The pipeline's record counts (``Pipeline.bookkeeping``)
are reported at the end of the warm-up and at the end.

Warm-up matters: the matcher keeps the last 256 observed frames of each camera (co-visibility and
lost-track links), and onnxruntime's and malloc's arenas grow until every batch size was seen, so
fit only after both have filled (``--warmup 0.4`` on a run of 2,000 steps or more).

    python benchmarks/soak.py synthetic --frames 20000 --json soak_synthetic.json
    python benchmarks/soak.py video --loops 6 --detect-size 320 --stride 2 --json soak_video.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import tracemalloc
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from mcreid.assets import asset_path
from mcreid.logs import setup_logging
from tracker.config import TrackerConfig
from tracker.outputs import final_track_ids, identities_json
from tracker.pipeline import Pipeline, build_pipeline
from tracker.types import CameraFrame, Detections

log = logging.getLogger("soak")
PETS = "videos/pets09_s2l1/view001_480x360.avi"


def rss_bytes() -> int:
    """Resident set size of this process (psutil, else /proc/self/statm)."""
    try:
        import psutil
    except ImportError:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return psutil.Process().memory_info().rss


def slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of y over x (nan with fewer than 3 distinct points)."""
    if len(set(x)) < 3:
        return float("nan")
    return float(np.polyfit(np.asarray(x, np.float64), np.asarray(y, np.float64), 1)[0])


# -- synthetic scene --------------------------------------------------------------------------------
class SyntheticPeople:
    """People crossing small frames along lanes; each crossing is one short track.

    Args:
        cameras: number of cameras.
        population: distinct people (identities recur once all have been seen).
        track_len: frames a crossing lasts.
        gap: frames between two crossings of one lane.
        feature_dim: length of the fake raw features.
        size: ``(width, height)`` of a frame.
        seed: random seed.
    """

    LANE_H = 76
    SPEED = 3  # pixels per frame: boxes of one track overlap well from frame to frame

    def __init__(self, cameras: int = 2, population: int = 40, track_len: int = 14, gap: int = 3,
                 feature_dim: int = 512, size: tuple[int, int] = (320, 240), seed: int = 0) -> None:
        self.cameras = [f"cam{i}" for i in range(cameras)]
        self.track_len, self.gap, self.size = track_len, gap, size
        self.lanes = size[1] // self.LANE_H
        rng = np.random.default_rng(seed)
        hues = np.linspace(0, 180, population, endpoint=False).astype(np.uint8)
        values = np.where(np.arange(population) % 2, 255, 170).astype(np.uint8)
        hsv = np.stack([hues, np.full(population, 255, np.uint8), values], axis=1)[None]
        self.palette = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0].astype(np.int64)  # (P, 3) BGR
        basis = rng.standard_normal((population, feature_dim))
        self.basis = basis / np.linalg.norm(basis, axis=1, keepdims=True)
        self._rng = rng
        # per camera and lane: (person, first frame of the crossing, first x)
        self._walkers: dict[str, list[tuple[int, int, int]]] = {}
        for camera_id in self.cameras:
            lanes = self._walkers[camera_id] = []
            for lane in range(self.lanes):
                lanes.append(self._walker(1 + lane * 5, lanes))
        self.boxes: dict[str, Detections] = {}

    def _walker(self, start: int, busy: Sequence[tuple[int, int, int]] = ()) -> tuple[int, int, int]:
        """A new crossing from frame ``start`` by someone not already walking in this camera."""
        span = self.size[0] - 40 - self.SPEED * self.track_len
        free = sorted(set(range(len(self.palette))) - {w[0] for w in busy})
        return int(self._rng.choice(free)), start, 6 + int(self._rng.integers(max(span, 1)))

    def frame(self, camera_id: str, index: int) -> np.ndarray:
        """The camera's BGR frame ``index`` (1-based); its boxes are left in ``self.boxes[camera_id]``."""
        width, height = self.size
        image = np.zeros((height, width, 3), np.uint8)
        boxes = []
        walkers = self._walkers[camera_id]
        for lane, (person, start, x0) in enumerate(walkers):
            step = index - start
            if step >= self.track_len + self.gap:  # next crossing: a new person
                person, start, x0 = walkers[lane] = self._walker(index, walkers)
                step = 0
            if step >= self.track_len:
                continue
            x1 = x0 + self.SPEED * step
            y1 = 4 + lane * self.LANE_H
            box = (x1, y1, x1 + 24, y1 + self.LANE_H - 10)
            cv2.rectangle(image, box[:2], (box[2] - 1, box[3] - 1), tuple(int(v) for v in self.palette[person]), -1)
            boxes.append(box)
        self.boxes[camera_id] = Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9))
        return image


class ScriptedDetector:
    """Returns the scene's boxes of the frames handed to ``detect``, in order."""

    def __init__(self, scene: SyntheticPeople) -> None:
        self.scene = scene
        self.pending: list[str] = []

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        out = [self.scene.boxes[c] for c in self.pending]
        self.pending = []
        return out


@dataclass
class PaletteEmbedder:
    """A clip's mean colour -> nearest palette person -> that person's feature plus noise."""

    scene: SyntheticPeople
    noise: float = 0.01
    input_size: tuple[int, int] = (64, 32)
    seq_len: int = 4
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(1))

    @property
    def feature_dim(self) -> int:
        return self.scene.basis.shape[1]

    def embed(self, clips: np.ndarray) -> np.ndarray:
        rgb = clips.reshape(len(clips), -1, 3).mean(axis=1)
        bgr = rgb[:, ::-1]
        person = np.argmin(((bgr[:, None, :] - self.scene.palette[None]) ** 2).sum(-1), axis=1)
        noise = self.rng.standard_normal((len(clips), self.feature_dim)) * self.noise
        return (self.scene.basis[person] + noise).astype(np.float32)


def synthetic_frames(scene: SyntheticPeople, detector: ScriptedDetector, frames: int) -> Iterator[list[CameraFrame]]:
    for index in range(1, frames + 1):
        batch = [CameraFrame(c, index, scene.frame(c, index), time_s=index / 10) for c in scene.cameras]
        detector.pending = [f.camera_id for f in batch]
        yield batch


# -- real video --------------------------------------------------------------------------------------
def looped_video(path: Path, loops: int, stride: int, cameras: int) -> Iterator[list[CameraFrame]]:
    """The video ``loops`` times over, every ``stride``-th frame, as one long source per camera
    (cameras > 1 see the same frames, the k-th shifted by k * 100 frames)."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    length = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.release()
    history: list[np.ndarray] = []  # the last few frames, for the shifted cameras
    index = 0
    for _ in range(loops):
        capture = cv2.VideoCapture(str(path))
        position = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            position += 1
            if position % stride:
                continue
            index += 1
            history = (history + [image])[-(100 * (cameras - 1) // stride + 1):]
            batch = []
            for k in range(cameras):
                lag = 100 * k // stride
                if len(history) > lag:
                    batch.append(CameraFrame(f"cam{k}", index - lag, history[-1 - lag], time_s=(index - lag) * stride / fps))
            yield batch
        capture.release()
    log.info("looped %s (%d frames) %d times, every %d frame(s)", path, length, loops, stride)


# -- the soak ------------------------------------------------------------------------------------
def soak(pipeline: Pipeline, batches: Iterator[list[CameraFrame]], total: int, warmup: int, sample_every: int,
         heap: bool) -> dict[str, object]:
    """Step the pipeline through ``batches``; RSS (and heap) samples, ended tracks, record counts."""
    if heap:
        tracemalloc.start()
    samples: list[tuple[int, int, int, int]] = []  # (frame, tracks ended, rss, heap)
    ended, at_warmup, snap_warmup = 0, {}, None
    tic = time.perf_counter()
    for step, frames in enumerate(tqdm(batches, total=total, desc="soak", unit="step", mininterval=5), start=1):
        for result in pipeline.step(frames):
            ended += len(result.ended_tracks)
        if step == warmup:
            at_warmup = pipeline.bookkeeping()
            snap_warmup = tracemalloc.take_snapshot() if heap else None
        if step % sample_every == 0:
            samples.append((step, ended, rss_bytes(), tracemalloc.get_traced_memory()[0] if heap else 0))
    wall = time.perf_counter() - tic
    at_end = pipeline.bookkeeping()
    growth = top_growth(snap_warmup, tracemalloc.take_snapshot()) if heap and snap_warmup else []
    if heap:
        tracemalloc.stop()
    after = [s for s in samples if s[0] > warmup]
    frames_after = [s[0] for s in after]
    identities = pipeline.identities()
    final = final_track_ids(identities)
    doc = identities_json(identities)
    return {
        "steps": samples[-1][0] if samples else 0, "warmup": warmup, "wall_s": wall,
        "tracks_ended": ended, "tracks_ended_after_warmup": ended - (after[0][1] if after else ended),
        "rss_mb_start": after[0][2] / 2**20 if after else float("nan"),
        "rss_mb_end": after[-1][2] / 2**20 if after else float("nan"),
        "rss_kb_per_1000_frames": slope(frames_after, [s[2] for s in after]) * 1000 / 1024,
        "rss_kb_per_1000_tracks": slope([s[1] for s in after], [s[2] for s in after]) * 1000 / 1024,
        "heap_kb_per_1000_frames": slope(frames_after, [s[3] for s in after]) * 1000 / 1024 if heap else None,
        "heap_kb_per_1000_tracks": slope([s[1] for s in after], [s[3] for s in after]) * 1000 / 1024 if heap else None,
        "bookkeeping_at_warmup": at_warmup, "bookkeeping_at_end": at_end,
        "identities": len(identities), "member_tracks_in_output": sum(len(m) for m in final.values()),
        "identities_json_tracks": sum(len(v["tracks"]) for v in doc["identities"].values()),
        "top_heap_growth": growth, "samples": samples,
    }


def top_growth(before, after, limit: int = 8) -> list[str]:
    """The source lines whose live allocations grew most between two tracemalloc snapshots."""
    stats = after.compare_to(before, "lineno")
    return [f"{s.size_diff / 1024:+.1f} KB ({s.count_diff:+d} blocks) {s.traceback[0].filename.split('/site-packages/')[-1]}:"
            f"{s.traceback[0].lineno}" for s in stats[:limit]]


def print_report(mode: str, row: dict) -> None:
    print(f"\nsoak ({mode}): {row['steps']} steps, warm-up {row['warmup']}, {row['wall_s']:.0f} s")
    print(f"{'tracks ended':>14s} {'RSS start':>10s} {'RSS end':>9s} {'KB/1k frames':>13s} {'KB/1k tracks':>13s} "
          f"{'heap KB/1k fr':>14s} {'heap KB/1k tr':>14s}")
    heap_f = f"{row['heap_kb_per_1000_frames']:14.1f}" if row["heap_kb_per_1000_frames"] is not None else f"{'-':>14s}"
    heap_t = f"{row['heap_kb_per_1000_tracks']:14.1f}" if row["heap_kb_per_1000_tracks"] is not None else f"{'-':>14s}"
    print(f"{row['tracks_ended']:14d} {row['rss_mb_start']:8.1f}MB {row['rss_mb_end']:7.1f}MB "
          f"{row['rss_kb_per_1000_frames']:13.1f} {row['rss_kb_per_1000_tracks']:13.1f} {heap_f} {heap_t}")
    print(f"\n{'records':24s} {'at warm-up':>11s} {'at end':>9s}")
    for name, value in row["bookkeeping_at_end"].items():
        print(f"{name:24s} {row['bookkeeping_at_warmup'].get(name, 0):11d} {value:9d}")
    print(f"\nidentities {row['identities']}, member tracks in identities.json {row['identities_json_tracks']}")
    if row["top_heap_growth"]:
        print("largest heap growth after warm-up (tracemalloc):")
        for line in row["top_heap_growth"]:
            print("  " + line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("synthetic", "video"))
    parser.add_argument("--frames", type=int, default=20000, help="synthetic: steps (one frame per camera)")
    parser.add_argument("--cameras", type=int, default=None, help="cameras (synthetic: 2, video: 1)")
    parser.add_argument("--population", type=int, default=40, help="synthetic: distinct people")
    parser.add_argument("--loops", type=int, default=6, help="video: times the PETS video is played")
    parser.add_argument("--stride", type=int, default=1, help="video: process every k-th frame")
    parser.add_argument("--detect-size", type=int, default=640, help="video: detector input size")
    parser.add_argument("--warmup", type=float, default=0.2, help="fraction of the steps before the fit")
    parser.add_argument("--sample-every", type=int, default=50, help="steps between RSS samples")
    parser.add_argument("--tracemalloc", action="store_true", help="also fit the Python heap (slower)")
    parser.add_argument("--json", type=Path, default=Path("soak.json"))
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if args.mode == "synthetic":
        scene = SyntheticPeople(cameras=args.cameras or 2, population=args.population)
        detector = ScriptedDetector(scene)
        config = TrackerConfig(min_crop_height=20, min_crop_width=10, track_buffer=10)
        pipeline = Pipeline(config, detector, PaletteEmbedder(scene))
        total = args.frames
        batches = synthetic_frames(scene, detector, total)
        setting = {"cameras": len(scene.cameras), "population": args.population, "frames": total}
    else:
        video = asset_path(PETS, "the PETS09-S2L1 video")
        capture = cv2.VideoCapture(str(video))
        length = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
        config = replace(TrackerConfig(), imgsz=args.detect_size)
        pipeline = build_pipeline(config)
        total = length * args.loops // args.stride
        batches = looped_video(video, args.loops, args.stride, args.cameras or 1)
        setting = {"video": PETS, "loops": args.loops, "stride": args.stride, "detect_size": args.detect_size,
                   "cameras": args.cameras or 1}
    row = soak(pipeline, batches, total, int(total * args.warmup), args.sample_every, args.tracemalloc)
    row.update(mode=args.mode, setting=setting)
    print_report(args.mode, row)
    args.json.write_text(json.dumps(row, indent=1) + "\n")
    log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
