"""Part 2 of ``store_speed.py``: the tracker's per-step cost with an identity store.

A real ``Pipeline`` (real Ultralytics ByteTrack per camera, real clips, matcher and recorder) on
synthetic scenes: 4 cameras, people drawn as coloured boxes walking across (a new one every 15
steps per camera, 4 at a time), a scripted detector that finds them and a cheap embedder (a fixed
projection of each clip's mean colour to 512-d), so the timings are the pipeline's bookkeeping and
the store's, not a detector's. Run without a store and with one seeded with ``seeded`` identities.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from tracker.config import TrackerConfig
from tracker.pipeline import Pipeline
from tracker.types import CameraFrame, Detections

CAMERAS = ("cam0", "cam1", "cam2", "cam3")


class _BoxDetector:
    """Finds the bright boxes the scene draws (one per person)."""

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        out = []
        for frame in frames:
            mask = (frame.max(axis=2) > 60).astype(np.uint8)
            _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            boxes = [[x, y, x + w, y + h] for x, y, w, h, area in stats[1:] if area > 300]
            out.append(Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9)))
        return out


class _ColourEmbedder:
    """A 512-d feature from each clip's mean colour (a fixed random projection, ReLU)."""

    input_size = (64, 32)
    seq_len = 4
    feature_dim = 512

    def __init__(self) -> None:
        self._projection = np.random.default_rng(7).normal(0, 1, (3, self.feature_dim)).astype(np.float32)

    def embed(self, clips: np.ndarray) -> np.ndarray:
        rgb = clips.reshape(len(clips), -1, 3).mean(axis=1) / 255.0
        return np.maximum(rgb @ self._projection, 0.0) + 0.01


def _scene(step: int, camera: int, colours: np.ndarray) -> np.ndarray:
    image = np.zeros((240, 320, 3), np.uint8)
    for person in range(max(0, (step - 60) // 15), step // 15 + 1):
        age = step - person * 15
        if 0 <= age < 60:
            x = 5 + age * 4 + 7 * camera
            colour = tuple(int(c) for c in colours[(person * 7 + camera) % len(colours)])
            cv2.rectangle(image, (x, 40 + 30 * (person % 4)), (x + 24, 110 + 30 * (person % 4)), colour, -1)
    return image


def _run(steps: int, store_path: Path | None, seeded: int) -> dict[str, float]:
    config = TrackerConfig(min_clips=2, min_crop_height=20, min_crop_width=8, match_threshold=0.995)
    pipeline = Pipeline(config, _BoxDetector(), _ColourEmbedder())
    session = None
    if store_path is not None:
        from tracker.store.session import StoreSession

        session = StoreSession.start(store_path, pipeline, {c: f"synthetic:{c}" for c in CAMERAS})
    colours = np.random.default_rng(3).integers(80, 255, (97, 3))
    times = []
    for step in range(1, steps + 1):
        frames = [CameraFrame(c, step, _scene(step, i, colours), time_s=step / 10) for i, c in enumerate(CAMERAS)]
        tic = time.perf_counter()
        pipeline.step(frames)
        times.append(time.perf_counter() - tic)
    pipeline.finish()
    row = {"step_ms_median": 1000 * float(np.median(times)), "step_ms_mean": 1000 * float(np.mean(times)),
           "step_ms_p95": 1000 * float(np.percentile(times, 95)), "identities": len(pipeline.identities())}
    if session is not None:
        store_laps = list(pipeline.timings.samples.get("store", [0.0]))
        row.update(store_ms_mean=1000 * float(np.mean(store_laps)), store_ms_max=1000 * float(np.max(store_laps)))
        commits = list(session.recorder.commit_s) or [0.0]
        row.update(commit_ms_median=1000 * float(np.median(commits)), commit_ms_max=1000 * float(np.max(commits)),
                   commits=session.recorder.commits)
        session.close()
    return row


def step_costs(steps: int, seeded: int, workdir: Path) -> dict[str, dict[str, float]]:
    """``{"no store": {...}, "store (N seeded)": {...}}``: ms per step and the store's share."""
    from benchmarks.store_speed import fill
    from tracker.store.session import model_info

    path = workdir / "pipeline.db"
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if seeded:
        import benchmarks.store_speed as speed

        speed.MODEL = model_info(_ColourEmbedder())  # the store must be made by the embedder that reads it
        fill(path, seeded, np.random.default_rng(1), None)
    return {"no store": _run(steps, None, 0), f"store ({seeded} seeded)": _run(steps, path, seeded)}
