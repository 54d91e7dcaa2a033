"""Open-set identity accuracy on a stream of real MARS tracklets (``mars_dap``).

Every tracklet of a ``mars_dap`` folder (``../shared/data/SOURCES.md``) becomes one "track" that
arrives, is seen for its 8 frames, gives its clips and ends; the tracklets come one after the
other in a fixed seeded order, so the tracklets of one person are spread over the stream. Each
goes through the same ``IdentityMatcher`` the tracker uses, with the same embedder (default: the
tracker's default, the STA-OSNet trained on the ``train`` identities: judge it on ``val``), and
nothing about identities is given to it. Cameras are as given
(camera 0 = unknown, its own camera name).

Scores, against the true person of each tracklet:

- pairwise precision / recall / F1 of the "same identity" decisions over all tracklet pairs;
- B-cubed precision / recall / F1 (per tracklet, averaged);
- identities created vs true.

``--sweep`` runs the stream at several values of the matcher's main setting (``--setting``) and
prints the trade-off curve. ``--split`` runs on part of the identities (``split_identities``), so a
setting tuned on one part can be judged on another.

    python benchmarks/identity_eval.py --mars-dap ../shared/data/mars_dap --out runs/identity_eval
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from tqdm import tqdm

from mcreid.logs import setup_logging
from tracker.config import TrackerConfig, add_tracker_arguments, config_from_args
from tracker.matching import IdentityMatcher, matcher_from_config

log = logging.getLogger("identity_eval")

FRAME_W, FRAME_H = 56, 120  # one mars_dap frame in the strip
FRAME_GAP = 2  # frames between consecutive tracklets of the stream
FPS = 10.0
SPLITS = ("all", "train", "val", "val-tune", "val-judge")


@dataclass(frozen=True)
class Tracklet:
    name: str
    pid: str
    camera: int
    frames: int


def read_tracklets(root: Path) -> list[Tracklet]:
    """The rows of ``root/tracklets.csv``; FileNotFoundError / ValueError say what is wrong."""
    table = root / "tracklets.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found: --mars-dap must be a folder in the mars_dap format "
                                "(tracklets.csv and tracklets/<id>.jpg; see shared/data/SOURCES.md)")
    with table.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"tracklet", "pid", "camera", "frames"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{table} lacks the columns {sorted(missing)}")
        rows = [Tracklet(r["tracklet"], r["pid"], int(r["camera"]), int(r["frames"])) for r in reader]
    if not rows:
        raise ValueError(f"{table} lists no tracklets")
    return rows


def split_identities(tracklets: Sequence[Tracklet], split: str, seed: int = 0) -> list[Tracklet]:
    """The tracklets of one part of the identities.

    ``train`` / ``val``: the identity split the re-ID model is trained on
    (``reid_model.data.mars_dap.split_identities``, 2/3 and 1/3); ``val-tune`` / ``val-judge``: two
    halves of ``val`` (seed ``seed``), so a model trained on ``train`` can have its matcher tuned
    on identities it never saw and be judged on others; ``all``: everything.
    """
    from reid_model.data.mars_dap import split_identities as model_split

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if split == "all":
        return list(tracklets)
    train, val = model_split(int(t.pid) for t in tracklets)
    keep = set(train.tolist() if split == "train" else val.tolist())
    if split.startswith("val-"):
        order = np.random.default_rng(seed).permutation(sorted(keep))
        half = set(order[: len(order) // 2].tolist())
        keep = half if split == "val-tune" else keep - half
    return [t for t in tracklets if int(t.pid) in keep]


def stream_order(tracklets: Sequence[Tracklet], seed: int = 0) -> list[Tracklet]:
    """A fixed random order: one person's tracklets land anywhere in the stream."""
    order = np.random.default_rng(seed).permutation(len(tracklets))
    return [tracklets[i] for i in order]


