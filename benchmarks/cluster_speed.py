"""Cluster speed (``--cluster``): camera frames per second on a local Ray cluster beside the
single-process runner, the matcher's rate limit, and the lab identities single vs cluster.

``pipeline``: the lab recording's cameras, lockstep (every frame processed), timed from the
start of processing to the outputs written (models are loaded before: the cluster's start-up,
placing actors and loading their models, is reported apart). Rows: the single-process runner
and 1, 2, 4 camera actors, each actor one camera.

``matcher``: how many cameras one matcher serves. Synthetic camera messages as a camera actor
sends them (4 frames a batch; per frame 3 people's boxes; a 512-d clip feature per track every
4 frames; a 3 KB JPEG crop per track every 10 frames; tracks of 6 s, half of the people
returning ones, each camera's people walking in at their own times, so identities
accumulate) are applied in lockstep order (a) in process by
``MatcherCore`` and (b) through the matcher actor, sent by feeder actors with the cameras'
windows. Camera frames per second / 10 fps = cameras one matcher keeps up with.

``identities``: the whole 4-camera lab recording, single process and ``--cluster local:2``,
compared track by track (the README's check).

    python benchmarks/cluster_speed.py pipeline --frames 100 --cameras 1 2 4 --cpus 2 --json cluster_pipeline.json
    python benchmarks/cluster_speed.py matcher --cameras 16 64 256 --frames 120 --json cluster_matcher.json
    python benchmarks/cluster_speed.py identities --out runs/cluster_check
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from mcreid.assets import asset_path
from mcreid.logs import setup_logging
from tracker.cluster.components import Components
from tracker.cluster.messages import CameraBatch, WireStep, encode_jpeg
from tracker.cluster.options import NAMESPACE, ClusterOptions, ClusterTarget
from tracker.config import TrackerConfig
from tracker.types import CameraUpdate, Detections

log = logging.getLogger("cluster_speed")
FPS = 10.0


def lab_sources(cameras: int) -> list[str]:
    folder = asset_path("videos/lab_4cam", "the 4-camera lab recording")
    return [str(folder / f"cam{i}.mp4") for i in range(cameras)]


# -- pipeline: single process vs camera actors ----------------------------------------------------

def time_single(config: TrackerConfig, sources: list[str], frames: int, out: Path) -> dict[str, object]:
    from tracker.cli import run_headless
    from tracker.pipeline import build_pipeline

    pipeline = build_pipeline(config)
    tic = time.perf_counter()
    summary = run_headless(config, sources, out, pipeline, progress=False, runner_kwargs={"max_frames": frames})
    wall = time.perf_counter() - tic
    processed = sum(c["frames"] for c in summary["cameras"].values())
    return {"runner": "single process", "actors": 0, "cameras": len(sources), "frames": processed, "wall_s": wall,
            "start_s": 0.0}


def time_cluster(config: TrackerConfig, sources: list[str], frames: int, out: Path, job: str) -> dict[str, object]:
    from tracker.cluster.launch import ClusterJob

    tic = time.perf_counter()
    cluster = ClusterJob(config, sources, out, ClusterOptions(ClusterTarget("local"), job=job), max_frames=frames)
    cluster.start()
    started = time.perf_counter()
    try:
        summary = cluster.run()
    finally:
        cluster.kill()
    wall = time.perf_counter() - started
    processed = sum(c["frames"] for c in summary["cameras"].values())
    return {"runner": "cluster", "actors": len(sources), "cameras": len(sources), "frames": processed, "wall_s": wall,
            "start_s": started - tic}


def pipeline_table(rows: list[dict]) -> str:
    lines = ["| runner | camera actors | cameras | frames | wall s | camera frames / s | per camera fps | RTF | "
             "start-up s |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rate = r["frames"] / r["wall_s"]
        lines.append(f"| {r['runner']} | {r['actors'] or '-'} | {r['cameras']} | {r['frames']} | {r['wall_s']:.1f} | "
                     f"{rate:.1f} | {rate / r['cameras']:.1f} | {rate / r['cameras'] / FPS:.2f} | "
                     f"{r['start_s']:.1f} |")
    return "\n".join(lines)


def run_pipeline(args: argparse.Namespace) -> list[dict]:
    import ray

    config = TrackerConfig()
    rows = []
    ray.init(num_cpus=args.cpus, include_dashboard=False, namespace=NAMESPACE, logging_level="WARNING",
             log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in args.cameras:
                sources = lab_sources(n)
                rows.append(time_single(config, sources, args.frames, Path(tmp) / f"single{n}"))
                log.info("single process, %d cameras: %.1f s", n, rows[-1]["wall_s"])
                rows.append(time_cluster(config, sources, args.frames, Path(tmp) / f"cluster{n}", f"speed{n}"))
                log.info("cluster, %d camera actors: %.1f s (+%.1f s start-up)", n, rows[-1]["wall_s"],
                         rows[-1]["start_s"])
    finally:
        ray.shutdown()
    print(pipeline_table(rows))
    return rows


# -- matcher: synthetic camera messages --------------------------------------------------------------

@dataclass(frozen=True)
class _FeatureOnly:
    """An embedder stand-in for the matcher (it reads only the feature length)."""

    feature_dim: int = 512
    input_size: tuple[int, int] = (256, 128)
    path: None = None


@dataclass(frozen=True)
class SyntheticComponents(Components):
    def embedder(self, config: TrackerConfig, threads: int | None = None):
        return _FeatureOnly()


def synthetic_batches(camera_ids: Sequence[str], frames: int, seed: int = 0, people: int = 3, track_s: float = 6.0,
                      batch_frames: int = 4, thumbnail_every: int = 10, dim: int = 512) -> dict[str, list[CameraBatch]]:
    """Each camera's batches (see the module docstring); the same ``seed`` gives the same messages."""
    rng = np.random.default_rng(seed)
    crop = rng.integers(0, 255, (128, 64, 3), dtype=np.uint8)
    crop[32:96] //= 2
    jpeg = encode_jpeg(crop)
    persons: list[np.ndarray] = []
    life = int(track_s * FPS)
    out = {}
    arrive = rng.integers(1, life, (len(camera_ids), people))  # people walk in at different times
    for c, camera_id in enumerate(camera_ids):
        tracks = []  # [track_id, person, first_frame, slot]
        next_track, steps = 1, []
        for frame in range(1, frames + 1):
            ended = []
            for slot in range(people):
                if frame < arrive[c, slot]:
                    continue
                live = [t for t in tracks if t[3] == slot]
                if live and frame - live[-1][2] >= life:
                    ended.append(live[-1][0])
                    tracks.remove(live[-1])
                    live = []
                if not live:
                    if persons and rng.random() < 0.5:
                        person = int(rng.integers(len(persons)))
                    else:
                        persons.append(rng.standard_normal(dim))
                        person = len(persons) - 1
                    tracks.append([next_track, person, frame, slot])
                    next_track += 1
            xyxy = np.array([[40 + 300 * t[3], 100, 100 + 300 * t[3], 260] for t in tracks], np.float32)
            ids = np.array([t[0] for t in tracks], np.int64)
            clip = [t for t in tracks if (frame - t[2]) % 4 == 3]
            features = np.array([persons[t[1]] / np.linalg.norm(persons[t[1]]) + 0.3 * rng.standard_normal(dim)
                                 / np.sqrt(dim) for t in clip], np.float32).reshape(len(clip), dim)
            update = CameraUpdate(camera_id, frame, (frame - 1) / FPS,
                                  Detections(xyxy, np.full(len(ids), 0.9, np.float32), ids),
                                  np.array([t[0] for t in clip], np.int64), features, tuple(ended))
            thumbs = tuple((t[0], jpeg, 1.0 + frame) for t in tracks if (frame - t[2]) % thumbnail_every == 0)
            steps.append(WireStep(frame, update, thumbs))
        batches = [CameraBatch(camera_id, 1, tuple(steps[i:i + batch_frames]))
                   for i in range(0, len(steps), batch_frames)]
        out[camera_id] = batches + [CameraBatch(camera_id, 1, (), final=True)]
    return out


