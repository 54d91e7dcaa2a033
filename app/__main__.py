"""``python -m app`` / ``mcreid-viewer``: the live multi-camera viewer.

Same detector and re-ID options as ``python -m tracker run`` (one ``TrackerConfig``, one set of
flags); ``--realtime`` is on by default here, since a live view paces files at their frame rate.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from mcreid.logs import setup_logging
from tracker.config import add_tracker_arguments, config_from_args
from tracker.shutdown import StopSignals, flush_and_exit
from tracker.store.base import StoreError
from tracker.store.session import StoreSession, add_store_arguments, check_store_args

log = logging.getLogger("app")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcreid-viewer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    viewer = parser.add_argument_group("viewer")
    viewer.add_argument("--source", action="append", default=[],
                        help="video file, stream URL (rtsp://...) or webcam index; repeat for more cameras (up to 9); "
                             "more can be added from the File menu")
    viewer.add_argument("--trail-length", type=int, default=20,
                        help="frames of foot-point trail per person; 0 hides trails (default: 20)")
    viewer.add_argument("--max-frames", type=int, default=None, help="end each source after this many frames")
    viewer.add_argument("--size", default="1600x900", help="window size WIDTHxHEIGHT (default: 1600x900)")
    viewer.add_argument("--snapshot", type=Path, default=None,
                        help="save a PNG of the whole window after --exit-after seconds, then exit")
    viewer.add_argument("--exit-after", type=float, default=None,
                        help="close after this many seconds of running (default with --snapshot: 10)")
    viewer.add_argument("-v", "--verbose", action="count", default=0)
    cluster = parser.add_argument_group("cluster job (Ray; pip install -e '.[cluster]')")
    cluster.add_argument("--attach", default=None, metavar="auto|ray://HOST:PORT",
                         help="show a job running on a Ray cluster (python -m tracker run --cluster ...): its "
                              "cameras' states and boxes and its identities; the frames stay on the cluster")
    cluster.add_argument("--job", default=None, help="with --attach: the job's name (default: the only job running)")
    cluster.add_argument("--camera", action="append", default=None,
                         help="with --attach: a camera of the job to show (repeat it; default: all, at most 9)")
    add_tracker_arguments(parser)
    add_store_arguments(parser)
    parser.set_defaults(realtime=True)
    return parser


def _window_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--size must be WIDTHxHEIGHT such as 1600x900, got {text!r}") from None
    if not (320 <= width <= 10_000 and 240 <= height <= 10_000):
        raise ValueError(f"--size must be between 320x240 and 10000x10000, got {text!r}")
    return width, height


def _check_args(args: argparse.Namespace) -> None:
    """ValueError for options out of range (the pipeline's are checked by ``TrackerConfig``)."""
    if args.exit_after is not None and args.exit_after <= 0:
        raise ValueError(f"--exit-after must be > 0 seconds, got {args.exit_after}")
    if args.trail_length < 0:
        raise ValueError(f"--trail-length must be >= 0, got {args.trail_length}")
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be >= 1, got {args.max_frames}")
    if args.snapshot is not None and args.snapshot.suffix.lower() != ".png":
        raise ValueError(f"--snapshot must name a .png file, got {args.snapshot}")


def _choose_platform(snapshot: bool) -> None:
    """Without a display, a snapshot run renders offscreen; an interactive run cannot start."""
    from app.qt import has_display

    if has_display():
        return
    if not snapshot:
        raise RuntimeError("no display (DISPLAY/WAYLAND_DISPLAY unset): run it on a desktop, or set "
                           "QT_QPA_PLATFORM=offscreen together with --snapshot PATH --exit-after SECONDS")
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    log.info("no display: rendering offscreen for the snapshot")


def _schedule_exit(window, seconds: float, snapshot: Path | None, outcome: dict) -> None:
    from PyQt5.QtCore import QTimer

    def finish() -> None:
        if snapshot is not None:
            try:
                window.save_snapshot(snapshot)
            except OSError as exc:
                log.error("%s", exc)
                outcome["code"] = 1
        window.close()

    QTimer.singleShot(int(seconds * 1000), finish)


def _attach(args: argparse.Namespace):
    """``--attach``: the cluster job to show (connected, its matcher found), or None. Ray is
    imported only here."""
    if args.attach is None:
        if args.job is not None or args.camera is not None:
            raise ValueError("--job and --camera need --attach")
        return None
    if args.source or args.store is not None:
        raise ValueError("--attach shows a cluster job's own cameras and identities: drop --source and --store")
    from tracker.cluster.attach import AttachedJob
    from tracker.cluster.options import parse_cluster

    target = parse_cluster(args.attach)
    if target.kind == "local":
        raise ValueError(f"--attach {args.attach!r}: expected auto (a cluster this machine is part of, or a job "
                         "started here with --cluster local) or ray://HOST:PORT")
    attached = AttachedJob(target, args.job, args.camera)
    attached.connect()
    from app.layout import MAX_CAMERAS

    shown = len(attached.camera_states())
    if shown > MAX_CAMERAS:
        attached.stop()
        raise ValueError(f"job {attached.job} has {shown} cameras and the viewer shows at most {MAX_CAMERAS}: choose "
                         "them with --camera NAME (repeat it)")
    return attached


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        _check_args(args)
        size = _window_size(args.size)
        config = config_from_args(args)
        check_store_args(args)
        attached = _attach(args)
        _choose_platform(args.snapshot is not None)
        from app.qt import application
        app = application()
        from app.layout import MAX_CAMERAS
        if len(args.source) > MAX_CAMERAS:
            raise ValueError(f"the viewer shows at most {MAX_CAMERAS} cameras, got {len(args.source)} --source")
        pipeline = session = None
        if attached is None:
            from tracker.pipeline import build_pipeline

            log.info("loading the detector and the re-ID model")
            pipeline = build_pipeline(config)
        if args.store is not None:
            from tracker.sources import parse_sources

            sources = {spec.camera_id: spec.uri for spec in parse_sources(args.source)}
            session = StoreSession.start(args.store, pipeline, sources, args.retention_days)
    except (ValueError, FileNotFoundError, ImportError, RuntimeError, StoreError) as exc:
        log.error("%s", exc)
        return 2
    from app.window import ViewerOptions, ViewerWindow

    if attached is not None:
        config = attached.config  # the job's own options
    window = ViewerWindow(config, args.source, pipeline, ViewerOptions(trail_length=args.trail_length),
                          runner_kwargs={"max_frames": args.max_frames},
                          store=session.store if session is not None else None, runner=attached)
    window.resize(*size)
    window.closed.connect(app.quit)
    outcome = {"code": 0}
    exit_after = args.exit_after if args.exit_after is not None else (10.0 if args.snapshot else None)
    if exit_after is not None:
        _schedule_exit(window, exit_after, args.snapshot, outcome)
    # SIGINT / SIGTERM close the window the same way as its close button (Python runs the handler
    # on the next timer tick); the exit code is then 130 / 143; a second signal exits at once.
    with StopSignals(on_stop=window.close) as signals:
        window.show()
        window.start()
        try:
            app.exec_()
        finally:
            window.stop()
            if session is not None and not session.close() and not outcome["code"]:
                outcome["code"] = 1  # the store could not be written (logged)
    code = signals.exit_code or outcome["code"]
    if window.runner.error:
        log.error("%s", window.runner.error)
        code = signals.exit_code or 1
    if window.runner.alive:  # a reader blocked in a stream read: do not let it abort the exit
        flush_and_exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
