"""SIGINT / SIGTERM as a stop *request*: the run finishes its step, settles and writes, then exits.

The handler raises nothing: it sets an event the main loop checks. (Raising ``KeyboardInterrupt``
from a handler can interrupt ``Thread.join`` and leave a worker marked finished while it still
runs; closing files under it then fails, and the interpreter can abort at exit.) A second signal
while stopping exits at once with the same code, without writing the outputs.

Exit codes follow the shell convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Callable

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Turns SIGINT and SIGTERM into ``event`` while installed (main thread only).

    Args:
        on_stop: also called (in the main thread) at the first signal, e.g. to close a window.

    Attributes:
        event: set by the first signal (callers may also set it to stop).
        signum: the first signal received, or None.
    """

    def __init__(self, on_stop: Callable[[], object] | None = None) -> None:
        self.on_stop = on_stop
        self.event = threading.Event()
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def exit_code(self) -> int | None:
        """128 + the signal number, or None when no signal came."""
        return None if self.signum is None else 128 + self.signum

    def install(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __enter__(self) -> StopSignals:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None:
            log.error("%s again while stopping: exiting now, outputs not written", name)
            flush_and_exit(128 + signum)
        self.signum = signum
        self.event.set()
        log.warning("%s: stopping after the current step; settling tracks and writing the outputs "
                    "(send it again to exit at once)", name)
        if self.on_stop is not None:
            self.on_stop()


def flush_and_exit(code: int) -> None:
    """Exit now with ``code`` after flushing logs and standard streams; threads still inside native
    calls (a reader blocked on a stream) cannot abort the interpreter's shutdown this way."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
