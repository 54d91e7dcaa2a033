"""``ViewerWindow``: the camera grid, the identities panel, menus, pause, snapshot and clean shutdown."""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PyQt5.QtCore import Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QCloseEvent, QKeySequence
from PyQt5.QtWidgets import (QAction, QFileDialog, QGridLayout, QInputDialog, QLabel, QMainWindow, QSplitter,
                             QWidget)

from app.bridge import ResultBridge
from app.identities_panel import IdentitiesPanel
from app.layout import MAX_CAMERAS, grid_positions, grid_shape
from app.tiles import CameraTile
from tracker.config import TrackerConfig
from tracker.pipeline import Pipeline
from tracker.runner import PipelineRunner

log = logging.getLogger(__name__)

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mkv *.mov *.webm *.mpg *.m4v);;All files (*)"


@dataclass(frozen=True)
class ViewerOptions:
    """Display settings of the viewer (the pipeline's are in ``TrackerConfig``).

    Attributes:
        trail_length: frames of foot-point history drawn per track; 0 hides trails.
        refresh_ms: how often tile states and statistics are refreshed.
        identities_ms: how often the identities panel is refreshed.
        stop_timeout_s: how long closing waits for each worker thread.
    """

    trail_length: int = 20
    refresh_ms: int = 250
    identities_ms: int = 500
    stop_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.trail_length < 0:
            raise ValueError(f"trail_length must be >= 0 frames, got {self.trail_length}")
        if self.refresh_ms < 10 or self.identities_ms < 10:
            raise ValueError(f"refresh periods must be >= 10 ms, got {self.refresh_ms} and {self.identities_ms}")


