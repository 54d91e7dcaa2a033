"""``mars_dap``: real MARS tracklets stored as 8-frame strips, its identity split and its protocol.

Layout (``shared/data/SOURCES.md``, row ``mars_dap/``)::

    <root>/tracklets/<tracklet>.jpg   T frames side by side, each 56x120 (W x H): a 448x120 strip for T = 8
    <root>/tracklets.csv              tracklet,pid,camera,frames      (camera 1-6, or 0 = unknown)
    <root>/queries.csv                query,pid,camera,mars_name,shown_matches  (space-separated tracklets)

Frames are half of MARS's resolution and were JPEG-compressed; ``StripTracklet.read_frames`` cuts
the strip and resizes each frame to the model input (bilinear, as ``read_frame`` does for MARS).

Protocol (``true_match_masks``): the gallery is every tracklet of the folder except the query.
For a query of identity P seen by camera C, a tracklet of P is a true match when it is one of the
query's ``shown_matches`` or its camera is known and differs from C; every other tracklet of P is
ignored; tracklets of other identities are negatives. CMC and mAP (mean precision at each true
match) come from ``reid_model.metrics.evaluate_matches``.

Identity split (``split_identities``): the sorted distinct pids are shuffled by
``numpy.random.default_rng(SPLIT_SEED)`` and the first ``round(2/3 * n)`` go to training, the rest
to validation (407 ids -> 271 train, 136 validation). Tracklets and queries follow their identity.
This module needs numpy, OpenCV and PIL only (no torch).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

SPLIT_SEED = 0
TRAIN_FRACTION = 2 / 3
SPLITS = ("all", "train", "val")
UNKNOWN_CAMERA = 0
LAYOUT_HINT = "expected tracklets/<id>.jpg, tracklets.csv and queries.csv (see shared/data/SOURCES.md, mars_dap)"


@dataclass(frozen=True)
class StripTracklet:
    """One ``mars_dap`` tracklet: its frames side by side in one JPEG.

    Attributes:
        name: tracklet id (``t00000``), the file stem.
        path: the strip image.
        pid: MARS identity.
        camera: 1-6, or 0 when unknown.
        label: training label 0..N-1 (``relabel``); equal to ``pid`` otherwise.
        num_frames: frames in the strip.
    """

    name: str
    path: Path
    pid: int
    camera: int
    label: int
    num_frames: int

    def read_frames(self, indices: Sequence[int], height: int, width: int) -> np.ndarray:
        """Frames ``indices`` (repeats allowed) as uint8 RGB ``(len(indices), height, width, 3)``.

        Raises:
            FileNotFoundError / ValueError: missing or undecodable strip, or a width not divisible
                by ``num_frames``; names the file.
        """
        import cv2

        from reid_model.data.transforms import read_image

        strip = read_image(self.path)
        if strip.shape[1] % self.num_frames:
            raise ValueError(
                f"{self.path}: strip width {strip.shape[1]} is not divisible by its {self.num_frames} frames"
            )
        frame_width = strip.shape[1] // self.num_frames
        out = np.empty((len(indices), height, width, 3), np.uint8)
        for i, j in enumerate(indices):
            if not 0 <= j < self.num_frames:
                raise ValueError(f"frame {j} out of range for {self.name} ({self.num_frames} frames)")
            frame = strip[:, j * frame_width : (j + 1) * frame_width]
            out[i] = cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)
        return out


@dataclass(frozen=True)
class DapQuery:
    """A query: ``row`` indexes ``MarsDap.tracklets``; ``shown_matches`` are tracklet names."""

    row: int
    pid: int
    camera: int
    shown_matches: frozenset[str]


@dataclass(frozen=True)
class MarsDap:
    """A ``mars_dap`` folder (or an identity subset of it).

    Attributes:
        root: the folder.
        tracklets: every tracklet (the gallery), in ``tracklets.csv`` order.
        queries: the queries whose tracklet is in ``tracklets``.
        num_train_ids: distinct labels after ``relabel`` (the classifier's outputs), else 0.
    """

    root: Path
    tracklets: list[StripTracklet]
    queries: list[DapQuery]
    num_train_ids: int = 0

    @property
    def pids(self) -> np.ndarray:
        return np.array([t.pid for t in self.tracklets], np.int64)

    @property
    def train(self) -> list[StripTracklet]:
        """The tracklets, under the name the trainer reads (after ``relabel``)."""
        return self.tracklets

    def subset(self, pids: Iterable[int]) -> MarsDap:
        """The tracklets and queries of identities ``pids`` (query rows renumbered)."""
        keep_pids = set(int(p) for p in pids)
        keep = [i for i, t in enumerate(self.tracklets) if t.pid in keep_pids]
        new_row = {old: new for new, old in enumerate(keep)}
        queries = [replace(q, row=new_row[q.row]) for q in self.queries if q.row in new_row]
        return MarsDap(self.root, [self.tracklets[i] for i in keep], queries)

    def relabel(self) -> MarsDap:
        """Training labels 0..N-1 in pid order; ``num_train_ids`` = N."""
        unique = sorted({t.pid for t in self.tracklets})
        label = {p: i for i, p in enumerate(unique)}
        tracklets = [replace(t, label=label[t.pid]) for t in self.tracklets]
        return MarsDap(self.root, tracklets, self.queries, len(unique))


def _read_csv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"mars_dap file not found: {path} ({LAYOUT_HINT})")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}; header is {reader.fieldnames} ({LAYOUT_HINT})")
        return list(reader)


def _int(value: str, what: str, path: Path, line: int) -> int:
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{path} line {line}: {what} must be an integer, got {value!r}") from None


def load_mars_dap(root: Path) -> MarsDap:
    """Read a ``mars_dap`` folder (see the module docstring); the images are decoded later.

    Raises:
        FileNotFoundError: the folder, a CSV or a listed strip image is missing.
        ValueError: malformed rows, a query not listed in ``tracklets.csv``, or a duplicate tracklet.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"mars_dap folder not found: {root} ({LAYOUT_HINT})")
    path = root / "tracklets.csv"
    tracklets: list[StripTracklet] = []
    row_of: dict[str, int] = {}
    for line, row in enumerate(_read_csv(path, ("tracklet", "pid", "camera", "frames")), start=2):
        name = row["tracklet"]
        if name in row_of:
            raise ValueError(f"{path} line {line}: tracklet {name!r} listed twice")
        frames = _int(row["frames"], "frames", path, line)
        if frames < 1:
            raise ValueError(f"{path} line {line}: frames must be >= 1, got {frames}")
        image = root / "tracklets" / f"{name}.jpg"
        if not image.is_file():
            raise FileNotFoundError(f"mars_dap strip image not found: {image} (listed in {path} line {line})")
        pid = _int(row["pid"], "pid", path, line)
        row_of[name] = len(tracklets)
        tracklets.append(StripTracklet(name, image, pid, _int(row["camera"], "camera", path, line), pid, frames))
    path = root / "queries.csv"
    queries = []
    for line, row in enumerate(_read_csv(path, ("query", "pid", "camera", "shown_matches")), start=2):
        name = row["query"]
        if name not in row_of:
            raise ValueError(f"{path} line {line}: query {name!r} is not in tracklets.csv")
        t = tracklets[row_of[name]]
        pid, camera = _int(row["pid"], "pid", path, line), _int(row["camera"], "camera", path, line)
        if (pid, camera) != (t.pid, t.camera):
            raise ValueError(f"{path} line {line}: query {name} is pid {pid} camera {camera} but tracklets.csv "
                             f"says pid {t.pid} camera {t.camera}")
        queries.append(DapQuery(row_of[name], pid, camera, frozenset(row["shown_matches"].split())))
    return MarsDap(root, tracklets, queries)


