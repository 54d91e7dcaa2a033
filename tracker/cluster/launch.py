"""``python -m tracker run --cluster ...``: start the job on Ray, watch it, collect its summary.

The driver (this process) only places actors and watches them; frames are read, and models run,
on the cameras' machines. It connects (``connect``), checks the cluster has the CPUs and GPUs
asked for, places the matcher actor (on this machine with ``local`` and ``auto``, on the head node
with ``ray://``: the outputs and the store are written there), starts one camera actor per source
wherever Ray finds room, and waits for them:

- a camera actor that dies (a crash, ``ray.kill``, a lost node) is restarted by Ray
  (``--camera-restarts``); the driver calls its ``run`` again, and the camera resumes where the
  matcher's record of it stops (``ResumePoint``). Meanwhile lockstep waits for it; the other
  cameras are not touched. Beyond the restarts it is an error and its camera ends;
- the matcher actor is checked every few seconds; losing it ends the job at once with a clear
  error (exit 1): the MOT rows flushed so far stay in ``--out``; with ``--store`` the identities
  recorded up to its last commit come back when the job is run again with the same store;
- a stop (Ctrl-C, SIGTERM) is passed to the cameras through their next acknowledgements: they
  stop reading, send what they processed, and the matcher writes the outputs.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from tqdm import tqdm

from tracker.cluster.components import Components
from tracker.cluster.options import NAMESPACE, ClusterOptions, ClusterTarget
from tracker.config import TrackerConfig
from tracker.sources import SourceSpec, parse_sources

log = logging.getLogger(__name__)

PLACE_TIMEOUT_S = 300.0  # actors must be placed and their models loaded within this
MATCHER_CHECK_S = 2.0
CONNECT_TIMEOUT_S = 5.0


class ClusterError(RuntimeError):
    """The cluster cannot run the job (unreachable, too small, an actor that cannot start): one line."""


def import_ray():
    """The ``ray`` module; ImportError says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"--cluster needs Ray: pip install -e '.[cluster]' ({exc})") from exc
    return ray


@contextmanager
def connect(target: ClusterTarget) -> Iterator[None]:
    """Connect to (or, for ``local``, start) the cluster for the ``with`` block.

    A process already connected (a test's local cluster, a notebook) is used as it is.

    Raises:
        ClusterError: the cluster cannot be reached, with the address and what was expected.
    """
    ray = import_ray()
    if target.kind == "client":
        host, port = target.host_port
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            raise ClusterError(f"cannot reach the Ray cluster at {target.address}: {exc.strerror or exc}; expected "
                               "a Ray head's client server there (`ray start --head` listens on port 10001)") from None
    if ray.is_initialized():
        yield
        return
    quiet = {"logging_level": logging.WARNING, "log_to_driver": True, "namespace": NAMESPACE}
    if target.kind == "local":
        cpus = target.cpus or os.cpu_count() or 1
        log.info("starting a local Ray cluster with %d CPUs", cpus)
        ray.init(num_cpus=cpus, include_dashboard=False, **quiet)
    elif target.kind == "auto":
        try:
            ray.init(address="auto", **quiet)
        except ConnectionError as exc:
            raise ClusterError(f"--cluster auto: no Ray cluster runs on this machine ({exc}); start one with "
                               "`ray start --head` (or join one with `ray start --address HEAD:6379`), or use "
                               "--cluster local") from None
    else:
        try:
            ray.init(address=target.address, **quiet)
        except (ConnectionError, RuntimeError) as exc:
            token = "" if os.environ.get("RAY_AUTH_MODE") else (
                "; a cluster with token authentication (the default since Ray 2.59) answers only a client that has "
                "its token: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (`ray get-auth-token` on the head)")
            raise ClusterError(f"cannot connect to the Ray cluster at {target.address}: {exc}; expected a Ray head's "
                               "client server of the same Ray and Python versions as here (ray "
                               f"{ray.__version__}){token}") from None
    try:
        yield
    finally:
        ray.shutdown()


