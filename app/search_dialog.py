"""Identity store dialogs of the viewer (``--store``): search by photo, and one identity's history
across runs. Both read the store through the ``IdentityStore`` protocol (the pipeline's writer thread
records meanwhile; SQLite's WAL keeps the reads consistent)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from PyQt5.QtCore import QSize, Qt, pyqtSignal
from PyQt5.QtGui import QIcon, QPixmap
from PyQt5.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.identities_panel import style_thumbnail_table
from tracker.store.base import IdentityStore, SearchHit

THUMB = QSize(48, 96)
PHOTO_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.webp);;All files (*)"


def when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def search_photos(store: IdentityStore, embedder: Any, paths: Sequence[str], top: int = 10) -> list[SearchHit]:
    """Embed the photos with ``embedder`` (the store's model) and search the store.

    Raises:
        FileNotFoundError / ValueError: a photo is missing or not an image (the message names it).
    """
    from tracker.store.query import embed_photos, read_photo

    return store.search(embed_photos(embedder, [read_photo(p) for p in paths]), top)


def _icon(store: IdentityStore, sighting_id: int) -> QIcon:
    data = store.thumbnail(sighting_id) if sighting_id else None
    pixmap = QPixmap()
    if data is None or not pixmap.loadFromData(data, "JPG"):
        return QIcon()
    return QIcon(pixmap.scaled(THUMB, Qt.KeepAspectRatio, Qt.SmoothTransformation))


def _table(columns: Sequence[str], parent: QWidget) -> QTableWidget:
    table = QTableWidget(0, len(columns), parent)
    style_thumbnail_table(table, columns, THUMB)
    return table


def _fill(table: QTableWidget, row: int, icon: QIcon, texts: Sequence[str]) -> None:
    table.insertRow(row)
    thumb = QTableWidgetItem()
    thumb.setIcon(icon)
    table.setItem(row, 0, thumb)
    for col, text in enumerate(texts, start=1):
        item = QTableWidgetItem(text)
        item.setTextAlignment(Qt.AlignVCenter | Qt.AlignLeft)
        table.setItem(row, col, item)


class SearchResultsDialog(QDialog):
    """The identities most like the photo(s), best first. Selecting a row emits ``identity_chosen``
    (the window highlights that person if they are in view); double-clicking opens their history.
    """

    identity_chosen = pyqtSignal(int)
    COLUMNS = ("", "ID", "Similarity", "Cameras", "First seen", "Last seen", "Sightings", "Runs")

    def __init__(self, store: IdentityStore, hits: Sequence[SearchHit], photos: Sequence[str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.setWindowTitle("Search by photo")
        self.resize(820, 480)
        layout = QVBoxLayout(self)
        names = ", ".join(p.rsplit("/", 1)[-1] for p in photos)
        layout.addWidget(QLabel(f"{len(hits)} best identities for {names} (cosine similarity of re-ID features; "
                                "double-click a row for its history)"))
        self.table = _table(self.COLUMNS, self)
        self.global_ids = [hit.identity.global_id for hit in hits]
        for row, hit in enumerate(hits):
            ident = hit.identity
            _fill(self.table, row, _icon(store, hit.best_sighting),
                  (f"#{ident.global_id}", f"{hit.similarity:.3f}", ", ".join(ident.cameras), when(ident.first_seen_at),
                   when(ident.last_seen_at), str(ident.sightings), ", ".join(map(str, ident.runs))))
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.table.cellDoubleClicked.connect(lambda row, _col: self.show_history(self.global_ids[row]))
        self.history: HistoryDialog | None = None

    def _on_selection(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self.identity_chosen.emit(self.global_ids[rows[0].row()])

    def show_history(self, global_id: int) -> HistoryDialog:
        self.history = HistoryDialog(self.store, global_id, self)
        self.history.show()
        return self.history


class HistoryDialog(QDialog):
    """Every sighting of one identity across runs: when, where (run, camera, source, frames) and its crop."""

    COLUMNS = ("", "Seen", "Run", "Camera", "Track", "Frames", "Into the source", "Clips")

    def __init__(self, store: IdentityStore, global_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Identity #{global_id}: history")
        self.resize(860, 520)
        layout = QVBoxLayout(self)
        ident = store.identity(global_id)
        sightings = store.history(global_id)
        if ident is None:
            summary = f"#{global_id} is not in the identity store (not recorded yet, or forgotten)"
        else:
            summary = (f"#{global_id}: {len(sightings)} sightings in runs {', '.join(map(str, ident.runs))}, "
                       f"cameras {', '.join(ident.cameras)}; first seen {when(ident.first_seen_at)}, "
                       f"last seen {when(ident.last_seen_at)}")
        self.summary = QLabel(summary)
        layout.addWidget(self.summary)
        self.table = _table(self.COLUMNS, self)
        for row, s in enumerate(sightings):
            _fill(self.table, row, _icon(store, s.sighting_id if s.has_thumbnail else 0),
                  (f"{when(s.started_at)} - {when(s.ended_at)[11:]}", str(s.run_id), s.camera_id, str(s.track_id),
                   f"{s.first_frame}-{s.last_frame}", f"{s.first_time_s:.1f}-{s.last_time_s:.1f} s of {s.source}",
                   str(s.clip_count)))
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
