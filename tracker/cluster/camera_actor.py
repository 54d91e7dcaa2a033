"""The camera actor: one camera's ``CameraWorker`` inside a Ray actor (imports Ray).

Ray restarts it when it dies (``--camera-restarts``); the new one asks the matcher where the
camera stopped (``ResumePoint``): a file resumes after the last frame the matcher received, a
stream reconnects, track ids go on above the old ones, and batches of the dead actor that are
still on their way are ignored (its incarnation was replaced).
"""

from __future__ import annotations

import logging
import socket
import threading
from functools import partial
from typing import Any

import ray

from tracker.cluster.camera_worker import CameraWorker
from tracker.cluster.components import Components
from tracker.cluster.messages import Ack, CameraBatch
from tracker.cluster.options import NAMESPACE, ClusterOptions
from tracker.config import TrackerConfig
from tracker.pipeline import Pipeline
from tracker.sources import SourceSpec

log = logging.getLogger(__name__)


class RayLink:
    """``Link`` to the matcher actor: ``submit`` returns once the batch is applied."""

    def __init__(self, matcher: Any) -> None:
        self.matcher = matcher

    def send(self, batch: CameraBatch) -> Any:
        return self.matcher.submit.remote(batch)

    def done(self, handle: Any) -> bool:
        ready, _ = ray.wait([handle], timeout=0)
        return bool(ready)

    def wait(self, handle: Any) -> Ack:
        return ray.get(handle)


class CameraActor:
    """One camera: read, detect, track, clips, embed, send (wrapped by ``ray.remote`` in ``launch``).

    Args:
        spec: the source.
        config: the pipeline's options.
        options: the cluster's.
        matcher: the matcher actor's name (looked up here: a restarted actor finds it again).
        components: builds the models here.
        max_frames: end the source after this frame.
        log_level: the driver's logging level.
    """

    def __init__(self, spec: SourceSpec, config: TrackerConfig, options: ClusterOptions, matcher: str,
                 components: Components, max_frames: int | None, log_level: int = logging.INFO) -> None:
        from mcreid.logs import setup_logging

        setup_logging(0)
        logging.getLogger().setLevel(log_level)
        matcher = ray.get_actor(matcher, namespace=NAMESPACE)
        resume = ray.get(matcher.resume.remote(spec.camera_id))
        detector = components.detector(config)
        embedder = components.embedder(config, options.threads)
        pipeline = Pipeline(config, detector, embedder,
                            tracker_factory=partial(components.tracker, first_track_id=resume.first_track_id),
                            thumbnail_every=options.thumbnail_every)
        self.node = socket.gethostname()
        self._running = threading.Lock()
        self._summary: dict[str, object] | None = None
        self.worker = CameraWorker(spec, pipeline, RayLink(matcher), resume, options, max_frames=max_frames,
                                   node=self.node)
        log.info("camera %s: actor incarnation %d on %s, from frame %d", spec.camera_id, resume.incarnation,
                 self.node, resume.start_frame + 1)

    def ready(self) -> dict[str, object]:
        return {"node": self.node, "incarnation": self.worker.resume.incarnation}

    def run(self) -> dict[str, object]:
        """Run the camera to its end; a second call while it runs (a driver that lost track of the
        first) waits for the first and returns its summary."""
        with self._running:
            if self._summary is None:
                self._summary = self.worker.run()
            return self._summary

    def stop(self) -> None:
        self.worker.stop()
