"""Identity store speed: insert rate, top-5 search latency at 10k / 100k / 1M identities, and the
tracker's per-step cost with a store.

Part 1 (``--sizes``): a store is filled with N identities (one sighting each, synthetic 512-d vectors:
real raw features from an identity_eval cache with noise when ``--features`` is given, else
non-negative Gaussian ones like a ReLU network's), then timed: the rate of ``record()`` (the
tracker's write path, 1,000 sightings a transaction), the bulk fill, opening the store and loading
its search matrix, and top-5 search, median over ``--queries`` queries:
``store.search`` (exact NumPy matrix product + the hits' summaries from SQLite) and, beside it,
the index alone, and the candidates it was chosen against when installed (``pip install -e
'.[storebench]'``): sqlite-vec's ``vec0`` brute force (cosine and L2), faiss ``IndexFlatIP``,
usearch exact search and usearch HNSW (approximate; recall@5 against the exact answer; built only
up to ``--hnsw-max`` vectors: its build is slow on 2 cores).

Part 2 (``--steps``): a real ``Pipeline`` (scripted detector, a cheap embedder) with 4 cameras x 4
people, with and without a store seeded with ``--seeded`` identities: ms per step, the recorder's
share of a step ("store" stage) and the writer thread's commit time.

    python benchmarks/store_speed.py --sizes 10000 100000 1000000 --json store_speed.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from mcreid.logs import setup_logging
from tracker.signatures import Signature
from tracker.store import ModelInfo, TrackSighting, open_store
from tracker.store.index import ExactIndex
from tracker.types import TrackMember

log = logging.getLogger("store_speed")
DIM = 512
MODEL = ModelInfo("synthetic", "", DIM)


def vectors(n: int, rng: np.random.Generator, features: np.ndarray | None) -> np.ndarray:
    """``(n, DIM)`` float32: real features plus noise, or non-negative Gaussian vectors."""
    if features is not None:
        base = features[rng.integers(0, len(features), n)]
        out = base + rng.normal(0, 0.3 * float(features.std()), base.shape)
    else:
        out = np.abs(rng.normal(0, 1, (n, DIM)))
    return out.astype(np.float32)


def load_features(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    with np.load(path) as saved:
        return np.concatenate([saved[k] for k in saved.files]).astype(np.float32)


def median_ms(call: Callable[[np.ndarray], object], queries: np.ndarray) -> tuple[float, object]:
    call(queries[0])
    times, out = [], None
    for q in queries[1:]:
        tic = time.perf_counter()
        out = call(q)
        times.append(time.perf_counter() - tic)
    return float(np.median(times)) * 1000, out


def fill(path: Path, n: int, rng: np.random.Generator, features: np.ndarray | None, chunk: int = 20_000) -> float:
    """N identities with one sighting each, written with executemany (the rows ``record`` writes);
    returns identities per second."""
    store = open_store(path, MODEL, writer=True)
    store.begin_run({"cam0": "synthetic"})
    conn = store._conn  # bulk path: the same rows, without record()'s per-sighting reads
    tic = time.perf_counter()
    now = time.time()
    for start in range(0, n, chunk):
        block = vectors(min(chunk, n - start), rng, features)
        ids = range(start + 1, start + 1 + len(block))
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO identities VALUES (?, 2, ?, ?, ?, 1)",
                         ((i, now, now, v.tobytes()) for i, v in zip(ids, block)))
        conn.executemany("INSERT INTO sightings (global_id, run_id, camera_id, source, track_id, first_frame, "
                         "last_frame, first_time_s, last_time_s, started_at, ended_at, clip_count, signature, ended) "
                         "VALUES (?, 1, 'cam0', 'synthetic', ?, 1, 8, 0, 0.8, ?, ?, 2, ?, 1)",
                         ((i, i, now, now, v.tobytes()) for i, v in zip(ids, block)))
        conn.execute("UPDATE meta SET value = ? WHERE key IN ('next_global_id')", (n + 1,))
        conn.execute("UPDATE meta SET value = 1 WHERE key = 'write_seq'")
        conn.execute("COMMIT")
        log.info("filled %d / %d", start + len(block), n)
    rate = n / (time.perf_counter() - tic)
    store.close()
    return rate


def record_rate(path: Path, rng: np.random.Generator, n: int = 5000, batch: int = 1000) -> float:
    """Sightings per second through ``record()`` (new tracks, one identity each)."""
    store = open_store(path, MODEL, writer=True)
    run = store.begin_run({"cam0": "synthetic"})
    vecs = vectors(n, rng, None)
    tic = time.perf_counter()
    for start in range(0, n, batch):
        sightings = [TrackSighting(10**9 + i, TrackMember("cam0", 10**6 + i, 1, 8, 0.0, 0.8, 2),
                                   Signature(vecs[i].astype(np.float64), 2), ended=True)
                     for i in range(start, min(n, start + batch))]
        store.record(run, sightings, 10**9 + n + 1)
    rate = n / (time.perf_counter() - tic)
    store.close()
    return rate


def candidates(matrix: np.ndarray, queries: np.ndarray, workdir: Path, hnsw_max: int) -> dict[str, dict]:
    """The vector indexes the store's exact NumPy search was chosen against (those installed)."""
    out: dict[str, dict] = {}
    n = len(matrix)
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    exact = [set(np.argsort(-(unit @ (q / np.linalg.norm(q))))[:5].tolist()) for q in queries[1:]]
    try:
        import apsw
        import sqlite_vec

        for metric in ("cosine", "l2"):
            db = workdir / f"vec0_{metric}_{n}.db"
            db.unlink(missing_ok=True)
            conn = apsw.Connection(str(db))
            conn.enable_load_extension(True)
            conn.load_extension(sqlite_vec.loadable_path())
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{DIM}] distance_metric={metric})")
            tic = time.perf_counter()
            with conn:
                conn.executemany("INSERT INTO v (rowid, embedding) VALUES (?, ?)",
                                 ((i, unit[i].tobytes()) for i in range(n)))
            rate = n / (time.perf_counter() - tic)
            ms, _ = median_ms(lambda q: conn.execute("SELECT rowid FROM v WHERE embedding MATCH ? AND k = 5",
                                                     ((q / np.linalg.norm(q)).astype(np.float32).tobytes(),)).fetchall(),
                              queries)
            out[f"sqlite-vec vec0 ({metric})"] = {"insert_per_s": rate, "top5_ms": ms}
            conn.close()
            db.unlink(missing_ok=True)
    except ImportError as exc:
        log.warning("sqlite-vec rows skipped: %s (pip install -e '.[storebench]')", exc)
    try:
        import faiss

        index = faiss.IndexFlatIP(DIM)
        tic = time.perf_counter()
        index.add(unit)
        rate = n / (time.perf_counter() - tic)
        ms, _ = median_ms(lambda q: index.search((q / np.linalg.norm(q))[None].astype(np.float32), 5), queries)
        out["faiss IndexFlatIP"] = {"insert_per_s": rate, "top5_ms": ms}
        del index
    except ImportError as exc:
        log.warning("faiss rows skipped: %s", exc)
    try:
        from usearch.index import Index, MetricKind, search

        ms, _ = median_ms(lambda q: search(unit, q / np.linalg.norm(q), 5, MetricKind.IP, exact=True), queries)
        out["usearch exact"] = {"insert_per_s": None, "top5_ms": ms}
        if n <= hnsw_max:
            index = Index(ndim=DIM, metric="ip", dtype="f16", connectivity=16, expansion_add=128,
                          expansion_search=64)
            tic = time.perf_counter()
            index.add(np.arange(n), unit)
            rate = n / (time.perf_counter() - tic)
            found = []
            ms, _ = median_ms(lambda q: found.append(set(index.search(q / np.linalg.norm(q), 5).keys.tolist())),
                              queries)
            recall = float(np.mean([len(f & e) / 5 for f, e in zip(found[1:], exact)]))
            out["usearch HNSW (f16, M 16)"] = {"insert_per_s": rate, "top5_ms": ms, "recall_at_5": recall}
    except ImportError as exc:
        log.warning("usearch rows skipped: %s", exc)
    return out


