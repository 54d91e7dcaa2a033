"""Cluster runs on a local Ray cluster started here (2 CPUs, shut down after): the same outputs as
one process, a camera actor killed mid-run, the matcher lost (and a store that brings the
identities back), a viewer attached to a running job, and the real lab recording."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # the attached viewer is shown offscreen

import json
import threading
import time
from pathlib import Path

import pytest
import ray

from tracker.cli import main
from tracker.cluster.attach import AttachedJob, running_jobs
from tracker.cluster.launch import ClusterError, ClusterJob, run_cluster
from tracker.cluster.options import NAMESPACE, ClusterOptions, ClusterTarget
from tracker.store.sqlite_store import open_store

from .cluster_fakes import CONFIG, FakeComponents, lab_of_colours
from .test_cluster_core import groups, single_process

pytest.importorskip("ultralytics", reason="the tracker extra is not installed: pip install -e '.[tracker]'")
pytest.importorskip("PyQt5.QtWidgets", reason="the app extra is not installed: pip install -e '.[app]'")

from app.qt import prepare_qt_environment  # noqa: E402

prepare_qt_environment()


@pytest.fixture(scope="module", autouse=True)
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, namespace=NAMESPACE, logging_level="WARNING",
             log_to_driver=False)
    yield
    ray.shutdown()


def options(job: str, **kwargs) -> ClusterOptions:
    return ClusterOptions(ClusterTarget("local"), job=job, **kwargs)


def rows_by_frame(path: Path) -> dict[int, int]:
    out: dict[int, int] = {}
    for line in path.read_text().splitlines():
        frame = int(line.split(",")[0])
        out[frame] = out.get(frame, 0) + 1
    return out


class Background:
    """A ``ClusterJob`` running on a thread, with a way to wait for its progress."""

    def __init__(self, job: ClusterJob) -> None:
        self.job, self.summary = job, None
        job.start()
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.summary = self.job.run()
        finally:
            self.job.kill()

    def wait_steps(self, steps: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while ray.get(self.job.matcher.progress.remote())["steps"] < steps:
            assert time.monotonic() < deadline, f"fewer than {steps} steps after {timeout} s"
            time.sleep(0.05)

    def join(self, timeout: float = 120) -> dict:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the job did not end"
        return self.summary


def test_a_cluster_run_writes_what_one_process_writes(tmp_path):
    sources = lab_of_colours(tmp_path / "videos")
    single_process(CONFIG, sources, tmp_path / "single")
    summary = run_cluster(CONFIG, sources, tmp_path / "cluster", options("same", batch_frames=3, window=2),
                          components=FakeComponents())
    assert summary["error"] == "" and summary["steps"] == 40 and summary["identities"] == 3
    assert {c: (s["status"], s["frames"], s["restarts"]) for c, s in summary["cameras"].items()} == \
        {c: ("ended", 40, 0) for c in ("north", "south", "east")}
    assert groups(tmp_path / "cluster") == groups(tmp_path / "single")
    for camera in ("north", "south", "east"):
        for suffix in (".txt", ".tracks.txt"):
            assert (tmp_path / "cluster" / f"{camera}{suffix}").read_text() == \
                (tmp_path / "single" / f"{camera}{suffix}").read_text()
    assert not running_jobs(ray)  # its actors are gone


def test_a_viewer_attaches_and_a_killed_camera_actor_is_restarted_while_every_camera_completes(tmp_path, qtbot):
    """One job: a viewer attaches to it and sees its cameras and identities (boxes and crops, no
    frames); then a camera actor is killed: Ray restarts it, the camera resumes, the run completes
    and the other cameras' outputs are those of one process."""
    sources = lab_of_colours(tmp_path / "videos", frames=60)
    single_process(CONFIG, sources, tmp_path / "single")
    run = Background(ClusterJob(CONFIG, sources, tmp_path / "cluster", options("watched"),
                                components=FakeComponents(delay_s=0.03)))
    from app.window import ViewerWindow

    viewer = AttachedJob(None, job=None, refresh_s=0.1)
    window = ViewerWindow(CONFIG, runner=viewer)
    qtbot.addWidget(window)
    try:
        run.wait_steps(22)  # every person has an id by step 21
        window.show()
        window.start()
        assert viewer.job == "watched" and viewer.config == CONFIG
        assert not window.pause_action.isEnabled() and not window.add_file_action.isEnabled()
        tiles = window.grid.tiles
        qtbot.waitUntil(lambda: len(window.panel.global_ids) == 3 and len(tiles) == 3
                        and all(t.result is not None for t in tiles.values()), timeout=10_000)
        assert list(tiles) == ["north", "south", "east"]
        for tile in tiles.values():  # each camera's state and boxes, on a canvas: no frame crossed
            assert tile.state.status.value == "running" and tile.state.frames_processed >= 22
            assert tile.result.image.shape == (120, 200, 3) and tile.result.image.max() < 50
            assert len(tile.result.xyxy) >= 1 and int(tile.result.global_id.max()) > 0
        red = next(i for i in viewer.identities() if set(i.cameras) == {"north", "south"})
        assert red.thumbnail is not None and red.thumbnail[..., 2].mean() > 150  # its best crop, from a camera
        row = window.panel.global_ids.index(red.global_id)
        assert not window.panel.item(row, 0).icon().isNull()  # shown in the identities panel
        with pytest.raises(ValueError, match="attached to cluster job watched"):
            viewer.add_source("cam.mp4")
        ray.kill(ray.get_actor("watched/camera/south", namespace=NAMESPACE), no_restart=False)
        summary = run.join()
    finally:
        window.close()
        run.join()
    assert not viewer.alive
    assert summary["error"] == ""
    south = summary["cameras"]["south"]
    assert (south["status"], south["restarts"], south["actor_deaths"], south["frames"]) == ("ended", 1, 1, 60)
    for camera in ("north", "east"):  # the others: untouched, complete
        assert summary["cameras"][camera]["restarts"] == 0
        assert (tmp_path / "cluster" / f"{camera}.tracks.txt").read_text() == \
            (tmp_path / "single" / f"{camera}.tracks.txt").read_text()
    # south resumed where the matcher's record stopped: the red person in every frame from 6 on (the
    # tracker confirms him on his second frame), once, as in one process
    south_rows = rows_by_frame(tmp_path / "cluster" / "south.tracks.txt")
    assert south_rows == rows_by_frame(tmp_path / "single" / "south.tracks.txt") == {f: 1 for f in range(6, 61)}
    track_ids = {int(line.split(",")[1]) for line in (tmp_path / "cluster" / "south.tracks.txt").read_text().split()}
    assert len(track_ids) == 2  # the restarted tracker numbers on: two tracks, no id reused
    identities = json.loads((tmp_path / "cluster" / "identities.json").read_text())["identities"]
    red = [gid for gid, v in identities.items() if {"north", "south"} <= set(v["cameras"])]
    assert len(red) == 1 and sorted(t["track_id"] for t in identities[red[0]]["tracks"] if t["camera"] == "south") \
        == sorted(track_ids)  # both of south's tracks rejoined the red identity
    with pytest.raises(ClusterError, match="no mcreid job runs on this cluster"):
        AttachedJob(None).connect()


