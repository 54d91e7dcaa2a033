"""A tracker recording into a store, killed with SIGKILL mid-run: the store opens, passes
``PRAGMA integrity_check`` and lost at most the last second; the next run reopens it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tracker.store import open_store

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import cv2, numpy as np
    sys.path.insert(0, sys.argv[2])
    from fakes import ColourEmbedder, ScriptedDetector
    from tracker.config import TrackerConfig
    from tracker.pipeline import Pipeline
    from tracker.store.session import StoreSession
    from tracker.types import CameraFrame

    pipeline = Pipeline(TrackerConfig(min_clips=1, min_crop_height=20, track_buffer=2, match_threshold=0.999),
                        ScriptedDetector(), ColourEmbedder())
    StoreSession.start(Path(sys.argv[1]), pipeline, {"cam0": "synthetic"})
    frame = 0
    while True:
        frame += 1
        image = np.zeros((120, 200, 3), np.uint8)
        for person in range(max(0, frame // 6 - 2), frame // 6 + 1):  # a new person every 6 frames, 3 at a time
            age = frame - 6 * person
            colour = (40 + 37 * person % 200, 230 - 53 * person % 180, 120 + 71 * person % 130)
            cv2.rectangle(image, (5 + 8 * age, 10 + 30 * (person % 3)), (25 + 8 * age, 40 + 30 * (person % 3)),
                          colour, -1)
        pipeline.step([CameraFrame("cam0", frame, image, time_s=frame / 10)])
        print(frame, time.time(), flush=True)
        time.sleep(0.005)
""")


def run_and_kill(store: Path, script: Path, after_s: float) -> tuple[list[tuple[int, float]], float]:
    """Start the child, SIGKILL it ``after_s`` after its first step; ``([(frame, time)], kill time)``."""
    child = subprocess.Popen([sys.executable, str(script), str(store), str(Path(__file__).parent)],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    steps = []
    try:
        first = child.stdout.readline()
        assert first, "the child tracker did not start"
        frame, at = first.split()
        steps.append((int(frame), float(at)))
        deadline = time.time() + after_s
        for line in child.stdout:
            frame, at = line.split()
            steps.append((int(frame), float(at)))
            if time.time() >= deadline:
                break
        child.send_signal(signal.SIGKILL)
        killed_at = time.time()
    finally:
        child.kill()
        child.wait()
    return steps, killed_at


def test_sigkill_leaves_a_sound_store_missing_at_most_the_last_second(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    store_path = tmp_path / "killed.store"
    for run, after_s in ((1, 1.3), (2, 2.1)):
        steps, killed_at = run_and_kill(store_path, script, after_s)
        with open_store(store_path) as store:
            assert store.integrity_check() == "ok"
            rows = store._conn.execute("SELECT max(last_frame), count(*) FROM sightings WHERE run_id = ?",
                                       (run,)).fetchone()
            ended_at = store.runs()[run - 1].ended_at
        # every frame the child had finished a second before it was killed is in the store
        due = max((f for f, at in steps if at <= killed_at - 1.0), default=0)
        assert rows[0] is not None and rows[0] >= due, (rows, due, steps[-1])
        assert due > 0 and rows[1] >= 3
        assert ended_at is None  # killed: never marked ended
    with open_store(store_path) as store:  # the killed runs' lock died with them: a new writer gets it
        assert {r.run_id for r in store.runs()} == {1, 2}
    open_store(store_path, store.model, writer=True).close()
