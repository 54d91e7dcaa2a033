"""``--cluster`` and the options of a cluster run: where the cluster is, what each actor asks of
it, and how much may be in flight. No Ray here: these are checked before Ray is imported.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from dataclasses import dataclass

NAMESPACE = "mcreid"  # the Ray namespace of every mcreid job (a viewer finds jobs there)
CLUSTER_HELP = "ray://HOST:PORT (a Ray cluster's client server, port 10001 by default), auto (the cluster " \
               "this machine belongs to: `ray start` ran here), local (a cluster of this machine started for " \
               "this run) or local:N (with N CPUs)"
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ClusterTarget:
    """Where the job runs.

    Attributes:
        kind: "client" (``ray://HOST:PORT``), "auto" (an existing cluster this machine is part of)
            or "local" (a cluster started for this run, shut down after it).
        address: ``ray://HOST:PORT`` for "client", "auto" for "auto", "" for "local".
        cpus: CPUs of a local cluster (None: every core of this machine).
    """

    kind: str
    address: str = ""
    cpus: int | None = None

    @property
    def host_port(self) -> tuple[str, int]:
        """``(host, port)`` of a ``ray://`` address."""
        host, _, port = self.address.removeprefix("ray://").rpartition(":")
        return host.strip("[]"), int(port)


def parse_cluster(text: str) -> ClusterTarget:
    """``ray://HOST[:PORT]``, ``auto``, ``local`` or ``local:N``.

    Raises:
        ValueError: anything else, naming what was given and what is expected.
    """
    value = text.strip()
    if value == "auto":
        return ClusterTarget("auto", "auto")
    if value == "local" or value.startswith("local:"):
        count = value.partition(":")[2]
        if value == "local":
            return ClusterTarget("local")
        if not count.isdigit() or not 1 <= int(count) <= 4096:
            raise ValueError(f"--cluster {text!r}: local:N needs N = a number of CPUs from 1 to 4096")
        return ClusterTarget("local", cpus=int(count))
    if value.startswith("ray://"):
        rest = value.removeprefix("ray://")
        host, colon, port = rest.rpartition(":")
        if not colon or "]" in port:
            host, port = rest, "10001"
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--cluster {text!r}: expected ray://HOST:PORT, the head's Ray client server "
                             "(port 10001 unless `ray start --head --ray-client-server-port` chose another)")
        return ClusterTarget("client", f"ray://{host}:{int(port)}")
    raise ValueError(f"--cluster {text!r}: expected {CLUSTER_HELP}")


@dataclass(frozen=True)
class ClusterOptions:
    """How a cluster run is laid out.

    Attributes:
        target: where (``parse_cluster``).
        job: the job's name: its actors are named ``<job>/matcher`` and ``<job>/camera/<camera_id>``
            in the ``mcreid`` namespace, and a viewer attaches to it by this name.
        camera_cpus, camera_gpus: what each camera actor asks Ray for (the scheduler places it on a
            node that has it free); the actor's onnxruntime threads follow ``camera_cpus``. A
            ``camera_cpus`` of 0 shares out what the cluster has when the job starts: every camera
            gets ``(CPUs - matcher_cpus) / cameras``, at most 1.
        matcher_cpus: what the matcher actor asks for. It is placed on the head node, where the
            outputs and the store are written.
        camera_restarts: times Ray restarts a camera actor that died (a crash, a lost node) before
            its camera is given up as an error.
        batch_frames: frames a camera sends in one message (fewer calls; at most ``batch_s`` late).
        batch_s: the longest a processed frame waits for its batch to fill.
        window: batches a camera may have sent and not yet seen applied by the matcher; beyond
            that it waits (its reader meanwhile blocks, or drops frames with ``--realtime``).
        thumbnail_every: frames between two best crops of one live track sent to the matcher.
    """

    target: ClusterTarget
    job: str = ""
    camera_cpus: float = 0.0
    camera_gpus: float = 0.0
    matcher_cpus: float = 1.0
    camera_restarts: int = 3
    batch_frames: int = 4
    batch_s: float = 0.2
    window: int = 4
    thumbnail_every: int = 10

    def __post_init__(self) -> None:
        if not self.job:
            object.__setattr__(self, "job", default_job_name())
        if not _JOB_NAME.match(self.job):
            raise ValueError(f"--job {self.job!r}: expected 1 to 64 letters, digits, '_', '-' or '.', starting "
                             "with a letter or digit")
        for name, low, high in (("camera_cpus", 0.0, 1024.0), ("camera_gpus", 0.0, 64.0),
                                ("matcher_cpus", 0.0, 1024.0), ("batch_s", 0.0, 60.0)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"--{name.replace('_', '-')} must be in [{low:g}, {high:g}], got {value}")
        for name, low, high in (("camera_restarts", 0, 1000), ("batch_frames", 1, 1000), ("window", 1, 1000),
                                ("thumbnail_every", 1, 100_000)):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"--{name.replace('_', '-')} must be in [{low}, {high}], got {value}")

    @property
    def threads(self) -> int:
        """onnxruntime threads of a camera actor: its CPUs, at least one."""
        return max(1, round(self.camera_cpus))