def fit_cameras(options: ClusterOptions, cameras: int, resources: dict[str, float]) -> float:
    """CPUs each camera actor asks for: ``options.camera_cpus``, or, when that is 0 (auto), an
    equal share of what the matcher leaves (at most 1).

    Raises:
        ClusterError: the cluster lacks the CPUs or GPUs asked for.
    """
    total_cpus, total_gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    cpus = options.camera_cpus
    if cpus == 0:
        cpus = min(1.0, int(100 * (total_cpus - options.matcher_cpus) / cameras) / 100)
        if cpus <= 0:
            raise ClusterError(f"the cluster has {total_cpus:g} CPUs, none left for {cameras} cameras after the "
                               f"matcher's {options.matcher_cpus:g}: add nodes or lower --matcher-cpus")
    need = options.matcher_cpus + cameras * cpus
    if need > total_cpus + 1e-9:
        raise ClusterError(f"{cameras} cameras x {cpus:g} CPUs + the matcher's {options.matcher_cpus:g} = {need:g} "
                           f"CPUs, but the cluster has {total_cpus:g}: lower --camera-cpus (0 shares the CPUs out) "
                           "or add nodes")
    if cameras * options.camera_gpus > total_gpus + 1e-9:
        raise ClusterError(f"{cameras} cameras x {options.camera_gpus:g} GPUs = {cameras * options.camera_gpus:g} "
                           f"GPUs, but the cluster has {total_gpus:g}: lower --camera-gpus or add GPU nodes")
    return cpus


def _cause(exc: BaseException) -> str:
    """One line for an exception raised inside an actor (its own message, not Ray's traceback)."""
    cause = getattr(exc, "cause", None)
    if cause is not None and cause is not exc:
        return _cause(cause)
    text = str(getattr(exc, "error_msg", "") or exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):  # the innermost "Type: message" of a traceback
        if ": " in line and not line.startswith(("File ", "The actor", "ray.", "Traceback")):
            return line[:300]
    return (lines[-1] if lines else type(exc).__name__)[:300]


