"""``python -m tracker run`` / ``mcreid-track run``: the headless multi-camera runner."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from mcreid.logs import setup_logging
from tracker.cluster.options import ClusterOptions, add_cluster_arguments, cluster_options_from_args
from tracker.config import TrackerConfig, add_tracker_arguments, config_from_args
from tracker.out_dir import describe_os_error, prepare_out_dir
from tracker.outputs import CameraWriter, final_track_ids, write_identities
from tracker.pipeline import Pipeline, build_pipeline
from tracker.runner import PipelineRunner
from tracker.shutdown import StopSignals, flush_and_exit
from tracker.sources import parse_sources
from tracker.store.base import StoreError
from tracker.store.session import StoreSession, add_store_arguments, check_store_args
from tracker.types import CameraStatus, FrameResult

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tracker", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="track people across cameras and write MOT files + identities.json")
    run.add_argument("--source", action="append", required=True,
                     help="video file, stream URL (rtsp://...) or webcam index; repeat for more cameras")
    run.add_argument("--out", required=True, type=Path, help="output folder")
    run.add_argument("--max-frames", type=int, default=None, help="stop each source after this many frames")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("-v", "--verbose", action="count", default=0)
    add_tracker_arguments(run)
    add_store_arguments(run)
    add_cluster_arguments(run)
    return parser


class _Progress:
    """One tqdm bar per source."""

    def __init__(self, runner: PipelineRunner, enabled: bool) -> None:
        self.enabled = enabled
        self._bars: dict[str, tqdm] = {}
        self._runner = runner

    def update(self, result: FrameResult) -> None:
        if not self.enabled:
            return
        bar = self._bars.get(result.camera_id)
        if bar is None:
            state = next((s for s in self._runner.camera_states() if s.camera_id == result.camera_id), None)
            total = state.total_frames if state and state.total_frames else None
            bar = self._bars[result.camera_id] = tqdm(total=total, desc=result.camera_id, unit="frame",
                                                      position=len(self._bars), leave=True, dynamic_ncols=True)
        bar.update(result.frame_index - bar.n)

    def close(self) -> None:
        totals = {s.camera_id: s.total_frames for s in self._runner.camera_states()}
        for camera_id, bar in self._bars.items():
            if totals.get(camera_id) and bar.total != totals[camera_id]:  # a truncated file's real length
                bar.total = totals[camera_id]
                bar.refresh()
            bar.close()


def run_headless(config: TrackerConfig, sources: Sequence[str], out_dir: Path, pipeline: Pipeline | None = None,
                 progress: bool = True, runner_kwargs: dict | None = None,
                 stop: threading.Event | None = None) -> dict[str, object]:
    """Run every source to its end, or until ``stop`` is set (or Ctrl-C); write the outputs.

    On a stop the readers stop, the worker finishes its current step and settles every track,
    and only then are the files closed: ``<camera>.txt``, ``.tracks.txt`` and ``identities.json``
    agree and hold every processed frame. A write that fails (a full disk) stops the run the same
    way; the files keep what was written.

    Returns:
        ``{"cameras": {camera_id: {"status", "message", "frames", "dropped"}}, "identities": n,
        "error": "" or why the run stopped early, "threads_ended": bool}``.
    """
    out_dir = prepare_out_dir(out_dir)
    pipeline = pipeline or build_pipeline(config)
    stop = stop or threading.Event()
    writers: dict[str, CameraWriter] = {}
    lock = threading.Lock()
    failure: list[str] = []

    def on_result(result: FrameResult) -> None:
        with lock:
            if failure or closing:
                return
            try:
                writer = writers.get(result.camera_id)
                if writer is None:
                    writer = writers[result.camera_id] = CameraWriter(out_dir, result.camera_id)
                writer.write(result)
            except OSError as exc:
                failure.append(f"cannot write the outputs in {out_dir}: {describe_os_error(exc)}")
                log.error("%s; stopping the run", failure[0])
                stop.set()
                return
        bars.update(result)

    closing = False
    runner = PipelineRunner(config, sources, pipeline=pipeline, on_result=on_result, **(runner_kwargs or {}))
    bars = _Progress(runner, progress)
    runner.start()
    try:
        while not runner.join(0.2) and not stop.is_set():
            pass
    except KeyboardInterrupt:  # called from Python without StopSignals installed
        log.warning("interrupted: settling tracks and writing what was processed")
    finally:
        ended = runner.stop(timeout=None if stop.is_set() or failure else 60.0)
        bars.close()
        with lock:  # a worker that did not end can no longer write
            closing = True
            stop.set()
        identities = runner.identities()
        # every member is listed once the worker has ended; a worker that never ended leaves a
        # live snapshot: the files then keep the ids as they were written
        final = final_track_ids(identities) if all(i.older is None for i in identities) else None
        for camera_id, writer in writers.items():
            try:
                writer.close(None if final is None else final.get(camera_id, {}))
            except OSError as exc:
                failure.append(f"cannot finish {writer.global_path}: {describe_os_error(exc)} (it keeps the rows "
                               "written during the run)")
                log.error("%s", failure[-1])
    try:
        write_identities(out_dir / "identities.json", identities)
    except OSError as exc:
        failure.append(f"cannot write {out_dir / 'identities.json'}: {describe_os_error(exc)}")
        log.error("%s", failure[-1])
    states = runner.camera_states()
    for state in states:
        level = logging.WARNING if state.status == CameraStatus.ERROR else logging.INFO
        log.log(level, "camera %s: %s%s, %d frames processed, %d dropped", state.camera_id, state.status.value,
                f" ({state.message})" if state.message else "", state.frames_processed, state.dropped)
    log.info("%d global identities; outputs in %s", len(identities), out_dir)
    return {"cameras": {s.camera_id: {"status": s.status.value, "message": s.message,
                                      "frames": s.frames_processed, "dropped": s.dropped} for s in states},
            "identities": len(identities), "error": failure[0] if failure else "", "threads_ended": ended}


def exit_code(summary: dict[str, object], signals: StopSignals) -> int:
    """128 + signal after a signal; 1 when the outputs could not be written or every camera failed; else 0."""
    if signals.exit_code is not None:
        return signals.exit_code
    if summary["error"]:
        return 1
    cameras = summary["cameras"]
    return 0 if any(c["status"] != CameraStatus.ERROR.value for c in cameras.values()) else 1


def run_on_cluster(args: argparse.Namespace, config: TrackerConfig, cluster: ClusterOptions,
                   signals: StopSignals) -> int:
    """``--cluster``: the same run on Ray (``tracker.cluster``), with the same outputs and exit codes.
    ``--out`` and ``--store`` are written by the matcher actor: on this machine with ``local`` and
    ``auto``, on the head node with ``ray://`` (give paths that exist there)."""
    remote = cluster.target.kind == "client"
    out_dir = args.out if remote else prepare_out_dir(args.out).resolve()
    if not remote:
        check_store_args(args)
    elif args.retention_days is not None and args.store is None:
        raise ValueError("--retention-days needs --store")
    store = None
    if args.store is not None:
        store = (str(args.store if remote else args.store.expanduser().resolve()), args.retention_days)
    from tracker.cluster.launch import ClusterError, run_cluster

    try:
        summary = run_cluster(config, args.source, out_dir, cluster, store=store, max_frames=args.max_frames,
                              stop=signals.event, progress=not args.no_progress, on_connect=signals.install)
    except ClusterError as exc:
        log.error("%s", exc)
        return 2
    code = exit_code(summary, signals)
    if not summary.get("store_written", True) and code == 0:
        code = 1  # the store could not be written (the matcher logged why)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Exit codes: 0 done, 1 every camera failed or the outputs (or the identity store) could not be
    written, 2 bad options, models, output folder or store (nothing run), 130 / 143 stopped by SIGINT /
    SIGTERM (outputs written)."""
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    with StopSignals() as signals:  # from here on a signal is a clean stop, also while models load
        try:
            if args.max_frames is not None and args.max_frames < 1:
                raise ValueError(f"--max-frames must be >= 1, got {args.max_frames}")
            config = config_from_args(args)
            cluster = cluster_options_from_args(args)
            if cluster is not None:  # Ray is imported from here on only
                return run_on_cluster(args, config, cluster, signals)
            out_dir = prepare_out_dir(args.out)  # before any model loads
            check_store_args(args)
            pipeline = build_pipeline(config)
            store = None
            if args.store is not None:
                sources = {spec.camera_id: spec.uri for spec in parse_sources(args.source)}
                store = StoreSession.start(args.store, pipeline, sources, args.retention_days)
        except (ValueError, FileNotFoundError, ImportError, StoreError) as exc:
            log.error("%s", exc)
            return 2
        if signals.event.is_set():
            log.warning("stopped before the run started; nothing written")
            return signals.exit_code or 0
        try:
            summary = run_headless(config, args.source, out_dir, pipeline, progress=not args.no_progress,
                                   runner_kwargs={"max_frames": args.max_frames}, stop=signals.event)
        finally:
            stored = store.close() if store is not None else True
        code = exit_code(summary, signals)
        if not stored and code == 0:
            code = 1  # the store could not be written (the error was logged); the outputs were
    if not summary["threads_ended"]:  # a reader stuck in a blocking read: do not let it abort the exit
        log.warning("a reader is still blocked in a read; exiting without waiting for it")
        flush_and_exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
