"""A tiny MARS tree in the exact real layout, with real JPEGs and real ``.mat`` split files.

``build_synthetic_mars(tmp_path / "mars")`` writes (default arguments, about 130 small images)::

    bbox_train/<pid>/<pid>C<c>T<tttt>F<fff>.jpg    train ids 1, 3, 5, 7 (odd: relabelling is exercised)
    bbox_test/00-1/..., bbox_test/0000/...          junk (pid -1) and distractor (pid 0) tracklets
    bbox_test/<pid>/...                              test ids 2, 4, 6, 8 (or the train ids, see below)
    info/train_name.txt, info/test_name.txt          names in track order
    info/tracks_train_info.mat  track_train_info     (N, 4) int32 [start, end, pid, camera], 1-based
    info/tracks_test_info.mat   track_test_info      rows: junk, distractors, then ids by pid, camera
    info/query_IDX.mat          query_IDX            (1, Q) uint16, 1-based rows of track_test_info

Each identity looks different: a saturated top colour, a far-apart bottom colour and 1-3
horizontal stripes of its own, with a small per-frame shift and noise and a per-camera brightness,
so a small model learns the ids to rank-1 = 100%. Distractors and junk are grey noise.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import savemat


def identity_image(pid: int, camera: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """One uint8 RGB ``(height, width, 3)`` frame of identity ``pid`` (> 0) seen by ``camera``."""
    hue = (pid * 0.618033988749895) % 1.0
    top = np.array(colorsys.hsv_to_rgb(hue, 1.0, 1.0)) * 255
    bottom = np.array(colorsys.hsv_to_rgb((hue + 0.45) % 1.0, 1.0, 0.8)) * 255
    image = np.empty((height, width, 3), dtype=np.float64)
    split = height // 2 + int(rng.integers(-2, 3))
    image[:split], image[split:] = top, bottom
    stripe_h = max(1, height // 16)
    for s in range(1 + pid % 3):  # stripes of the id's own count across the top half
        y = (s + 1) * split // (2 + pid % 3)
        image[y : y + stripe_h] = 255 - top
    image *= 1.0 - 0.12 * ((camera - 1) % 3)  # cameras differ in brightness
    image += rng.normal(0.0, 6.0, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def noise_image(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A grey noise frame for distractor (pid 0) and junk (pid -1) tracklets."""
    level = rng.integers(60, 200)
    return np.clip(rng.normal(level, 30.0, size=(height, width, 3)), 0, 255).astype(np.uint8)


def _pid_folder(pid: int) -> str:
    return "00-1" if pid == -1 else f"{pid:04d}"


def _write_split(
    root: Path,
    split: str,
    tracklets: Sequence[tuple[int, int]],
    frames: tuple[int, int],
    size: tuple[int, int],
    rng: np.random.Generator,
) -> np.ndarray:
    """Write ``(pid, camera)`` tracklets' JPEGs and name list; return the (N, 4) track rows."""
    names: list[str] = []
    rows = []
    counters: dict[tuple[int, int], int] = {}
    for pid, camera in tracklets:
        counters[pid, camera] = number = counters.get((pid, camera), 0) + 1
        count = int(rng.integers(frames[0], frames[1] + 1))
        folder = root / f"bbox_{split}" / _pid_folder(pid)
        folder.mkdir(parents=True, exist_ok=True)
        rows.append([len(names) + 1, len(names) + count, pid, camera])
        for f in range(1, count + 1):
            name = f"{_pid_folder(pid)}C{camera}T{number:04d}F{f:03d}.jpg"
            pixels = identity_image(pid, camera, *size, rng) if pid > 0 else noise_image(*size, rng)
            Image.fromarray(pixels).save(folder / name, quality=95)
            names.append(name)
    (root / "info" / f"{split}_name.txt").write_text("\n".join(names) + "\n")
    return np.array(rows, dtype=np.int32)


def build_synthetic_mars(
    root: Path,
    num_train_ids: int = 4,
    num_test_ids: int = 4,
    cameras: Sequence[int] = (1, 2),
    tracklets_per_cam: int = 1,
    frames_per_tracklet: int | tuple[int, int] = (6, 11),
    height: int = 64,
    width: int = 32,
    seed: int = 0,
    num_distractors: int = 2,
    num_junk: int = 2,
    query_cameras: Sequence[int] | None = None,
    test_ids_from_train: bool = False,
) -> Path:
    """Write a MARS tree under ``root`` and return ``root``.

    Args:
        root: folder to create (may exist; files are overwritten).
        num_train_ids: training identities, pids 1, 3, 5, ...
        num_test_ids: test identities, pids 2, 4, 6, ... (or the first train pids, see below).
        cameras: 1-based camera numbers (1..9); every id gets ``tracklets_per_cam`` tracklets in each.
        tracklets_per_cam: tracklets per (id, camera).
        frames_per_tracklet: frames per tracklet, an int or an inclusive ``(low, high)`` range drawn per tracklet.
        height, width: JPEG size (MARS's own is 256 x 128).
        seed: fixes frame counts and pixel noise.
        num_distractors: pid 0 tracklets in the test split (cameras taken in turn).
        num_junk: pid -1 tracklets in the test split.
        query_cameras: the first tracklet of each test id in each of these cameras is a query;
            default the first camera only, so every query has a true match in the other cameras.
        test_ids_from_train: test ids reuse the train pids (and looks), for learning tests that
            should reach rank-1 = 100% on ids the model was trained on.
    """
    root = Path(root)
    if not cameras or any(not 1 <= c <= 9 for c in cameras):
        raise ValueError(f"cameras must be 1-based single digits, got {tuple(cameras)}")
    if test_ids_from_train and num_test_ids > num_train_ids:
        raise ValueError("test_ids_from_train needs num_test_ids <= num_train_ids")
    frames = (frames_per_tracklet, frames_per_tracklet) if isinstance(frames_per_tracklet, int) else frames_per_tracklet
    rng = np.random.default_rng(seed)
    (root / "info").mkdir(parents=True, exist_ok=True)
    train_pids = [2 * i + 1 for i in range(num_train_ids)]
    test_pids = train_pids[:num_test_ids] if test_ids_from_train else [2 * i + 2 for i in range(num_test_ids)]
    per_id = [(c, t) for c in cameras for t in range(tracklets_per_cam)]
    train = [(pid, c) for pid in train_pids for c, _ in per_id]
    test = [(-1, cameras[i % len(cameras)]) for i in range(num_junk)]
    test += [(0, cameras[i % len(cameras)]) for i in range(num_distractors)]
    first_id_row = len(test)
    test += [(pid, c) for pid in test_pids for c, _ in per_id]
    size = (height, width)
    train_rows = _write_split(root, "train", train, frames, size, rng)
    test_rows = _write_split(root, "test", test, frames, size, rng)
    wanted = tuple(cameras[:1]) if query_cameras is None else tuple(query_cameras)
    queries = [
        first_id_row + i * len(per_id) + j + 1
        for i in range(len(test_pids))
        for j, (c, t) in enumerate(per_id)
        if t == 0 and c in wanted
    ]
    savemat(root / "info" / "tracks_train_info.mat", {"track_train_info": train_rows})
    savemat(root / "info" / "tracks_test_info.mat", {"track_test_info": test_rows})
    savemat(root / "info" / "query_IDX.mat", {"query_IDX": np.array([queries], dtype=np.uint16)})
    return root
