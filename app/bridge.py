"""Results from the pipeline worker thread to the GUI thread, bounded.

The runner calls ``ResultMailbox.offer`` on its worker thread. The mailbox keeps only the newest
result per camera (an older one not yet shown is replaced and counted), and wakes the GUI with one
queued Qt signal per batch, so a slow GUI never builds a backlog and the worker never blocks.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

from PyQt5.QtCore import QObject, pyqtSignal

from tracker.types import FrameResult

log = logging.getLogger(__name__)


class ResultMailbox:
    """The newest ``FrameResult`` per camera, handed across threads.

    Args:
        notify: called (on the producer's thread) when the mailbox goes from empty to non-empty.
    """

    def __init__(self, notify: Callable[[], None] | None = None) -> None:
        self._notify = notify
        self._lock = threading.Lock()
        self._latest: dict[str, FrameResult] = {}
        self._pending = False
        self._closed = False
        self.received = 0
        self.replaced: dict[str, int] = {}

    def offer(self, result: FrameResult) -> None:
        """Keep ``result`` as its camera's newest (worker thread)."""
        with self._lock:
            if self._closed:
                return
            self.received += 1
            if result.camera_id in self._latest:
                self.replaced[result.camera_id] = self.replaced.get(result.camera_id, 0) + 1
            self._latest[result.camera_id] = result
            wake, self._pending = not self._pending, True
        if wake and self._notify is not None:
            self._notify()

    def take(self) -> dict[str, FrameResult]:
        """Everything new since the last call, one result per camera (GUI thread)."""
        with self._lock:
            latest, self._latest, self._pending = self._latest, {}, False
        return latest

    def close(self) -> None:
        """Ignore results from now on (the window is closing)."""
        with self._lock:
            self._closed = True
            self._latest.clear()


class ResultBridge(QObject):
    """A ``ResultMailbox`` whose wake-up is a Qt signal, delivered queued on the GUI thread.

    Connect ``ready`` to a slot that calls ``mailbox.take()``; pass ``mailbox.offer`` to the runner
    as ``on_result``.
    """

    ready = pyqtSignal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.mailbox = ResultMailbox(self._wake)

    def _wake(self) -> None:
        try:
            self.ready.emit()
        except RuntimeError:  # the Qt object is gone (window closed): nothing to wake
            log.debug("result bridge already deleted")
