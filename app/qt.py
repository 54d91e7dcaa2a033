"""Importing PyQt5 lazily and safely next to opencv-python.

opencv-python (the non-headless wheel) ships its own copy of Qt and, when ``cv2`` is imported,
points ``QT_QPA_PLATFORM_PLUGIN_PATH`` (and ``QT_QPA_FONTDIR``) at ``cv2/qt``. PyQt5's Qt then
loads cv2's ``xcb`` plugin, built against the other Qt copy, and dies with "Could not load the Qt
platform plugin xcb ... even though it was found". ``prepare_qt_environment`` imports cv2 first
(so its side effect has happened) and removes the variables that point into cv2, so the order in
which cv2 and PyQt5 are imported no longer matters.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

# Debian/Ubuntu packages behind PyQt5's wheels on a bare machine (found with ldd on the Qt libraries
# and platform plugins): the first line is enough offscreen, the rest is the X11 (xcb) platform.
QT_SYSTEM_PACKAGES = (
    "libgl1 libglib2.0-0 libfontconfig1 libfreetype6 libdbus-1-3 libx11-6 libxext6 fonts-dejavu-core "
    "libxkbcommon0 libxkbcommon-x11-0 libx11-xcb1 libxcb1 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 "
    "libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-xfixes0 "
    "libxcb-xinerama0 libxcb-xkb1 libxcb-util1"
)
_CV2_VARIABLES = ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR")


def _cv2_dir() -> Path | None:
    try:
        import cv2
    except ImportError:
        return None
    return Path(cv2.__file__).resolve().parent


def prepare_qt_environment() -> list[str]:
    """Undo opencv-python's Qt variables (only those pointing into the cv2 package).

    Call before the ``QApplication`` is created. A value the user set elsewhere is kept.

    Returns:
        The names of the variables removed.
    """
    cv2_dir = _cv2_dir()
    removed = []
    for name in _CV2_VARIABLES:
        value = os.environ.get(name)
        if value and cv2_dir is not None and Path(value).resolve().is_relative_to(cv2_dir):
            del os.environ[name]
            removed.append(name)
    if removed:
        log.debug("removed opencv-python's Qt variables %s", ", ".join(removed))
    return removed


def load_qt() -> ModuleType:
    """``PyQt5`` with QtCore, QtGui and QtWidgets imported; ImportError says how to fix a failure."""
    prepare_qt_environment()
    try:
        import PyQt5
        from PyQt5 import QtCore, QtGui, QtWidgets  # noqa: F401
    except ImportError as exc:
        if ".so" in str(exc):
            raise ImportError(f"PyQt5 is installed but a system library it needs is missing ({exc}); on "
                              f"Debian/Ubuntu: sudo apt-get install -y {QT_SYSTEM_PACKAGES}") from exc
        raise ImportError(f"the viewer needs PyQt5: pip install -e '.[app]' ({exc})") from exc
    return PyQt5


def has_display() -> bool:
    """Whether Qt can open a window: a platform was chosen, or an X11/Wayland display is set."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.environ.get(v) for v in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"))


def application(argv: list[str] | None = None):
    """The running ``QApplication``, created (after ``prepare_qt_environment``) when there is none."""
    load_qt()
    from PyQt5.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        prepare_qt_environment()
        app = QApplication(list(argv) if argv else [sys.argv[0] if sys.argv else "mcreid-viewer"])
        app.setApplicationName("mcreid-viewer")
    return app
