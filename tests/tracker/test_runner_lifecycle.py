"""The runner's worker: kept alive for sources added later, and stopped cleanly when a step fails."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from tracker.config import TrackerConfig
from tracker.pipeline import Pipeline
from tracker.runner import PipelineRunner
from tracker.sources import ReconnectPolicy
from tracker.types import CameraStatus

from .fakes import ColourEmbedder, ScriptedDetector, StreamFactory, write_video

pytest.importorskip("ultralytics", reason="the tracker extra is not installed: pip install -e '.[tracker]'")

CONFIG = TrackerConfig(min_clips=1, min_crop_height=20)


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.01)


def states(runner):
    return {s.camera_id: s for s in runner.camera_states()}


def new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before and t.is_alive()]


def test_without_keep_alive_the_worker_ends_with_no_source():
    runner = PipelineRunner(CONFIG, [], pipeline=Pipeline(CONFIG, ScriptedDetector(), ColourEmbedder()))
    runner.start()
    assert runner.join(timeout=5)
    assert not runner.alive


def test_keep_alive_waits_for_sources_added_later_until_stop(tmp_path):
    before = set(threading.enumerate())
    results = []
    runner = PipelineRunner(CONFIG, [], pipeline=Pipeline(CONFIG, ScriptedDetector(), ColourEmbedder()),
                            on_result=results.append, keep_alive=True)
    runner.start()
    assert not runner.join(timeout=0.3)  # no source: the worker waits instead of ending

    first = runner.add_source(str(write_video(tmp_path / "first.avi", frames=12)))
    wait_for(lambda: states(runner)[first].status == CameraStatus.ENDED and len(results) == 12)
    assert [r.frame_index for r in results] == list(range(1, 13))
    assert not runner.join(timeout=0.3)  # every source over: still waiting

    second = runner.add_source(str(write_video(tmp_path / "second.avi", frames=7)))
    wait_for(lambda: states(runner)[second].frames_processed == 7)
    assert [r.frame_index for r in results if r.camera_id == second] == list(range(1, 8))
    assert runner.alive and runner.error == ""

    runner.stop(timeout=5)
    assert not runner.alive
    assert not new_threads(before)
    assert {s.status for s in runner.camera_states()} == {CameraStatus.ENDED}


class ExplodingPipeline(Pipeline):
    """A real pipeline whose third step raises, as a model or a bug might."""

    def __init__(self, config: TrackerConfig) -> None:
        super().__init__(config, ScriptedDetector(), ColourEmbedder())
        self.steps = 0

    def step(self, frames):
        self.steps += 1
        if self.steps == 3:
            raise RuntimeError("boom in step")
        return super().step(frames)


def failing_delivery(result) -> None:
    if result.frame_index >= 3:
        raise RuntimeError("boom in delivery")


@pytest.mark.parametrize("where", ["step", "delivery"])
def test_an_exception_in_the_worker_marks_every_camera_errored_and_stops(tmp_path, caplog, where):
    before = set(threading.enumerate())
    video = write_video(tmp_path / "long.avi", frames=300)
    if where == "step":
        pipeline, on_result = ExplodingPipeline(CONFIG), [].append
    else:
        pipeline, on_result = Pipeline(CONFIG, ScriptedDetector(), ColourEmbedder()), failing_delivery
    runner = PipelineRunner(CONFIG, [str(video), "fake://cam"], pipeline=pipeline, on_result=on_result,
                            open_capture=StreamFactory(frames=1000), reconnect=ReconnectPolicy(initial_s=0.01),
                            keep_alive=True)
    with caplog.at_level(logging.ERROR, logger="tracker.runner"):
        runner.start()
        assert runner.join(timeout=20)  # the worker ended by itself, keep_alive notwithstanding

    assert runner.error == f"pipeline failed: RuntimeError: boom in {where}"
    for state in runner.camera_states():
        assert state.status == CameraStatus.ERROR and state.message == runner.error
    record = next(r for r in caplog.records if r.getMessage() == runner.error)
    assert record.exc_info is not None and "boom" in str(record.exc_info[1])  # logged with its traceback
    assert not runner.alive
    assert not new_threads(before)

    late = runner.add_source(str(video))  # nothing will read it: it says why instead of "opening"
    assert states(runner)[late].status == CameraStatus.ERROR
    runner.stop(timeout=5)
    assert all(s.status == CameraStatus.ERROR for s in runner.camera_states())


def test_fps_falls_to_zero_when_frames_stop(monkeypatch):
    from tracker import runner as runner_module

    clock = [100.0]
    monkeypatch.setattr(runner_module.time, "monotonic", lambda: clock[0])
    stats = runner_module._Stats()
    for _ in range(11):  # 10 fps for a second
        stats.add(0.05)
        clock[0] += 0.1
    assert stats.fps == pytest.approx(10.0)
    clock[0] += 5.0  # the source failed or ended: nothing since
    assert stats.fps == 0.0
    assert stats.processed == 11 and stats.latency_s == 0.05


class GatedDetector(ScriptedDetector):
    """Blocks inside ``detect`` until ``gate`` is set: a step held in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.gate, self.inside = threading.Event(), threading.Event()

    def detect(self, frames):
        self.inside.set()
        self.gate.wait(10)
        return super().detect(frames)


def test_pause_is_settled_only_after_the_step_in_flight_and_its_identities_are_shown(tmp_path):
    video = write_video(tmp_path / "walk.avi", frames=60)
    detector = GatedDetector()
    results = []
    runner = PipelineRunner(CONFIG, [str(video)], pipeline=Pipeline(CONFIG, detector, ColourEmbedder()),
                            on_result=results.append)
    detector.gate.set()
    runner.start()
    wait_for(lambda: len(results) >= 12)
    detector.gate.clear()
    detector.inside.clear()
    wait_for(detector.inside.is_set)  # a step is now held inside the detector
    runner.pause()
    time.sleep(0.3)
    assert runner.paused and not runner.settled  # paused, but that step is still in flight
    detector.gate.set()
    wait_for(lambda: runner.settled)
    last = len(results)
    time.sleep(0.3)
    assert len(results) == last  # nothing moves while settled
    shown = {int(g) for g in results[-1].global_id if g}
    assert shown and shown <= {i.global_id for i in runner.identities()}  # the snapshot has the last step's ids
    runner.stop()
