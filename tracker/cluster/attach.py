"""A viewer attached to a running cluster job (``python -m app --attach auto|ray://HOST:PORT``).

``AttachedJob`` looks like the ``PipelineRunner`` the viewer drives (``camera_states``,
``identities``, results through ``on_result``), but nothing runs here: twice a second it reads the
matcher actor's ``JobSnapshot`` (camera states, identities with JPEG thumbnails, each camera's
latest boxes). Frames stay on the cameras' machines, so each tile shows its camera's boxes and
identity labels on a dark canvas of the frame's size, and the identities panel shows the best
crops as usual. Imports Ray.
"""

from __future__ import annotations

import logging
import threading
import zlib
from dataclasses import replace
from typing import Callable

import numpy as np

from tracker.cluster.launch import ClusterError, import_ray
from tracker.cluster.messages import JobSnapshot, decode_jpeg
from tracker.cluster.options import NAMESPACE, ClusterTarget
from tracker.config import TrackerConfig
from tracker.pipeline import colour_for
from tracker.types import CameraState, CameraStatus, FrameResult, GlobalIdentity

log = logging.getLogger(__name__)

CANVAS_GREY = 40


def running_jobs(ray) -> list[str]:
    """Names of the mcreid jobs on the connected cluster."""
    from ray.util import list_named_actors

    names = [a["name"] for a in list_named_actors(all_namespaces=True) if a.get("namespace") == NAMESPACE]
    return sorted(n.removesuffix("/matcher") for n in names if n.endswith("/matcher"))


def find_matcher(ray, job: str | None):
    """The matcher actor of ``job`` (or of the only job running); ClusterError naming the jobs."""
    jobs = running_jobs(ray)
    if job is None:
        if len(jobs) != 1:
            raise ClusterError("no mcreid job runs on this cluster" if not jobs else
                               f"{len(jobs)} mcreid jobs run on this cluster ({', '.join(jobs)}): choose one with "
                               "--job")
        job = jobs[0]
    try:
        return job, ray.get_actor(f"{job}/matcher", namespace=NAMESPACE)
    except ValueError:
        raise ClusterError(f"no mcreid job named {job!r} runs on this cluster; running: "
                           f"{', '.join(jobs) or 'none'}") from None


class AttachedJob:
    """A cluster job, as the viewer sees a runner (see the module docstring).

    Args:
        target: the cluster (None: the one this process is already connected to).
        job: the job's name (None: the only one running).
        cameras: the cameras to show (None: all; a viewer shows at most 9); identities are the
            job's, from every camera.
        refresh_s: seconds between two snapshots.
        on_result: called (on the polling thread) with each camera's newest boxes as a ``FrameResult``.
    """

    attached = True

    def __init__(self, target: ClusterTarget | None, job: str | None = None, cameras: list[str] | None = None,
                 refresh_s: float = 0.5, on_result: Callable[[FrameResult], None] | None = None) -> None:
        self.target, self.job, self.refresh_s, self.on_result = target, job, refresh_s, on_result
        self.cameras = cameras
        self.config = TrackerConfig()
        self.pipeline = None
        self.error = ""
        self.paused = False
        self.snapshot: JobSnapshot | None = None
        self._ray = import_ray()
        self._connected_here = False
        self._matcher = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="attached-job", daemon=True)
        self._shown: dict[str, int] = {}
        self._canvases: dict[str, np.ndarray] = {}
        self._thumbnails: dict[int, tuple[int, np.ndarray]] = {}
        self._lock = threading.Lock()

    def connect(self) -> None:
        """Connect and find the job's matcher (ClusterError when there is none)."""
        ray = self._ray
        if not ray.is_initialized():
            from tracker.cluster.launch import connect

            if self.target is None or self.target.kind == "local":
                raise ClusterError("--attach needs auto or ray://HOST:PORT: the cluster the job runs on")
            self._context = connect(self.target)
            self._context.__enter__()
            self._connected_here = True
        self.job, self._matcher = find_matcher(ray, self.job)
        self._refresh()
        known = [s.camera_id for s in self.snapshot.cameras]
        unknown = [c for c in self.cameras or () if c not in known]
        if unknown:
            raise ClusterError(f"job {self.job} has no camera {', '.join(unknown)}; its cameras: {', '.join(known)}")
        log.info("attached to job %s: %d cameras", self.job, len(self.snapshot.cameras))

    # -- the runner's interface ------------------------------------------------------------------
    def start(self) -> None:
        if self._matcher is None:
            self.connect()
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> bool:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._connected_here:
            self._connected_here = False
            self._context.__exit__(None, None, None)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def add_source(self, uri: str) -> str:
        raise ValueError(f"attached to cluster job {self.job}: its cameras are the job's own")

    def camera_states(self) -> list[CameraState]:
        snapshot = self.snapshot
        if snapshot is None:
            return []
        states = [s for s in snapshot.cameras if self.cameras is None or s.camera_id in self.cameras]
        if not self.error:
            return states
        return [replace(s, status=CameraStatus.STOPPED, message=self.error)
                if s.status in (CameraStatus.OPENING, CameraStatus.RUNNING, CameraStatus.RECONNECTING) else s
                for s in states]

    def identities(self) -> list[GlobalIdentity]:
        snapshot = self.snapshot
        if snapshot is None:
            return []
        with self._lock:
            out = []
            for ident in snapshot.identities:
                data = snapshot.thumbnails.get(ident.global_id)
                thumbnail = None
                if data is not None:
                    checksum = zlib.crc32(data)
                    cached = self._thumbnails.get(ident.global_id)
                    if cached is None or cached[0] != checksum:
                        cached = self._thumbnails[ident.global_id] = (checksum, decode_jpeg(data))
                    thumbnail = cached[1]
                out.append(replace(ident, thumbnail=thumbnail))
            return out

    # -- polling ---------------------------------------------------------------------------------
    def _poll(self) -> None:
        while not self._stop.wait(self.refresh_s):
            try:
                self._refresh()
            except Exception as exc:  # the matcher is gone: the job ended or failed
                finished = self.snapshot is not None and self.snapshot.finished
                self.error = "the job has ended" if finished else f"lost the job's matcher ({type(exc).__name__})"
                log.warning("job %s: %s", self.job, self.error)
                return

    def _refresh(self) -> None:
        snapshot: JobSnapshot = self._ray.get(self._matcher.snapshot.remote(), timeout=30)
        self.snapshot = snapshot
        if snapshot.config is not None:
            self.config = snapshot.config
        if snapshot.error:
            self.error = snapshot.error
        for camera_id, boxes in snapshot.boxes.items():
            if self._shown.get(camera_id) == boxes.frame_index or self.on_result is None:
                continue
            if self.cameras is not None and camera_id not in self.cameras:
                continue
            self._shown[camera_id] = boxes.frame_index
            colours = tuple(colour_for(int(g)) for g in boxes.global_id)
            self.on_result(FrameResult(camera_id, boxes.frame_index, self._canvas(camera_id, snapshot), boxes.xyxy,
                                       boxes.confidence, boxes.track_id, boxes.global_id, colours))

    def _canvas(self, camera_id: str, snapshot: JobSnapshot) -> np.ndarray:
        width, height = snapshot.frame_sizes.get(camera_id) or (0, 0)
        if not width or not height:
            width, height = 640, 360
        canvas = self._canvases.get(camera_id)
        if canvas is None or canvas.shape[:2] != (height, width):
            canvas = self._canvases[camera_id] = np.full((height, width, 3), CANVAS_GREY, np.uint8)
        return canvas
