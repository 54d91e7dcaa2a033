"""Viewer fixtures: offscreen Qt, the real lab videos, models loaded once, windows closed after each test."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before pytest-qt creates the QApplication
pytest.importorskip("PyQt5.QtWidgets", reason="the app extra is not installed: pip install -e '.[app]'")

from app.qt import prepare_qt_environment  # noqa: E402

prepare_qt_environment()  # cv2 may already be imported by other tests: undo its Qt variables

from tracker.config import TrackerConfig  # noqa: E402

# Small settings so a run gives identities within a few seconds on two (shared) CPU cores. Every
# frame is processed (no real-time dropping), so tracks stay continuous however slow the machine is.
TEST_CONFIG = TrackerConfig(realtime=False, imgsz=320, min_clips=1)


def pipeline_threads() -> list[threading.Thread]:
    """Live threads started by a ``PipelineRunner`` (its worker and its readers)."""
    return [t for t in threading.enumerate() if t.name == "pipeline" or t.name.startswith("reader-")]


@pytest.fixture(scope="session")
def lab_videos(shared_data: Path) -> list[Path]:
    """The four synchronised lab cameras (1288x728, 10 fps, 268 frames each)."""
    videos = [shared_data / "videos" / "lab_4cam" / f"cam{i}.mp4" for i in range(4)]
    missing = [str(v) for v in videos if not v.is_file()]
    if missing:
        pytest.skip(f"lab recording missing: {', '.join(missing)}")
    return videos


@pytest.fixture(scope="session")
def models(shared_data: Path):
    """The bundled detector and OSNet embedder, loaded once for every viewer test."""
    pytest.importorskip("ultralytics", reason="the tracker extra is not installed: pip install -e '.[tracker]'")
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")
    from tracker.detector import YoloDetector
    from tracker.pipeline import build_embedder

    return YoloDetector(None, TEST_CONFIG.imgsz, TEST_CONFIG.det_conf), build_embedder(None)


@pytest.fixture
def make_window(qtbot, models) -> Callable:
    """``make_window(sources, **kwargs)``: a shown, started ``ViewerWindow`` over a fresh pipeline;
    closed at the end of the test, which must leave no pipeline thread behind."""
    from app.window import ViewerWindow
    from tracker.pipeline import build_pipeline

    windows = []

    def make(sources=(), config: TrackerConfig = TEST_CONFIG, start: bool = True, **kwargs):
        detector, embedder = models
        pipeline = build_pipeline(config, embedder=embedder, detector=detector)
        window = ViewerWindow(config, [str(s) for s in sources], pipeline, **kwargs)
        qtbot.addWidget(window)
        window.resize(1000, 620)
        window.show()
        qtbot.waitExposed(window)
        if start:
            window.start()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        assert not window.runner.alive
    assert not pipeline_threads()
