"""Restarting with a store: the matcher seeded with stored identities; two pipeline runs sharing a store."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tracker.cli import main as tracker_main
from tracker.config import TrackerConfig
from tracker.matching import IdentityMatcher
from tracker.pipeline import Pipeline
from tracker.signatures import Signature
from tracker.store import StoreError, open_store
from tracker.store.session import StoreSession, check_store_path
from tracker.types import CameraFrame

from .fakes import ColourEmbedder, ScriptedDetector

RED, BLUE, GREEN = (0, 0, 230), (230, 0, 0), (0, 230, 0)


def unit(i: int, dim: int = 4) -> np.ndarray:
    v = np.full(dim, 0.05)
    v[i] = 1.0
    return v


def test_a_seeded_identity_is_rejoined_by_the_open_set_rule_and_new_ids_continue_after_it():
    matcher = IdentityMatcher(4, match_threshold=0.9, min_clips=1)
    matcher.seed([(3, Signature(unit(0), 5)), (7, Signature(unit(1), 2))], next_global_id=9)
    for track, feature in ((1, unit(0)), (2, unit(2))):
        matcher.observe("cam", track, 1)
        matcher.add_feature("cam", track, feature)
    matcher.resolve()
    assert matcher.global_id("cam", 1) == 3  # the returning person: their old id
    assert matcher.global_id("cam", 2) == 9  # a stranger: a new id after every id ever given
    assert [i.global_id for i in matcher.identities()] == [3, 9]  # only the identities seen in this run
    assert matcher.identity_signature(3).count == 6  # stored clips and this run's together
    matcher.end_track("cam", 1)
    matcher.resolve()
    assert 3 in {i.global_id for i in matcher.identities()} and matcher.next_global_id == 10


def test_a_track_alone_in_a_stored_identity_moves_only_by_the_margin():
    matcher = IdentityMatcher(4, match_threshold=0.5, min_clips=1, revise_margin=0.2)
    matcher.seed([(1, Signature(unit(0), 4)), (2, Signature(unit(0) + unit(1), 4))])
    matcher.observe("cam", 1, 1)
    matcher.add_feature("cam", 1, unit(0))
    matcher.resolve()
    assert matcher.global_id("cam", 1) == 1
    matcher.add_feature("cam", 1, unit(0) + 1.2 * unit(1))  # now a little closer to identity 2
    matcher.resolve()
    assert matcher.global_id("cam", 1) == 1  # not alone: identity 1 holds earlier runs' clips


@pytest.mark.parametrize("seed, message", [
    ([(0, Signature(unit(0), 1))], "positive and distinct"),
    ([(2, Signature(unit(0), 1)), (2, Signature(unit(1), 1))], "positive and distinct"),
    ([(2, Signature(np.ones(3), 1))], r"shape \(4,\)"),
])
def test_bad_seeds_are_refused(seed, message):
    with pytest.raises(ValueError, match=message):
        IdentityMatcher(4).seed(seed)


def test_seeding_after_tracks_arrived_is_refused():
    matcher = IdentityMatcher(4)
    matcher.observe("cam", 1, 1)
    with pytest.raises(ValueError, match="before the first track"):
        matcher.seed([(1, Signature(unit(0), 1))])


def scene(frame: int, people) -> np.ndarray:
    image = np.zeros((120, 200, 3), np.uint8)
    for x0, colour in people:
        x = x0 + 2 * frame
        cv2.rectangle(image, (x, 20), (x + 20, 90), colour, -1)
    return image


def run(path, cams: dict, frames: int = 14) -> dict[tuple[str, tuple], int]:
    """One run recording into ``path``; returns {(camera, colour): global id}."""
    pipeline = Pipeline(TrackerConfig(min_clips=2, min_crop_height=20, match_threshold=0.9), ScriptedDetector(),
                        ColourEmbedder())
    session = StoreSession.start(path, pipeline, {c: f"{c}.mp4" for c in cams}, interval_s=0.01)
    ids = {}
    for f in range(1, frames + 1):
        for result in pipeline.step([CameraFrame(c, f, scene(f, people), time_s=f / 10)
                                     for c, people in cams.items()]):
            for box, gid in zip(result.xyxy, result.global_id):
                colour = tuple(int(v) for v in scene(f, cams[result.camera_id])[45, int(box[0]) + 5])
                if gid:
                    ids[(result.camera_id, colour)] = int(gid)
    pipeline.finish()
    assert session.close()
    return ids


def test_two_runs_sharing_a_store_keep_a_returning_persons_identity(tmp_path):
    path = tmp_path / "lab.store"
    first = run(path, {"cam0": [(10, RED), (100, BLUE)]})
    assert sorted(first.values()) == [1, 2]
    second = run(path, {"cam2": [(10, BLUE), (100, GREEN)]})
    assert second[("cam2", BLUE)] == first[("cam0", BLUE)]  # the returning person
    assert second[("cam2", GREEN)] == 3  # a new person: after every stored id
    with open_store(path) as store:
        blue = store.identity(first[("cam0", BLUE)])
        assert blue.cameras == ("cam0", "cam2") and blue.runs == (1, 2)
        assert [(s.run_id, s.source, s.ended) for s in store.history(blue.global_id)] == \
            [(1, "cam0.mp4", True), (2, "cam2.mp4", True)]
        assert all(r.ended_at is not None for r in store.runs())
    with open_store(path, open_store(path).model) as store:
        store.forget(first[("cam0", RED)])
    third = run(path, {"cam1": [(10, RED)]})
    assert third[("cam1", RED)] == 4  # a forgotten person is a stranger; their id is not given again


def test_store_options_are_checked_before_any_model_loads(tmp_path, caplog):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    common = ["run", "--source", "x.mp4", "--out", str(tmp_path / "out")]
    assert tracker_main([*common, "--store", str(folder)]) == 2
    assert "is a folder; expected the store's file" in caplog.text
    assert tracker_main([*common, "--retention-days", "3"]) == 2
    assert "--retention-days needs --store" in caplog.text
    not_a_store = tmp_path / "notes.store"
    not_a_store.write_text("x" * 5000)
    with pytest.raises(StoreError, match="notes.store"):
        check_store_path(not_a_store)
