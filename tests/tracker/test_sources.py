"""Bad sources are reported for their camera while the other cameras go on."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracker.config import TrackerConfig
from tracker.pipeline import Pipeline
from tracker.runner import PipelineRunner
from tracker.sources import CameraReader, ReconnectPolicy, parse_source, parse_sources
from tracker.types import CameraStatus

from .fakes import ColourEmbedder, ScriptedDetector, StreamFactory, write_video

pytest.importorskip("ultralytics", reason="the tracker extra is not installed: pip install -e '.[tracker]'")

ROOT = Path(__file__).resolve().parents[2]
FAST_RETRY = ReconnectPolicy(initial_s=0.01, max_s=0.02, max_attempts=2)


def make_runner(sources, factory=None, **config):
    config = TrackerConfig(min_clips=1, min_crop_height=20, **config)
    pipeline = Pipeline(config, ScriptedDetector(), ColourEmbedder())
    results = []
    runner = PipelineRunner(config, sources, pipeline=pipeline, on_result=results.append,
                            open_capture=factory or StreamFactory(), reconnect=FAST_RETRY)
    return runner, results


def states(runner):
    return {s.camera_id: s for s in runner.camera_states()}


def test_parse_sources_names_cameras():
    specs = parse_sources(["a/walk.mp4", "rtsp://host/s", "0", "b/walk.mp4"])
    assert [(s.camera_id, s.kind) for s in specs] == [("walk", "file"), ("cam1", "stream"), ("cam2", "webcam"),
                                                      ("walk_2", "file")]
    with pytest.raises(ValueError, match="empty source"):
        parse_source(" ", 0)


def test_bad_sources_get_their_message_and_the_good_one_plays_to_the_end(tmp_path, caplog):
    good = write_video(tmp_path / "good.avi", frames=20)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    missing = tmp_path / "missing.mp4"
    runner, results = make_runner([str(good), str(missing), str(junk), "fake://cam/stream"])
    with caplog.at_level(logging.WARNING, logger="tracker.sources"):
        runner.start()
        assert runner.join(timeout=60)
    s = states(runner)
    assert s["good"].status == CameraStatus.ENDED and s["good"].frames_processed == 20
    assert s["missing"].status == CameraStatus.ERROR
    assert f"file not found: {missing}" in s["missing"].message
    assert s["junk"].status == CameraStatus.ERROR
    assert str(junk) in s["junk"].message and ("cannot open" in s["junk"].message or "cannot read" in s["junk"].message)
    assert s["cam3"].status == CameraStatus.ERROR and "gave up after 2 reconnection attempts" in s["cam3"].message
    assert s["cam3"].frames_processed == 5
    assert "reconnecting" in caplog.text  # the stream tried again (with backoff) before giving up
    assert {r.camera_id for r in results} == {"good", "cam3"}
    assert [r.frame_index for r in results if r.camera_id == "good"] == list(range(1, 21))
    assert not runner.alive


def test_a_dropped_stream_reconnects_and_goes_on(tmp_path):
    runner, results = make_runner(["fake://cam/a"], factory=StreamFactory(frames=4, comes_back=6))
    runner.start()
    assert runner.join(timeout=30)
    frames = [r.frame_index for r in results]
    assert frames == list(range(1, 11))  # 4 before the drop, 6 after, numbering continues
    assert states(runner)["cam0"].status == CameraStatus.ERROR  # gone for good after that


def test_reader_reports_missing_file_without_raising(tmp_path):
    reader = CameraReader(parse_source(str(tmp_path / "nope.avi"), 0))
    reader.start()
    reader.stop(5)
    assert reader.status == CameraStatus.ERROR and "expected a video file" in reader.message
    assert reader.finished


def test_pause_resume_and_stop(tmp_path):
    good = write_video(tmp_path / "good.avi", frames=200)
    runner, results = make_runner([str(good)])
    runner.start()
    while not results:
        runner.join(0.01)
    runner.pause()
    runner.join(0.3)
    seen = len(results)
    runner.join(0.3)
    assert len(results) <= seen + 1  # at most the step in flight when paused
    runner.resume()
    while len(results) < seen + 5:
        runner.join(0.01)
    runner.stop()
    assert not runner.alive
    assert states(runner)["good"].status == CameraStatus.STOPPED


class SlowDetector(ScriptedDetector):
    def detect(self, frames):
        import time

        time.sleep(0.25)  # far slower than the 10 fps source
        return super().detect(frames)


def test_realtime_mode_drops_frames_instead_of_falling_behind(tmp_path):
    good = write_video(tmp_path / "good.avi", frames=20)  # 2 s of video at 10 fps
    config = TrackerConfig(min_clips=1, min_crop_height=20, realtime=True)
    results = []
    runner = PipelineRunner(config, [str(good)], pipeline=Pipeline(config, SlowDetector(), ColourEmbedder()),
                            on_result=results.append)
    runner.start()
    assert runner.join(timeout=30)
    s = states(runner)["good"]
    assert s.status == CameraStatus.ENDED
    assert 3 <= s.frames_processed < 20 and s.dropped > 0
    assert s.frames_processed + s.dropped == 20
    frames = [r.frame_index for r in results]
    assert frames == sorted(frames) and frames[-1] >= 15  # it kept up with the newest frames


def test_a_pipeline_that_cannot_load_shows_as_every_cameras_error(tmp_path):
    good = write_video(tmp_path / "good.avi", frames=5)
    config = TrackerConfig(reid=str(tmp_path / "missing.onnx"))
    runner = PipelineRunner(config, [str(good), "fake://x"], open_capture=StreamFactory())  # built on the worker
    runner.start()
    assert runner.join(timeout=30)
    assert "re-ID model not found" in runner.error
    for state in runner.camera_states():
        assert state.status == CameraStatus.ERROR and "re-ID model not found" in state.message
    assert not runner.alive


def test_a_stream_that_never_connects_is_an_error_after_the_timeout_and_the_run_ends(tmp_path):
    good = write_video(tmp_path / "good.avi", frames=10)
    config = TrackerConfig(min_clips=1, min_crop_height=20)
    results = []
    never = ReconnectPolicy(initial_s=0.01, max_s=0.05, connect_timeout_s=0.5)
    runner = PipelineRunner(config, [str(good), "fake://nothing/here"],
                            pipeline=Pipeline(config, ScriptedDetector(), ColourEmbedder()),
                            on_result=results.append, open_capture=StreamFactory(frames=0), reconnect=never)
    runner.start()
    assert runner.join(timeout=30)  # the headless run ends by itself
    s = states(runner)
    assert s["good"].status == CameraStatus.ENDED and s["good"].frames_processed == 10
    assert s["cam1"].status == CameraStatus.ERROR and "no frame from stream fake://nothing/here within 0.5 s" in \
        s["cam1"].message


def test_a_stream_that_worked_keeps_reconnecting_without_a_limit(tmp_path):
    policy = ReconnectPolicy(initial_s=0.01, max_s=0.02, connect_timeout_s=0.2)  # no max_attempts
    factory = StreamFactory(frames=3)
    reader = CameraReader(parse_source("fake://cam/reboots", 0), open_capture=factory, reconnect=policy)
    reader.start()
    time.sleep(1.0)  # five times the connect timeout: it delivered frames once, so it keeps trying
    assert reader.status == CameraStatus.RECONNECTING and factory.opens["fake://cam/reboots"] > 5
    assert reader.stop(5) and reader.status == CameraStatus.STOPPED


def test_reconnect_policy_from_the_command_line_options():
    assert ReconnectPolicy.from_config(30.0, 0) == ReconnectPolicy(connect_timeout_s=30.0, max_attempts=None)
    assert ReconnectPolicy.from_config(0.0, 5) == ReconnectPolicy(connect_timeout_s=None, max_attempts=5)
    with pytest.raises(ValueError, match="connect timeout"):
        ReconnectPolicy(connect_timeout_s=-1)
    with pytest.raises(ValueError, match="reconnection limit"):
        ReconnectPolicy(max_attempts=0)
    assert [ReconnectPolicy(initial_s=0.5, max_s=3.0).delay(a) for a in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]


def test_real_unreachable_sources_give_one_line_per_attempt_and_no_opencv_noise(tmp_path):
    """Nothing listens on port 9 and there is no webcam 7: OpenCV and FFmpeg print multi-line
    warnings for these unless silenced. Run in a fresh process: FFmpeg reads its log level once."""
    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(message)s')\n"
        "from tracker.sources import CameraReader, ReconnectPolicy, parse_source\n"
        "policy = ReconnectPolicy(initial_s=0.2, max_s=0.2, connect_timeout_s=1.0)\n"
        "readers = [CameraReader(parse_source(u, i), reconnect=policy) for i, u in "
        "enumerate(['rtsp://127.0.0.1:9/none', '7'])]\n"
        "[r.start() for r in readers]\n"
        "[r._thread.join(20) for r in readers]\n"
        "print('STATUS', [(r.status.value, r.message) for r in readers])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "[tcp @" not in proc.stderr and "WARN" not in proc.stderr and "ERROR:" not in proc.stderr, proc.stderr
    assert "no frame from stream rtsp://127.0.0.1:9/none within 1 s" in proc.stdout
    assert "no frame from webcam 7 within 1 s" in proc.stdout
    retries = [line for line in proc.stdout.splitlines() if "cannot open" in line]
    assert 2 <= len(retries) <= 20 and all(len(r) < 200 for r in retries)  # one short line per attempt


def test_a_folder_as_source_says_it_is_a_folder(tmp_path):
    reader = CameraReader(parse_source(str(tmp_path), 0))
    reader.start()
    reader.stop(5)
    assert reader.status == CameraStatus.ERROR and f"{tmp_path} is a folder; expected a video file" in reader.message


def test_a_truncated_file_ends_at_its_last_frame_without_phantom_drops(tmp_path):
    full = write_video(tmp_path / "full.avi", frames=40)
    cut = tmp_path / "cut.avi"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # the header still announces 40 frames
    reader = CameraReader(parse_source(str(cut), 0))
    reader.start()
    frames = []
    while not reader.finished:
        frame = reader.get(0.5)
        if frame is not None:
            frames.append(frame.frame_index)
    assert reader.status == CameraStatus.ENDED and "its header announced 40" in reader.message
    assert 5 < len(frames) < 40 and frames == list(range(1, len(frames) + 1))
    assert reader.dropped == 0 and reader.total_frames == len(frames)  # progress reaches 100%
