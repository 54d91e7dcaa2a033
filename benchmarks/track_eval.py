"""Tracking quality on real video: PETS09-S2L1 MOTA/IDF1/HOTA and the 4-camera lab identity split.

Three parts, each printed as a table and written to JSON:

1. ``pets``: PETS09-S2L1 frames 1-124 (MOT15 ground truth, boxes x0.625 for the 480x360 video).
   Our pipeline (``python -m tracker run`` outputs, global ids) against Ultralytics' own
   ``model.track()`` on the same detector weights, in the same run. Metrics come from TrackEval
   (PyPI ``trackeval``, Luiten et al.'s HOTA code: CLEAR MOTA, Identity IDF1, HOTA) fed directly
   with per-frame IoU matrices, because motmetrics 1.4.0 calls ``np.asfarray`` (gone in NumPy 2).
2. ``lab``: the 4 overlapping lab cameras (2 people walking, people seated in the background):
   how many global identities, and how each camera's boxes split between them.
3. ``similarity``: the cosine similarities behind the default ``match_threshold``: same-person vs
   different-person pairs of the 24 real crops and of PETS ground-truth tracklets (8-frame
   segments = 2 clips, embedded like the pipeline does).

    python benchmarks/track_eval.py --parts pets lab similarity --json track_eval.json
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import logging
import pickle
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from mcreid.assets import asset_path
from mcreid.logs import setup_logging
from tracker.cli import run_headless
from tracker.config import TrackerConfig, add_tracker_arguments, config_from_args
from tracker.detector import default_imgsz, detector_weights, import_ultralytics
from tracker.matcher_log import RecordingMatcher, replay
from tracker.matching import matcher_from_config
from tracker.outputs import final_track_ids, relabel
from tracker.pipeline import build_embedder, build_pipeline

log = logging.getLogger("track_eval")

PETS_VIDEO = "videos/pets09_s2l1/view001_480x360.avi"
PETS_GT = "videos/pets09_s2l1/gt_frames001-124_768x576.txt"
PETS_SCALE = 0.625
PETS_FRAMES = 124  # frames with ground truth
PETS_LENGTH = 795  # frames in the video
LAB = "videos/lab_4cam"


# -- metrics -----------------------------------------------------------------------------------
def load_mot(path: Path, max_frame: int | None = None, scale: float = 1.0) -> np.ndarray:
    """MOT rows ``(N, 6)`` [frame, id, x, y, w, h] (boxes scaled), frames <= ``max_frame``."""
    rows = np.loadtxt(path, delimiter=",", ndmin=2) if path.stat().st_size else np.zeros((0, 10))
    rows = rows[:, :6].copy()
    rows[:, 2:6] *= scale
    if max_frame is not None:
        rows = rows[rows[:, 0] <= max_frame]
    return rows


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between xywh rows ``(N, 4)`` x ``(M, 4)``."""
    a1, a2 = a[:, None, :2], a[:, None, :2] + a[:, None, 2:]
    b1, b2 = b[None, :, :2], b[None, :, :2] + b[None, :, 2:]
    inter = np.clip(np.minimum(a2, b2) - np.maximum(a1, b1), 0, None).prod(-1)
    union = a[:, None, 2:].prod(-1) + b[None, :, 2:].prod(-1) - inter
    return inter / np.maximum(union, 1e-9)


def mot_metrics(gt: np.ndarray, pred: np.ndarray, num_frames: int) -> dict[str, float]:
    """MOTA, IDF1, HOTA (+ counts) with TrackEval's metric classes on MOT rows."""
    try:
        from trackeval.metrics import CLEAR, HOTA, Identity
    except ImportError as exc:
        raise ImportError("the tracking metrics need TrackEval: pip install trackeval") from exc
    gt_ids = {v: i for i, v in enumerate(np.unique(gt[:, 1]))}
    pr_ids = {v: i for i, v in enumerate(np.unique(pred[:, 1]))}
    data: dict[str, object] = {"gt_ids": [], "tracker_ids": [], "similarity_scores": [],
                               "num_gt_dets": len(gt), "num_tracker_dets": len(pred),
                               "num_gt_ids": len(gt_ids), "num_tracker_ids": len(pr_ids), "num_timesteps": num_frames}
    for frame in range(1, num_frames + 1):
        g, p = gt[gt[:, 0] == frame], pred[pred[:, 0] == frame]
        data["gt_ids"].append(np.array([gt_ids[v] for v in g[:, 1]], int))
        data["tracker_ids"].append(np.array([pr_ids[v] for v in p[:, 1]], int))
        data["similarity_scores"].append(_iou(g[:, 2:6], p[:, 2:6]))
    res: dict[str, float] = {}
    quiet = {"PRINT_CONFIG": False}
    for metric in (CLEAR(quiet), Identity(quiet), HOTA(quiet)):
        res.update(metric.eval_sequence(data))
    return {"MOTA": float(res["MOTA"]), "IDF1": float(res["IDF1"]), "HOTA": float(np.mean(res["HOTA"])),
            "IDSW": int(res["IDSW"]), "FP": int(res["CLR_FP"]), "FN": int(res["CLR_FN"]), "ids": len(pr_ids)}


