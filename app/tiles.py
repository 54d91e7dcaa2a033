"""``CameraTile``: one live camera view with identity boxes, trails, statistics and its life state."""

from __future__ import annotations

import cv2
import numpy as np
from PyQt5.QtCore import QPoint, QPointF, QRect, Qt, pyqtSignal
from PyQt5.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PyQt5.QtWidgets import QSizePolicy, QWidget

from app.layout import fit_rect
from app.overlay import BoxStyle, Trails, box_at, box_styles
from tracker.types import CameraState, CameraStatus, FrameResult

BACKGROUND = QColor(24, 24, 28)
HEADER_HEIGHT = 22
STATUS_COLOURS = {  # RGB of the text shown over a tile that is not simply running
    CameraStatus.OPENING: (200, 200, 200),
    CameraStatus.RECONNECTING: (255, 170, 40),
    CameraStatus.ENDED: (140, 190, 255),
    CameraStatus.ERROR: (255, 90, 80),
    CameraStatus.STOPPED: (200, 200, 200),
}


def bgr_to_qimage(image: np.ndarray) -> QImage:
    """A ``QImage`` owning a copy of a ``(H, W, 3)`` uint8 BGR array."""
    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    return QImage(image.data, w, h, image.strides[0], QImage.Format_BGR888).copy()


def qcolor(bgr: tuple[int, int, int]) -> QColor:
    return QColor(int(bgr[2]), int(bgr[1]), int(bgr[0]))


