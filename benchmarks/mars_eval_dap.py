"""``mars_eval --dataset mars_dap``: the mars_dap protocol (shared/data/SOURCES.md) on any folder of that format.

    python benchmarks/mars_eval.py --dataset mars_dap --data-root DIR --model MODEL.pt|MODEL.onnx --out OUT
        [--split all|train|val] [--clips 1|all] [--distance cosine|euclidean] [--feature raw|bn] [--ablation]

Every tracklet's AAS feature (mean over its non-overlapping 4-frame clips: 2 for 8 frames) is
extracted once per clip setting and cached under ``OUT/feature_cache``. ``--split val`` keeps the
validation identities of ``reid_model.data.mars_dap.split_identities`` (queries and gallery), the
ones ``reid_model train --dataset mars_dap`` never trains on. Writes ``OUT/results.json``
``{"mars_dap": {rank1, rank5, rank10, rank20, mAP (percent, unrounded), num_queries, percent: true,
split, clips, distance, feature}}`` and ``run.json``; ``--ablation`` prints the analogues of the
paper's Table 1 (1 vs all clips, Euclidean vs cosine, BN features) and Table 2 (BN vs raw feature
at inference) and writes ``ablation.json``. The frames are half of MARS's resolution and JPEG-
compressed: these numbers are not comparable with the paper's MARS figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import numpy as np

from benchmarks.mars_eval_features import cache_path, load_embedder, load_features, save_features
from reid_model.data.mars_dap import MarsDap, load_mars_dap, select_split
from reid_model.evaluate import SequenceFeatures
from reid_model.evaluate_dap import dap_features, score_dap
from reid_model.metrics import Scores

log = logging.getLogger("mars_eval")
DAP_ABLATION_CLIPS = (1, "all")
# Table 1 analogue (BN features): clips x distance; Table 2 analogue (all clips, cosine): BN vs raw.
TABLE1 = ((1, "euclidean", "bn"), ("all", "euclidean", "bn"), (1, "cosine", "bn"), ("all", "cosine", "bn"))
TABLE2 = (("all", "cosine", "bn"), ("all", "cosine", "raw"))


def _features(args: argparse.Namespace, data: MarsDap) -> tuple[dict, dict]:
    from reid_model.checkpoint import file_sha256

    settings = list(dict.fromkeys([args.clips, *DAP_ABLATION_CLIPS])) if args.ablation else [args.clips]
    embedder = load_embedder(args.model, args.device, args.batch_size)
    sha = file_sha256(args.model)
    size, seq_len = tuple(embedder.input_size), embedder.seq_len
    # The cache key's "split" part: a hash of which tracklets (names), identities and cameras are scored.
    key = np.array([[int.from_bytes(t.name.encode()[-7:].rjust(7, b"\0"), "big"), t.pid, t.camera]
                    for t in data.tracklets], np.int64)
    paths = {s: cache_path(args.out, sha, s, seq_len, size, args.seed, key) for s in settings}
    features = {s: load_features(p, len(data.tracklets)) for s, p in paths.items() if p.is_file()}
    missing = [s for s in settings if s not in features]
    if missing:
        start = time.perf_counter()
        fresh = dap_features(embedder, data, missing, args.seed, args.batch_size, args.workers)
        log.info("extracted clips=%s in %.1f s", "/".join(map(str, missing)), time.perf_counter() - start)
        for s, feats in fresh.items():
            save_features(paths[s], feats, {"model": str(args.model), "model_sha256": sha, "clips": s,
                                            "dataset": "mars_dap", "data_root": str(data.root), "split": args.split})
        features.update(fresh)
    return features, {"model": str(args.model), "model_sha256": sha, "seq_len": seq_len, "input_size": list(size)}


def summary(scores: Scores) -> dict:
    """results.json fields of one evaluation (percentages)."""
    return {**scores.summary(), "percent": True}


def ablation(features: dict[object, SequenceFeatures], data: MarsDap) -> dict[str, list[dict]]:
    """The Table 1 / Table 2 analogue rows: ``{"table1": [...], "table2": [...]}``, each row a setting and its scores."""
    def row(clips, distance, feature) -> dict:
        scores = score_dap(features[clips].select(feature), data, distance)
        return {"clips": str(clips), "distance": distance, "feature": feature, **summary(scores)}

    return {"table1": [row(*s) for s in TABLE1], "table2": [row(*s) for s in TABLE2]}


def ablation_text(rows: dict[str, list[dict]], title: str) -> str:
    head = f"{'clips':<6} {'distance':<10} {'feature':<8} {'rank-1':>7} {'rank-5':>7} {'rank-20':>7} {'mAP':>7}"
    lines = [title]
    for table, name in (("table1", "Table 1 analogue (AAS, BN features)"), ("table2", "Table 2 analogue (all clips, cosine)")):
        lines += [name, head]
        for r in rows[table]:
            lines.append(f"{r['clips']:<6} {r['distance']:<10} {r['feature']:<8} {r['rank1']:>7.2f} {r['rank5']:>7.2f} "
                         f"{r['rank20']:>7.2f} {r['mAP']:>7.2f}")
    return "\n".join(lines)


def run_dap(args: argparse.Namespace) -> int:
    """The ``--dataset mars_dap`` branch of ``mars_eval.main`` (arguments already checked)."""
    data = select_split(load_mars_dap(args.data_root), args.split)
    log.info("mars_dap %s, split %s: %d tracklets of %d identities, %d queries", args.data_root, args.split,
             len(data.tracklets), len(set(data.pids.tolist())), len(data.queries))
    features, run = _features(args, data)
    scores = score_dap(features[args.clips].select(args.feature), data, args.distance)
    result = {**summary(scores), "split": args.split, "clips": str(args.clips), "distance": args.distance,
              "feature": args.feature}
    s = scores.summary()
    print(f"mars_dap ({args.split} identities, {s['num_queries']} queries; clips={args.clips}, "
          f"distance={args.distance}, feature={args.feature}; half-resolution JPEG frames, not MARS figures)\n"
          f"rank-1 {s['rank1']:.2f}  rank-5 {s['rank5']:.2f}  rank-20 {s['rank20']:.2f}  mAP {s['mAP']:.2f}")
    (args.out / "results.json").write_text(json.dumps({"mars_dap": result}, indent=2) + "\n")
    run.update(dataset="mars_dap", data_root=str(args.data_root), split=args.split, clips=str(args.clips),
               distance=args.distance, feature=args.feature, seed=args.seed)
    (args.out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    if args.ablation:
        rows = ablation(features, data)
        print(ablation_text(rows, f"mars_dap ablation ({args.split} identities, {s['num_queries']} queries)"))
        (args.out / "ablation.json").write_text(json.dumps(rows, indent=2) + "\n")
    log.info("results in %s", args.out / "results.json")
    return 0


def check_dap_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``p.error`` for options that make no sense with ``--dataset mars_dap``."""
    if args.model is None or args.data_root is None:
        p.error("--dataset mars_dap needs --data-root and --model")
    if args.features is not None or args.rerank or args.visualize or args.protocol != "both":
        p.error("--features, --rerank, --visualize and --protocol are for --dataset mars only")
    if args.ablation and args.clips == "restricted":
        p.error("--ablation uses clips 1 and all; drop --clips restricted")