def split_identities(pids: Iterable[int], seed: int = SPLIT_SEED,
                     train_fraction: float = TRAIN_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Split distinct identities: ``(train_pids, val_pids)``, each sorted (see the module docstring)."""
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    unique = np.unique(np.fromiter(pids, np.int64))
    if len(unique) < 2:
        raise ValueError(f"need at least 2 identities to split, got {len(unique)}")
    order = np.random.default_rng(seed).permutation(unique)
    cut = min(max(1, round(train_fraction * len(unique))), len(unique) - 1)
    return np.sort(order[:cut]), np.sort(order[cut:])


def select_split(data: MarsDap, split: str, seed: int = SPLIT_SEED) -> MarsDap:
    """``"all"`` (the folder), or its ``"train"``/``"val"`` identities by ``split_identities``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {list(SPLITS)}")
    if split == "all":
        return data
    train, val = split_identities(data.pids, seed)
    return data.subset(train if split == "train" else val)


def true_match_masks(data: MarsDap) -> tuple[np.ndarray, np.ndarray]:
    """``(good, ignored)``, each ``(Q, G)`` bool over queries x every tracklet (the protocol above).

    The query itself is ignored (the gallery excludes it).
    """
    pids = data.pids
    cams = np.array([t.camera for t in data.tracklets], np.int64)
    names = [t.name for t in data.tracklets]
    good = np.zeros((len(data.queries), len(pids)), bool)
    ignored = np.zeros_like(good)
    for i, q in enumerate(data.queries):
        same = pids == q.pid
        shown = np.array([n in q.shown_matches for n in names])
        good[i] = same & (shown | ((cams != UNKNOWN_CAMERA) & (cams != q.camera)))
        good[i, q.row] = False
        ignored[i] = same & ~good[i]
    return good, ignored
