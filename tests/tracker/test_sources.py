"""Bad sources are reported for their camera while the other cameras go on."""

from __future__ import annotations

import logging

import pytest

from tracker.config import TrackerConfig
from tracker.pipeline import Pipeline
from tracker.runner import PipelineRunner
from tracker.sources import CameraReader, ReconnectPolicy, parse_source, parse_sources
from tracker.types import CameraStatus

from .fakes import ColourEmbedder, ScriptedDetector, StreamFactory, write_video

pytest.importorskip("ultralytics", reason="the tracker extra is not installed: pip install -e '.[tracker]'")

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
