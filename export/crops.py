"""Real person clips for verification, calibration and benchmarks (numpy + OpenCV, no torch).

Three sources:
- a folder of crop images (``--calib DIR``): every image under it, grouped by folder and taken
  in name order, becomes consecutive clips of ``seq_len`` frames;
- a ``mars_dap`` folder (``--calib DIR`` holding ``tracklets.csv``): clips of its *training*
  identities only (``reid_model.data.mars_dap``), so calibration never sees a validation person;
- the PETS09-S2L1 video in the shared assets with its MOT ground-truth boxes: real pedestrians,
  4 frames of one person per clip, as the tracker would cut them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from mcreid.assets import find_asset
from mcreid.crops import crop_rgb, resize_rgb

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
PETS_VIDEO = "videos/pets09_s2l1/view001_480x360.avi"
PETS_GT = "videos/pets09_s2l1/gt_frames001-124_768x576.txt"
PETS_SCALE = 0.625  # the ground truth is in the original 768x576 frame


def _cv2():
    try:
        import cv2
    except ImportError as exc:
        raise ImportError("reading crops needs OpenCV: pip install opencv-python") from exc
    return cv2


def _chunk(frames: list[np.ndarray], seq_len: int) -> list[np.ndarray]:
    """Consecutive clips of ``seq_len``; a last partial clip is completed by repeating its frames."""
    clips = []
    for start in range(0, len(frames), seq_len):
        part = frames[start : start + seq_len]
        part = [part[i % len(part)] for i in range(seq_len)]
        clips.append(np.stack(part))
    return clips


def folder_clips(folder: str | Path, size: tuple[int, int], seq_len: int, limit: int | None = None) -> np.ndarray:
    """Clips ``(N, seq_len, H, W, 3)`` uint8 RGB from the crop images under ``folder``.

    Raises:
        FileNotFoundError: no such folder, or no images in it.
    """
    cv2 = _cv2()
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"crop folder not found: {folder} (expected a folder of person crop images)")
    by_parent: dict[Path, list[Path]] = defaultdict(list)
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            by_parent[path.parent].append(path)
    clips: list[np.ndarray] = []
    for paths in by_parent.values():
        frames = [resize_rgb(img, size) for img in (cv2.imread(str(p)) for p in paths) if img is not None]
        clips.extend(_chunk(frames, seq_len) if frames else [])
    if not clips:
        raise FileNotFoundError(f"no readable crop images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    return np.stack(clips[:limit])


def is_mars_dap(folder: str | Path) -> bool:
    """True when ``folder`` is in the ``mars_dap`` layout (strips + ``tracklets.csv``)."""
    return (Path(folder) / "tracklets.csv").is_file() and (Path(folder) / "tracklets").is_dir()


def mars_dap_clips(root: str | Path, size: tuple[int, int], seq_len: int, limit: int = 64,
                   split: str = "train", seed: int = 0) -> np.ndarray:
    """``(N <= limit, seq_len, H, W, 3)`` uint8 RGB clips from the ``split`` identities of a mars_dap folder.

    Identities take turns (seeded order), one clip per tracklet (its first ``seq_len`` frames,
    repeated when the tracklet is shorter), so ``limit`` clips cover as many people as possible.
    """
    from reid_model.data.mars_dap import load_mars_dap, select_split

    data = select_split(load_mars_dap(Path(root)), split)
    by_pid: dict[int, list] = defaultdict(list)
    for tracklet in data.tracklets:
        by_pid[tracklet.pid].append(tracklet)
    order = np.random.default_rng(seed).permutation(sorted(by_pid))
    chosen, depth = [], 0
    while len(chosen) < limit and any(depth < len(by_pid[p]) for p in order):
        chosen += [by_pid[p][depth] for p in order if depth < len(by_pid[p])][: limit - len(chosen)]
        depth += 1
    h, w = size
    clips = [t.read_frames([i % t.num_frames for i in range(seq_len)], h, w) for t in chosen]
    logger.info("calibration: %d clips of %d %s identities from %s", len(clips), len(by_pid), split, root)
    return np.stack(clips)


def calibration_clips(folder: str | Path, size: tuple[int, int], seq_len: int, limit: int = 64) -> np.ndarray:
    """int8 calibration clips from ``folder``: a mars_dap folder's training identities, else its crop images."""
    if is_mars_dap(folder):
        return mars_dap_clips(folder, size, seq_len, limit)
    return folder_clips(folder, size, seq_len, limit)


def pets_clips(size: tuple[int, int], seq_len: int, max_clips: int = 8, frame_step: int = 2) -> np.ndarray | None:
    """Real pedestrian clips ``(N, seq_len, H, W, 3)`` from PETS09-S2L1 and its ground truth.

    Each clip holds one person in frames ``f, f + frame_step, ...``; people take turns so the
    clips cover several identities. Returns None when the video or ground truth is absent.
    """
    video, gt = find_asset(PETS_VIDEO), find_asset(PETS_GT)
    if video is None or gt is None:
        return None
    rows = np.loadtxt(gt, delimiter=",", ndmin=2)
    boxes: dict[int, dict[int, np.ndarray]] = defaultdict(dict)  # person -> frame -> xyxy
    for frame, pid, x, y, w, h in rows[:, :6]:
        boxes[int(pid)][int(frame)] = np.array([x, y, x + w, y + h]) * PETS_SCALE
    span = seq_len * frame_step
    plans = []  # (person, frames) in round-robin order over people
    starts = {pid: sorted(frames) for pid, frames in boxes.items()}
    for offset in range(0, 124, span):
        for pid, frames in sorted(starts.items()):
            wanted = [frames[0] + offset + k * frame_step for k in range(seq_len)]
            if all(f in boxes[pid] for f in wanted):
                plans.append((pid, wanted))
    plans = plans[:max_clips]
    if not plans:
        return None
    needed = max(f for _, frames in plans for f in frames)
    decoded = _decode(video, needed)
    clips = [np.stack([crop_rgb(decoded[f - 1], boxes[pid][f], size) for f in frames]) for pid, frames in plans]
    return np.stack(clips)


def _decode(video: Path, count: int) -> list[np.ndarray]:
    cv2 = _cv2()
    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if len(frames) < count:
        raise ValueError(f"{video}: wanted {count} frames, could decode {len(frames)}")
    return frames


def real_or_random_clips(size: tuple[int, int], seq_len: int, count: int = 8, seed: int = 0) -> tuple[np.ndarray, str]:
    """PETS clips when the assets are present, else random uint8 clips; and which it was."""
    clips = pets_clips(size, seq_len, max_clips=count)
    if clips is not None and len(clips):
        return clips, f"{len(clips)} real PETS09-S2L1 clips"
    logger.warning("PETS09 video not found under the assets; verifying on random clips")
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, seq_len, *size, 3), dtype=np.uint8), f"{count} random clips"