def _core(config: TrackerConfig, camera_ids: Sequence[str], out: Path | None):
    from tracker.cluster.matcher_core import MatcherCore, OutputSink
    from tracker.pipeline import Pipeline
    from tracker.sources import SourceSpec

    specs = [SourceSpec(f"{cid}.mp4", cid, "file") for cid in camera_ids]
    return MatcherCore(config, Pipeline(config, None, _FeatureOnly()), specs, OutputSink(out) if out else None)


def core_rate(cameras: int, frames: int, out: Path) -> dict[str, object]:
    """Steps of ``cameras`` synthetic cameras applied in process (lockstep), with the outputs written."""
    camera_ids = [f"cam{i:03d}" for i in range(cameras)]
    batches = synthetic_batches(camera_ids, frames)
    core = _core(TrackerConfig(), camera_ids, out)
    for cid in camera_ids:
        core.resume(cid)
    nbytes = sum(s.nbytes for b in batches.values() for batch in b for s in batch.steps)
    tic = time.perf_counter()
    for i in range(max(len(b) for b in batches.values())):
        for cid in camera_ids:
            if i < len(batches[cid]):
                core.receive(batches[cid][i])
        core.apply()
    summary = core.finish()
    wall = time.perf_counter() - tic
    return {"how": "in process", "cameras": cameras, "frames": cameras * frames, "wall_s": wall,
            "identities": summary["identities"], "kb_per_frame": nbytes / (cameras * frames) / 1024,
            "messages": sum(len(b) for b in batches.values())}


