"""``python -m tracker run`` / ``mcreid-track run``: the headless multi-camera runner."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from mcreid.logs import setup_logging
from tracker.config import TrackerConfig, add_tracker_arguments, config_from_args
from tracker.outputs import CameraWriter, final_track_ids, write_identities
from tracker.pipeline import Pipeline, build_pipeline
from tracker.runner import PipelineRunner
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
        for bar in self._bars.values():
            bar.close()


def run_headless(config: TrackerConfig, sources: Sequence[str], out_dir: Path, pipeline: Pipeline | None = None,
                 progress: bool = True, runner_kwargs: dict | None = None) -> dict[str, object]:
    """Run every source to its end (or until interrupted); write the outputs; return a summary.

    Returns:
        ``{"cameras": {camera_id: {"status", "message", "frames", "dropped"}}, "identities": n}``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    pipeline = pipeline or build_pipeline(config)
    writers: dict[str, CameraWriter] = {}
    lock = threading.Lock()

    def on_result(result: FrameResult) -> None:
        with lock:
            writer = writers.get(result.camera_id)
            if writer is None:
                writer = writers[result.camera_id] = CameraWriter(out_dir, result.camera_id)
            writer.write(result)
        bars.update(result)

    runner = PipelineRunner(config, sources, pipeline=pipeline, on_result=on_result, **(runner_kwargs or {}))
    bars = _Progress(runner, progress)
    runner.start()
    try:
        while not runner.join(0.2):
            pass
    except KeyboardInterrupt:
        log.warning("interrupted: settling tracks and writing what was processed")
    finally:
        runner.stop()
        bars.close()
        identities = runner.identities()
        final = final_track_ids(identities)
        for camera_id, writer in writers.items():
            writer.close(final.get(camera_id, {}))
    write_identities(out_dir / "identities.json", identities)
    states = runner.camera_states()
    for state in states:
        level = logging.WARNING if state.status == CameraStatus.ERROR else logging.INFO
        log.log(level, "camera %s: %s%s, %d frames processed, %d dropped", state.camera_id, state.status.value,
                f" ({state.message})" if state.message else "", state.frames_processed, state.dropped)
    log.info("%d global identities; outputs in %s", len(identities), out_dir)
    return {"cameras": {s.camera_id: {"status": s.status.value, "message": s.message,
                                      "frames": s.frames_processed, "dropped": s.dropped} for s in states},
            "identities": len(identities)}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        if args.max_frames is not None and args.max_frames < 1:
            raise ValueError(f"--max-frames must be >= 1, got {args.max_frames}")
        config = config_from_args(args)
        pipeline = build_pipeline(config)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        log.error("%s", exc)
        return 2
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # settle tracks and write outputs, as for Ctrl-C
    summary = run_headless(config, args.source, args.out, pipeline, progress=not args.no_progress,
                           runner_kwargs={"max_frames": args.max_frames})
    cameras = summary["cameras"]
    return 0 if any(c["status"] != CameraStatus.ERROR.value for c in cameras.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
