"""``--out`` is checked before any model loads; a full disk stops the run and keeps what was written."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path

import pytest

from tracker.out_dir import prepare_out_dir, replace_text


def test_a_folder_is_created_and_proved_writable(tmp_path):
    out = prepare_out_dir(tmp_path / "a" / "b")
    assert out.is_dir() and not list(out.iterdir())  # the probe file is gone


@pytest.mark.parametrize("case, message", [
    ("file", "is a file; expected a folder"),
    ("under-file", "is a file, so no folder can be created under it"),
])
def test_a_file_in_the_way_is_named(tmp_path, case, message):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=message):
        prepare_out_dir(blocker if case == "file" else blocker / "sub" / "out")


def test_an_unwritable_place_is_a_clear_error():
    with pytest.raises(ValueError, match=r"--out /sys/mcreid_out is not writable"):
        prepare_out_dir(Path("/sys/mcreid_out"))  # sysfs: no folder can be made there, even as root


def test_a_read_only_file_system_is_named(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only)
    with pytest.raises(ValueError, match="is on a read-only file system"):
        prepare_out_dir(tmp_path)


def test_replace_text_keeps_the_old_file_when_the_disk_is_full(tmp_path, monkeypatch):
    path = tmp_path / "rows.txt"
    path.write_text("old rows\n")
    real_fdopen = os.fdopen

    def full(fd, *args, **kwargs):
        fh = real_fdopen(fd, *args, **kwargs)
        fh.write = lambda text: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))
        return fh

    monkeypatch.setattr(os, "fdopen", full)
    with pytest.raises(OSError):
        replace_text(path, "new rows\n")
    assert path.read_text() == "old rows\n" and [p.name for p in tmp_path.iterdir()] == ["rows.txt"]


def test_the_command_refuses_a_bad_out_before_loading_models(tmp_path, caplog):
    from tracker.cli import main

    blocker = tmp_path / "out.txt"
    blocker.write_text("x")
    with caplog.at_level("INFO"):
        code = main(["run", "--source", "missing.avi", "--out", str(blocker), "--no-progress"])
    assert code == 2 and "is a file; expected a folder" in caplog.text
    assert "re-ID:" not in caplog.text  # no model was loaded


def test_a_full_disk_during_the_run_stops_it_and_keeps_the_rest(tmp_path):
    pytest.importorskip("ultralytics", reason="the tracker extra is not installed")
    from tracker.cli import exit_code, run_headless
    from tracker.config import TrackerConfig
    from tracker.pipeline import Pipeline
    from tracker.shutdown import StopSignals

    from .fakes import ColourEmbedder, ScriptedDetector, write_video

    video = write_video(tmp_path / "walk.avi", frames=400, colours=((0, 0, 230), (230, 0, 0)))
    out = tmp_path / "out"
    out.mkdir()
    (out / "walk.txt").symlink_to("/dev/full")  # every write to the global-id file fails: ENOSPC
    config = TrackerConfig(min_clips=1, min_crop_height=20)
    summary = run_headless(config, [str(video)], out, Pipeline(config, ScriptedDetector(), ColourEmbedder()),
                           progress=False)
    assert "no space left on the device" in summary["error"]
    assert exit_code(summary, StopSignals()) == 1
    assert summary["cameras"]["walk"]["frames"] < 400  # it stopped early instead of writing into the void
    rows = (out / "walk.tracks.txt").read_text().splitlines()
    assert rows and json.loads((out / "identities.json").read_text())["count"] >= 1  # the rest was kept