class CameraTile(QWidget):
    """The view of one camera.

    Signals:
        clicked(camera_id, global_id): a left click; ``global_id`` is the identity of the box under
            the cursor, 0 if that track has none yet, -1 if no box was hit.
    """

    clicked = pyqtSignal(str, int)

    def __init__(self, camera_id: str, trail_length: int = 20, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.camera_id = camera_id
        self.result: FrameResult | None = None
        self.state: CameraState | None = None
        self.paused = False
        self.highlight: int | None = None
        self.show_trails = trail_length > 0
        self.trails = Trails(trail_length)
        self.frames_shown = 0
        self._image: QImage | None = None
        self._image_source: np.ndarray | None = None  # the frame _image was made from
        self._image_size = (0, 0)
        self._view: tuple[int, int, float] | None = None  # frame -> widget: x offset, y offset, scale
        self.setMinimumSize(160, 110)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setAttribute(Qt.WA_OpaquePaintEvent)
        self.setToolTip(f"camera {camera_id}: click a person to select their identity")

    # -- data in ---------------------------------------------------------------------------------
    def set_result(self, result: FrameResult) -> None:
        """Show a new frame with its boxes."""
        self.result = result
        self.trails.update(result)
        self.frames_shown += 1
        self.update()

    def set_state(self, state: CameraState, paused: bool = False) -> None:
        """Update the life state and statistics shown in the header."""
        if state != self.state or paused != self.paused:
            self.state, self.paused = state, paused
            self.update()

    def set_highlight(self, global_id: int | None) -> None:
        """Draw this identity thicker and dim the others (None: no highlight)."""
        if global_id != self.highlight:
            self.highlight = global_id
            self.update()

    def set_show_trails(self, show: bool) -> None:
        self.show_trails = show
        self.update()

    # -- what is drawn (also read by tests) ------------------------------------------------------
    def styles(self) -> list[BoxStyle]:
        """The boxes of the frame shown, as drawn."""
        return box_styles(self.result, self.highlight) if self.result is not None else []

    def header_text(self) -> str:
        """Camera name, status and statistics, as in the tile's top bar."""
        state = self.state
        if state is None:
            return f"{self.camera_id}  opening"
        text = f"{self.camera_id}  {state.status.value}"
        if state.frames_processed:
            text += f"  {state.fps:4.1f} fps  dropped {state.dropped}  latency {state.latency_s * 1000:.0f} ms"
        if state.total_frames:
            text += f"  frame {state.frames_read}/{state.total_frames}"
        return text

    def status_text(self) -> str:
        """The notice over the view ("" while simply running)."""
        state = self.state
        if state is None:
            return "opening…"
        if state.status == CameraStatus.RUNNING:
            return "paused" if self.paused else ""
        return f"{state.status.value}: {state.message}" if state.message else state.status.value

    def frame_to_widget(self, x: float, y: float) -> QPoint:
        """Widget coordinates of a source-pixel point (after the last paint)."""
        if self._view is None:
            raise ValueError(f"camera {self.camera_id} has not painted a frame yet")
        ox, oy, scale = self._view
        return QPoint(int(round(ox + x * scale)), int(round(oy + y * scale)))

    # -- painting --------------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), BACKGROUND)
            if self.result is not None:
                self._paint_frame(painter)
            self._paint_header(painter)
            self._paint_status(painter)
        finally:
            painter.end()

    def _frame_image(self, w: int, h: int) -> QImage:
        """The frame resized to ``w x h`` (done once per frame and size, with OpenCV)."""
        frame = self.result.image
        if frame is not self._image_source or (w, h) != self._image_size:
            shrink = w < frame.shape[1]
            resized = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
            self._image, self._image_source, self._image_size = bgr_to_qimage(resized), frame, (w, h)
        return self._image

    def _paint_frame(self, painter: QPainter) -> None:
        frame_h, frame_w = self.result.image.shape[:2]
        x, y, w, h = fit_rect(frame_w, frame_h, self.width(), self.height())
        if w == 0:
            return
        painter.drawImage(x, y, self._frame_image(w, h))
        scale = w / frame_w
        self._view = (x, y, scale)
        if self.show_trails:
            self._paint_trails(painter, x, y, scale)
        for style in self.styles():
            self._paint_box(painter, style, x, y, scale)

    def _paint_trails(self, painter: QPainter, ox: int, oy: int, scale: float) -> None:
        painter.setRenderHint(QPainter.Antialiasing, True)
        for gid, colour, points in self.trails.lines():
            if self.highlight and gid != self.highlight:
                colour = tuple(int(c * 0.5) for c in colour)
            painter.setPen(QPen(qcolor(colour), 2))
            painter.drawPolyline(QPolygonF([QPointF(ox + px * scale, oy + py * scale) for px, py in points]))
        painter.setRenderHint(QPainter.Antialiasing, False)

    def _paint_box(self, painter: QPainter, style: BoxStyle, ox: int, oy: int, scale: float) -> None:
        x1, y1, x2, y2 = style.xyxy
        rect = QRect(int(ox + x1 * scale), int(oy + y1 * scale), int((x2 - x1) * scale), int((y2 - y1) * scale))
        colour = qcolor(style.colour)
        pen = QPen(colour, style.width)
        pen.setJoinStyle(Qt.MiterJoin)
        painter.setPen(pen)
        painter.setBrush(Qt.NoBrush)
        painter.drawRect(rect)
        font = QFont(self.font())
        font.setPointSizeF(10 if style.highlighted else 8.5)
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        label = QRect(0, 0, metrics.horizontalAdvance(style.label) + 6, metrics.height() + 2)
        label.moveBottomLeft(QPoint(rect.left() - style.width // 2, rect.top() - style.width // 2))
        if label.top() < HEADER_HEIGHT:  # no room above the box: put the label inside it
            label.moveTopLeft(QPoint(rect.left(), rect.top()))
        painter.fillRect(label, colour)
        luminance = 0.299 * colour.red() + 0.587 * colour.green() + 0.114 * colour.blue()
        painter.setPen(Qt.black if luminance > 110 else Qt.white)
        painter.drawText(label, Qt.AlignCenter, style.label)

    def _paint_header(self, painter: QPainter) -> None:
        bar = QRect(0, 0, self.width(), HEADER_HEIGHT)
        painter.fillRect(bar, QColor(0, 0, 0, 170))
        font = QFont(self.font())
        font.setPointSizeF(9)
        painter.setFont(font)
        painter.setPen(QColor(235, 235, 235))
        painter.drawText(bar.adjusted(6, 0, -6, 0), Qt.AlignVCenter | Qt.AlignLeft, self.header_text())

    def _paint_status(self, painter: QPainter) -> None:
        text = self.status_text()
        if not text:
            return
        status = self.state.status if self.state is not None else CameraStatus.OPENING
        rgb = (255, 220, 90) if self.paused and status == CameraStatus.RUNNING else STATUS_COLOURS.get(status)
        font = QFont(self.font())
        font.setPointSizeF(11)
        font.setBold(True)
        painter.setFont(font)
        area = self.rect().adjusted(16, HEADER_HEIGHT + 8, -16, -8)
        box = painter.boundingRect(area, Qt.AlignCenter | Qt.TextWordWrap, text).adjusted(-10, -6, 10, 6)
        painter.fillRect(box, QColor(0, 0, 0, 190))
        painter.setPen(QColor(*(rgb or (230, 230, 230))))
        painter.drawText(box, Qt.AlignCenter | Qt.TextWordWrap, text)

    # -- input -----------------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.LeftButton or self.result is None or self._view is None:
            return super().mousePressEvent(event)
        ox, oy, scale = self._view
        index = box_at(self.result, (event.x() - ox) / scale, (event.y() - oy) / scale)
        self.clicked.emit(self.camera_id, -1 if index is None else int(self.result.global_id[index]))
