"""How a cluster's actors build their models: on their own machine, from the ``TrackerConfig``.

An instance travels (pickled) to every actor, so tests can pass one that builds small fakes.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcreid.embedder import Embedder
from tracker.config import TrackerConfig
from tracker.detector import Detector


@dataclass(frozen=True)
class Components:
    """The real detector, re-ID embedder and per-camera tracker (``--detector``, ``--reid``...)."""

    def detector(self, config: TrackerConfig) -> Detector:
        from tracker.detector import YoloDetector

        return YoloDetector(config.detector, config.imgsz, config.det_conf, config.device, config.batch_detect,
                            config.det_iou)

    def embedder(self, config: TrackerConfig, threads: int | None = None) -> Embedder:
        from tracker.pipeline import build_embedder

        return build_embedder(config.reid, config.reid_input, threads)

    def tracker(self, config: TrackerConfig, first_track_id: int = 1):
        from tracker.tracking import CameraTracker

        return CameraTracker(config, first_track_id)
