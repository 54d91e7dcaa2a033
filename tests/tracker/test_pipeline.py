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


def _result(frame, tids, gids):
    n = len(tids)
    xyxy = np.array([[10 * t, 20, 10 * t + 5, 40] for t in tids], np.float32).reshape(-1, 4)
    return FrameResult("cam", frame, np.zeros((1, 1, 3), np.uint8), xyxy, np.full(n, 0.5, np.float32),
                       np.array(tids), np.array(gids))


def _ids(path):
    return [line.split(",")[:2] for line in path.read_text().splitlines()]


def test_writer_relabels_the_global_file_with_final_ids_and_sorts(tmp_path):
    writer = CameraWriter(tmp_path, "cam")
    writer.write(_result(1, [3, 1, 2], [0, 0, 0]))
    writer.write(_result(2, [1, 2, 3], [7, 0, 5]))  # track 3 is in identity 5 for now
    writer.write(_result(3, [2, 3], [0, 9]))  # the revision rule moved track 3 to identity 9
    writer.close({1: 7, 3: 9})  # track 2 never got an id
    assert writer.global_path.read_text().splitlines()[0] == "1,7,10.00,20.00,5.00,20.00,0.5000,-1,-1,-1"
    assert _ids(tmp_path / "cam.txt") == [["1", "7"], ["1", "9"], ["2", "7"], ["2", "9"], ["3", "9"]]
    assert _ids(tmp_path / "cam.tracks.txt") == [["1", "1"], ["1", "2"], ["1", "3"], ["2", "1"], ["2", "2"],
                                                 ["2", "3"], ["3", "2"], ["3", "3"]]


def test_writer_keeps_one_box_per_identity_and_frame(tmp_path):
    writer = CameraWriter(tmp_path, "cam")
    result = _result(1, [1, 2], [4, 4])  # a duplicate box: two tracks of identity 4 in one frame
    result.confidence[:] = [0.4, 0.9]
    writer.write(result)
    writer.write(_result(2, [2], [4]))
    writer.close({1: 4, 2: 4})
    rows = [line.split(",") for line in writer.global_path.read_text().splitlines()]
    assert [(r[0], r[1], r[2], r[6]) for r in rows] == [("1", "4", "20.00", "0.9000"), ("2", "4", "20.00", "0.5000")]
    assert len(writer.tracks_path.read_text().splitlines()) == 3


def test_writer_without_final_ids_keeps_the_ids_as_written(tmp_path):
    writer = CameraWriter(tmp_path, "cam")
    writer.write(_result(2, [1, 3], [7, 5]))
    writer.write(_result(1, [1, 3], [0, 5]))
    writer.close()
    assert _ids(tmp_path / "cam.txt") == [["1", "5"], ["2", "5"], ["2", "7"]]


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
