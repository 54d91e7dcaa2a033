"""The cluster's logic without Ray: ``--cluster`` parsing, the messages, the camera worker's window
and the matcher core's order, with the scripted detector and colour embedder (real trackers)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from tracker.cli import run_headless
from tracker.cluster.camera_worker import CameraWorker, InProcessLink
from tracker.cluster.launch import ClusterError, fit_cameras
from tracker.cluster.matcher_core import MatcherCore, OutputSink
from tracker.cluster.messages import CameraBatch, WireStep, decode_jpeg, encode_jpeg
from tracker.cluster.options import (
    ClusterOptions,
    ClusterTarget,
    add_cluster_arguments,
    cluster_options_from_args,
    parse_cluster,
)
from tracker.pipeline import Pipeline
from tracker.sources import CameraReader, parse_sources
from tracker.types import CameraStatus

from .cluster_fakes import CONFIG, RED, lab_of_colours, write_scene
from .fakes import ColourEmbedder, ScriptedDetector

pytest.importorskip("ultralytics", reason="the tracker extra is not installed: pip install -e '.[tracker]'")

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("text, kind, address, cpus", [
    ("ray://head.example:10001", "client", "ray://head.example:10001", None),
    ("ray://10.0.0.5", "client", "ray://10.0.0.5:10001", None),
    ("auto", "auto", "auto", None),
    ("local", "local", "", None),
    ("local:3", "local", "", 3),
])
def test_cluster_addresses_parse(text, kind, address, cpus):
    target = parse_cluster(text)
    assert (target.kind, target.address, target.cpus) == (kind, address, cpus)


@pytest.mark.parametrize("text, expected", [
    ("head:10001", "expected ray://HOST:PORT"),
    ("ray://:10001", "expected ray://HOST:PORT"),
    ("ray://head:0", "expected ray://HOST:PORT"),
    ("ray://head:port", "expected ray://HOST:PORT"),
    ("local:0", "local:N needs N"),
    ("local:two", "local:N needs N"),
    ("", "expected ray://HOST:PORT (a Ray cluster's client server"),
])
def test_bad_cluster_addresses_say_what_was_expected(text, expected):
    with pytest.raises(ValueError, match=f"--cluster '{text}'.*{expected.replace('(', '.').replace(')', '.')}"):
        parse_cluster(text)


def parse(argv):
    parser = argparse.ArgumentParser()
    add_cluster_arguments(parser)
    return cluster_options_from_args(parser.parse_args(argv))


def test_cluster_options_from_the_command_line():
    assert parse([]) is None
    options = parse(["--cluster", "local:2", "--job", "lab.1", "--camera-cpus", "0.5", "--window", "2"])
    assert options.target == ClusterTarget("local", cpus=2) and options.job == "lab.1"
    assert (options.camera_cpus, options.window, options.threads) == (0.5, 2, 1)
    assert parse(["--cluster", "auto"]).job.startswith("mcreid-")  # a default name a viewer can find


@pytest.mark.parametrize("argv, message", [
    (["--camera-cpus", "2"], "--camera-cpus only apply with --cluster"),
    (["--cluster", "local", "--window", "0"], r"--window must be in \[1, 1000\], got 0"),
    (["--cluster", "local", "--camera-gpus", "-1"], r"--camera-gpus must be in \[0, 64\], got -1"),
    (["--cluster", "local", "--job", "a b"], "--job 'a b': expected 1 to 64 letters"),
])
def test_bad_cluster_options_are_one_line_errors(argv, message):
    with pytest.raises(ValueError, match=message):
        parse(argv)


@pytest.mark.parametrize("camera_cpus, cameras, resources, expected", [
    (0.0, 4, {"CPU": 2.0}, 0.25),  # 0: the matcher's CPU, then equal shares
    (0.0, 1, {"CPU": 16.0}, 1.0),  # at most one each
    (2.0, 3, {"CPU": 7.0}, 2.0),
])
def test_camera_cpus_fit_the_cluster(camera_cpus, cameras, resources, expected):
    options = ClusterOptions(ClusterTarget("local"), job="j", camera_cpus=camera_cpus)
    assert fit_cameras(options, cameras, resources) == expected


@pytest.mark.parametrize("kwargs, resources, message", [
    ({"camera_cpus": 1.0}, {"CPU": 2.0}, r"4 cameras x 1 CPUs \+ the matcher's 1 = 5 CPUs, but the cluster has 2"),
    ({"camera_gpus": 0.5}, {"CPU": 8.0}, r"4 cameras x 0.5 GPUs = 2 GPUs, but the cluster has 0"),
    ({"matcher_cpus": 2.0}, {"CPU": 2.0}, "none left for 4 cameras"),
])
def test_a_cluster_too_small_for_the_job_is_refused(kwargs, resources, message):
    with pytest.raises(ClusterError, match=message):
        fit_cameras(ClusterOptions(ClusterTarget("local"), job="j", **kwargs), 4, resources)


def test_thumbnails_travel_as_small_jpegs():
    crop = np.zeros((256, 128, 3), np.uint8)
    crop[..., 2] = 220  # red (BGR)
    data = encode_jpeg(crop)
    back = decode_jpeg(data)
    assert back.shape == (128, 64, 3) and len(data) < 2000
    assert abs(int(back[..., 2].mean()) - 220) <= 3
    with pytest.raises(ValueError, match="not a JPEG image"):
        decode_jpeg(b"nope")


# -- the camera half and the identity half, apart -------------------------------------------------

def camera_steps(config, source: str) -> list[WireStep]:
    """Every ``WireStep`` one camera produces, with its own pipeline (as its actor would)."""
    spec = parse_sources([source])[0]
    pipeline = Pipeline(config, ScriptedDetector(), ColourEmbedder(), thumbnail_every=5)
    reader = CameraReader(spec)
    reader.start()
    steps = []
    while not reader.finished:
        frame = reader.get(0.1)
        if frame is not None:
            steps.append(WireStep.from_update(len(steps) + 1, pipeline.process([frame])[0]))
    final = pipeline.release_camera(spec.camera_id)
    return steps, tuple((t, encode_jpeg(image), score) for t, (image, score) in final.items())


def deliver(core: MatcherCore, batches_in_arrival_order) -> dict:
    for batch in batches_in_arrival_order:
        assert core.receive(batch)
        core.apply()
    return core.finish()


def groups(out: Path) -> list:
    identities = json.loads((out / "identities.json").read_text())["identities"]
    return sorted((int(gid), sorted((t["camera"], t["track_id"]) for t in v["tracks"]))
                  for gid, v in identities.items())


def single_process(config, sources, out: Path) -> dict:
    return run_headless(config, sources, out, Pipeline(config, ScriptedDetector(), ColourEmbedder()), progress=False)


def core_for(config, sources, out: Path | None, resume: bool = True) -> MatcherCore:
    core = MatcherCore(config, Pipeline(config, None, ColourEmbedder()), parse_sources(sources),
                       OutputSink(out) if out else None, job="test")
    for camera_id in core.feeds if resume else ():
        assert core.resume(camera_id).incarnation == 1  # as each camera actor does when it starts
    return core


def batches(camera_id, steps, final_thumbnails, size=3):
    out = [CameraBatch(camera_id, 1, tuple(steps[i:i + size])) for i in range(0, len(steps), size)]
    return out + [CameraBatch(camera_id, 1, (), final=True, final_thumbnails=final_thumbnails)]


def test_lockstep_gives_the_single_process_identities_whatever_order_the_cameras_arrive_in(tmp_path):
    sources = lab_of_colours(tmp_path / "videos")
    single_process(CONFIG, sources, tmp_path / "single")
    per_camera = {Path(s).stem: camera_steps(CONFIG, s) for s in sources}
    # the worst arrival order for a naive matcher: each camera's whole run before the next one's
    arrival = [b for cid in ("north", "south", "east") for b in batches(cid, *per_camera[cid])]
    summary = deliver(core_for(CONFIG, sources, tmp_path / "cluster"), arrival)
    assert summary["steps"] == 40 and summary["error"] == "" and summary["max_queued_steps"] >= 80
    assert groups(tmp_path / "cluster") == groups(tmp_path / "single")  # the same ids for the same tracks
    for camera in ("north", "south", "east"):
        for suffix in (".txt", ".tracks.txt"):
            assert (tmp_path / "cluster" / f"{camera}{suffix}").read_text() == \
                (tmp_path / "single" / f"{camera}{suffix}").read_text()
    # the same arrival in real-time mode (no barrier) numbers the identities otherwise: the order matters
    realtime = CONFIG.__class__(**{**CONFIG.__dict__, "realtime": True})
    deliver(core_for(realtime, sources, tmp_path / "arrival"), arrival)
    assert groups(tmp_path / "arrival") != groups(tmp_path / "single")


def test_camera_workers_and_the_core_in_threads_match_the_single_process_run(tmp_path):
    sources = lab_of_colours(tmp_path / "videos", frames=30)
    single_process(CONFIG, sources, tmp_path / "single")
    core = core_for(CONFIG, sources, tmp_path / "cluster", resume=False)
    link = InProcessLink(core)
    options = ClusterOptions(ClusterTarget("local"), job="test", batch_frames=2, window=2)
    workers = [CameraWorker(spec, Pipeline(CONFIG, ScriptedDetector(), ColourEmbedder(), thumbnail_every=3), link,
                            core.resume(spec.camera_id), options) for spec in parse_sources(sources)]
    threads = [threading.Thread(target=w.run) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    summary = core.finish()
    assert [w.processed for w in workers] == [30, 30, 30] and summary["steps"] == 30
    assert summary["max_queued_steps"] <= 3 * (2 + 1) * 2 + 3  # cameras x (window + 1) x batch, + end markers
    assert groups(tmp_path / "cluster") == groups(tmp_path / "single")
    snapshot = core.snapshot()
    assert [c.status for c in snapshot.cameras] == [CameraStatus.ENDED] * 3
    assert all(c.frames_processed == 30 for c in snapshot.cameras)
    red = next(i for i in snapshot.identities if set(i.cameras) == {"north", "south"})
    assert decode_jpeg(snapshot.thumbnails[red.global_id])[..., 2].mean() > 150  # a red crop, from a camera
    assert snapshot.frame_sizes["north"] == (200, 120) and len(snapshot.boxes["north"].xyxy) == 1


def test_a_slow_matcher_holds_a_camera_at_its_window_and_realtime_readers_drop_frames(tmp_path):
    source = str(write_scene(tmp_path / "cam.avi", 200, [(RED, 1, 200, 10)]))
    realtime = CONFIG.__class__(**{**CONFIG.__dict__, "realtime": True})
    core = core_for(realtime, [source], None, resume=False)
    link = InProcessLink(core)
    link.paused.set()  # the matcher applies nothing
    options = ClusterOptions(ClusterTarget("local"), job="test", batch_frames=2, window=3)
    worker = CameraWorker(parse_sources([source])[0], Pipeline(realtime, ScriptedDetector(), ColourEmbedder()), link,
                          core.resume("cam"), options)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        deadline = 50
        while worker.waits == 0 and deadline:
            thread.join(0.1)
            deadline -= 1
        thread.join(1.0)  # it stays blocked with window + 1 batches in flight, nothing more
        assert worker.waits == 1 and core.queued() == worker.processed <= (3 + 1) * 2
        assert worker.reader.dropped > 0  # the file plays on at 10 fps; the reader keeps only the newest frame
    finally:
        link.paused.clear()
        worker.stop()
        thread.join(10)
    assert not thread.is_alive()
    summary = core.finish()
    assert summary["cameras"]["cam"]["frames"] == worker.processed  # what it processed was all applied
    assert summary["cameras"]["cam"]["status"] == "stopped"


def test_a_restarted_camera_resumes_after_what_was_received_and_its_old_batches_are_ignored(tmp_path):
    sources = lab_of_colours(tmp_path / "videos", frames=12)
    core = core_for(CONFIG, sources[:1], tmp_path / "out")
    steps, _ = camera_steps(CONFIG, sources[0])
    assert core.receive(CameraBatch("north", 1, tuple(steps[:5])))
    point = core.resume("north")  # Ray restarted the actor
    assert (point.incarnation, point.next_seq, point.start_frame, point.first_track_id) == (2, 6, 5, 2)
    stale = CameraBatch("north", 1, tuple(steps[5:7]))
    assert not core.receive(stale)  # the dead actor's batch, still on its way: dropped
    assert core.ack(stale, accepted=False).ignored
    assert core.receive(CameraBatch("north", 2, tuple(steps[5:]), final=True))
    summary = core.finish()
    assert summary["cameras"]["north"]["restarts"] == 1 and summary["steps"] == 12
    rows = (tmp_path / "out" / "north.tracks.txt").read_text().splitlines()
    assert sorted({int(r.split(",")[0]) for r in rows}) == list(range(1, 13))  # every frame once, none twice
    assert len(rows) == len({tuple(r.split(",")[:2]) for r in rows})


def test_a_failed_camera_is_not_waited_for_and_ends_after_what_it_sent(tmp_path):
    sources = lab_of_colours(tmp_path / "videos", frames=12)
    core = core_for(CONFIG, sources[:2], tmp_path / "out")
    north, _ = camera_steps(CONFIG, sources[0])
    south, _ = camera_steps(CONFIG, sources[1])
    core.receive(CameraBatch("north", 1, tuple(north[:4])))
    core.receive(CameraBatch("south", 1, tuple(south)))
    assert core.apply() == 4  # lockstep: south waits for north beyond step 4
    core.camera_restarting("north", "actor restarting (1 of 3)")
    assert core.apply() == 0 and core.camera_states()[0].status == CameraStatus.RECONNECTING
    core.camera_failed("north", "its actor died 4 times")
    assert core.apply() == 8  # south goes on alone
    summary = core.finish()
    assert summary["cameras"]["north"] == {"status": "error", "message": "its actor died 4 times", "frames": 4,
                                           "dropped": 0, "restarts": 0}
    assert summary["cameras"]["south"]["frames"] == 12


def test_a_reader_resumes_a_file_after_the_frames_already_processed(tmp_path):
    source = str(write_scene(tmp_path / "cam.avi", 10, [(RED, 1, 10, 10)]))
    reader = CameraReader(parse_sources([source])[0], start_frame=6)
    reader.start()
    frames = []
    while not reader.finished:
        frame = reader.get(0.1)
        if frame is not None:
            frames.append(frame)
    assert [f.frame_index for f in frames] == [7, 8, 9, 10] and frames[0].time_s == pytest.approx(0.6)
    past_the_end = CameraReader(parse_sources([source])[0], start_frame=10)
    past_the_end.start()
    for _ in range(100):
        if past_the_end.finished:
            break
        assert past_the_end.get(0.02) is None
    past_the_end.stop()
    assert past_the_end.status == CameraStatus.ENDED and "no frame after frame 10" in past_the_end.message
    with pytest.raises(ValueError, match="start_frame must be >= 0"):
        CameraReader(parse_sources([source])[0], start_frame=-1)


def test_a_camera_update_checks_its_arrays():
    from tracker.types import CameraUpdate, Detections

    boxes = Detections(np.zeros((1, 4)), np.ones(1), np.array([3]))
    with pytest.raises(ValueError, match=r"features must be a \(K, D\) array with K = 2"):
        CameraUpdate("cam", 1, 0.0, boxes, np.array([3, 3]), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="boxes need track ids"):
        CameraUpdate("cam", 1, 0.0, Detections(np.zeros((1, 4)), np.ones(1)), np.zeros(0), np.zeros((0, 4)))


def test_without_cluster_nothing_of_ray_is_imported(tmp_path):
    """The headless runner and the viewer's command line, run without --cluster, import no Ray."""
    video = write_scene(tmp_path / "cam.avi", 12, [(RED, 1, 12, 10)])
    script = f"""
import sys
import tracker.cli as cli
from tests.tracker.fakes import ColourEmbedder, ScriptedDetector
from tracker.pipeline import Pipeline
cli.build_pipeline = lambda config: Pipeline(config, ScriptedDetector(), ColourEmbedder())
code = cli.main(["run", "--source", {str(video)!r}, "--out", {str(tmp_path / 'out')!r}, "--no-progress"])
import app.__main__
app.__main__.build_parser().parse_args(["--source", "x.mp4"])
loaded = sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))
print("exit", code, "ray modules:", loaded)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert "exit 0 ray modules: []" in done.stdout, done.stdout + done.stderr
    assert (tmp_path / "out" / "cam.tracks.txt").read_text()


def test_single_process_lockstep_waits_for_a_file_that_opens_slowly(tmp_path):
    """Each step holds every file's next frame, however late a reader starts: the run (and so
    the cluster comparison) is reproducible."""
    import time

    import cv2

    sources = lab_of_colours(tmp_path / "videos", frames=20)

    def slow_open(uri: str):
        if uri.endswith("east.avi"):
            time.sleep(0.6)  # longer than the 0.5 s a step waits for a running stream
        return cv2.VideoCapture(uri)

    pipeline = Pipeline(CONFIG, ScriptedDetector(), ColourEmbedder())
    steps = []
    step = pipeline.step
    pipeline.step = lambda frames: steps.append([(f.camera_id, f.frame_index) for f in frames]) or step(frames)
    run_headless(CONFIG, sources, tmp_path / "slow", pipeline, progress=False,
                 runner_kwargs={"open_capture": slow_open})
    assert steps[0] == [("north", 1), ("south", 1), ("east", 1)] and len(steps) == 20
    single_process(CONFIG, sources, tmp_path / "plain")
    assert groups(tmp_path / "slow") == groups(tmp_path / "plain")


@pytest.mark.parametrize("argv, message", [
    (["--attach", "local"], "--attach 'local': expected auto"),
    (["--attach", "auto", "--source", "a.mp4"], "--attach shows a cluster job's own cameras and identities"),
    (["--job", "lab"], "--job and --camera need --attach"),
    (["--attach", "ray://head"], None),  # valid: fails later, at connecting (not here)
])
def test_viewer_attach_options_are_checked_before_connecting(argv, message, caplog, monkeypatch):
    import app.__main__ as viewer
    from tracker.cluster import attach

    connected = []
    monkeypatch.setattr(attach.AttachedJob, "connect", lambda self: connected.append(self.target))
    monkeypatch.setattr(viewer, "_choose_platform", lambda snapshot: (_ for _ in ()).throw(RuntimeError("stop here")))
    assert viewer.main(argv) == 2
    if message is None:
        assert connected == [ClusterTarget("client", "ray://head:10001")] and "stop here" in caplog.text
    else:
        assert not connected and message in caplog.text


def test_lockstep_waits_a_moment_for_a_running_stream_then_goes_on_without_it(tmp_path, monkeypatch):
    import time

    from tracker.cluster import matcher_core
    from tracker.cluster.messages import CameraReport
    from tracker.sources import SourceSpec

    monkeypatch.setattr(matcher_core, "STREAM_WAIT_S", 0.2)
    source = lab_of_colours(tmp_path / "videos", frames=8)[0]
    specs = [parse_sources([source])[0], SourceSpec("rtsp://cam/1", "door", "stream")]
    core = MatcherCore(CONFIG, Pipeline(CONFIG, None, ColourEmbedder()), specs, None)
    for spec in specs:
        core.resume(spec.camera_id)
    steps, _ = camera_steps(CONFIG, source)
    core.receive(CameraBatch("door", 1, (), CameraReport(CameraStatus.RUNNING)))  # running, then stalled
    core.receive(CameraBatch("north", 1, tuple(steps)))
    assert core.apply() == 0  # the stream's frame may still come
    time.sleep(0.25)
    assert core.apply() == 8  # it did not: the file goes on alone
    assert core.feeds["door"].late  # and is not waited for again until it sends a frame
    core.receive(CameraBatch("door", 1, (), CameraReport(CameraStatus.RECONNECTING)))
    core.receive(CameraBatch("north", 1, (), final=True))
    assert core.apply() == 0 and core.feeds["north"].done and not core.feeds["door"].done
