"""Open-set decision rules compared on the identity_eval stream (the study behind the matcher's rule).

Replays the ``mars_dap`` stream of ``benchmarks/identity_eval.py`` (same order, same cached clip
features) through a compact model of the matcher's decision - each tracklet joins an identity
or founds one; identities are clip-weighted mean signatures - with the rule swapped:

- ``threshold``: join the most similar identity if cosine >= T (the matcher's rule);
- ``margin``: ... and it beats the second most similar identity by m;
- ``log-n``: the threshold grows with the identities alive, T0 + c * log10(N);
- ``z-norm``: ... and the best similarity is z standard deviations above the query's mean
  similarity to all identities (score normalisation against the impostor cohort);
- ``max-member``: similarity to an identity = the best of its member tracklets, not its mean;
- ``softmax``: join when the identity's posterior against all identities and "new person",
  exp(a (s_k - T)) / (1 + sum_j exp(a (s_j - T))), is >= 0.5 (depends on the runners-up);
- ``merge``: the threshold rule, then an identity that just gained a tracklet is merged with any
  other identity whose signature is at least Tm alike.
- ``offline``: not a rule for a live stream but a reference for one: average-linkage clustering of all the
  tracklets at once (``scipy.cluster.hierarchy``), cut where the mean cosine similarity between two
  groups falls below T. It sees the whole stream before deciding anything.

For each rule: its best-F1 setting on ``--tune`` and that setting judged on ``--judge``, and its
best recall at B-cubed precision >= 0.90 on ``--tune``, judged likewise. Needs the feature cache
that identity_eval writes (``--cache``).

    python benchmarks/identity_rules.py --mars-dap ../shared/data/mars_dap --cache runs/ie_cache
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from benchmarks.identity_eval import cluster_scores, read_tracklets, split_identities, stream_order
from mcreid.logs import setup_logging

log = logging.getLogger("identity_rules")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def simulate(clips: Sequence[np.ndarray], decide: Callable[[np.ndarray, int], int],
             member: str = "mean", merge_at: float | None = None) -> list[int]:
    """Each tracklet's identity; ``decide(similarities, n_identities) -> index or -1 (new)``."""
    dim = clips[0].shape[1]
    sums = np.zeros((len(clips), dim))
    alive = np.zeros(len(clips), bool)
    label = np.zeros(len(clips), int)
    sigs = _unit(np.stack([c.mean(0) for c in clips]))
    n = 0
    for i, c in enumerate(clips):
        k = -1
        rows = np.flatnonzero(alive[:n])
        if len(rows):
            if member == "max":
                sims = np.full(n, -1.0)
                np.maximum.at(sims, label[:i], sigs[:i] @ sigs[i])
                sims = sims[rows]
            else:
                sims = _unit(sums[rows]) @ sigs[i]
            j = decide(sims, len(rows))
            k = rows[j] if j >= 0 else -1
        if k < 0:
            k, n = n, n + 1
            alive[k] = True
        sums[k] += c.sum(0)
        label[i] = k
        while merge_at is not None and k != -1:
            rows = np.flatnonzero(alive[:n])
            rows = rows[rows != k]
            if not len(rows):
                break
            sims = _unit(sums[rows]) @ _unit(sums[k])
            j = int(np.argmax(sims))
            if sims[j] < merge_at:
                break
            other = rows[j]
            sums[k] += sums[other]
            alive[other] = False
            label[label == other] = k
    return list(label + 1)