class ClusterJob:
    """One job: the matcher actor and a camera actor per source (see the module docstring).

    Args:
        config, sources, out_dir: as for ``tracker.cli.run_headless`` (``out_dir`` is on the head node).
        options: the cluster's.
        store: ``(path, retention_days)`` of ``--store``, on the head node, or None.
        max_frames: end each source after this frame.
        components: builds the models on each actor (tests pass fakes).
        progress: show a progress bar per camera.
    """

    def __init__(self, config: TrackerConfig, sources: Sequence[str], out_dir: Path | None, options: ClusterOptions,
                 store: tuple[str, float | None] | None = None, max_frames: int | None = None,
                 components: Components = Components(), progress: bool = False) -> None:
        self.config, self.options, self.store, self.max_frames = config, options, store, max_frames
        self.specs: list[SourceSpec] = parse_sources(list(sources))
        self.out_dir, self.components, self.progress = out_dir, components, progress
        self.ray = import_ray()
        self.matcher = None
        self.cameras: dict[str, object] = {}
        self.deaths: dict[str, int] = {s.camera_id: 0 for s in self.specs}
        self.error = ""

    # -- start -----------------------------------------------------------------------------------
    def start(self) -> None:
        """Place the matcher and the cameras and load their models; ClusterError on failure."""
        from tracker.cluster.camera_actor import CameraActor
        from tracker.cluster.matcher_actor import MatcherActor

        ray, job = self.ray, self.options.job
        camera_cpus = fit_cameras(self.options, len(self.specs), ray.cluster_resources())
        level = logging.getLogger().getEffectiveLevel()
        self.matcher = ray.remote(MatcherActor).options(
            name=f"{job}/matcher", namespace=NAMESPACE, num_cpus=self.options.matcher_cpus, max_restarts=0,
            max_concurrency=max(1000, len(self.specs) * (self.options.window + 2) + 64), **self._matcher_place(),
        ).remote(self.config, self.specs, None if self.out_dir is None else str(self.out_dir), job, self.components,
                 self.store, level)
        self._started("the matcher", self.matcher.ready.remote())
        remote = ray.remote(CameraActor)
        for spec in self.specs:
            self.cameras[spec.camera_id] = remote.options(
                name=f"{job}/camera/{spec.camera_id}", namespace=NAMESPACE, num_cpus=camera_cpus,
                num_gpus=self.options.camera_gpus, max_restarts=self.options.camera_restarts, max_task_retries=0,
                max_concurrency=2,
            ).remote(spec, self.config, self.options, f"{job}/matcher", self.components, self.max_frames, level)
        for camera_id, actor in self.cameras.items():
            self._started(f"camera {camera_id}", actor.ready.remote())
        log.info("job %s: %d camera actors (%g CPUs, %g GPUs each) and the matcher; a viewer attaches with: "
                 "python -m app --attach %s --job %s", job, len(self.cameras), camera_cpus, self.options.camera_gpus,
                 "auto" if self.options.target.kind != "client" else self.options.target.address, job)

    def _matcher_place(self) -> dict[str, object]:
        """On this machine when it is a node of the cluster (``local``, ``auto``: ``--out`` is here),
        else (``ray://``) on the head node."""
        if self.options.target.kind == "client":
            return {"resources": {"node:__internal_head__": 0.001}}
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(self.ray.get_runtime_context().get_node_id(),
                                                                      soft=False)}

    def _started(self, what: str, ref) -> None:
        from ray.exceptions import GetTimeoutError, RayError

        try:
            self.ray.get(ref, timeout=PLACE_TIMEOUT_S)
        except GetTimeoutError:
            self.kill()
            raise ClusterError(f"{what} did not start within {PLACE_TIMEOUT_S:.0f} s: no node has the resources it "
                               "asks for free, or its models load slowly") from None
        except RayError as exc:
            self.kill()
            raise ClusterError(f"{what} cannot start: {_cause(exc)}") from None

    # -- run -------------------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> dict[str, object]:
        """Run every camera to its end (or until ``stop``); the matcher's summary of the run."""
        from ray.exceptions import RayError

        ray, stop = self.ray, stop or threading.Event()
        # the calls in flight: a camera's ``run``, or its ``ready`` while Ray restarts it
        calls = {actor.run.remote(): (camera_id, "run") for camera_id, actor in self.cameras.items()}
        bars = _Bars(self.progress, self.specs, self.max_frames)
        stop_sent, checked = False, time.monotonic()
        try:
            while calls:
                ready, _ = ray.wait(list(calls), num_returns=1, timeout=0.5)
                for ref in ready:
                    camera_id, what = calls.pop(ref)
                    try:
                        ray.get(ref)
                    except RayError as exc:
                        if not self._matcher_alive():
                            return self._matcher_lost(exc)
                        follow = self._camera_call_failed(camera_id, what, exc)
                        if follow is not None:
                            calls[getattr(self.cameras[camera_id], follow).remote()] = (camera_id, follow)
                        continue
                    if what == "ready":  # restarted: the camera goes on where the matcher's record stops
                        calls[self.cameras[camera_id].run.remote()] = (camera_id, "run")
                if stop.is_set() and not stop_sent:
                    log.warning("stopping: the cameras send what they processed, then the outputs are written")
                    ray.get(self.matcher.stop.remote())
                    stop_sent = True
                if time.monotonic() - checked >= MATCHER_CHECK_S or bars.enabled:
                    checked = time.monotonic()
                    try:
                        progress = ray.get(self.matcher.progress.remote(), timeout=30)
                    except RayError as exc:
                        return self._matcher_lost(exc)
                    bars.update(progress)
                    if progress["error"] and not stop_sent:
                        log.error("%s; stopping the run", progress["error"])
                        ray.get(self.matcher.stop.remote())
                        stop_sent = True
            try:
                summary = ray.get(self.matcher.finish.remote())
            except RayError as exc:
                return self._matcher_lost(exc)
        finally:
            bars.close()
        for camera_id, deaths in self.deaths.items():
            summary["cameras"][camera_id]["actor_deaths"] = deaths
        return summary

    def _camera_call_failed(self, camera_id: str, what: str, exc: BaseException) -> str | None:
        """A camera's ``run`` or ``ready`` raised (the matcher is alive): the call to make next
        ("ready" while Ray restarts the actor, "run" never directly), or None when the camera is
        given up."""
        from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

        limit = self.options.camera_restarts
        if isinstance(exc, ActorUnavailableError) and what == "ready":  # still restarting
            time.sleep(0.2)
            return "ready"
        if isinstance(exc, ActorDiedError) or not isinstance(exc, RayActorError):  # for good, or it raised
            deaths = self.deaths[camera_id] + (what == "run" and isinstance(exc, RayActorError))
            self.deaths[camera_id] = deaths
            why = (f"its actor died {deaths} times, Ray restarts it at most {limit} (--camera-restarts): "
                   if isinstance(exc, RayActorError) else "failed: ") + _cause(exc)
            self.ray.get(self.matcher.camera_failed.remote(camera_id, why))
            return None
        self.deaths[camera_id] += 1  # its run was cut short: Ray restarts the actor
        log.warning("camera %s: its actor died (%s: killed, crashed, or its node was lost); Ray restarts it (%d of "
                    "at most %d) and the camera resumes after the last frame the matcher received", camera_id,
                    type(exc).__name__, self.deaths[camera_id], limit)
        self.ray.get(self.matcher.camera_restarting.remote(
            camera_id, f"actor restarting ({self.deaths[camera_id]} of at most {limit})"))
        return "ready"

    def _matcher_alive(self) -> bool:
        from ray.exceptions import RayError

        try:
            return bool(self.ray.get(self.matcher.ping.remote(), timeout=30))
        except RayError:
            return False

    def _matcher_lost(self, exc: BaseException) -> dict[str, object]:
        where = f"; the identities recorded in {self.store[0]} up to its last commit come back when this job is " \
                "run again with the same --store" if self.store else ""
        self.error = (f"the matcher actor was lost ({type(exc).__name__}: it died, was killed, or its node was lost): "
                      f"this run's identities are gone, the MOT rows written so far stay in {self.out_dir}{where}")
        log.error("%s", self.error)
        self.kill()
        return {"cameras": {s.camera_id: {"status": "error", "message": "the matcher was lost", "frames": 0,
                                          "dropped": 0, "actor_deaths": self.deaths[s.camera_id]} for s in self.specs},
                "identities": 0, "error": self.error, "threads_ended": True, "store_written": False}

    def kill(self) -> None:
        """End every actor of the job (none is restarted)."""
        for actor in [*self.cameras.values(), *([self.matcher] if self.matcher is not None else [])]:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # already gone
                pass