def load_frames(root: Path, tracklet: Tracklet, size: tuple[int, int]) -> np.ndarray:
    """``(frames, H, W, 3)`` uint8 RGB frames of one tracklet, resized to ``size`` (H, W)."""
    path = root / "tracklets" / f"{tracklet.name}.jpg"
    strip = cv2.imread(str(path))
    if strip is None:
        raise FileNotFoundError(f"{path}: missing or unreadable tracklet strip (a JPEG of {tracklet.frames} "
                                f"frames of {FRAME_W}x{FRAME_H} side by side)")
    if strip.shape[1] < tracklet.frames * FRAME_W:
        raise ValueError(f"{path} is {strip.shape[1]} px wide, {tracklet.frames} frames need "
                         f"{tracklet.frames * FRAME_W}")
    h, w = size
    frames = [strip[:, i * FRAME_W:(i + 1) * FRAME_W] for i in range(tracklet.frames)]
    return np.stack([cv2.cvtColor(cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
                     for f in frames])


def embed_tracklets(root: Path, tracklets: Sequence[Tracklet], embedder, clip_len: int,
                    cache: Path | None = None, flip: bool = False) -> dict[str, np.ndarray]:
    """``{tracklet: (clips, D) float32}``: each tracklet's non-overlapping clips, embedded.

    With ``cache`` (an ``.npz``), features already there are reused and new ones added. ``flip``:
    each clip's feature is averaged with its horizontal mirror's (test-time augmentation).
    """
    done: dict[str, np.ndarray] = {}
    if cache is not None and cache.is_file():
        with np.load(cache) as saved:
            done = {k: saved[k] for k in saved.files}
    todo = [t for t in tracklets if t.name not in done]
    for t in tqdm(todo, desc="embedding tracklets", unit="tracklet", disable=not todo):
        frames = load_frames(root, t, embedder.input_size)
        n = len(frames) // clip_len
        if n == 0:
            done[t.name] = np.zeros((0, embedder.feature_dim), np.float32)
            continue
        clips = frames[: n * clip_len].reshape(n, clip_len, *frames.shape[1:])
        feature = np.asarray(embedder.embed(clips), np.float32)
        if flip:
            feature = (feature + np.asarray(embedder.embed(np.ascontiguousarray(clips[:, :, :, ::-1])), np.float32)) / 2
        done[t.name] = feature
    if cache is not None and todo:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **done)
    return done