# -- PETS --------------------------------------------------------------------------------------
def ultralytics_model(config: TrackerConfig):
    """Ultralytics' ``YOLO`` on the tracker's detector weights, and the input size to run it at."""
    import_ultralytics()
    from ultralytics import YOLO

    weights = detector_weights(config.detector, config.device)
    return YOLO(weights, task="detect"), config.imgsz or default_imgsz(weights)


def ultralytics_track(config: TrackerConfig, video: Path, frames: int, out: Path,
                      tracker: str = "bytetrack.yaml") -> float:
    """Ultralytics' own ``model.track()`` (same weights, NMS IoU and person class; ``tracker`` is its
    ``bytetrack.yaml`` or ``botsort.yaml``); writes MOT; returns fps."""
    model, imgsz = ultralytics_model(config)
    capture = cv2.VideoCapture(str(video))
    rows, tic, done = [], time.perf_counter(), 0
    for frame_index in range(1, frames + 1):
        ok, frame = capture.read()
        if not ok:
            break
        done += 1
        result = model.track(frame, persist=True, classes=[0], tracker=tracker, verbose=False,
                             imgsz=imgsz, iou=config.det_iou)[0]
        boxes = result.boxes
        if boxes.id is None:
            continue
        for (x1, y1, x2, y2), tid, conf in zip(boxes.xyxy.tolist(), boxes.id.tolist(), boxes.conf.tolist()):
            rows.append(f"{frame_index},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{conf:.4f},-1,-1,-1\n")
    fps = done / (time.perf_counter() - tic)
    out.write_text("".join(rows))
    return fps


def _scored(gt: np.ndarray, rows: np.ndarray, gt_frames: int) -> dict[str, object]:
    """Metrics on the frames with ground truth; ids over the whole run."""
    return {**mot_metrics(gt, rows[rows[:, 0] <= gt_frames], gt_frames), "ids_all": int(len(np.unique(rows[:, 1])))}


def _sweep_configs(config: TrackerConfig, sweep: Sequence[float]) -> dict[str, TrackerConfig]:
    """The matcher settings replayed beside the default: the threshold sweep, the link rule off."""
    out = {f"  match_threshold {t:.2f}": replace(config, match_threshold=t) for t in sweep}
    if config.link_seconds and config.link_relax:
        out["  no lost-track link (link_relax 0)"] = replace(config, link_relax=0.0)
    return out


def eval_pets(config: TrackerConfig, work: Path, sweep: Sequence[float] = (), frames: int = PETS_LENGTH,
              boxmot: bool = False) -> dict[str, object]:
    """PETS09-S2L1: Ultralytics' model.track() (ByteTrack, BoT-SORT) and our pipeline over ``frames``
    frames, scored on the frames with ground truth (1-124); other matcher settings by replay."""
    gt = load_mot(asset_path(PETS_GT, "the PETS09-S2L1 ground truth"), PETS_FRAMES, PETS_SCALE)
    video = asset_path(PETS_VIDEO, "the PETS09-S2L1 video")
    gt_frames = min(frames, PETS_FRAMES)
    gt = gt[gt[:, 0] <= gt_frames]
    rows = {}
    for name, yaml in (("ByteTrack", "bytetrack.yaml"), ("BoT-SORT", "botsort.yaml")):
        base_file = work / f"ultralytics_{name}.txt"
        fps = ultralytics_track(config, video, frames, base_file)
        rows[f"Ultralytics model.track ({name})"] = {**_scored(gt, load_mot(base_file), gt_frames), "fps": fps}
    if boxmot:  # BoxMOT's trackers on the same detections (benchmarks/peer_trackers.py)
        from benchmarks.peer_trackers import BOXMOT_TRACKERS, boxmot_track, detect

        detections = detect(config, video, frames)
        for name in BOXMOT_TRACKERS:
            fps = boxmot_track(name, detections, video, work / f"boxmot_{name}.txt")
            rows[f"BoxMOT {name}"] = {**_scored(gt, load_mot(work / f"boxmot_{name}.txt"), gt_frames), "fps": fps}
    pipeline = build_pipeline(config)
    recorder = RecordingMatcher(pipeline.matcher)
    pipeline.matcher = recorder
    tic = time.perf_counter()
    summary = run_headless(config, [str(video)], work / "ours", pipeline, progress=False,
                           runner_kwargs={"max_frames": frames})
    done = next(iter(summary["cameras"].values()))["frames"]
    fps = done / (time.perf_counter() - tic)
    per_camera = load_mot(work / "ours" / f"{video.stem}.tracks.txt")
    rows["mcreid per-camera track ids"] = {**_scored(gt, per_camera, gt_frames), "fps": fps}
    rows["mcreid global ids (+ re-ID)"] = {**_scored(gt, load_mot(work / "ours" / f"{video.stem}.txt"), gt_frames),
                                           "fps": fps}
    with (work / "ours" / "matcher_calls.pkl").open("wb") as fh:  # replayable: benchmarks/track_eval.py --replay
        pickle.dump(recorder.calls, fh)
    track_lines = (work / "ours" / f"{video.stem}.tracks.txt").read_text().splitlines(keepends=True)
    for name, swept in _sweep_configs(config, sweep).items():
        matcher = replay(recorder.calls, matcher_from_config(swept, pipeline.embedder.feature_dim))
        final = final_track_ids(matcher.identities()).get(video.stem, {})
        out = work / f"{name.strip().replace(' ', '_')}.txt"
        out.write_text("".join(relabel(track_lines, final)))
        rows[name] = {**_scored(gt, load_mot(out), gt_frames), "fps": float("nan")}
    return {"frames": done, "gt_frames": gt_frames, "rows": rows}


