"""Evaluate a video re-ID model on MARS: CMC (rank-1/5/10/20) and mAP under both MARS protocols.

    python benchmarks/mars_eval.py [--dataset mars] --data-root MARS --model CKPT.pt|MODEL.onnx [--clips 1|4|all]
        [--distance cosine|euclidean] [--feature raw|bn] [--protocol official|torchreid|both]
        [--rerank] [--batch-size N] [--workers N] [--device cpu|cuda] [--out DIR]
        [--features FILE.npz --info-dir DIR] [--ablation] [--visualize K] [--seed S]

One AAS feature per test tracklet (the mean of its clip features, raw or BN) is extracted once and
cached under ``--out/feature_cache`` (keyed by the model's sha256, the clip setting, clip length,
frame size and split), so other distances, protocols or re-ranking reuse it. ``--features`` takes
precomputed features instead. Writes ``results.json`` (per protocol: unrounded percentages
``rank1 rank5 rank10 rank20 mAP`` and ``num_queries``), ``run.json`` (the settings), ``cmc.png``,
and with ``--visualize K`` ``top10_<protocol>.png``; ``--ablation`` adds ``ablation.json``.
Protocols: see ``reid_model.metrics`` and ``reid_model.data.mars.protocol_split``.

``--dataset mars_dap`` evaluates a folder in the ``mars_dap`` format (real MARS tracklets as 8-frame
strips) with its own protocol; see ``benchmarks/mars_eval_dap.py``. A per-image ONNX model (input
``[B, 3, H, W]``, e.g. OSNet) is evaluated with its frame features averaged, as a baseline.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/<script>.py` without an install: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks.mars_eval_features import (
    cache_path,
    load_embedder,
    load_features,
    parse_clips,
    save_features,
)
from benchmarks.mars_eval_report import (
    ablation_json,
    ablation_rows,
    ablation_text,
    plot_cmc,
    scores_table,
    visualize_top10,
    write_results,
)
from benchmarks.mars_eval_dap import check_dap_args, run_dap
from mcreid.logs import setup_logging
from reid_model.data.mars_dap import SPLITS
from reid_model.data.mars import PROTOCOLS, MarsSplitInfo, load_mars, load_split_info, protocol_split
from reid_model.evaluate import extract_features
from reid_model.metrics import DISTANCES, Scores, distance_matrix, evaluate

log = logging.getLogger("mars_eval")
ABLATION_CLIPS = (1, 4, "all")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mars_eval", description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--dataset", choices=("mars", "mars_dap"), default="mars",
                   help="mars (bbox_test/, info/) or mars_dap (tracklets/, tracklets.csv, queries.csv)")
    p.add_argument("--data-root", type=Path, help="MARS root (bbox_test/, info/) or a mars_dap folder")
    p.add_argument("--split", choices=SPLITS, default="all",
                   help="mars_dap only: all identities, or the train/val identities of the fixed split")
    p.add_argument("--model", type=Path, help=".pt/.pth checkpoint (TorchEmbedder) or .onnx (OnnxClipEmbedder)")
    p.add_argument("--clips", default="all", help="clips per tracklet: 1 (random), k (evenly spread), all, restricted")
    p.add_argument("--distance", choices=tuple(DISTANCES), default="cosine")
    p.add_argument("--feature", choices=("raw", "bn"), default="raw", help="raw = FC1 output (RFU), bn = after BN")
    p.add_argument("--protocol", choices=(*PROTOCOLS, "both"), default="both")
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)")
    p.add_argument("--batch-size", type=int, default=32, help="clips per forward pass")
    p.add_argument("--workers", type=int, default=2, help="JPEG decoding processes (0 = main process)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda if available)")
    p.add_argument("--out", type=Path, default=Path("runs/mars_eval"), help="results and feature cache folder")
    p.add_argument("--features", type=Path, help="evaluate precomputed features (.npz, 'features' (12180, D))")
    p.add_argument("--info-dir", type=Path, help="split files for --features (default: DATA_ROOT/info)")
    p.add_argument("--ablation", action="store_true", help="also the paper's Table 1 and Table 2 rows")
    p.add_argument("--visualize", type=int, default=0, metavar="K", help="top-10 picture for K queries")
    p.add_argument("--seed", type=int, default=0, help="clip sampling (clips=1) and visualised queries")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


def _check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    try:
        args.clips = parse_clips(args.clips)
    except ValueError as exc:
        p.error(str(exc))
    if args.batch_size < 1 or args.workers < 0 or args.visualize < 0:
        p.error("need --batch-size >= 1, --workers >= 0, --visualize >= 0")
    if args.dataset == "mars_dap":
        check_dap_args(p, args)
        return
    if args.split != "all":
        p.error("--split is for --dataset mars_dap")
    if args.features is None and (args.model is None or args.data_root is None):
        p.error("give --data-root and --model, or --features (with --info-dir or --data-root)")
    if args.features is not None and args.model is not None:
        p.error("--features and --model exclude each other")
    if args.features is not None and args.info_dir is None and args.data_root is None:
        p.error("--features needs --info-dir (or --data-root) for the split files")
    if args.ablation and args.features is not None:
        p.error("--ablation needs --model: it extracts the clip settings 1, 4 and all itself")
    if args.ablation and args.clips == "restricted":
        p.error("--ablation uses clips 1, 4 and all; drop --clips restricted")
    if args.batch_size < 1 or args.workers < 0 or args.visualize < 0:
        p.error("need --batch-size >= 1, --workers >= 0, --visualize >= 0")
    if args.visualize and args.data_root is None:
        p.error("--visualize needs --data-root (it shows the tracklets' frames)")


def _model_features(args: argparse.Namespace, dataset) -> tuple[dict, dict]:
    """AAS features per clip setting for ``--model``, from the cache where possible."""
    from reid_model.checkpoint import file_sha256

    settings = list(dict.fromkeys([args.clips, *ABLATION_CLIPS])) if args.ablation else [args.clips]
    embedder = load_embedder(args.model, args.device, args.batch_size)
    sha = file_sha256(args.model)
    size, seq_len = tuple(embedder.input_size), embedder.seq_len
    paths = {s: cache_path(args.out, sha, s, seq_len, size, args.seed, dataset.info.test_tracks) for s in settings}
    features: dict = {}
    for s, path in paths.items():
        if path.is_file():
            features[s] = load_features(path, len(dataset.test))
            log.info("clips=%s: features from cache %s", s, path)
    missing = [s for s in settings if s not in features]
    if missing:
        start = time.perf_counter()
        fresh = extract_features(dataset.test, embedder, missing, args.seed, args.batch_size, args.workers)
        log.info("extracted %s in %.1f s", "/".join(map(str, missing)), time.perf_counter() - start)
        for s, feats in fresh.items():
            meta = {"model": str(args.model), "model_sha256": sha, "clips": s, "seq_len": seq_len,
                    "input_size": list(size), "seed": args.seed, "data_root": str(dataset.root)}
            save_features(paths[s], feats, meta)
        features.update(fresh)
    run = {"model": str(args.model), "model_sha256": sha, "seq_len": seq_len, "input_size": list(size),
           "cache": {str(s): str(p) for s, p in paths.items()}}
    return features, run


def evaluate_protocol(
    info: MarsSplitInfo, features: np.ndarray, protocol: str, distance: str = "cosine", rerank: bool = False
) -> tuple[Scores, np.ndarray]:
    """Scores and the ``(Q, G)`` distance matrix of ``features`` (one row per test tracklet) under ``protocol``."""
    q_rows, g_rows = protocol_split(info, protocol)
    if rerank:
        from reid_model.rerank import k_reciprocal_rerank

        distmat = k_reciprocal_rerank(features[q_rows], features[g_rows], distance)
    else:
        distmat = distance_matrix(features[q_rows], features[g_rows], distance)
    pids, cams = info.test_tracks[:, 2], info.test_tracks[:, 3]
    scores = evaluate(distmat, pids[q_rows], cams[q_rows], pids[g_rows], cams[g_rows], protocol)
    return scores, distmat


def _run_ablation(args, info: MarsSplitInfo, features: dict, protocols: tuple[str, ...]) -> None:
    def run(clips: str, distance: str, feature: str) -> dict[str, Scores]:
        chosen = features[parse_clips(clips)].select(feature)
        return {p: evaluate_protocol(info, chosen, p, distance)[0] for p in protocols}

    if args.rerank:
        log.info("ablation rows are computed without re-ranking, as in the paper's tables")
    rows = ablation_rows(run)
    print(ablation_text(rows, protocols))
    (args.out / "ablation.json").write_text(json.dumps(ablation_json(rows), indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    setup_logging(args.verbose)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.dataset == "mars_dap":
        return run_dap(args)
    protocols = PROTOCOLS if args.protocol == "both" else (args.protocol,)
    dataset = None
    if args.features is not None:
        info = load_split_info(args.info_dir if args.info_dir is not None else args.data_root / "info")
        features = {args.clips: load_features(args.features, len(info.test_tracks))}
        run = {"features": str(args.features)}
        if args.visualize:
            dataset = load_mars(args.data_root)
    else:
        dataset = load_mars(args.data_root)
        info = dataset.info
        features, run = _model_features(args, dataset)
    chosen = features[args.clips].select(args.feature)
    results, distmats = {}, {}
    for protocol in protocols:
        start = time.perf_counter()
        results[protocol], distmats[protocol] = evaluate_protocol(info, chosen, protocol, args.distance, args.rerank)
        log.info("%s: evaluated in %.2f s", protocol, time.perf_counter() - start)
    setting = (f"clips={args.clips}, distance={args.distance}, feature={args.feature}, "
               f"rerank={'yes' if args.rerank else 'no'}")
    print(scores_table(results, f"MARS ({setting})"))
    write_results(args.out / "results.json", results)
    run.update(clips=str(args.clips), distance=args.distance, feature=args.feature, rerank=args.rerank,
               protocols=list(protocols), seed=args.seed)
    (args.out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
    plot_cmc(args.out / "cmc.png", results, f"MARS CMC ({setting})")
    if args.visualize:
        for protocol in protocols:
            q_rows, g_rows = protocol_split(info, protocol)
            path = args.out / f"top10_{protocol}.png"
            visualize_top10(path, distmats[protocol], q_rows, g_rows, dataset.test, protocol, args.visualize, args.seed)
            log.info("wrote %s", path)
    if args.ablation:
        _run_ablation(args, info, features, protocols)
    log.info("results in %s", args.out / "results.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
