"""Reading back what a widget painted."""

from __future__ import annotations

import numpy as np
from PyQt5.QtGui import QImage


def grab_rgb(widget) -> np.ndarray:
    """The widget as painted, ``(H, W, 3)`` uint8 RGB."""
    image = widget.grab().toImage().convertToFormat(QImage.Format_RGB32)  # 0xffRRGGBB words
    ptr = image.constBits()
    ptr.setsize(image.byteCount())
    bgra = np.frombuffer(ptr, np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)
    return bgra[:, :image.width(), 2::-1].copy()


def colour_pixels(widget, bgr: tuple[int, int, int]) -> int:
    """How many painted pixels have exactly this BGR colour."""
    rgb = grab_rgb(widget)
    return int(np.all(rgb == np.array(bgr[::-1], np.uint8), axis=2).sum())
