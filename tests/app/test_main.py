"""``python -m app``: the shared tracker options, the snapshot run, and every bad option."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from app.__main__ import build_parser, main
from tracker.config import TrackerConfig, config_from_args

REPO = Path(__file__).resolve().parents[2]


def test_parser_offers_every_tracker_option_with_realtime_on():
    args = build_parser().parse_args(["--source", "a.mp4", "--match-threshold", "0.7", "--tracker", "botsort"])
    assert config_from_args(args) == TrackerConfig(realtime=True, match_threshold=0.7, tracker_type="botsort")
    assert all(hasattr(args, f.name) for f in dataclasses.fields(TrackerConfig))
    assert config_from_args(build_parser().parse_args(["--no-realtime"])).realtime is False


def test_snapshot_run_on_two_lab_cameras_writes_the_window_and_exits(lab_videos, tmp_path):
    snapshot = tmp_path / "shots" / "viewer.png"
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run([sys.executable, "-m", "app", "--source", str(lab_videos[0]), "--source", str(lab_videos[1]),
                          "--snapshot", str(snapshot), "--exit-after", "3", "--imgsz", "320", "--no-realtime",
                          "--size", "800x500"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "no display: rendering offscreen" in out.stderr
    image = cv2.imread(str(snapshot))
    assert image is not None and image.shape == (500, 800, 3)
    assert image.std() > 20  # camera pictures, not an empty window
    assert "snapshot saved" in out.stderr and "cam1: stopped" in out.stderr


@pytest.mark.parametrize("argv, message", [
    (["--match-threshold", "2"], "match_threshold must be in [-1.0, 1.0], got 2.0"),
    (["--exit-after", "0"], "--exit-after must be > 0 seconds, got 0.0"),
    (["--trail-length", "-1"], "--trail-length must be >= 0, got -1"),
    (["--max-frames", "0"], "--max-frames must be >= 1, got 0"),
    (["--size", "big"], "--size must be WIDTHxHEIGHT such as 1600x900, got 'big'"),
    (["--snapshot", "shot.jpg"], "--snapshot must name a .png file, got shot.jpg"),
    ([x for i in range(10) for x in ("--source", f"v{i}.mp4")], "at most 9 cameras, got 10 --source"),
    (["--detector", "/nonexistent/det.onnx", "--snapshot", "s.png"], "detector weights not found: /nonexistent/det.onnx"),
    (["--reid", "/nonexistent/reid.onnx", "--snapshot", "s.png"], "re-ID model not found: /nonexistent/reid.onnx"),
])
def test_bad_options_exit_with_2_and_say_why(qapp, caplog, argv, message):
    with caplog.at_level(logging.ERROR):
        assert main(argv) == 2
    assert message in caplog.text


def test_interactive_run_without_a_display_says_how_to_run_it(monkeypatch, caplog):
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    with caplog.at_level(logging.ERROR):
        assert main(["--source", "a.mp4"]) == 2
    assert "no display" in caplog.text and "QT_QPA_PLATFORM=offscreen" in caplog.text