def actor_rate(cameras: int, frames: int, feeders: int, out: Path, window: int = 4) -> dict[str, object]:
    """The same through the matcher actor, sent by ``feeders`` actors with a window per camera."""
    import ray

    from tracker.cluster.matcher_actor import MatcherActor
    from tracker.sources import SourceSpec

    camera_ids = [f"cam{i:03d}" for i in range(cameras)]
    specs = [SourceSpec(f"{cid}.mp4", cid, "file") for cid in camera_ids]
    matcher = ray.remote(MatcherActor).options(name="bench/matcher", namespace=NAMESPACE, num_cpus=0,
                                               max_concurrency=max(1000, cameras * (window + 2))).remote(
        TrackerConfig(), specs, str(out), "bench", SyntheticComponents(), None, logging.WARNING)
    ray.get(matcher.ready.remote())
    parts = [camera_ids[i::feeders] for i in range(feeders)]
    feeders_ = [ray.remote(_Feeder).options(num_cpus=0).remote(camera_ids, part, frames) for part in parts]
    ray.get([f.ready.remote() for f in feeders_])
    tic = time.perf_counter()
    sent = sum(ray.get([f.feed.remote(window) for f in feeders_]))
    summary = ray.get(matcher.finish.remote())
    wall = time.perf_counter() - tic
    for actor in [matcher, *feeders_]:
        ray.kill(actor)
    return {"how": f"matcher actor, {feeders} feeders", "cameras": cameras, "frames": cameras * frames,
            "wall_s": wall, "identities": summary["identities"], "messages": sent, "kb_per_frame": 0.0}


class _Feeder:
    """Sends pre-built batches of some cameras (``mine`` of ``camera_ids``: the same messages as
    ``core_rate``'s) to the matcher actor, each camera with its window."""

    def __init__(self, camera_ids: list[str], mine: list[str], frames: int) -> None:
        import ray

        self.matcher = ray.get_actor("bench/matcher", namespace=NAMESPACE)
        batches = synthetic_batches(camera_ids, frames)
        self.batches = {cid: batches[cid] for cid in mine}
        ray.get([self.matcher.resume.remote(cid) for cid in mine])

    def ready(self) -> bool:
        return True

    def feed(self, window: int) -> int:
        import ray

        inflight: dict[str, list] = {cid: [] for cid in self.batches}
        sent = 0
        for i in range(max(len(b) for b in self.batches.values())):
            for cid, batches in self.batches.items():
                if i >= len(batches):
                    continue
                inflight[cid].append(self.matcher.submit.remote(batches[i]))
                sent += 1
                if len(inflight[cid]) > window:
                    ray.get(inflight[cid].pop(0))
        ray.get([ref for refs in inflight.values() for ref in refs])
        return sent