class CameraGrid(QWidget):
    """The camera tiles in an automatic grid (1x1 up to 3x3).

    Signals:
        clicked(camera_id, global_id): forwarded from the tiles.
    """

    clicked = pyqtSignal(str, int)

    def __init__(self, trail_length: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.trail_length = trail_length
        self.tiles: dict[str, CameraTile] = {}
        self._layout = QGridLayout(self)
        self._layout.setContentsMargins(2, 2, 2, 2)
        self._layout.setSpacing(3)
        self._hint = QLabel("No camera yet: File > Add video file… or Add stream or webcam…", self)
        self._hint.setAlignment(Qt.AlignCenter)
        self._layout.addWidget(self._hint, 0, 0)

    def tile(self, camera_id: str) -> CameraTile:
        """The tile of a camera, created (and the grid re-laid out) on first use."""
        tile = self.tiles.get(camera_id)
        if tile is None:
            if len(self.tiles) >= MAX_CAMERAS:
                raise ValueError(f"the viewer shows at most {MAX_CAMERAS} cameras")
            tile = self.tiles[camera_id] = CameraTile(camera_id, self.trail_length, self)
            tile.clicked.connect(self.clicked)
            self._relayout()
        return tile

    def _relayout(self) -> None:
        self._hint.setVisible(not self.tiles)
        for tile in self.tiles.values():
            self._layout.removeWidget(tile)
        for (row, col), tile in zip(grid_positions(len(self.tiles)), self.tiles.values()):
            self._layout.addWidget(tile, row, col)
        rows, cols = grid_shape(len(self.tiles))
        for i in range(MAX_CAMERAS):  # equal shares for the used rows and columns, none for the rest
            self._layout.setRowStretch(i, 1 if i < rows else 0)
            self._layout.setColumnStretch(i, 1 if i < cols else 0)


class ViewerWindow(QMainWindow):
    """The viewer. Owns a ``PipelineRunner`` kept alive for sources added from the menu; ``start()``
    starts it, closing the window stops it.

    Args:
        config: the pipeline's options.
        sources: paths, stream URLs or webcam indices (at most ``MAX_CAMERAS``).
        pipeline: a built pipeline (models loaded); None builds one on the worker thread.
        options: display settings.
        runner_kwargs: extra ``PipelineRunner`` arguments (``max_frames``, ``reconnect``, ``open_capture``).
        store: the identity store the pipeline records into (``--store``): enables *Search by photo…*
            and *Identity history…*.
        runner: what to show instead of a ``PipelineRunner`` of its own: an object with the same
            interface, such as ``tracker.cluster.attach.AttachedJob`` (a job running on a cluster:
            its cameras cannot be added to or paused from here).
    """

    closed = pyqtSignal()

    def __init__(self, config: TrackerConfig, sources: Sequence[str] = (), pipeline: Pipeline | None = None,
                 options: ViewerOptions = ViewerOptions(), runner_kwargs: dict | None = None,
                 store=None, runner=None) -> None:
        super().__init__()
        self.store = store
        self.dialogs: list = []  # open store dialogs (kept referenced)
        if len(sources) > MAX_CAMERAS:
            raise ValueError(f"the viewer shows at most {MAX_CAMERAS} cameras, got {len(sources)} sources")
        self.options = options
        self.selected = 0
        self.bridge = ResultBridge(self)
        if runner is None:
            runner = PipelineRunner(config, list(sources), pipeline=pipeline, on_result=self.bridge.mailbox.offer,
                                    keep_alive=True, **(runner_kwargs or {}))
        else:
            runner.on_result = self.bridge.mailbox.offer
        self.runner = runner
        self.grid = CameraGrid(options.trail_length)
        self.panel = IdentitiesPanel()
        self._build_ui()
        self._started = self._stopped = False
        self._ticks: deque[float] = deque(maxlen=20_000)  # GUI heartbeat times, for the stall figures
        self._timers = [self._timer(options.refresh_ms, self._refresh_states),
                        self._timer(options.identities_ms, self._refresh_identities),
                        self._timer(100, lambda: self._ticks.append(time.monotonic()))]
        self.bridge.ready.connect(self._show_results)
        self.grid.clicked.connect(self._on_tile_clicked)
        self.panel.identity_selected.connect(self._set_highlight)
        for state in self.runner.camera_states():
            self.grid.tile(state.camera_id).set_state(state)

    # -- construction ----------------------------------------------------------------------------
    def _timer(self, ms: int, slot) -> QTimer:
        timer = QTimer(self)
        timer.setInterval(ms)
        timer.timeout.connect(slot)
        return timer

    def _build_ui(self) -> None:
        self.setWindowTitle("mcreid viewer")
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(self.grid)
        splitter.addWidget(self.panel)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 0)
        splitter.setSizes([1200, 400])
        self.setCentralWidget(splitter)
        self.status_label = QLabel()
        self.statusBar().addPermanentWidget(self.status_label)
        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        self.add_file_action = self._action(file_menu, "Add video file…", "Ctrl+O", self._add_files_dialog)
        self.add_stream_action = self._action(file_menu, "Add stream or webcam…", "Ctrl+U", self._add_stream_dialog)
        self._action(file_menu, "Save snapshot…", "Ctrl+S", self._snapshot_dialog)
        file_menu.addSeparator()
        self._action(file_menu, "Quit", "Ctrl+Q", self.close)
        pipeline_menu = menus.addMenu("&Pipeline")
        self.pause_action = self._action(pipeline_menu, "Pause", "P", self.set_paused, checkable=True)
        view_menu = menus.addMenu("&View")
        self.trails_action = self._action(view_menu, "Show trails", "T", self._set_trails, checkable=True)
        self.trails_action.setChecked(self.options.trail_length > 0)
        self.trails_action.setEnabled(self.options.trail_length > 0)
        self._action(view_menu, "Clear selection", "Esc", lambda: self.select_identity(0))
        if self.store is not None:
            search_menu = menus.addMenu("&Search")
            self.search_action = self._action(search_menu, "Search by photo…", "Ctrl+F", self._search_dialog)
            self.history_action = self._action(search_menu, "Identity history…", "Ctrl+H",
                                               lambda: self.show_history(self.selected))
            self.panel.doubleClicked.connect(lambda _index: self.show_history(self.panel.selected_id()))
        if getattr(self.runner, "attached", False):  # a cluster job: its own cameras, paced by itself
            for action in (self.add_file_action, self.add_stream_action, self.pause_action):
                action.setEnabled(False)
            self.setWindowTitle(f"mcreid viewer · cluster job {self.runner.job}")
        toolbar = self.addToolBar("Pipeline")
        toolbar.setMovable(False)
        toolbar.addAction(self.add_file_action)
        toolbar.addAction(self.pause_action)
        toolbar.addAction(self.trails_action)

    def _action(self, menu, text: str, shortcut: str, slot, checkable: bool = False) -> QAction:
        action = QAction(text, self)
        action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        menu.addAction(action)
        return action

    # -- control ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the pipeline and the refresh timers (returns at once)."""
        if self._started:
            return
        self._started = True
        self.runner.start()
        for timer in self._timers:
            timer.start()

    def add_source(self, uri: str) -> str | None:
        """Open another source; returns its camera id, or None (with the reason in the status bar)."""
        if self._stopped:
            return None
        if len(self.grid.tiles) >= MAX_CAMERAS:
            self._message(f"cannot add {uri}: the viewer shows at most {MAX_CAMERAS} cameras")
            return None
        try:
            camera_id = self.runner.add_source(uri)
        except ValueError as exc:
            self._message(f"cannot add {uri!r}: {exc}")
            return None
        self.grid.tile(camera_id)
        self._message(f"added {uri} as {camera_id}")
        self._refresh_states()
        return camera_id

    def set_paused(self, paused: bool) -> None:
        """Pause or resume every camera and the pipeline."""
        if paused != self.runner.paused:
            self.runner.pause() if paused else self.runner.resume()
        if self.pause_action.isChecked() != paused:
            self.pause_action.setChecked(paused)
        self._refresh_states()

    def select_identity(self, global_id: int) -> None:
        """Select an identity (0: none): its row in the panel and its boxes in every view."""
        self.panel.select_identity(global_id)
        self._set_highlight(global_id)

    def save_snapshot(self, path: str | Path) -> Path:
        """Save a PNG of the whole window; OSError if it cannot be written."""
        self._show_results()
        self._refresh_states()
        self._refresh_identities()
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.grab().save(str(path), "PNG"):
            raise OSError(f"cannot write the snapshot {path} (is the folder writable?)")
        log.info("snapshot saved to %s", path)
        return path

    def stop(self) -> None:
        """Stop the timers and every worker thread (waits up to ``stop_timeout_s`` per thread)."""
        if self._stopped:
            return
        self._stopped = True
        for timer in self._timers:
            timer.stop()
        self.bridge.mailbox.close()
        self.runner.stop(self.options.stop_timeout_s)
        if self.runner.alive:
            log.warning("a pipeline thread did not stop within %.0f s", self.options.stop_timeout_s)
        self._refresh_states()  # the tiles show "stopped"
        stalls = self.gui_stalls_ms()
        if stalls:
            log.info("GUI heartbeat (100 ms timer): median gap %.0f ms, 99th percentile %.0f ms, max %.0f ms",
                     stalls["median"], stalls["p99"], stalls["max"])

    def closeEvent(self, event: QCloseEvent) -> None:
        self.stop()
        super().closeEvent(event)
        self.closed.emit()

    def gui_stalls_ms(self) -> dict[str, float]:
        """Gaps between ticks of the 100 ms heartbeat timer: how long the GUI thread was ever busy."""
        if len(self._ticks) < 3:
            return {}
        gaps = np.diff(np.asarray(self._ticks)) * 1000
        return {"median": float(np.median(gaps)), "p99": float(np.percentile(gaps, 99)), "max": float(gaps.max())}

    # -- slots -----------------------------------------------------------------------------------
    def _show_results(self) -> None:
        for camera_id, result in self.bridge.mailbox.take().items():
            if camera_id in self.grid.tiles or len(self.grid.tiles) < MAX_CAMERAS:
                self.grid.tile(camera_id).set_result(result)

    def _refresh_states(self) -> None:
        paused = self.runner.paused
        states = self.runner.camera_states()
        for state in states:
            self.grid.tile(state.camera_id).set_state(state, paused)
        activity = "stopped" if self.runner.error else "paused" if paused else "running"
        summary = f"{len(states)} cameras · {len(self.panel.global_ids)} identities · {activity}"
        if self.runner.error:  # the pipeline failed: every tile shows it too
            summary += f" · {self.runner.error}"
        self.status_label.setText(summary)

    def _refresh_identities(self) -> None:
        self.panel.update_identities(self.runner.identities())

    def _set_highlight(self, global_id: int) -> None:
        self.selected = global_id
        for tile in self.grid.tiles.values():
            tile.set_highlight(global_id or None)

    def _on_tile_clicked(self, camera_id: str, global_id: int) -> None:
        if global_id == 0:
            self._message(f"{camera_id}: that person has no global identity yet "
                          f"(it needs {self.runner.config.min_clips} clips)")
            return
        self.select_identity(max(global_id, 0))

    def _set_trails(self, show: bool) -> None:
        for tile in self.grid.tiles.values():
            tile.set_show_trails(show)

    def _message(self, text: str) -> None:
        log.info("%s", text)
        self.statusBar().showMessage(text, 8000)

    # -- identity store (--store) ----------------------------------------------------------------
    def search_photos(self, paths: Sequence[str]):
        """Search the store with photos of one person; shows and returns the results dialog (None and
        the reason in the status bar when a photo cannot be read)."""
        from app.search_dialog import SearchResultsDialog, search_photos

        if self.runner.pipeline is None:
            self._message("the re-ID model is still loading; search again in a moment")
            return None
        try:
            hits = search_photos(self.store, self.runner.pipeline.embedder, paths)
        except (FileNotFoundError, ValueError) as exc:
            self._message(str(exc))
            return None
        dialog = SearchResultsDialog(self.store, hits, list(paths), self)
        dialog.identity_chosen.connect(self.select_identity)
        dialog.show()
        self.dialogs.append(dialog)
        return dialog

    def show_history(self, global_id: int):
        """The selected identity's sightings across runs (None without a selection)."""
        if not global_id:
            self._message("select an identity first (in the panel or a view)")
            return None
        from app.search_dialog import HistoryDialog

        dialog = HistoryDialog(self.store, global_id, self)
        dialog.show()
        self.dialogs.append(dialog)
        return dialog

    def _search_dialog(self) -> None:
        from app.search_dialog import PHOTO_FILTER

        paths, _ = QFileDialog.getOpenFileNames(self, "Photos of one person", "", PHOTO_FILTER)
        if paths:
            self.search_photos(paths)

    # -- dialogs (menu) --------------------------------------------------------------------------
    def _add_files_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add video files", "", VIDEO_FILTER)
        for path in paths:
            self.add_source(path)

    def _add_stream_dialog(self) -> None:
        text, ok = QInputDialog.getText(self, "Add stream or webcam", "Stream URL (rtsp://, http://) or webcam index:")
        if ok and text.strip():
            self.add_source(text.strip())

    def _snapshot_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save snapshot", "mcreid_snapshot.png", "PNG images (*.png)")
        if path:
            try:
                self.save_snapshot(path)
            except OSError as exc:
                self._message(str(exc))
