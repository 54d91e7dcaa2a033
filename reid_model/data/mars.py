"""MARS in its real layout: split files, name lists, tracklets and the two query/gallery protocols.

Layout (as the MARS download unpacks, plus the evaluation kit's ``info`` folder)::

    <root>/bbox_train/<pid>/<name>.jpg      e.g. bbox_train/0001/0001C1T0001F001.jpg
    <root>/bbox_test/<pid>/<name>.jpg       test pids include 0000 (distractors) and 00-1 (junk)
    <root>/info/train_name.txt              one image name a line, 509,914 lines
    <root>/info/test_name.txt               681,089 lines
    <root>/info/tracks_train_info.mat       track_train_info (8298, 4)
    <root>/info/tracks_test_info.mat        track_test_info (12180, 4)
    <root>/info/query_IDX.mat               query_IDX (1, 1980), 1-based rows of track_test_info

Track rows are ``[start, end, pid, camera]`` with ``start``/``end`` 1-based inclusive line numbers
of the name list. Names are ``PPPPCcTttttFfff.jpg``: pid (``00-1`` for junk), camera, tracklet,
frame. This module needs numpy and scipy only (no torch).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LAYOUT_HINT = "see README: MARS layout"
SPLIT_FILES = {
    "train": ("tracks_train_info.mat", "track_train_info"),
    "test": ("tracks_test_info.mat", "track_test_info"),
    "query": ("query_IDX.mat", "query_IDX"),
}
NAME_FILES = {"train": "train_name.txt", "test": "test_name.txt"}
IMAGE_DIRS = {"train": "bbox_train", "test": "bbox_test"}
PROTOCOLS = ("official", "torchreid")
JUNK_PID = -1
DISTRACTOR_PID = 0
_NAME_RE = re.compile(r"(\d{4}|00-1)C(\d)T(\d{4})F(\d{3})\.jpg")


@dataclass(frozen=True)
class Tracklet:
    """One MARS tracklet.

    Attributes:
        paths: frame image paths in temporal order.
        pid: original MARS label (test split: 0 = distractor, -1 = junk).
        camera: original 1-based MARS camera (1..6).
        label: training label 0..N-1 for train tracklets; equal to ``pid`` for test tracklets.
    """

    paths: tuple[Path, ...]
    pid: int
    camera: int
    label: int

    @property
    def num_frames(self) -> int:
        return len(self.paths)


@dataclass(frozen=True)
class MarsSplitInfo:
    """The split files as arrays (no images or name lists needed).

    Attributes:
        train_tracks: ``(8298, 4)`` int64 rows ``[start, end, pid, camera]``, 1-based inclusive.
        test_tracks: ``(12180, 4)`` int64, same layout.
        query_idx: ``(1980,)`` int64 0-based rows into ``test_tracks``.
    """

    train_tracks: np.ndarray
    test_tracks: np.ndarray
    query_idx: np.ndarray


@dataclass(frozen=True)
class MarsDataset:
    """MARS read from disk.

    Attributes:
        root: the MARS root folder.
        info: the split arrays.
        train: one tracklet per ``info.train_tracks`` row, same order, labels relabelled 0..N-1.
        test: one tracklet per ``info.test_tracks`` row, same order.
        num_train_ids: N, the number of training identities (625 for MARS).
    """

    root: Path
    info: MarsSplitInfo
    train: list[Tracklet]
    test: list[Tracklet]
    num_train_ids: int

    def protocol_tracklets(self, protocol: str) -> tuple[list[Tracklet], list[Tracklet]]:
        """The ``(query, gallery)`` tracklets of ``protocol`` (see ``protocol_split``)."""
        query_rows, gallery_rows = protocol_split(self.info, protocol)
        return [self.test[i] for i in query_rows], [self.test[i] for i in gallery_rows]


def _load_mat_array(path: Path, variable: str) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"MARS split file not found: {path}; expected <root>/info/{path.name} ({LAYOUT_HINT})")
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except Exception as exc:  # scipy raises several types for a damaged file
        raise ValueError(f"cannot read MARS split file {path}: {exc}") from exc
    if variable not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path} has no variable {variable!r} (found: {found})")
    return np.asarray(mat[variable]).astype(np.int64)


def _check_tracks(tracks: np.ndarray, path: Path) -> np.ndarray:
    if tracks.ndim != 2 or tracks.shape[1] != 4 or len(tracks) == 0:
        raise ValueError(f"{path}: tracks must be an (N, 4) array [start, end, pid, camera], got shape {tracks.shape}")
    bad = np.flatnonzero((tracks[:, 0] < 1) | (tracks[:, 1] < tracks[:, 0]))
    if len(bad):
        start, end = tracks[bad[0], :2]
        raise ValueError(
            f"{path}: row {bad[0] + 1} has start={start}, end={end}; need 1 <= start <= end "
            f"(1-based inclusive line numbers of the name list)"
        )
    return tracks


def load_split_info(info_dir: Path) -> MarsSplitInfo:
    """Read ``tracks_train_info.mat``, ``tracks_test_info.mat`` and ``query_IDX.mat`` from ``info_dir``.

    Raises:
        FileNotFoundError: a split file is missing (the message names it and the layout).
        ValueError: a file is unreadable, lacks its variable, or holds rows/indices out of range.
    """
    info_dir = Path(info_dir)
    arrays = {}
    for key, (filename, variable) in SPLIT_FILES.items():
        arrays[key] = _load_mat_array(info_dir / filename, variable)
    train = _check_tracks(arrays["train"], info_dir / SPLIT_FILES["train"][0])
    test = _check_tracks(arrays["test"], info_dir / SPLIT_FILES["test"][0])
    query_path = info_dir / SPLIT_FILES["query"][0]
    query = arrays["query"].ravel()
    if query.size == 0 or query.min() < 1 or query.max() > len(test):
        raise ValueError(
            f"{query_path}: query_IDX must hold 1-based rows of track_test_info (1..{len(test)}), "
            f"got values in [{query.min() if query.size else '-'}, {query.max() if query.size else '-'}]"
        )
    if len(np.unique(query)) != len(query):
        raise ValueError(f"{query_path}: query_IDX repeats rows")
    return MarsSplitInfo(train_tracks=train, test_tracks=test, query_idx=query - 1)


def protocol_split(info: MarsSplitInfo, protocol: str) -> tuple[np.ndarray, np.ndarray]:
    """0-based test-row indices ``(query_rows, gallery_rows)`` for a gallery protocol.

    - ``official`` (the MARS evaluation kit): gallery = all test tracklets (12,180). Per query the
      evaluation ignores junk (-1) and same-pid-same-camera tracklets (the query itself included).
    - ``torchreid``: gallery = the non-query tracklets not labelled -1 (9,330); per query the
      evaluation ignores same pid and camera, and skips queries left without a true match (140).

    Returns:
        ``query_rows (Q,)`` and ``gallery_rows (G,)`` int64, ascending gallery order.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choices: {', '.join(PROTOCOLS)}")
    query_rows = info.query_idx.astype(np.int64)
    num_test = len(info.test_tracks)
    if protocol == "official":
        return query_rows, np.arange(num_test, dtype=np.int64)
    keep = info.test_tracks[:, 2] != JUNK_PID
    keep[query_rows] = False
    return query_rows, np.flatnonzero(keep).astype(np.int64)