class _Bars:
    """One tqdm bar per camera: frames applied by the matcher."""

    def __init__(self, enabled: bool, specs: Sequence[SourceSpec], max_frames: int | None) -> None:
        self.enabled, self.max_frames = enabled, max_frames
        self._bars = {}
        if enabled:
            for i, spec in enumerate(specs):
                self._bars[spec.camera_id] = tqdm(desc=spec.camera_id, unit="frame", position=i, leave=True,
                                                  dynamic_ncols=True)

    def update(self, progress: dict) -> None:
        for camera_id, figures in progress["cameras"].items():
            bar = self._bars.get(camera_id)
            if bar is None:
                continue
            total = figures["total"] or None
            if total and self.max_frames:
                total = min(total, self.max_frames)
            if total and bar.total != total:
                bar.total = total
            bar.update(figures["applied"] - bar.n)

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()


def run_cluster(config: TrackerConfig, sources: Sequence[str], out_dir: Path | None, options: ClusterOptions,
                store: tuple[str, float | None] | None = None, max_frames: int | None = None,
                stop: threading.Event | None = None, components: Components = Components(),
                progress: bool = False, on_connect: Callable[[], object] | None = None) -> dict[str, object]:
    """Connect, run the job, disconnect; the summary (``tracker.cli.run_headless``'s keys, and each
    camera's ``restarts``/``actor_deaths``, ``steps``, ``max_queued_steps``, ``store_written``).

    ``on_connect`` is called once connected (the command line installs its signal handlers again:
    ``ray.init`` puts its own on SIGTERM).

    Raises:
        ClusterError: the cluster cannot be reached or cannot run the job (nothing was run).
        ImportError: Ray is not installed.
    """
    with connect(options.target):
        if on_connect is not None:
            on_connect()
        job = ClusterJob(config, sources, out_dir, options, store, max_frames, components, progress)
        job.start()
        try:
            return job.run(stop)
        finally:
            job.kill()