def default_job_name() -> str:
    return f"mcreid-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cluster (Ray; pip install -e '.[cluster]')")
    defaults = ClusterOptions(ClusterTarget("local"), job="x")
    group.add_argument("--cluster", default=None, metavar="ray://HOST:PORT|auto|local[:N]",
                       help=f"run the cameras as Ray actors: {CLUSTER_HELP}")
    group.add_argument("--job", default="", help="the cluster job's name (a viewer attaches to it: python -m app "
                       "--attach ...); default: mcreid-<date>-<time>-<pid>")
    group.add_argument("--camera-cpus", type=float, default=defaults.camera_cpus,
                       help="CPUs each camera actor asks for; 0 (the default) shares the cluster's CPUs out "
                            "equally (at most 1 a camera) after the matcher's")
    group.add_argument("--camera-gpus", type=float, default=defaults.camera_gpus,
                       help=f"GPUs each camera actor asks for, e.g. 0.25 (default: {defaults.camera_gpus:g})")
    group.add_argument("--matcher-cpus", type=float, default=defaults.matcher_cpus,
                       help=f"CPUs the matcher actor asks for (default: {defaults.matcher_cpus:g})")
    group.add_argument("--camera-restarts", type=int, default=defaults.camera_restarts,
                       help="times a camera actor that died is restarted before its camera is an error "
                            f"(default: {defaults.camera_restarts})")
    group.add_argument("--batch-frames", type=int, default=defaults.batch_frames,
                       help=f"frames per message from a camera to the matcher (default: {defaults.batch_frames})")
    group.add_argument("--window", type=int, default=defaults.window,
                       help="messages a camera may have in flight before it waits for the matcher "
                            f"(default: {defaults.window})")


def cluster_options_from_args(args: argparse.Namespace) -> ClusterOptions | None:
    """The ``ClusterOptions`` of ``--cluster`` and its companions (None without ``--cluster``);
    ValueError on a bad value, or a companion given without ``--cluster``."""
    if args.cluster is None:
        defaults = ClusterOptions(ClusterTarget("local"), job="x")
        given = [flag for flag, name in (("--job", "job"), ("--camera-cpus", "camera_cpus"),
                                         ("--camera-gpus", "camera_gpus"), ("--matcher-cpus", "matcher_cpus"),
                                         ("--camera-restarts", "camera_restarts"),
                                         ("--batch-frames", "batch_frames"), ("--window", "window"))
                 if getattr(args, name) != (getattr(defaults, name) if name != "job" else "")]
        if given:
            raise ValueError(f"{', '.join(given)} only apply with --cluster")
        return None
    return ClusterOptions(parse_cluster(args.cluster), job=args.job, camera_cpus=args.camera_cpus,
                          camera_gpus=args.camera_gpus, matcher_cpus=args.matcher_cpus,
                          camera_restarts=args.camera_restarts, batch_frames=args.batch_frames, window=args.window)