def matcher_table(rows: list[dict]) -> str:
    lines = ["| how | cameras | camera frames | wall s | camera frames / s | messages / s | cameras at 10 fps | "
             "identities | KB per frame |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rate = r["frames"] / r["wall_s"]
        kb = f"{r['kb_per_frame']:.2f}" if r["kb_per_frame"] else "-"
        lines.append(f"| {r['how']} | {r['cameras']} | {r['frames']} | {r['wall_s']:.1f} | {rate:.0f} | "
                     f"{r['messages'] / r['wall_s']:.0f} | {rate / FPS:.0f} | {r['identities']} | {kb} |")
    return "\n".join(lines)


def run_matcher(args: argparse.Namespace) -> list[dict]:
    import ray

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.cameras:
            rows.append(core_rate(n, args.frames, Path(tmp) / f"core{n}"))
            log.info("in process, %d cameras: %.0f frames/s", n, rows[-1]["frames"] / rows[-1]["wall_s"])
        ray.init(num_cpus=args.cpus, include_dashboard=False, namespace=NAMESPACE, logging_level="WARNING",
                 log_to_driver=False)
        try:
            for n in args.cameras:
                rows.append(actor_rate(n, args.frames, args.feeders, Path(tmp) / f"actor{n}"))
                log.info("matcher actor, %d cameras: %.0f frames/s", n, rows[-1]["frames"] / rows[-1]["wall_s"])
        finally:
            ray.shutdown()
    print(matcher_table(rows))
    return rows


# -- identities: the lab recording, single process vs cluster -------------------------------------

def groups(out: Path) -> list[list[tuple[str, int]]]:
    identities = json.loads((out / "identities.json").read_text())["identities"]
    return sorted(sorted((t["camera"], t["track_id"]) for t in v["tracks"]) for v in identities.values())


def run_identities(args: argparse.Namespace) -> dict[str, object]:
    from tracker.cli import main as track

    sources = [arg for s in lab_sources(4) for arg in ("--source", s)]
    single, cluster = args.out / "single", args.out / "cluster"
    timings = {}
    for name, extra in (("single", []), ("cluster", ["--cluster", f"local:{args.cpus}", "--job", "identities"])):
        tic = time.perf_counter()
        code = track(["run", *sources, "--out", str(args.out / name), "--no-progress", *extra])
        timings[name] = time.perf_counter() - tic
        if code != 0:
            raise SystemExit(f"the {name} run failed (exit {code})")
    same_files = {p.name: p.read_bytes() == (cluster / p.name).read_bytes() for p in sorted(single.glob("*.txt"))}
    result = {"identities_single": len(groups(single)), "identities_cluster": len(groups(cluster)),
              "same_grouping": groups(single) == groups(cluster), "identical_files": same_files,
              "wall_s": timings}
    print(json.dumps(result, indent=2))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    pipeline = sub.add_parser("pipeline", help="lab cameras: single process vs 1, 2, 4 camera actors")
    pipeline.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4])
    pipeline.add_argument("--frames", type=int, default=100)
    matcher = sub.add_parser("matcher", help="the matcher's rate limit with synthetic camera messages")
    matcher.add_argument("--cameras", type=int, nargs="+", default=[16, 64, 256])
    matcher.add_argument("--frames", type=int, default=120)
    matcher.add_argument("--feeders", type=int, default=2)
    identities = sub.add_parser("identities", help="the lab recording: single process vs --cluster local")
    identities.add_argument("--out", type=Path, default=Path("runs/cluster_check"))
    for p in (pipeline, matcher, identities):
        p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
        p.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    setup_logging(0)
    result = {"pipeline": run_pipeline, "matcher": run_matcher, "identities": run_identities}[args.command](args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
