"""Clips for calibration and verification: crop folders and the real PETS09 video."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from export.crops import folder_clips, pets_clips, real_or_random_clips


def _write(folder: Path, names: list[str], value_of: dict[str, int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        cv2.imwrite(str(folder / name), np.full((40, 20, 3), value_of[name], np.uint8))


def test_folder_clips_group_by_folder_in_name_order(tmp_path: Path) -> None:
    values = {f"{i}.png": 10 * i for i in range(1, 8)}
    _write(tmp_path / "track_a", ["1.png", "2.png", "3.png", "4.png", "5.png"], values)
    _write(tmp_path / "track_b", ["6.png", "7.png"], values)
    (tmp_path / "notes.txt").write_text("not an image")
    clips = folder_clips(tmp_path, (16, 8), seq_len=4)
    assert clips.shape == (3, 4, 16, 8, 3) and clips.dtype == np.uint8
    firsts = clips[:, :, 0, 0, 0].tolist()
    # track_a: 1-4, then 5 repeated to fill its clip; track_b: 6, 7, 6, 7. Never mixed.
    assert firsts == [[10, 20, 30, 40], [50, 50, 50, 50], [60, 70, 60, 70]]
    assert folder_clips(tmp_path, (16, 8), seq_len=4, limit=1).shape[0] == 1


def test_folder_clips_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="crop folder not found"):
        folder_clips(tmp_path / "absent", (16, 8), 4)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no readable crop images"):
        folder_clips(tmp_path / "empty", (16, 8), 4)


def test_pets_clips_are_real_people(shared_data: Path) -> None:
    clips = pets_clips((64, 32), seq_len=4, max_clips=6)
    assert clips is not None and clips.shape == (6, 4, 64, 32, 3) and clips.dtype == np.uint8
    mean = clips.astype(np.float32)
    # Frames of one clip show one person two frames apart: closer than frames of other clips.
    within = np.abs(mean[:, 1:] - mean[:, :-1]).mean()
    across = np.abs(mean[1:, 0] - mean[:-1, 0]).mean()
    assert within < across
    same, source = real_or_random_clips((64, 32), 4, count=6)
    assert "PETS" in source
    np.testing.assert_array_equal(same, clips)


def test_mars_dap_calibration_uses_training_identities_only_and_spreads_over_people(tmp_path: Path) -> None:
    from reid_model.data.mars_dap import split_identities
    from tests.reid_model.synthetic_mars_dap import TRACKLETS, colour, write_mars_dap

    from export.crops import calibration_clips

    root = write_mars_dap(tmp_path / "dap")
    train_pids, _ = split_identities(pid for pid, _, _ in TRACKLETS.values())
    clips = calibration_clips(root, (32, 16), seq_len=4, limit=64)
    in_train = [n for n, (pid, _, _) in TRACKLETS.items() if pid in set(train_pids.tolist())]
    assert clips.shape == (len(in_train), 4, 32, 16, 3) and clips.dtype == np.uint8

    def tracklet_of(clip: np.ndarray) -> str:  # the strip colours encode the tracklet
        rgb = clip.reshape(-1, 3).mean(0)
        return min(TRACKLETS, key=lambda n: np.abs(np.array(colour(TRACKLETS[n][2])) - rgb).sum())

    names = [tracklet_of(c) for c in clips]
    assert sorted(names) == sorted(in_train)  # every training tracklet once, no validation person
    first = [TRACKLETS[n][0] for n in names[: len(train_pids)]]
    assert sorted(first) == sorted(train_pids.tolist())  # identities take turns
    assert len(calibration_clips(root, (32, 16), seq_len=4, limit=2)) == 2
