"""What ``mars_eval`` writes: the score table, results.json, the CMC curve, top-10 pictures, ablation tables."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from reid_model.metrics import Scores, ignored_entries

log = logging.getLogger(__name__)

# The paper's Table 1 (AAS; BN features): clips, distance, (rank-1, rank-5, rank-20, mAP).
PAPER_TABLE1 = (
    ("1", "euclidean", (83.5, 93.8, 96.8, 77.5)),
    ("4", "euclidean", (85.3, 94.8, 97.1, 79.6)),
    ("all", "euclidean", (85.7, 94.8, 97.2, 80.0)),
    ("4", "cosine", (85.9, 94.6, 96.9, 80.3)),
    ("all", "cosine", (86.5, 94.7, 96.9, 80.9)),
)
# Table 2 (RFU; all clips, cosine): raw feature at inference?, raw feature in the triplet loss?, numbers.
PAPER_TABLE2 = (
    ("No", "No", (86.5, 94.7, 98.2, 80.9)),
    ("Yes", "No", (87.2, 95.8, 97.1, 82.3)),
    ("Yes", "Yes", (87.7, 96.4, 98.3, 82.3)),
)
PAPER_KEYS = ("rank1", "rank5", "rank20", "mAP")


def scores_table(results: Mapping[str, Scores], title: str) -> str:
    """A plain-text table: one line per protocol with rank-1/5/10/20, mAP and the queries counted."""
    lines = [title, f"{'protocol':<10} {'queries':>7} {'rank-1':>7} {'rank-5':>7} {'rank-10':>7} {'rank-20':>7} {'mAP':>7}"]
    for protocol, scores in results.items():
        s = scores.summary()
        lines.append(
            f"{protocol:<10} {s['num_queries']:>7} {s['rank1']:>7.2f} {s['rank5']:>7.2f} "
            f"{s['rank10']:>7.2f} {s['rank20']:>7.2f} {s['mAP']:>7.2f}"
        )
    return "\n".join(lines)


def write_results(path: Path, results: Mapping[str, Scores]) -> None:
    """``{protocol: {rank1, rank5, rank10, rank20, mAP (unrounded %), num_queries}}`` as JSON."""
    path.write_text(json.dumps({p: s.summary() for p, s in results.items()}, indent=2) + "\n")


def plot_cmc(path: Path, results: Mapping[str, Scores], title: str) -> None:
    """CMC curves (rank 1..len(cmc)) of each protocol into a PNG, with matplotlib's Agg canvas."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("the CMC plot needs matplotlib: pip install -e '.[dev]' (or pip install matplotlib)") from exc
    fig = Figure(figsize=(6.4, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for protocol, scores in results.items():
        ranks = np.arange(1, len(scores.cmc) + 1)
        s = scores.summary()
        label = f"{protocol} ({s['num_queries']} queries): rank-1 {s['rank1']:.1f}, mAP {s['mAP']:.1f}"
        ax.plot(ranks, 100.0 * scores.cmc, marker=".", label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _cell(path: Path, colour: tuple[int, int, int], height: int = 128, width: int = 64, border: int = 4) -> np.ndarray:
    from reid_model.data.transforms import read_frame

    cell = np.empty((height + 2 * border, width + 2 * border, 3), np.uint8)
    cell[:] = colour
    try:
        cell[border:-border, border:-border] = read_frame(path, height, width)
    except (FileNotFoundError, ValueError) as exc:  # a missing/corrupt frame greys out its cell only
        log.warning("cannot show %s: %s", path, exc)
        cell[border:-border, border:-border] = 128
    return cell


def ranked_gallery(distmat_row: np.ndarray, q_pid: int, q_cam: int, g_pids: np.ndarray, g_cams: np.ndarray,
                   protocol: str, top: int = 10) -> np.ndarray:
    """Gallery positions of the ``top`` nearest entries the protocol keeps (stable order)."""
    order = np.argsort(distmat_row, kind="stable")
    keep = ~ignored_entries(q_pid, q_cam, g_pids, g_cams, protocol)[order]
    return order[keep][:top]


def visualize_top10(path: Path, distmat: np.ndarray, query_rows: np.ndarray, gallery_rows: np.ndarray,
                    tracklets: Sequence, protocol: str, num_queries: int, seed: int = 0) -> list[int]:
    """A PNG grid: per chosen query its first frame (blue) then the top-10 kept gallery tracklets'
    first frames, green border for a true match, red for a wrong one.

    Returns:
        The chosen query positions (rows of ``distmat``).
    """
    from PIL import Image

    pids = np.array([t.pid for t in tracklets])
    cams = np.array([t.camera for t in tracklets])
    g_pids, g_cams = pids[gallery_rows], cams[gallery_rows]
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(query_rows), min(num_queries, len(query_rows)), replace=False))
    rows = []
    for q in chosen:
        row_q = query_rows[q]
        q_pid, q_cam = pids[row_q], cams[row_q]
        cells = [_cell(tracklets[row_q].paths[0], (40, 90, 255))]
        for g in ranked_gallery(distmat[q], q_pid, q_cam, g_pids, g_cams, protocol):
            correct = g_pids[g] == q_pid and g_cams[g] != q_cam
            cells.append(_cell(tracklets[gallery_rows[g]].paths[0], (0, 200, 0) if correct else (230, 0, 0)))
        blank = np.full_like(cells[0], 255)
        rows.append(np.concatenate(cells + [blank] * (11 - len(cells)), axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)
    return chosen.tolist()


def _ours(results: Mapping[str, Scores], protocol: str) -> str:
    s = results[protocol].summary()
    return " ".join(f"{s[k]:>6.2f}" for k in PAPER_KEYS)


def ablation_rows(evaluate) -> dict[str, list[dict]]:
    """Run the paper's Table 1 and Table 2 settings through ``evaluate(clips, distance, feature)``,
    which returns ``{protocol: Scores}``; rows hold both our summaries and the paper's numbers."""
    table1 = []
    for clips, distance, paper in PAPER_TABLE1:
        results = evaluate(clips, distance, "bn")
        table1.append({"clips": clips, "distance": distance, "feature": "bn", "results": results,
                       "paper": dict(zip(PAPER_KEYS, paper))})
    table2 = []
    for feature in ("bn", "raw"):
        results = evaluate("all", "cosine", feature)
        paper = [dict(zip(PAPER_KEYS, nums), inference=inf, training=train)
                 for inf, train, nums in PAPER_TABLE2 if (inf == "Yes") == (feature == "raw")]
        table2.append({"clips": "all", "distance": "cosine", "feature": feature, "results": results, "paper": paper})
    return {"table1": table1, "table2": table2}


def ablation_text(rows: dict[str, list[dict]], protocols: Sequence[str]) -> str:
    """Both tables per protocol, ours beside the paper's (rank-1, rank-5, rank-20, mAP)."""
    head = f"{'rank-1':>6} {'rank-5':>6} {'rank-20':>6} {'mAP':>6}"
    lines = []
    for protocol in protocols:
        n = rows["table1"][0]["results"][protocol].num_queries
        lines += ["", f"Table 1 (AAS, BN features), protocol {protocol}, {n} queries",
                  f"{'clips':<6} {'cosine':<7} | ours {head} | paper {head}"]
        for r in rows["table1"]:
            paper = " ".join(f"{r['paper'][k]:>6.1f}" for k in PAPER_KEYS)
            cosine = "Yes" if r["distance"] == "cosine" else "No"
            lines.append(f"{r['clips']:<6} {cosine:<7} |      {_ours(r['results'], protocol)} |       {paper}")
        lines += [f"Table 2 (RFU, all clips, cosine), protocol {protocol}",
                  f"{'inference raw':<14} | ours {head} | paper (training raw) {head}"]
        for r in rows["table2"]:
            inference = "Yes" if r["feature"] == "raw" else "No"
            paper = "; ".join(f"({p['training']}) " + " ".join(f"{p[k]:>6.1f}" for k in PAPER_KEYS) for p in r["paper"])
            lines.append(f"{inference:<14} |      {_ours(r['results'], protocol)} | {paper}")
    lines.append("Table 2's training column is fixed by the checkpoint (reid_model train --triplet-feature).")
    return "\n".join(lines)


def ablation_json(rows: dict[str, list[dict]]) -> dict:
    """The rows with each ``Scores`` replaced by its summary."""
    return {
        table: [{**r, "results": {p: s.summary() for p, s in r["results"].items()}} for r in entries]
        for table, entries in rows.items()
    }