# -- lab ---------------------------------------------------------------------------------------
def eval_lab(config: TrackerConfig, work: Path) -> dict[str, object]:
    """The 4 lab cameras in one run: identities created and each camera's boxes per identity."""
    folder = asset_path(LAB, "the 4-camera lab recording")
    sources = [str(folder / f"cam{i}.mp4") for i in range(4)]
    tic = time.perf_counter()
    run_headless(config, sources, work / "lab", build_pipeline(config), progress=False)
    elapsed = time.perf_counter() - tic
    identities = json.loads((work / "lab" / "identities.json").read_text())
    split: dict[str, dict[str, int]] = {}
    for source in sources:
        camera = Path(source).stem
        rows = load_mot(work / "lab" / f"{camera}.txt")
        split[camera] = {str(int(g)): int((rows[:, 1] == g).sum()) for g in np.unique(rows[:, 1])}
    return {"identities": identities["count"], "split": split, "seconds": elapsed,
            "clips": {gid: v["clip_count"] for gid, v in identities["identities"].items()},
            "cameras": {gid: v["cameras"] for gid, v in identities["identities"].items()}}


# -- similarity study --------------------------------------------------------------------------
def _pairs(features: np.ndarray, labels: list[object], skip: Sequence[tuple[int, int]] = ()) -> tuple[list, list]:
    features = features / np.linalg.norm(features, axis=1, keepdims=True)
    sims = features @ features.T
    same, diff = [], []
    skipped = set(skip)
    for i, j in itertools.combinations(range(len(labels)), 2):
        if (i, j) not in skipped:
            (same if labels[i] == labels[j] else diff).append(float(sims[i, j]))
    return same, diff


def eval_similarity(config: TrackerConfig) -> dict[str, object]:
    """Same-person vs different-person cosine similarities of real crops and PETS tracklets."""
    embedder = build_embedder(config.reid)
    h, w = embedder.input_size
    files = sorted(asset_path("reid_crops/images", "the real re-ID crops").glob("*/*.jpg"))
    crops = np.stack([cv2.cvtColor(cv2.resize(cv2.imread(str(f)), (w, h)), cv2.COLOR_BGR2RGB) for f in files])
    features = embedder.embed(np.repeat(crops[:, None], config.clip_len, axis=1))
    # the query folder repeats three gallery images: skip those identical pairs
    names = [f.name for f in files]
    twins = [(i, j) for i, j in itertools.combinations(range(len(files)), 2) if names[i] == names[j]]
    out = {"reid_crops": _pairs(features, [n[:4] for n in names], twins)}
    out["pets_tracklets"] = _pets_tracklet_pairs(embedder, config.clip_len)
    return {k: {"same": same, "different": diff} for k, (same, diff) in out.items()}


