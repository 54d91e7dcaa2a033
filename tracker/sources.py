"""Video sources: files, RTSP/HTTP streams and webcams, each read on its own thread.

A reader never raises into the pipeline: a file that is missing or unreadable, a corrupt frame,
a file that ends or a stream that drops all become the camera's ``CameraStatus`` and message,
and the other cameras go on.

Streams and webcams (``ReconnectPolicy``): one that has never delivered a frame is an ``error``
after ``connect_timeout_s`` (default 30 s: nothing listens, a wrong URL or webcam index); one that
worked and dropped reconnects with exponential backoff for as long as it takes (a camera that
reboots comes back), or ``max_attempts`` times when a limit is set. OpenCV's and FFmpeg's own
console messages are silenced (``quiet_opencv``); each attempt is one log line of ours instead.
Set ``OPENCV_LOG_LEVEL`` / ``OPENCV_FFMPEG_LOGLEVEL`` to see theirs.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

# FFmpeg reads its log level once, at the first capture the process opens: set it before any.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
import cv2  # noqa: E402

from tracker.types import CameraFrame, CameraStatus

log = logging.getLogger(__name__)

SOURCE_KINDS = ("file", "stream", "webcam")


@dataclass(frozen=True)
class SourceSpec:
    """What to open and what to call it.

    Attributes:
        uri: the path, URL or webcam index as given.
        camera_id: the file's stem, or ``cam<i>`` for streams and webcams.
        kind: "file", "stream" or "webcam".
    """

    uri: str
    camera_id: str
    kind: str


def parse_source(uri: str | int, index: int) -> SourceSpec:
    """A ``SourceSpec`` for a path, a URL (``rtsp://``, ``http://``...) or a webcam index ("0")."""
    text = str(uri).strip()
    if not text:
        raise ValueError("empty source: expected a video file, a stream URL or a webcam index")
    if text.isdigit():
        return SourceSpec(text, f"cam{index}", "webcam")
    if "://" in text:
        return SourceSpec(text, f"cam{index}", "stream")
    return SourceSpec(text, Path(text).stem or f"cam{index}", "file")


def parse_sources(uris: list[str], start: int = 0, taken: set[str] | None = None) -> list[SourceSpec]:
    """Specs for several sources, camera ids made unique (``name``, ``name_2``...)."""
    taken = set(taken or ())
    specs = []
    for i, uri in enumerate(uris, start):
        spec = parse_source(uri, i)
        name, n = spec.camera_id, 2
        while name in taken:
            name, n = f"{spec.camera_id}_{n}", n + 1
        taken.add(name)
        specs.append(SourceSpec(spec.uri, name, spec.kind))
    return specs


@dataclass(frozen=True)
class ReconnectPolicy:
    """Backoff for streams and webcams: ``initial_s``, doubling up to ``max_s``.

    Attributes:
        connect_timeout_s: a source that has never delivered a frame is an error after this many
            seconds (None: keep trying forever).
        max_attempts: a source that worked gives up after this many consecutive failed
            reconnections (None: never, as a service watching cameras that reboot should).
    """

    initial_s: float = 0.5
    max_s: float = 10.0
    max_attempts: int | None = None
    connect_timeout_s: float | None = 30.0

    def __post_init__(self) -> None:
        if self.connect_timeout_s is not None and self.connect_timeout_s <= 0:
            raise ValueError(f"connect timeout must be > 0 seconds, got {self.connect_timeout_s}")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"reconnection limit must be >= 1, got {self.max_attempts}")

    @classmethod
    def from_config(cls, connect_timeout: float, reconnect_limit: int) -> ReconnectPolicy:
        """From ``--connect-timeout`` and ``--reconnect-limit`` (0 means no limit for both)."""
        return cls(connect_timeout_s=connect_timeout or None, max_attempts=reconnect_limit or None)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnection ``attempt`` (1-based)."""
        return min(self.max_s, self.initial_s * 2 ** (attempt - 1))


def quiet_opencv() -> None:
    """Silence OpenCV's console messages (unless the user set ``OPENCV_LOG_LEVEL``); FFmpeg's are
    silenced when this module is imported (``OPENCV_FFMPEG_LOGLEVEL``, unless the user set it)."""
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def _open_capture(uri: str) -> Any:
    return cv2.VideoCapture(int(uri) if uri.isdigit() else uri)


class CameraReader:
    """Decodes one source on a thread into a bounded queue.

    Args:
        spec: the source.
        realtime: pace files at their frame rate and keep only the newest frame (older ones are
            dropped and counted); otherwise block until the pipeline took each frame.
        queue_size: frames held when not real-time.
        open_capture: ``uri -> cv2.VideoCapture``-like object (tests pass fakes).
        reconnect: backoff for streams and webcams.
        max_bad_frames: consecutive unreadable frames skipped inside a file before it counts as ended.
        max_frames: end the source after this many frames (None: read to the end).
        start_frame: frames already processed by an earlier reader of this source (a restarted
            cluster camera): a file resumes after them, and frame indices of every kind of source
            continue from there.
    """

    def __init__(self, spec: SourceSpec, realtime: bool = False, queue_size: int = 4,
                 open_capture: Callable[[str], Any] | None = None, reconnect: ReconnectPolicy | None = None,
                 max_bad_frames: int = 25, max_frames: int | None = None, start_frame: int = 0) -> None:
        if start_frame < 0:
            raise ValueError(f"start_frame must be >= 0, got {start_frame}")
        self.spec = spec
        self.realtime = realtime
        self.frames: queue.Queue[CameraFrame] = queue.Queue(maxsize=1 if realtime else queue_size)
        self._open = open_capture or _open_capture
        self.reconnect = reconnect or ReconnectPolicy()
        self.max_bad_frames = max_bad_frames
        self.max_frames = max_frames
        self.status = CameraStatus.OPENING
        self.message = ""
        self.frames_read = 0
        self.dropped = 0
        self.total_frames = 0
        self.fps = 0.0
        self._frame_index = self.start_frame = start_frame
        self._started_at = 0.0
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._thread = threading.Thread(target=self._run, name=f"reader-{spec.camera_id}", daemon=True)
        quiet_opencv()

    # -- control -------------------------------------------------------------------------------
    def start(self) -> None:
        self._started_at = time.monotonic()
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stop reading and wait for the thread (``timeout`` seconds, None: until it ends).

        Returns:
            True if the thread has ended (False: it is still inside a blocking read).
        """
        self._stop.set()
        self._resume.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self.status in (CameraStatus.OPENING, CameraStatus.RUNNING, CameraStatus.RECONNECTING):
            self._set(CameraStatus.STOPPED, "stopped")
        return not self._thread.is_alive()

    def pause(self, paused: bool) -> None:
        """Files stop decoding while paused; live sources keep reading (and dropping) to stay connected."""
        if paused:
            self._resume.clear()
        else:
            self._resume.set()

    @property
    def alive(self) -> bool:
        """The reader thread is running."""
        return self._thread.is_alive()

    @property
    def finished(self) -> bool:
        """No more frames will come (ended, error or stopped) and the queue is drained."""
        return self.status in (CameraStatus.ENDED, CameraStatus.ERROR, CameraStatus.STOPPED) and self.frames.empty()

    def get(self, timeout: float = 0.0) -> CameraFrame | None:
        """The next frame, or None when none arrived within ``timeout`` seconds."""
        try:
            return self.frames.get(timeout=timeout) if timeout > 0 else self.frames.get_nowait()
        except queue.Empty:
            return None

    # -- thread --------------------------------------------------------------------------------
    def _set(self, status: CameraStatus, message: str = "") -> None:
        if (status, message) != (self.status, self.message):
            level = logging.WARNING if status in (CameraStatus.ERROR, CameraStatus.RECONNECTING) else logging.INFO
            log.log(level, "camera %s: %s%s", self.spec.camera_id, status.value, f" ({message})" if message else "")
        self.status, self.message = status, message

    def _run(self) -> None:
        try:
            if self.spec.kind == "file":
                self._run_file()
            else:
                self._run_live()
        except Exception as exc:  # a reader must never take the process down
            log.exception("camera %s: reader failed", self.spec.camera_id)
            self._set(CameraStatus.ERROR, f"reader failed: {exc}")

    def _run_file(self) -> None:
        path = Path(self.spec.uri).expanduser()
        if path.is_dir():
            self._set(CameraStatus.ERROR, f"{path} is a folder; expected a video file (give each video as its "
                                          "own --source)")
            return
        if not path.is_file():
            self._set(CameraStatus.ERROR, f"file not found: {path} (expected a video file)")
            return
        capture = self._open(str(path))
        try:
            if not capture.isOpened():
                self._set(CameraStatus.ERROR, f"cannot open {path}: not a video OpenCV can read")
                return
            self._probe(capture)
            if self.start_frame and not self._skip(capture, path):
                return
            ok, frame = capture.read()
            if not ok:
                if self.start_frame:
                    self._set(CameraStatus.ENDED, f"end of file: no frame after frame {self.start_frame} (resumed there)")
                else:
                    self._set(CameraStatus.ERROR, f"cannot read any frame from {path}: unreadable or empty video")
                return
            self._set(CameraStatus.RUNNING)
            started, bad = time.monotonic(), 0
            while not self._stop.is_set():
                self._frame_index += 1
                if self.max_frames is not None and self._frame_index > self.max_frames:
                    self._set(CameraStatus.ENDED, f"stopped after {self.max_frames} frames (--max-frames)")
                    return
                if ok:
                    self.dropped += bad  # unreadable frames followed by a good one were corrupt frames
                    bad = 0
                    self._pace(started)
                    self._push(frame)
                elif self._frame_index <= self.total_frames and bad < self.max_bad_frames:
                    bad += 1  # skip it, keep the numbering; counted as dropped once a good frame follows
                else:
                    self._end_of_file(self._frame_index - 1 - bad)
                    return
                if not self._resume.is_set():  # paused: real-time pacing restarts from here
                    waited = time.monotonic()
                    self._resume.wait()
                    started += time.monotonic() - waited
                ok, frame = capture.read()
        finally:
            capture.release()

    def _skip(self, capture: Any, path: Path) -> bool:
        """Resume after ``start_frame`` frames (decoded and dropped: a seek is not frame-exact in
        every codec); False when the file ended before."""
        for _ in range(self.start_frame):
            if self._stop.is_set():
                return False
            if not capture.grab():
                self._set(CameraStatus.ENDED, f"end of file: no frame after frame {self.start_frame} (resumed there)")
                return False
        log.info("camera %s: resuming %s after frame %d", self.spec.camera_id, path, self.start_frame)
        return True

    def _end_of_file(self, last_frame: int) -> None:
        """Ended after frame ``last_frame``. Unreadable frames at the end are not counted as drops:
        a truncated file (header longer than its data) gets its real length as ``total_frames``."""
        message = f"end of file after {self.frames_read} frames"
        if last_frame < self.total_frames:
            message += f" (its header announced {self.total_frames}: a truncated file?)"
            self.total_frames = last_frame
        self._set(CameraStatus.ENDED, message)

    def _probe(self, capture: Any) -> None:
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps < 1000 else 25.0
        self.total_frames = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))

    def _pace(self, started: float) -> None:
        """Real-time files: wait until this frame is due."""
        if self.realtime and self.spec.kind == "file":
            delay = started + (self._frame_index - 1 - self.start_frame) / self.fps - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    def _push(self, frame: Any) -> None:
        self.frames_read += 1
        item = CameraFrame(self.spec.camera_id, self._frame_index, frame, time.monotonic(),
                           (self._frame_index - 1) / self.fps)
        if self.realtime:
            try:
                self.frames.get_nowait()  # the pipeline is behind: drop the older frame
                self.dropped += 1
            except queue.Empty:
                pass
            self.frames.put_nowait(item)
            return
        while not self._stop.is_set():
            try:
                self.frames.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run_live(self) -> None:
        attempt = 0
        what = "webcam" if self.spec.kind == "webcam" else "stream"
        while not self._stop.is_set():
            capture = self._open(self.spec.uri)
            try:
                if capture.isOpened():
                    if attempt == 0 or self.status != CameraStatus.RUNNING:
                        self._probe(capture)
                    attempt = self._read_live(capture, attempt)
            finally:
                capture.release()
            if self._stop.is_set():
                return
            attempt += 1
            timeout = self.reconnect.connect_timeout_s
            if not self.frames_read and timeout is not None and time.monotonic() - self._started_at >= timeout:
                self._set(CameraStatus.ERROR, f"no frame from {what} {self.spec.uri} within {timeout:g} s ({attempt} "
                                              "attempts): nothing there, or a wrong URL or index (--connect-timeout)")
                return
            limit = self.reconnect.max_attempts
            if self.frames_read and limit is not None and attempt > limit:
                self._set(CameraStatus.ERROR, f"{what} {self.spec.uri} dropped; gave up after {limit} reconnection "
                                              "attempts (--reconnect-limit)")
                return
            delay = self.reconnect.delay(attempt)
            if timeout is not None and not self.frames_read:  # do not sleep past the connect deadline
                delay = max(0.0, min(delay, self._started_at + timeout - time.monotonic()))
            verb = "cannot open" if not self.frames_read else "lost"
            self._set(CameraStatus.RECONNECTING, f"{verb} {what} {self.spec.uri}; retry {attempt} in {delay:.1f}s")
            self._stop.wait(delay)

    def _read_live(self, capture: Any, attempt: int) -> int:
        """Read until the stream drops; returns the attempt count (reset once frames flow)."""
        while not self._stop.is_set():
            ok, frame = capture.read()
            if not ok:
                return attempt
            if attempt or self.status != CameraStatus.RUNNING:
                attempt = 0
                self._set(CameraStatus.RUNNING)
            self._frame_index += 1
            self._push(frame)
        return attempt