def size_rows(n: int, args: argparse.Namespace, features: np.ndarray | None, workdir: Path) -> dict:
    rng = np.random.default_rng(n)
    path = workdir / f"store_{n}.db"
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    row: dict = {"identities": n, "fill_per_s": fill(path, n, rng, features)}
    queries = vectors(args.queries + 1, rng, features)
    tic = time.perf_counter()
    store = open_store(path)
    store.refresh_index()
    row["open_and_load_s"] = time.perf_counter() - tic
    row["store_search_top5_ms"], hits = median_ms(lambda q: store.search(q, 5), queries)
    index: ExactIndex = store._index
    row["index_top5_ms"], _ = median_ms(lambda q: index.search(q, 5), queries)
    matrix = index._vectors[:len(index)]
    row["numpy_top5_ms"], _ = median_ms(lambda q: np.argpartition(-(matrix @ q), 5)[:5], queries)
    row["file_mb"] = path.stat().st_size / 1e6
    store.close()
    if not args.no_candidates:
        row["candidates"] = candidates(matrix.copy(), queries, workdir, args.hnsw_max)
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--features", type=Path, default=None, help="an identity_eval feature cache (.npz)")
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="largest size an HNSW graph is built for")
    parser.add_argument("--no-candidates", action="store_true", help="only the store's own search")
    parser.add_argument("--steps", type=int, default=300, help="pipeline steps for part 2 (0: skip)")
    parser.add_argument("--seeded", type=int, default=1000, help="identities in the store for part 2")
    parser.add_argument("--workdir", type=Path, default=None, help="where the stores are written (default: temp)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    setup_logging(0)
    features = load_features(args.features)
    with tempfile.TemporaryDirectory(prefix="store_speed_") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results: dict = {"record_per_s": record_rate(workdir / "record.db", np.random.default_rng(0)), "sizes": []}
        for n in args.sizes:
            results["sizes"].append(size_rows(n, args, features, workdir))
            print_size(results["sizes"][-1])
        if args.steps:
            from benchmarks.store_step import step_costs

            results["pipeline"] = step_costs(args.steps, args.seeded, workdir)
    print(f"record(): {results['record_per_s']:.0f} sightings/s (1,000 per transaction)")
    if "pipeline" in results:
        for name, r in results["pipeline"].items():
            print(f"pipeline {name}: step median {r['step_ms_median']:.2f} ms, mean {r['step_ms_mean']:.2f}, "
                  f"p95 {r['step_ms_p95']:.2f}; store stage mean {r.get('store_ms_mean', 0):.3f} ms, "
                  f"max {r.get('store_ms_max', 0):.2f}; writer commit median {r.get('commit_ms_median', 0):.2f} ms")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def print_size(row: dict) -> None:
    print(f"\n{row['identities']:,} identities: fill {row['fill_per_s']:.0f}/s, file {row['file_mb']:.0f} MB, "
          f"open + load matrix {row['open_and_load_s']:.2f} s")
    print(f"  store.search top-5 {row['store_search_top5_ms']:.1f} ms (index alone {row['index_top5_ms']:.1f}, "
          f"plain NumPy {row['numpy_top5_ms']:.1f})")
    for name, c in row.get("candidates", {}).items():
        rate = f"{c['insert_per_s']:.0f}/s" if c.get("insert_per_s") else "-"
        recall = f", recall@5 {c['recall_at_5']:.3f}" if "recall_at_5" in c else ""
        print(f"  {name:28s} top-5 {c['top5_ms']:7.1f} ms, insert {rate}{recall}")


if __name__ == "__main__":
    sys.exit(main())
