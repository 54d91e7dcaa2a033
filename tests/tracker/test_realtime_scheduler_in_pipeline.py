"""Real-time mode inside ``Pipeline``: an embedder slower than the budget makes the scheduler drop clips.

The colour embedder of the other pipeline tests takes microseconds, so the scheduler never has to
choose. This one sleeps 60 ms per clip against a 40 ms budget: one clip fits per step, and the
scheduler must give it to the track with the fewest clips (README ``--realtime``).
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from tracker.config import TrackerConfig
from tracker.pipeline import Pipeline
from tracker.types import CameraFrame

from .fakes import ColourEmbedder, ScriptedDetector

pytest.importorskip("ultralytics", reason="the tracker extra is not installed: pip install -e '.[tracker]'")

COLOURS = ((0, 0, 230), (0, 230, 0), (230, 0, 0))  # three people, three colours (BGR)


class SlowColourEmbedder(ColourEmbedder):
    """The colour embedder, taking ``seconds_per_clip`` per clip; records every call's batch size."""

    def __init__(self, seconds_per_clip: float) -> None:
        super().__init__()
        self.seconds_per_clip = seconds_per_clip
        self.batches: list[int] = []

    def embed(self, clips: np.ndarray) -> np.ndarray:
        self.batches.append(len(clips))
        time.sleep(self.seconds_per_clip * len(clips))
        return super().embed(clips)


def scene(frame: int) -> np.ndarray:
    image = np.zeros((120, 240, 3), np.uint8)
    for i, colour in enumerate(COLOURS):
        x = 10 + 70 * i + frame
        cv2.rectangle(image, (x, 20), (x + 20, 90), colour, -1)
    return image


def run(realtime: bool, frames: int = 24) -> tuple[Pipeline, SlowColourEmbedder]:
    config = TrackerConfig(min_clips=1, min_crop_height=20, realtime=realtime, embed_budget_ms=40.0)
    embedder = SlowColourEmbedder(0.06)
    pipeline = Pipeline(config, ScriptedDetector(), embedder)
    for f in range(1, frames + 1):
        pipeline.step([CameraFrame("cam", f, scene(f), time_s=f / 10)])
    return pipeline, embedder


def test_realtime_pipeline_drops_clips_and_serves_the_tracks_with_fewest_clips():
    pipeline, embedder = run(realtime=True)
    # 24 frames = 6 rounds of 3 finished clips (one per person). The first round is sized by the
    # initial guess (20 ms a clip: 2 fit in 40 ms); once timed at >= 60 ms a clip, one fits per round.
    scheduler = pipeline.scheduler
    assert scheduler.budget_s == pytest.approx(0.040)
    assert scheduler.submitted == 18
    assert embedder.batches == [2, 1, 1, 1, 1, 1]
    assert (scheduler.embedded, scheduler.dropped) == (7, 11)
    assert scheduler.cost_per_clip_s > 0.04  # measured, no longer the initial guess
    # fewest clips first: every person got a clip before any got a second, and so on
    assert sorted(pipeline.matcher.clip_counts().values()) == [2, 2, 3]
    assert len({i.global_id for i in pipeline.identities()}) == 3


def test_offline_pipeline_embeds_every_clip_however_slow():
    pipeline, embedder = run(realtime=False, frames=12)
    assert pipeline.scheduler.budget_s is None
    assert embedder.batches == [3, 3, 3]
    assert (pipeline.scheduler.embedded, pipeline.scheduler.dropped) == (9, 0)
    assert sorted(pipeline.matcher.clip_counts().values()) == [3, 3, 3]
