"""The MARS reader: real split files (numbers from the files), a synthetic tree, every bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from reid_model.data.mars import (
    PROTOCOLS,
    Tracklet,
    load_mars,
    load_split_info,
    parse_name,
    protocol_split,
    true_match_counts,
)
from tests.synthetic_mars import build_synthetic_mars


@pytest.fixture(scope="module")
def real_info(shared_data: Path):
    return load_split_info(shared_data / "mars_info")


def test_real_split_counts(real_info) -> None:
    train, test = real_info.train_tracks, real_info.test_tracks
    assert train.shape == (8298, 4) and test.shape == (12180, 4)
    assert len(np.unique(train[:, 2])) == 625
    assert int((train[:, 1] - train[:, 0] + 1).sum()) == 509_914
    assert int((test[:, 1] - test[:, 0] + 1).sum()) == 681_089
    assert real_info.query_idx.shape == (1980,)
    assert real_info.query_idx.min() >= 0 and real_info.query_idx.max() < 12180
    # Tracklets tile the name lists: consecutive rows, no gaps.
    assert np.array_equal(train[1:, 0], train[:-1, 1] + 1) and np.array_equal(test[1:, 0], test[:-1, 1] + 1)


def test_real_protocols(real_info) -> None:
    test = real_info.test_tracks
    q_off, g_off = protocol_split(real_info, "official")
    q_tr, g_tr = protocol_split(real_info, "torchreid")
    assert np.array_equal(q_off, q_tr) and len(q_off) == 1980
    assert np.array_equal(g_off, np.arange(12180))
    assert len(g_tr) == 9330
    assert not np.isin(g_tr, q_tr).any() and (test[g_tr, 2] != -1).all()
    assert int((true_match_counts(real_info, q_tr, g_tr) == 0).sum()) == 140
    assert int((true_match_counts(real_info, q_off, g_off) == 0).sum()) == 0


def test_unknown_protocol_lists_choices(real_info) -> None:
    with pytest.raises(ValueError, match="official, torchreid"):
        protocol_split(real_info, "market")
    assert PROTOCOLS == ("official", "torchreid")


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    return build_synthetic_mars(tmp_path_factory.mktemp("mars") / "MARS", frames_per_tracklet=(3, 6))


def test_synthetic_tree_reads_back(synthetic_root: Path) -> None:
    data = load_mars(synthetic_root, check_images=True)
    assert data.num_train_ids == 4 and len(data.train) == 8
    assert [t.pid for t in data.train] == [1, 1, 3, 3, 5, 5, 7, 7]
    assert [t.label for t in data.train] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert [t.camera for t in data.train] == [1, 2] * 4
    assert len(data.test) == len(data.info.test_tracks) == 2 + 2 + 8
    assert [t.pid for t in data.test[:4]] == [-1, -1, 0, 0]
    assert all(t.label == t.pid for t in data.test)
    for tracklet, (start, end, pid, camera) in zip(data.test, data.info.test_tracks):
        assert tracklet.num_frames == end - start + 1
        assert all(p.is_file() and p.parent.name == p.name[:4] for p in tracklet.paths)
        assert [parse_name(p.name) for p in tracklet.paths] == [(pid, camera)] * tracklet.num_frames
        assert [int(p.name[-7:-4]) for p in tracklet.paths] == list(range(1, tracklet.num_frames + 1))
    assert data.test[0].paths[0].parent == synthetic_root / "bbox_test" / "00-1"
    query, gallery = data.protocol_tracklets("torchreid")
    assert [t.camera for t in query] == [1] * 4 and len(gallery) == 2 + 4
    assert all(q.pid in {g.pid for g in gallery if g.camera != q.camera} for q in query)


def test_synthetic_options(tmp_path: Path) -> None:
    root = build_synthetic_mars(
        tmp_path, num_train_ids=3, num_test_ids=2, cameras=(1, 2, 3), tracklets_per_cam=2,
        frames_per_tracklet=2, num_distractors=0, num_junk=0, query_cameras=(1, 2), test_ids_from_train=True,
    )
    data = load_mars(root, check_images=True)
    assert len(data.train) == 3 * 3 * 2 and all(t.num_frames == 2 for t in data.train)
    assert {t.pid for t in data.test} == {1, 3}
    assert len(data.info.query_idx) == 2 * 2
    assert isinstance(data.train[0], Tracklet)


def test_parse_name() -> None:
    assert parse_name("0001C1T0001F001.jpg") == (1, 1)
    assert parse_name("00-1C6T0012F123.jpg") == (-1, 6)
    assert parse_name("0000C2T0001F001.jpg") == (0, 2)
    assert parse_name("0001C1T0001F001.png") is None
    assert parse_name("1C1T1F1.jpg") is None


def _remove(path: Path) -> None:
    path.unlink()


def _rewrite_name(root: Path) -> None:
    names = (root / "info" / "train_name.txt").read_text().splitlines()
    names[2] = "frame_0003.jpg"
    (root / "info" / "train_name.txt").write_text("\n".join(names))


def _truncate_names(root: Path) -> None:
    names = (root / "info" / "test_name.txt").read_text().splitlines()
    (root / "info" / "test_name.txt").write_text("\n".join(names[:-3]))


def _edit_tracks(split: str, row: int, col: int, value: int):
    def edit(root: Path) -> None:
        path = root / "info" / f"tracks_{split}_info.mat"
        key = f"track_{split}_info"
        tracks = loadmat(path)[key]
        tracks[row, col] = value
        savemat(path, {key: tracks})

    return edit


def _save(filename: str, content: dict):
    return lambda root: savemat(root / "info" / filename, content)


def _garbage(root: Path) -> None:
    (root / "info" / "tracks_test_info.mat").write_bytes(b"not a mat file at all" * 10)


BAD_INPUTS = {
    "no train_name.txt": (lambda r: _remove(r / "info" / "train_name.txt"), FileNotFoundError, "train_name.txt"),
    "no test_name.txt": (lambda r: _remove(r / "info" / "test_name.txt"), FileNotFoundError, "test_name.txt"),
    "no train .mat": (lambda r: _remove(r / "info" / "tracks_train_info.mat"), FileNotFoundError,
                      r"<root>/info/tracks_train_info.mat \(see README: MARS layout\)"),
    "no test .mat": (lambda r: _remove(r / "info" / "tracks_test_info.mat"), FileNotFoundError,
                     r"<root>/info/tracks_test_info.mat"),
    "no query .mat": (lambda r: _remove(r / "info" / "query_IDX.mat"), FileNotFoundError, "query_IDX.mat"),
    "no info folder": (lambda r: shutil.rmtree(r / "info"), FileNotFoundError, "tracks_train_info.mat"),
    "bad name": (_rewrite_name, ValueError, "line 3: 'frame_0003.jpg' is not a MARS image name"),
    "row past name list": (_truncate_names, ValueError, "test_name.txt has only"),
    "end before start": (_edit_tracks("train", 1, 1, 1), ValueError, "row 2 has start=.*need 1 <= start <= end"),
    "start zero": (_edit_tracks("test", 0, 0, 0), ValueError, "row 1 has start=0"),
    "end past names": (_edit_tracks("train", 7, 1, 10_000), ValueError, "train_name.txt has only"),
    "pid disagrees": (_edit_tracks("train", 0, 2, 9), ValueError, "row 1 says pid 9 camera 1 but covers"),
    "camera disagrees": (_edit_tracks("test", 4, 3, 2), ValueError, "row 5 says pid 2 camera 2 but covers .*camera 1"),
    "query zero": (_save("query_IDX.mat", {"query_IDX": np.array([[0, 5]])}), ValueError, "1-based rows"),
    "query past end": (_save("query_IDX.mat", {"query_IDX": np.array([[5, 99]])}), ValueError, r"\(1\.\.12\)"),
    "query repeated": (_save("query_IDX.mat", {"query_IDX": np.array([[5, 5]])}), ValueError, "repeats"),
    "wrong variable": (_save("query_IDX.mat", {"queries": np.array([[5]])}), ValueError,
                       r"no variable 'query_IDX' \(found: \['queries'\]\)"),
    "tracks not Nx4": (_save("tracks_train_info.mat", {"track_train_info": np.ones((3, 3))}), ValueError,
                       r"\(N, 4\).*\(3, 3\)"),
    "corrupt .mat": (_garbage, ValueError, "cannot read MARS split file"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_inputs_raise_documented_errors(case: str, synthetic_root: Path, tmp_path: Path) -> None:
    damage, error, message = BAD_INPUTS[case]
    root = shutil.copytree(synthetic_root, tmp_path / "MARS")
    load_mars(root)  # the untouched copy loads
    damage(root)
    with pytest.raises(error, match=message):
        load_mars(root)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="MARS root not found.*bbox_train"):
        load_mars(tmp_path / "nowhere")


def test_missing_images_only_with_check(synthetic_root: Path, tmp_path: Path) -> None:
    root = shutil.copytree(synthetic_root, tmp_path / "MARS")
    victim = root / "bbox_test" / "0004" / "0004C2T0001F002.jpg"
    victim.unlink()
    data = load_mars(root)  # names alone are fine
    assert victim in {p for t in data.test for p in t.paths}
    with pytest.raises(FileNotFoundError, match="1 MARS images missing, first: .*0004C2T0001F002.jpg"):
        load_mars(root, check_images=True)
    shutil.rmtree(root / "bbox_train")
    with pytest.raises(FileNotFoundError, match="MARS image folder not found: .*bbox_train"):
        load_mars(root, check_images=True)