def test_losing_the_matcher_stops_the_job_and_the_store_brings_its_identities_back(tmp_path):
    sources = lab_of_colours(tmp_path / "videos", frames=40)
    store = tmp_path / "ids.sqlite"
    run = Background(ClusterJob(CONFIG, sources, tmp_path / "first", options("lose-matcher"),
                                store=(str(store), None), components=FakeComponents(delay_s=0.08)))
    run.wait_steps(22)  # every person has an id by step 21
    deadline = time.monotonic() + 20
    while True:  # the recorder commits every 0.5 s
        with open_store(store) as reader:
            stored, _ = reader.load_identities()
        if len(stored) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    stored_ids = {gid for gid, _ in stored}
    assert len(stored_ids) == 3
    ray.kill(run.job.matcher, no_restart=True)
    summary = run.join()
    assert "the matcher actor was lost" in summary["error"] and str(store) in summary["error"]
    assert summary["store_written"] is False and not (tmp_path / "first" / "identities.json").exists()
    assert (tmp_path / "first" / "north.tracks.txt").read_text()  # rows flushed before the loss are kept

    again = run_cluster(CONFIG, sources, tmp_path / "second", options("after-loss"), store=(str(store), None),
                        components=FakeComponents())
    assert again["error"] == "" and again["store_written"] is True
    assert {int(g) for g in json.loads((tmp_path / "second" / "identities.json").read_text())["identities"]} \
        == stored_ids  # the same three people, under the ids the store kept


def test_an_unreachable_cluster_is_one_error_line_naming_it(tmp_path, caplog):
    code = main(["run", "--cluster", "ray://127.0.0.1:1", "--source", "x.mp4", "--out", str(tmp_path / "out"),
                 "--no-progress"])
    assert code == 2
    assert "cannot reach the Ray cluster at ray://127.0.0.1:1" in caplog.text
    assert "`ray start --head` listens on port 10001" in caplog.text


@pytest.mark.slow
def test_the_lab_recording_on_the_cluster_gives_the_single_process_identities(shared_data, tmp_path):
    """Two lab cameras, 16 frames, real detector and STA embedder: same tracks, same identities."""
    lab = shared_data / "videos/lab_4cam"
    argv = ["run", "--source", str(lab / "cam0.mp4"), "--source", str(lab / "cam1.mp4"), "--max-frames", "16",
            "--imgsz", "640", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "single")]) == 0
    assert main([*argv, "--out", str(tmp_path / "cluster"), "--cluster", "local", "--job", "lab"]) == 0
    assert groups(tmp_path / "cluster") == groups(tmp_path / "single") and groups(tmp_path / "single")
    for camera in ("cam0", "cam1"):
        for suffix in (".txt", ".tracks.txt"):
            assert (tmp_path / "cluster" / f"{camera}{suffix}").read_text() == \
                (tmp_path / "single" / f"{camera}{suffix}").read_text()