def offline(clips: Sequence[np.ndarray], t: float) -> list[int]:
    """Average-linkage clusters of the tracklets' mean signatures, cut at mean cosine similarity ``t``."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(clips) < 2:
        return [1] * len(clips)
    tree = linkage(_unit(np.stack([c.mean(0) for c in clips])), method="average", metric="cosine")
    return [int(k) for k in fcluster(tree, t=1.0 - t, criterion="distance")]


def threshold(t: float) -> Callable[[np.ndarray, int], int]:
    return lambda s, n: int(np.argmax(s)) if s.max() >= t else -1


def margin(t: float, m: float) -> Callable[[np.ndarray, int], int]:
    def decide(s, n):
        k = int(np.argmax(s))
        second = np.partition(s, -2)[-2] if n > 1 else -1.0
        return k if s[k] >= t and s[k] - second >= m else -1
    return decide


def log_n(t0: float, c: float) -> Callable[[np.ndarray, int], int]:
    return lambda s, n: int(np.argmax(s)) if s.max() >= t0 + c * np.log10(n) else -1


def z_norm(t: float, z: float) -> Callable[[np.ndarray, int], int]:
    def decide(s, n):
        k = int(np.argmax(s))
        if s[k] < t:
            return -1
        if n < 10:
            return k
        rest = np.delete(s, k)
        return k if (s[k] - rest.mean()) / (rest.std() + 1e-6) >= z else -1
    return decide


def softmax(t: float, a: float) -> Callable[[np.ndarray, int], int]:
    def decide(s, n):
        z = a * (s - t)
        top = max(z.max(), 0.0)
        k = int(np.argmax(z))
        return k if np.exp(z[k] - top) / (np.exp(-top) + np.exp(z - top).sum()) >= 0.5 else -1
    return decide


RULES: dict[str, list[tuple[str, dict]]] = {
    "threshold": [(f"T={t}", {"decide": threshold(t)}) for t in (0.8, 0.82, 0.84, 0.86, 0.87, 0.88, 0.9)],
    "margin": [(f"T={t} m={m}", {"decide": margin(t, m)}) for t in (0.8, 0.84) for m in (0.02, 0.04)],
    "log-n": [(f"T0={t} c={c}", {"decide": log_n(t, c)}) for t in (0.64, 0.68, 0.72) for c in (0.06, 0.08)],
    "z-norm": [(f"T={t} z={z}", {"decide": z_norm(t, z)}) for t in (0.75, 0.8) for z in (3.0, 3.5, 4.0)],
    "max-member": [(f"T={t}", {"decide": threshold(t), "member": "max"}) for t in (0.84, 0.86, 0.88, 0.9)],
    "softmax": [(f"T={t} a={a}", {"decide": softmax(t, a)}) for a in (40, 60) for t in (0.8, 0.82, 0.84)],
    "merge": [(f"T={t} Tm={m}", {"decide": threshold(t), "merge_at": m}) for t in (0.82, 0.86) for m in (0.87, 0.9)],
    "offline": [(f"T={t}", {"offline": t}) for t in (0.78, 0.8, 0.82, 0.84, 0.86, 0.88)],
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mars-dap", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True, help="identity_eval's feature cache folder or .npz")
    parser.add_argument("--tune", default="train")
    parser.add_argument("--judge", default="val")
    parser.add_argument("--rules", nargs="*", default=list(RULES), choices=list(RULES))
    parser.add_argument("--json", type=Path, default=Path("identity_rules.json"))
    args = parser.parse_args(argv)
    setup_logging()
    cache = args.cache if args.cache.is_file() else next(iter(sorted(args.cache.glob("features_*.npz"))), None)
    if cache is None:
        raise FileNotFoundError(f"no features_*.npz in {args.cache}: run benchmarks/identity_eval.py first")
    with np.load(cache) as saved:
        features = {k: saved[k] for k in saved.files}
    tracklets = read_tracklets(args.mars_dap)
    streams = {part: stream_order(split_identities(tracklets, part)) for part in (args.tune, args.judge)}

    def score(part: str, options: dict) -> dict:
        clips = [features[t.name] for t in streams[part]]
        labels = offline(clips, options["offline"]) if "offline" in options else simulate(clips, **options)
        return cluster_scores([t.pid for t in streams[part]], labels)

    out = {}
    print(f"\n{'rule':12s} {'best-F1 setting':18s} {'tune F1':>8s} {'judge P':>8s} {'judge F1':>8s} | "
          f"{'P>=0.90 setting':18s} {'tune R':>7s} {'judge P':>8s} {'judge R':>8s}")
    for name in args.rules:
        tuned = [(label, options, score(args.tune, options)) for label, options in RULES[name]]
        best = max(tuned, key=lambda x: x[2]["bcubed_f1"])
        precise = [x for x in tuned if x[2]["bcubed_precision"] >= 0.9]
        high = max(precise, key=lambda x: x[2]["bcubed_recall"]) if precise else None
        judged = score(args.judge, best[1])
        row = {"best": best[0], "tune": best[2], "judge": judged}
        if high:
            row.update(precise=high[0], precise_tune=high[2], precise_judge=score(args.judge, high[1]))
        out[name] = row
        hp = (f"{high[0]:18s} {high[2]['bcubed_recall']:7.3f} {row['precise_judge']['bcubed_precision']:8.3f} "
              f"{row['precise_judge']['bcubed_recall']:8.3f}") if high else f"{'(none)':18s}"
        print(f"{name:12s} {best[0]:18s} {best[2]['bcubed_f1']:8.3f} {judged['bcubed_precision']:8.3f} "
              f"{judged['bcubed_f1']:8.3f} | {hp}", flush=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