def run_stream(matcher: IdentityMatcher, stream: Sequence[Tracklet],
               features: dict[str, np.ndarray], clip_len: int) -> tuple[list[int], float]:
    """Feed the tracklets one after the other; returns each tracklet's final identity (0: none)
    and the mean milliseconds per ``resolve``."""
    frame = 0
    resolve_s, resolves = 0.0, 0
    for i, t in enumerate(stream):
        track_id = i + 1
        camera = f"cam{t.camera}" if t.camera else "unknown"
        clips = features[t.name]
        for k in range(t.frames):
            matcher.observe(camera, track_id, frame + k, (frame + k) / FPS)
            if (k + 1) % clip_len == 0 and (k + 1) // clip_len <= len(clips):
                matcher.add_feature(camera, track_id, clips[(k + 1) // clip_len - 1])
                tic = time.perf_counter()
                matcher.resolve()
                resolve_s, resolves = resolve_s + time.perf_counter() - tic, resolves + 1
        matcher.end_track(camera, track_id)
        frame += t.frames + FRAME_GAP
        tic = time.perf_counter()
        matcher.resolve()
        resolve_s, resolves = resolve_s + time.perf_counter() - tic, resolves + 1
    matcher.resolve()
    final = {}
    for ident in matcher.identities():
        for member in ident.members:
            final[member.track_id] = ident.global_id
    return [final.get(i + 1, 0) for i in range(len(stream))], 1000 * resolve_s / max(resolves, 1)


def cluster_scores(truth: Sequence[object], predicted: Sequence[int]) -> dict[str, float]:
    """Pairwise and B-cubed precision/recall/F1; predicted 0 = no identity (a cluster of its own)."""
    truth_ids = {v: i for i, v in enumerate(dict.fromkeys(truth))}
    t = np.array([truth_ids[v] for v in truth])
    p = np.array(predicted, np.int64)
    unassigned = p == 0
    p[unassigned] = -1 - np.arange(int(unassigned.sum()))  # singletons
    _, p = np.unique(p, return_inverse=True)
    table = np.zeros((t.max() + 1, p.max() + 1), np.int64)
    np.add.at(table, (t, p), 1)
    true_sizes, pred_sizes = table.sum(1), table.sum(0)

    def pairs(n: np.ndarray) -> float:
        return float((n * (n - 1) // 2).sum())

    tp, pred_pairs, true_pairs = pairs(table), pairs(pred_sizes), pairs(true_sizes)
    pw_p = tp / pred_pairs if pred_pairs else 1.0
    pw_r = tp / true_pairs if true_pairs else 1.0
    overlap = table[t, p].astype(np.float64)
    b_p = float(np.mean(overlap / pred_sizes[p]))
    b_r = float(np.mean(overlap / true_sizes[t]))

    def f1(a: float, b: float) -> float:
        return 2 * a * b / (a + b) if a + b else 0.0

    return {"pairwise_precision": pw_p, "pairwise_recall": pw_r, "pairwise_f1": f1(pw_p, pw_r),
            "bcubed_precision": b_p, "bcubed_recall": b_r, "bcubed_f1": f1(b_p, b_r),
            "identities_created": int(len(np.unique(p))), "identities_true": int(len(true_sizes)),
            "unassigned": int(unassigned.sum()), "tracklets": len(t)}


def evaluate(config: TrackerConfig, stream: Sequence[Tracklet], features: dict[str, np.ndarray],
             feature_dim: int) -> dict[str, float]:
    """One pass of the stream through a matcher built from ``config``; scores and timing."""
    matcher = matcher_from_config(config, feature_dim)
    tic = time.perf_counter()
    predicted, resolve_ms = run_stream(matcher, stream, features, config.clip_len)
    scores = cluster_scores([t.pid for t in stream], predicted)
    return {**scores, "resolve_ms": resolve_ms, "seconds": time.perf_counter() - tic}


def _cache_name(embedder) -> str:
    path = Path(getattr(embedder, "path", "embedder"))
    stat = path.stat() if path.is_file() else None
    key = f"{path.resolve()}:{stat.st_size if stat else 0}:{stat.st_mtime_ns if stat else 0}"
    return f"features_{path.stem}_{hashlib.sha1(key.encode()).hexdigest()[:8]}.npz"


def print_rows(rows: dict[str, dict[str, float]]) -> None:
    print(f"\n{'run':28s} {'pw P':>6s} {'pw R':>6s} {'pw F1':>6s} {'B3 P':>6s} {'B3 R':>6s} {'B3 F1':>6s} "
          f"{'ids':>5s} {'true':>5s} {'ms/res':>7s}")
    for name, m in rows.items():
        print(f"{name:28s} {m['pairwise_precision']:6.3f} {m['pairwise_recall']:6.3f} {m['pairwise_f1']:6.3f} "
              f"{m['bcubed_precision']:6.3f} {m['bcubed_recall']:6.3f} {m['bcubed_f1']:6.3f} "
              f"{m['identities_created']:5d} {m['identities_true']:5d} {m['resolve_ms']:7.2f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mars-dap", type=Path, required=True, help="a folder in the mars_dap format")
    parser.add_argument("--out", type=Path, required=True, help="writes OUT/identity_eval.json (+ a feature cache)")
    parser.add_argument("--split", choices=SPLITS, default="all",
                        help="all identities, the re-ID model's train / val identities, or halves of val")
    parser.add_argument("--seed", type=int, default=0, help="stream order")
    parser.add_argument("--setting", default="match_threshold",
                        help="the TrackerConfig field --sweep varies (default: match_threshold)")
    parser.add_argument("--sweep", type=float, nargs="*", default=[], help="values of --setting to try")
    parser.add_argument("--limit", type=int, help="only the first N tracklets of the stream")
    parser.add_argument("--cache", type=Path, help="folder for the embedded tracklets, reused across runs "
                        "(default: OUT; one file per re-ID model)")
    parser.add_argument("--flip", action="store_true",
                        help="average each clip's feature with its mirror image's (test-time augmentation)")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    add_tracker_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    config = config_from_args(args)
    if args.sweep and not hasattr(config, args.setting):
        parser.error(f"--setting {args.setting!r} is not a tracker option")

    from tracker.pipeline import build_embedder

    if config.reid is None and args.split in ("all", "train"):
        log.warning("the default embedder (the bundled STA-OSNet) was trained on the 'train' identities of "
                    "mars_dap: judge it on --split val, val-tune or val-judge, or pass --reid osnet")
    tracklets = split_identities(read_tracklets(args.mars_dap), args.split)
    stream = stream_order(tracklets, args.seed)[: args.limit]
    embedder = build_embedder(config.reid)
    name = _cache_name(embedder).replace(".npz", "_flip.npz") if args.flip else _cache_name(embedder)
    features = embed_tracklets(args.mars_dap, stream, embedder, config.clip_len,
                               cache=(args.cache or args.out) / name, flip=args.flip)
    rows = {"default": evaluate(config, stream, features, embedder.feature_dim)}
    for value in args.sweep:
        kind = type(getattr(config, args.setting))
        rows[f"{args.setting}={value:g}"] = evaluate(replace(config, **{args.setting: kind(value)}), stream,
                                                     features, embedder.feature_dim)
    print_rows(rows)
    result = {"mars_dap": str(args.mars_dap), "split": args.split, "seed": args.seed,
              "embedder": str(getattr(embedder, "path", type(embedder).__name__)),
              "config": {k: v for k, v in vars(config).items()}, "runs": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "identity_eval.json").write_text(json.dumps(result, indent=1) + "\n")
    log.info("wrote %s", args.out / "identity_eval.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
