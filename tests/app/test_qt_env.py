"""PyQt5 next to opencv-python, in either import order; a clear message when PyQt5 is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from app.qt import load_qt, prepare_qt_environment

CV2_DIR = Path(cv2.__file__).resolve().parent
REPO = Path(__file__).resolve().parents[2]


def test_prepare_removes_only_the_variables_that_point_into_cv2(monkeypatch, tmp_path):
    monkeypatch.setenv("QT_QPA_PLATFORM_PLUGIN_PATH", str(CV2_DIR / "qt" / "plugins"))
    monkeypatch.setenv("QT_QPA_FONTDIR", str(tmp_path))  # the user's own: kept
    assert prepare_qt_environment() == ["QT_QPA_PLATFORM_PLUGIN_PATH"]
    assert "QT_QPA_PLATFORM_PLUGIN_PATH" not in os.environ
    assert os.environ["QT_QPA_FONTDIR"] == str(tmp_path)


PROBE = """
import os, sys
first, second = sys.argv[1:]
__import__(first); __import__(second)
from app.qt import application
app = application()
from PyQt5.QtCore import QLibraryInfo
from PyQt5.QtWidgets import QLabel
label = QLabel("ok"); label.show(); app.processEvents()
import cv2
cv2_dir = os.path.dirname(cv2.__file__)
print("plugin-path", os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", ""))
print("cv2-in-paths", any(p.startswith(cv2_dir) for p in app.libraryPaths()))
print("platform", app.platformName())
"""


@pytest.mark.parametrize("order", [("cv2", "PyQt5.QtWidgets"), ("PyQt5.QtWidgets", "cv2")])
def test_application_starts_whichever_is_imported_first(order):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    env.pop("QT_QPA_PLATFORM_PLUGIN_PATH", None)
    out = subprocess.run([sys.executable, "-c", PROBE, *order], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert lines["plugin-path"].strip() == ""  # cv2's variable is gone before the QApplication exists
    assert lines["cv2-in-paths"] == "False"
    assert lines["platform"] == "offscreen"


def test_missing_pyqt5_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "PyQt5", None)  # makes `import PyQt5` raise ImportError
    with pytest.raises(ImportError, match=r"pip install -e '\.\[app\]'"):
        load_qt()
