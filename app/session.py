"""The viewer's pipeline runner: ``PipelineRunner`` kept alive for sources added from the menu."""

from __future__ import annotations

from tracker.runner import PipelineRunner
from tracker.types import CameraFrame


class ViewerRunner(PipelineRunner):
    """A ``PipelineRunner`` whose worker waits for new sources until ``stop()``.

    The headless runner's worker ends once every source is over (or at once with no source); the
    viewer must keep it for sources added later from the menu, and must not spin while it waits.
    """

    idle_wait_s = 0.01

    def _all_finished(self) -> bool:
        return False  # only stop() ends the viewer's worker

    def _gather(self) -> list[CameraFrame]:
        frames = super()._gather()
        if not frames:
            # nothing ready (no source, all ended, opening or reconnecting): sleep instead of spinning
            self._stop.wait(self.idle_wait_s)
        return frames