def true_match_counts(info: MarsSplitInfo, query_rows: np.ndarray, gallery_rows: np.ndarray) -> np.ndarray:
    """Per query, how many gallery tracklets are true matches (same pid, different camera).

    Returns:
        ``(Q,)`` int64; a 0 marks a query the torchreid protocol skips.
    """
    tracks = info.test_tracks
    q_pid, q_cam = tracks[query_rows, 2], tracks[query_rows, 3]
    g_pid, g_cam = tracks[gallery_rows, 2], tracks[gallery_rows, 3]
    match = (q_pid[:, None] == g_pid[None, :]) & (q_cam[:, None] != g_cam[None, :]) & (q_pid[:, None] != JUNK_PID)
    return match.sum(axis=1).astype(np.int64)


def parse_name(name: str) -> tuple[int, int] | None:
    """``(pid, camera)`` of a MARS image name ``PPPPCcTttttFfff.jpg``, or None if it is not one."""
    match = _NAME_RE.fullmatch(name)
    if match is None:
        return None
    pid = JUNK_PID if match[1] == "00-1" else int(match[1])
    return pid, int(match[2])


def _read_names(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names of a name list with their pid and camera arrays; ValueError on a malformed name."""
    if not path.is_file():
        raise FileNotFoundError(f"MARS name list not found: {path}; expected <root>/info/{path.name} ({LAYOUT_HINT})")
    names = [line.strip() for line in path.read_text().splitlines()]
    while names and not names[-1]:
        names.pop()
    pids = np.empty(len(names), dtype=np.int64)
    cams = np.empty(len(names), dtype=np.int64)
    for i, name in enumerate(names):
        parsed = parse_name(name)
        if parsed is None:
            raise ValueError(
                f"{path} line {i + 1}: {name!r} is not a MARS image name PPPPCcTttttFfff.jpg "
                f"(e.g. 0001C1T0001F001.jpg, junk 00-1C1T0001F001.jpg)"
            )
        pids[i], cams[i] = parsed
    return names, pids, cams


def _check_rows_against_names(
    tracks: np.ndarray, pids: np.ndarray, cams: np.ndarray, names: list[str], mat: str, name_file: str
) -> None:
    over = np.flatnonzero(tracks[:, 1] > len(names))
    if len(over):
        r = over[0]
        raise ValueError(
            f"{mat} row {r + 1} spans names {tracks[r, 0]}..{tracks[r, 1]} but {name_file} has only "
            f"{len(names)} names (is the name list from the same MARS release?)"
        )
    owner = np.repeat(np.arange(len(tracks)), tracks[:, 1] - tracks[:, 0] + 1)
    lines = np.concatenate([np.arange(s - 1, e) for s, e in tracks[:, :2]])
    wrong = np.flatnonzero((pids[lines] != tracks[owner, 2]) | (cams[lines] != tracks[owner, 3]))
    if len(wrong):
        r, line = owner[wrong[0]], lines[wrong[0]]
        raise ValueError(
            f"{mat} row {r + 1} says pid {tracks[r, 2]} camera {tracks[r, 3]} but covers {name_file} "
            f"line {line + 1} {names[line]!r} (pid {pids[line]}, camera {cams[line]})"
        )


def _build_tracklets(
    image_dir: Path, tracks: np.ndarray, names: list[str], labels: np.ndarray
) -> list[Tracklet]:
    folders: dict[str, Path] = {}

    def path_of(name: str) -> Path:
        folder = folders.get(name[:4])
        if folder is None:
            folder = folders.setdefault(name[:4], image_dir / name[:4])
        return folder / name

    return [
        Tracklet(
            paths=tuple(path_of(n) for n in names[start - 1 : end]),
            pid=int(pid),
            camera=int(camera),
            label=int(label),
        )
        for (start, end, pid, camera), label in zip(tracks.tolist(), labels.tolist())
    ]


def _check_image_files(tracklets: list[Tracklet], image_dir: Path) -> None:
    """FileNotFoundError naming the first missing image (one listdir per folder, not a stat per file)."""
    if not image_dir.is_dir():
        raise FileNotFoundError(
            f"MARS image folder not found: {image_dir}; "
            f"expected <root>/{image_dir.name}/<pid>/<name>.jpg ({LAYOUT_HINT})"
        )
    listed: dict[Path, set[str]] = {}
    missing: list[Path] = []
    for tracklet in tracklets:
        for path in tracklet.paths:
            folder = path.parent
            if folder not in listed:
                listed[folder] = set(os.listdir(folder)) if folder.is_dir() else set()
            if path.name not in listed[folder]:
                missing.append(path)
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} MARS images missing, first: {missing[0]}; images live at "
            f"<root>/{image_dir.name}/<first 4 characters of the name>/<name> ({LAYOUT_HINT})"
        )


def load_mars(root: Path, check_images: bool = False) -> MarsDataset:
    """Read MARS from ``root`` (see the module docstring for the layout).

    Args:
        root: the folder holding ``bbox_train``, ``bbox_test`` and ``info``.
        check_images: also verify that every image file exists.

    Raises:
        FileNotFoundError: root, a split file, a name list or (with ``check_images``) an image is missing.
        ValueError: a malformed name, a track row out of range of its name list, or a row whose
            pid/camera disagrees with the names it covers.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"MARS root not found: {root}; expected a folder holding bbox_train/, bbox_test/ and info/ ({LAYOUT_HINT})"
        )
    info_dir = root / "info"
    info = load_split_info(info_dir)
    splits: dict[str, list[Tracklet]] = {}
    num_train_ids = 0
    for split, tracks in (("train", info.train_tracks), ("test", info.test_tracks)):
        name_file = info_dir / NAME_FILES[split]
        names, pids, cams = _read_names(name_file)
        _check_rows_against_names(tracks, pids, cams, names, SPLIT_FILES[split][0], NAME_FILES[split])
        if split == "train":
            unique_pids, labels = np.unique(tracks[:, 2], return_inverse=True)
            num_train_ids = len(unique_pids)
        else:
            labels = tracks[:, 2]
        splits[split] = _build_tracklets(root / IMAGE_DIRS[split], tracks, names, labels.ravel())
        if check_images:
            _check_image_files(splits[split], root / IMAGE_DIRS[split])
    return MarsDataset(
        root=root, info=info, train=splits["train"], test=splits["test"], num_train_ids=num_train_ids
    )