def _pets_tracklet_pairs(embedder, clip_len: int, segment_clips: int = 2) -> tuple[list, list]:
    gt = load_mot(asset_path(PETS_GT, "the PETS09-S2L1 ground truth"), PETS_FRAMES, PETS_SCALE)
    capture = cv2.VideoCapture(str(asset_path(PETS_VIDEO, "the PETS09-S2L1 video")))
    frames = [capture.read()[1] for _ in range(PETS_FRAMES)]
    h, w = embedder.input_size
    per_id: dict[int, list[np.ndarray]] = collections.defaultdict(list)
    for frame, pid, x, y, bw, bh in gt:
        image = frames[int(frame) - 1]
        x1, y1 = max(0, int(x)), max(0, int(y))
        x2, y2 = min(image.shape[1], int(x + bw)), min(image.shape[0], int(y + bh))
        if y2 - y1 >= 32 and x2 - x1 >= 12:
            per_id[int(pid)].append(cv2.cvtColor(cv2.resize(image[y1:y2, x1:x2], (w, h)), cv2.COLOR_BGR2RGB))
    seg = clip_len * segment_clips
    features, labels = [], []
    for pid, crops in per_id.items():
        for start in range(0, len(crops) - seg + 1, seg):
            clips = np.stack(crops[start:start + seg]).reshape(segment_clips, clip_len, h, w, 3)
            features.append(embedder.embed(clips).mean(axis=0))  # a track signature of 2 clips
            labels.append(pid)
    return _pairs(np.stack(features), labels)


# -- report ------------------------------------------------------------------------------------
def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def print_tables(results: dict[str, object], threshold: float) -> None:
    if "pets" in results:
        pets = results["pets"]
        print(f"\nPETS09-S2L1: {pets['frames']} frames run, scored on frames 1-{pets['gt_frames']} (the ground truth; "
              "TrackEval CLEAR MOTA, Identity IDF1, HOTA); ids_all = ids over the whole run")
        print(f"{'method':40s} {'MOTA':>6s} {'IDF1':>6s} {'HOTA':>6s} {'IDSW':>5s} {'FP':>5s} {'FN':>5s} "
              f"{'ids':>4s} {'ids_all':>7s} {'fps':>6s}")
        for name, m in pets["rows"].items():
            print(f"{name:40s} {m['MOTA']:6.3f} {m['IDF1']:6.3f} {m['HOTA']:6.3f} {m['IDSW']:5d} {m['FP']:5d} "
                  f"{m['FN']:5d} {m['ids']:4d} {m['ids_all']:7d} {m['fps']:6.1f}")
    if "lab" in results:
        lab = results["lab"]
        print(f"\nlab_4cam (4 cameras x 268 frames): {lab['identities']} global identities "
              f"({lab['seconds']:.0f} s)")
        gids = sorted({g for split in lab["split"].values() for g in split}, key=int)
        print(f"{'camera':8s} " + " ".join(f"{'#' + g:>6s}" for g in gids))
        for camera, split in lab["split"].items():
            print(f"{camera:8s} " + " ".join(f"{split.get(g, 0):6d}" for g in gids))
        print(f"{'clips':8s} " + " ".join(f"{lab['clips'].get(g, 0):6d}" for g in gids))
    if "similarity" in results:
        print(f"\ncosine similarity of signatures (match_threshold = {threshold})")
        print(f"{'material':16s} {'pairs':>10s} {'n':>5s} {'p5':>6s} {'p50':>6s} {'p95':>6s} {'>=thr':>6s}")
        for name, groups in results["similarity"].items():
            for kind, values in groups.items():
                above = np.mean(np.asarray(values) >= threshold) if values else float("nan")
                print(f"{name:16s} {kind:>10s} {len(values):5d} {_pct(values, 5):6.3f} {_pct(values, 50):6.3f} "
                      f"{_pct(values, 95):6.3f} {above:6.1%}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["pets", "lab", "similarity"],
                        choices=["pets", "lab", "similarity"])
    parser.add_argument("--sweep", type=float, nargs="*", default=[],
                        help="PETS: also these match thresholds (the same run replayed through the matcher)")
    parser.add_argument("--pets-frames", type=int, default=PETS_LENGTH,
                        help=f"PETS: frames to run (default: all {PETS_LENGTH}; the ground truth covers 1-{PETS_FRAMES})")
    parser.add_argument("--boxmot", action="store_true",
                        help="also score BoxMOT's BoT-SORT, ByteTrack and StrongSORT on the same detections "
                             "(needs `boxmot`, not installed by mcreid: see benchmarks/peer_trackers.py)")
    parser.add_argument("--json", type=Path, default=Path("track_eval.json"))
    parser.add_argument("--keep", type=Path, help="keep the tracker outputs (MOT files, identities.json) here")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    add_tracker_arguments(parser)  # every pipeline option; --det-iou and --imgsz also apply to model.track()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    config = config_from_args(args)
    if args.boxmot:
        from benchmarks.peer_trackers import import_boxmot

        try:
            import_boxmot()
        except RuntimeError as error:
            parser.error(str(error))
    results: dict[str, object] = {"config": {k: v for k, v in vars(config).items()}}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if "pets" in args.parts:
            results["pets"] = eval_pets(config, work, args.sweep, args.pets_frames, args.boxmot)
        if "lab" in args.parts:
            results["lab"] = eval_lab(config, work)
        if "similarity" in args.parts:
            results["similarity"] = eval_similarity(config)
    print_tables(results, config.match_threshold)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    log.info("wrote %s", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
