"""Fakes for cluster tests: the scripted detector and colour embedder of ``fakes``, built on each
actor by ``FakeComponents`` (picklable: Ray ships it to the workers, which import this module)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from tracker.cluster.components import Components
from tracker.config import TrackerConfig
from tracker.types import Detections

from .fakes import ColourEmbedder, ScriptedDetector

RED, GREEN, BLUE = (0, 0, 230), (0, 200, 0), (230, 0, 0)
CONFIG = TrackerConfig(min_clips=2, min_crop_height=20, match_threshold=0.9, link_seconds=0.0)


class SlowDetector(ScriptedDetector):
    """``ScriptedDetector`` taking ``delay_s`` per frame (a run long enough to act on mid-way)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        time.sleep(self.delay_s * len(frames))
        return super().detect(frames)


@dataclass(frozen=True)
class FakeComponents(Components):
    delay_s: float = 0.0

    def detector(self, config: TrackerConfig):
        return SlowDetector(self.delay_s) if self.delay_s else ScriptedDetector()

    def embedder(self, config: TrackerConfig, threads: int | None = None):
        return ColourEmbedder()


def write_scene(path: Path, frames: int, people: Sequence[tuple[tuple[int, int, int], int, int, int]],
                size: tuple[int, int] = (200, 120)) -> Path:
    """A small MJPG video: each person ``(colour, first_frame, last_frame, x0)`` is a rectangle
    walking right 1 px a frame while on screen (frames 1-based)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    for f in range(1, frames + 1):
        image = np.zeros((size[1], size[0], 3), np.uint8)
        for colour, first, last, x0 in people:
            if first <= f <= last:
                x = x0 + (f - first)
                cv2.rectangle(image, (x, 25), (x + 20, 95), colour, -1)
        writer.write(image)
    writer.release()
    return path


def lab_of_colours(folder: Path, frames: int = 40) -> list[str]:
    """Three cameras: red from the start and blue later in north, red later in south, blue from the
    start and green later in east (identities form in a telling order; blue leaves north early)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [str(write_scene(folder / "north.avi", frames, [(RED, 1, frames, 10), (BLUE, 9, frames // 2, 100)])),
            str(write_scene(folder / "south.avi", frames, [(RED, 5, frames, 40)])),
            str(write_scene(folder / "east.avi", frames, [(BLUE, 1, frames, 20), (GREEN, 13, frames, 110)]))]
