"""Matcher cost per pipeline step as identities accumulate (10 ... 5,000 alive).

A matcher is filled with N settled identities (real OSNet signatures from the identity_eval
feature cache when given, else random unit vectors), then runs pipeline-like steps: ``--cameras``
cameras with ``--tracks`` tracks each observed every step, a clip per track every 4th step,
tracks ending and new ones starting (which need an identity decision), ``resolve`` every step.
Prints the median ms per step and, as the floor, one ``(N, D) @ (D,)`` product (the comparison
of one track with every identity).

    python benchmarks/matcher_speed.py --identities 10 100 1000 5000 --json matcher_speed.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from mcreid.logs import setup_logging
from tracker.matching import IdentityMatcher

log = logging.getLogger("matcher_speed")


def _features(cache: Path | None, dim: int, n: int, rng: np.random.Generator) -> np.ndarray:
    if cache is not None:
        with np.load(cache) as saved:
            feats = np.concatenate([saved[k] for k in saved.files])
        return feats[rng.permutation(len(feats))[:n]]
    feats = rng.normal(0, 1, (n, dim)) + 2.0
    return feats / np.linalg.norm(feats, axis=1, keepdims=True)


def fill(matcher: IdentityMatcher, feats: np.ndarray, n: int) -> None:
    """N identities, one ended track each (threshold 1.01 while filling: nothing joins)."""
    threshold, matcher.match_threshold = matcher.match_threshold, 1.01
    for i in range(n):
        matcher.observe("archive", i, i, i / 10)
        matcher.add_feature("archive", i, feats[i % len(feats)])
        matcher.end_track("archive", i)
        if i % 100 == 99 or i == n - 1:
            matcher.resolve()
    matcher.match_threshold = threshold


def run_steps(matcher: IdentityMatcher, feats: np.ndarray, steps: int, cameras: int, tracks: int,
              rng: np.random.Generator) -> list[float]:
    """Milliseconds of each step's matcher calls."""
    times = []
    alive = {(f"cam{c}", t): int(rng.integers(len(feats))) for c in range(cameras) for t in range(tracks)}
    next_id = tracks
    for step in range(steps):
        tic = time.perf_counter()
        for (camera, track), f in list(alive.items()):
            matcher.observe(camera, track, 100_000 + step, 10_000 + step / 10, (100, 100, 140, 200))
            if step % 4 == 3:
                matcher.add_feature(camera, track, feats[f] + rng.normal(0, 0.05, feats.shape[1]))
        if step % 20 == 19:  # a track of each camera ends, a new one starts
            for c in range(cameras):
                camera = f"cam{c}"
                old = next(k for k in alive if k[0] == camera)
                matcher.end_track(*old)
                del alive[old]
                alive[(camera, next_id)] = int(rng.integers(len(feats)))
            next_id += 1
        matcher.resolve()
        times.append(1000 * (time.perf_counter() - tic))
    return times


def matvec_ms(n: int, dim: int, repeats: int = 50) -> float:
    """Median ms of one (n, dim) @ (dim,) float32 product: the floor for comparing one track."""
    a = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)
    v = a[0].copy()
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        a @ v
        times.append(1000 * (time.perf_counter() - tic))
    return float(np.median(times))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, nargs="+", default=[10, 100, 1000, 5000])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--tracks", type=int, default=6, help="tracks alive per camera")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--features", type=Path, help="an identity_eval feature cache (.npz) for real signatures")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--json", type=Path, default=Path("matcher_speed.json"))
    args = parser.parse_args(argv)
    setup_logging()
    rng = np.random.default_rng(0)
    rows = {}
    for n in args.identities:
        feats = _features(args.features, args.dim, max(n, 1000), rng)
        matcher = IdentityMatcher(feats.shape[1], match_threshold=0.86, min_clips=2, covisible_frames=3,
                                  link_seconds=2.0, link_relax=0.15)
        fill(matcher, feats, n)
        times = run_steps(matcher, feats, args.steps, args.cameras, args.tracks, rng)
        rows[n] = {"median_ms": float(np.median(times)), "mean_ms": float(np.mean(times)),
                   "p95_ms": float(np.percentile(times, 95)), "max_ms": float(np.max(times)),
                   "matvec_ms": matvec_ms(n, feats.shape[1]), "identities_end": len(matcher.identities())}
    print(f"\nms per step: {args.cameras} cameras x {args.tracks} tracks, a clip per track every 4th step")
    print(f"{'identities':>10s} {'median':>8s} {'mean':>8s} {'p95':>8s} {'max':>8s} {'one (N,D)@(D,)':>15s}")
    for n, r in rows.items():
        print(f"{n:10d} {r['median_ms']:8.3f} {r['mean_ms']:8.3f} {r['p95_ms']:8.3f} {r['max_ms']:8.3f} "
              f"{r['matvec_ms']:15.4f}")
    args.json.write_text(json.dumps({"config": vars(args) | {"features": str(args.features), "json": str(args.json)},
                                     "rows": rows}, indent=1) + "\n")
    log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
