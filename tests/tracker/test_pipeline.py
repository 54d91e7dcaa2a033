"""Pipeline steps with a scripted detector and a colour embedder (real Ultralytics trackers)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tracker.config import TrackerConfig
from tracker.draw import draw_result
from tracker.outputs import CameraWriter, identities_json
from tracker.pipeline import Pipeline, colour_for
from tracker.types import CameraFrame, FrameResult

from .fakes import ColourEmbedder, ScriptedDetector

pytest.importorskip("ultralytics", reason="the tracker extra is not installed: pip install -e '.[tracker]'")


def scene(frame: int, people: list[tuple[int, tuple[int, int, int]]]) -> np.ndarray:
    image = np.zeros((120, 200, 3), np.uint8)
    for x0, colour in people:
        x = x0 + 2 * frame
        cv2.rectangle(image, (x, 20), (x + 20, 90), colour, -1)
    return image


RED, BLUE = (0, 0, 230), (230, 0, 0)


def run(pipeline, frames, cams):
    results = []
    for f in range(1, frames + 1):
        results += pipeline.step([CameraFrame(c, f, scene(f, people), time_s=f / 10) for c, people in cams.items()])
    return results


def test_one_person_in_two_cameras_gets_one_global_id_and_a_thumbnail():
    config = TrackerConfig(min_clips=2, min_crop_height=20, match_threshold=0.9)
    embedder = ColourEmbedder()
    pipeline = Pipeline(config, ScriptedDetector(), embedder)
    results = run(pipeline, 12, {"north": [(10, RED), (100, BLUE)], "south": [(40, RED)]})
    last = {r.camera_id: r for r in results[-2:]}
    north = dict(zip(last["north"].xyxy[:, 0] < 100, last["north"].global_id))
    assert north[True] != north[False] != 0  # the two people in one camera: two identities
    assert last["south"].global_id[0] == north[True]  # red in the south camera = red in the north
    assert last["south"].colours[0] == colour_for(int(north[True]))
    identities = {i.global_id: i for i in pipeline.identities()}
    red = identities[int(north[True])]
    assert red.cameras == ("north", "south") and red.clip_count == 6  # 3 clips in each camera
    assert red.thumbnail.shape == (32, 16, 3) and red.thumbnail[..., 2].mean() > 150  # a red BGR crop
    assert embedder.calls == 3  # clips of all cameras and tracks batched: one call per 4-frame round


def test_ids_are_reported_only_after_min_clips_and_ended_tracks_are_settled():
    config = TrackerConfig(min_clips=2, min_crop_height=20, track_buffer=3)
    pipeline = Pipeline(config, ScriptedDetector(), ColourEmbedder())
    results = run(pipeline, 10, {"cam": [(10, RED)]})
    assert [int(r.global_id[0]) for r in results[:7]] == [0] * 7 and results[7].global_id[0] > 0
    gid = int(results[7].global_id[0])
    blank = [pipeline.step([CameraFrame("cam", 10 + k, np.zeros((120, 200, 3), np.uint8))])[0] for k in range(1, 6)]
    ended = [r.ended_tracks for r in blank if r.ended_tracks]
    assert ended == [{1: gid}]
    assert pipeline.finish() == {"cam": {}}


def test_writer_holds_rows_until_the_global_id_arrives_and_sorts(tmp_path):
    writer = CameraWriter(tmp_path, "cam")

    def result(frame, tids, gids, ended=None):
        n = len(tids)
        xyxy = np.array([[10 * t, 20, 10 * t + 5, 40] for t in tids], np.float32).reshape(-1, 4)
        return FrameResult("cam", frame, np.zeros((1, 1, 3), np.uint8), xyxy, np.full(n, 0.5, np.float32),
                           np.array(tids), np.array(gids), ended_tracks=ended or {})

    writer.write(result(1, [1, 2], [0, 0]))
    writer.write(result(2, [1, 2], [7, 0]))
    writer.write(result(3, [2], [0], ended={2: 0}))  # track 2 ends without an id
    writer.close()
    glob = (tmp_path / "cam.txt").read_text().splitlines()
    assert glob == ["1,7,10.00,20.00,5.00,20.00,0.5000,-1,-1,-1", "2,7,10.00,20.00,5.00,20.00,0.5000,-1,-1,-1"]
    tracks = (tmp_path / "cam.tracks.txt").read_text().splitlines()
    assert [line.split(",")[:2] for line in tracks] == [["1", "1"], ["1", "2"], ["2", "1"], ["2", "2"], ["3", "2"]]


def test_identities_json_and_drawing():
    config = TrackerConfig(min_clips=1, min_crop_height=20)
    pipeline = Pipeline(config, ScriptedDetector(), ColourEmbedder())
    results = run(pipeline, 8, {"a": [(10, RED)], "b": [(10, RED)]})
    doc = identities_json(pipeline.identities())
    assert doc["count"] == 1
    ident = doc["identities"]["1"]
    assert ident["cameras"] == ["a", "b"] and ident["clip_count"] == 4
    assert ident["first_seen"]["frame"] == 1 and ident["last_seen"]["frame"] == 8
    drawn = draw_result(results[-1])
    x1, y1, x2, y2 = results[-1].xyxy[0].astype(int)
    assert tuple(drawn[y2, (x1 + x2) // 2]) == results[-1].colours[0]  # the box edge in the identity colour
    assert not np.shares_memory(drawn, results[-1].image)
