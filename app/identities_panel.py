"""``IdentitiesPanel``: one row per global identity (thumbnail, cameras, first/last seen, clips)."""

from __future__ import annotations

from typing import Sequence

import cv2
from PyQt5.QtCore import QSize, Qt, pyqtSignal
from PyQt5.QtGui import QBrush, QColor, QIcon, QPixmap
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app.tiles import bgr_to_qimage, qcolor
from tracker.types import GlobalIdentity

COLUMNS = ("", "ID", "Cameras", "First seen", "Last seen", "Clips")
THUMB_SIZE = QSize(40, 80)  # the thumbnails are person crops, twice as high as wide


def format_seconds(seconds: float) -> str:
    """``"12.3 s"`` under a minute, else ``"m:ss"``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}:{rest:02d}"



def style_thumbnail_table(table: QTableWidget, columns: Sequence[str], thumb: QSize) -> None:
    """Headers, whole-row single selection, read-only cells and rows sized for ``thumb`` icons in
    column 0 (the identities panel and the search dialog)."""
    table.setHorizontalHeaderLabels(list(columns))
    table.setSelectionBehavior(QAbstractItemView.SelectRows)
    table.setSelectionMode(QAbstractItemView.SingleSelection)
    table.setEditTriggers(QAbstractItemView.NoEditTriggers)
    table.setIconSize(thumb)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(thumb.height() + 6)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
    table.setColumnWidth(0, thumb.width() + 8)

class IdentitiesPanel(QTableWidget):
    """The global identities, sorted by id; rows update in place so the selection survives refreshes.

    Signals:
        identity_selected(global_id): the user selected a row (0: the selection was cleared).
    """

    identity_selected = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        style_thumbnail_table(self, COLUMNS, THUMB_SIZE)
        self.horizontalHeader().setSectionResizeMode(2, QHeaderView.Stretch)
        self._ids: list[int] = []  # global id of each row
        self._thumbs: dict[int, object] = {}  # global id -> the thumbnail array its icon was made from
        self._wanted = 0  # selected before its row existed (clicked in a view)
        self.itemSelectionChanged.connect(self._on_selection)

    @property
    def global_ids(self) -> list[int]:
        """Ids of the rows, top to bottom."""
        return list(self._ids)

    def selected_id(self) -> int:
        """The selected identity, 0 if none."""
        rows = self.selectionModel().selectedRows()
        return self._ids[rows[0].row()] if rows else 0

    def select_identity(self, global_id: int) -> None:
        """Select a row without emitting ``identity_selected`` (0 clears the selection). An id with no
        row yet (a track clicked in a view before the panel refreshed) is selected when it appears."""
        self.blockSignals(True)
        try:
            if global_id in self._ids:
                self._wanted = 0
                self.selectRow(self._ids.index(global_id))
                self.scrollToItem(self.item(self._ids.index(global_id), 1))
            else:
                self._wanted = global_id
                self.clearSelection()
        finally:
            self.blockSignals(False)

    def update_identities(self, identities: Sequence[GlobalIdentity]) -> None:
        """Show this snapshot: add new rows, refresh the others, drop vanished ids."""
        selected = self.selected_id()
        current = {ident.global_id: ident for ident in identities}
        self.blockSignals(True)
        try:
            for row in reversed(range(len(self._ids))):
                if self._ids[row] not in current:
                    self._thumbs.pop(self._ids[row], None)
                    self.removeRow(row)
                    del self._ids[row]
            for gid in sorted(current):
                if gid not in self._ids:
                    row = sum(1 for g in self._ids if g < gid)
                    self.insertRow(row)
                    self._ids.insert(row, gid)
                self._fill_row(self._ids.index(gid), current[gid])
        finally:
            self.blockSignals(False)
        if self._wanted in current:
            self.select_identity(self._wanted)
        elif selected in current:
            self.select_identity(selected)
        elif selected:  # the selected identity was merged into an older one
            self.select_identity(0)
            self.identity_selected.emit(0)

    def _fill_row(self, row: int, ident: GlobalIdentity) -> None:
        gid = ident.global_id
        if self.item(row, 0) is None or self._thumbs.get(gid) is not ident.thumbnail:
            self._thumbs[gid] = ident.thumbnail
            thumb = QTableWidgetItem()
            if ident.thumbnail is not None:
                small = cv2.resize(ident.thumbnail, (THUMB_SIZE.width(), THUMB_SIZE.height()),
                                   interpolation=cv2.INTER_AREA)
                thumb.setIcon(QIcon(QPixmap.fromImage(bgr_to_qimage(small))))
            self.setItem(row, 0, thumb)
        colour = qcolor(ident.colour)
        luminance = 0.299 * colour.red() + 0.587 * colour.green() + 0.114 * colour.blue()
        texts = (f"#{gid}", ", ".join(ident.cameras), format_seconds(ident.first_seen_s),
                 format_seconds(ident.last_seen_s), str(ident.clip_count))
        tip = "\n".join(f"{m.camera_id} track {m.track_id}: frames {m.first_frame}-{m.last_frame}, "
                        f"{m.clip_count} clips" for m in ident.members)
        if ident.older is not None:
            tip = f"{ident.older.count} earlier tracks\n" + tip
        for col, text in enumerate(texts, start=1):
            item = self.item(row, col)
            if item is None:
                item = QTableWidgetItem()
                self.setItem(row, col, item)
            if item.text() != text:
                item.setText(text)
            item.setToolTip(tip)
            item.setTextAlignment(Qt.AlignCenter if col != 2 else Qt.AlignVCenter | Qt.AlignLeft)
        id_item = self.item(row, 1)
        id_item.setBackground(QBrush(colour))
        id_item.setForeground(QBrush(QColor(Qt.black if luminance > 110 else Qt.white)))

    def _on_selection(self) -> None:
        self._wanted = 0
        self.identity_selected.emit(self.selected_id())
