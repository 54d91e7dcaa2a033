"""Speed and peak memory of CMC + mAP on a full MARS-size distance matrix (1,980 x 12,180).

    python benchmarks/metrics_speed.py [--repeats 5] [--json runs/metrics_speed.json] [--rerank]

Rows, each on the same float32 distance matrix and the real split labels (``../shared/data/mars_info``,
found through ``mcreid.assets``; synthetic labels of the same size when absent):

- ``metrics.evaluate``: ours (per query, sort only the true matches and count kept entries
  before each with a binary search), official and torchreid protocols;
- ``full argsort``: the common way (torchreid's): a stable argsort of every row, then
  gathers and cumulative sums over the whole ``(Q, G)`` ranking; its results are checked equal;
- ``--rerank``: k-reciprocal re-ranking at the official size (14,160 items), once.

Both protocols' rows use the same 12,180-column matrix, to time the metric code at full size
(the torchreid protocol's own gallery is smaller: 9,330). Time is the median of ``--repeats`` runs (``time.perf_counter``); peak memory is the largest
traced allocation during one more run (``tracemalloc``, which sees numpy's buffers), on top of the
distance matrix itself. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/<script>.py` without an install: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from mcreid.assets import find_asset
from reid_model.metrics import PROTOCOLS, evaluate

Q, G = 1980, 12180


def mars_labels(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Test pids, cameras and query rows of the real split, or a synthetic stand-in of MARS size."""
    info_dir = find_asset("mars_info")
    if info_dir is not None:
        from reid_model.data.mars import load_split_info

        info = load_split_info(info_dir)
        return info.test_tracks[:, 2], info.test_tracks[:, 3], info.query_idx, f"real split ({info_dir})"
    rng = np.random.default_rng(seed)
    pids = rng.integers(-1, 636, G)
    return pids, rng.integers(1, 7, G), np.sort(rng.choice(G, Q, replace=False)), "synthetic labels"


def full_argsort_evaluate(distmat, q_pids, q_cams, g_pids, g_cams, protocol: str) -> tuple[np.ndarray, float]:
    """The whole-ranking way: stable argsort of every row, gathers and cumsums; (CMC[:50], mAP)."""
    order = np.argsort(distmat, axis=1, kind="stable")
    same = g_pids[order] == q_pids[:, None]
    same_cam = g_cams[order] == q_cams[:, None]
    ignored = same & same_cam
    if protocol == "official":
        ignored |= g_pids[order] == -1
    good = same & ~ignored
    kept_rank = np.cumsum(~ignored, axis=1)
    hits = np.cumsum(good, axis=1)
    n_good = good.sum(axis=1)
    rows, cols = np.nonzero(good)
    r, h = kept_rank[rows, cols].astype(np.float64), hits[rows, cols].astype(np.float64)
    precision = h / r
    if protocol == "official":
        previous = np.divide(h - 1, r - 1, out=np.ones_like(r), where=r > 1)
        terms = (previous + precision) / 2
    else:
        terms = precision
    ap = np.bincount(rows, weights=terms, minlength=len(q_pids)) / np.maximum(n_good, 1)
    first = np.where(n_good > 0, kept_rank[np.arange(len(q_pids)), np.argmax(good, axis=1)], 0)
    counted = np.ones(len(q_pids), bool) if protocol == "official" else n_good > 0
    cmc = ((first[counted, None] > 0) & (first[counted, None] <= np.arange(1, 51))).mean(axis=0)
    return cmc, float(ap[counted].mean())


def measure(fn: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """(median seconds, peak traced MB, last result) of ``fn``."""
    times = []
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20, result


def compare(distmat, q_pids, q_cams, g_pids, g_cams, protocol: str, repeats: int, scenario: str) -> list[dict]:
    """Rows for ours and the full-argsort way on one matrix; RuntimeError if their results differ."""
    ours_s, ours_mb, ours = measure(lambda: evaluate(distmat, q_pids, q_cams, g_pids, g_cams, protocol), repeats)
    base_s, base_mb, (cmc, m_ap) = measure(
        lambda: full_argsort_evaluate(distmat, q_pids, q_cams, g_pids, g_cams, protocol), max(1, repeats // 2)
    )
    if not (np.allclose(ours.cmc, cmc) and abs(ours.mAP - m_ap) < 1e-9):
        raise RuntimeError(f"{protocol}: the two implementations disagree ({ours.mAP} vs {m_ap})")
    common = {"scenario": scenario, "protocol": protocol, "mAP": 100 * ours.mAP, "num_queries": ours.num_queries}
    return [
        {**common, "method": "metrics.evaluate", "seconds": ours_s, "peak_mb": ours_mb},
        {**common, "method": "full argsort", "seconds": base_s, "peak_mb": base_mb, "slower_x": base_s / ours_s},
    ]


def meta_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", type=Path, default=Path("runs/metrics_speed.json"))
    p.add_argument("--rerank", action="store_true", help="also time k-reciprocal re-ranking at 14,160 items")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    pids, cams, query, source = mars_labels(args.seed)
    rng = np.random.default_rng(args.seed)
    # Noisy identity features (rank-1 ~90%, mAP ~73%: a good MARS model) and uniform random distances.
    directions = rng.normal(size=(pids.max() + 2, 128)).astype(np.float32)
    feats = directions[pids + 1] + 1.4 * rng.normal(size=(len(pids), 128)).astype(np.float32)
    from reid_model.metrics import cosine_distance

    scenarios = {
        "identity features": cosine_distance(feats[query], feats),
        "uniform random": rng.random((len(query), len(pids)), dtype=np.float32),
    }
    q_pids, q_cams = pids[query], cams[query]
    rows = []
    for scenario, distmat in scenarios.items():
        for protocol in PROTOCOLS:
            rows += compare(distmat, q_pids, q_cams, pids, cams, protocol, args.repeats, scenario)
    if args.rerank:
        from reid_model.rerank import k_reciprocal_rerank

        seconds, peak, _ = measure(lambda: k_reciprocal_rerank(feats[query], feats, "cosine"), 1)
        rows.append({"scenario": "identity features", "protocol": "official",
                     "method": "k-reciprocal rerank (14,160 items)", "seconds": seconds, "peak_mb": peak})
    print(f"CMC + mAP of a {Q} x {G} float32 distance matrix ({Q * G * 4 / 2**20:.0f} MB), {source}, "
          f"median of {args.repeats} (full argsort: of {max(1, args.repeats // 2)})")
    print(f"{'scenario':<18} {'protocol':<10} {'method':<36} {'seconds':>8} {'peak MB':>8} {'mAP %':>7} {'vs ours':>8}")
    for r in rows:
        ratio = f"{r['slower_x']:.2f}x" if "slower_x" in r else ""
        m_ap = f"{r['mAP']:.2f}" if "mAP" in r else ""
        print(f"{r['scenario']:<18} {r['protocol']:<10} {r['method']:<36} {r['seconds']:>8.3f} {r['peak_mb']:>8.0f} {m_ap:>7} {ratio:>8}")
    print(f"process peak RSS (everything, incl. the matrix and the full-argsort rows): {meta_rss():.0f} MB")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {"distmat_shape": [Q, G], "labels": source, "repeats": args.repeats, "machine": platform.processor()
            or platform.machine(), "numpy": np.__version__,
            "process_peak_rss_mb": meta_rss()}
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
