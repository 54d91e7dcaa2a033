"""``mcreid-search`` with the bundled STA re-ID model: search by photo, history, forget, bad input."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from tracker.pipeline import BUNDLED_STA
from tracker.search_cli import main
from tracker.signatures import Signature
from tracker.store import ModelInfo, TrackSighting, open_store
from tracker.store.query import embed_photos
from tracker.store.session import model_info
from tracker.types import TrackMember

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")


def person(seed: int) -> np.ndarray:
    """A 128x64 BGR 'person': a head, a shirt and trousers in colours of their own."""
    rng = np.random.default_rng(seed)
    image = np.full((128, 64, 3), 200, np.uint8)
    shirt, trousers = rng.integers(0, 255, 3), rng.integers(0, 255, 3)
    cv2.circle(image, (32, 14), 10, (90, 120, 170), -1)
    cv2.rectangle(image, (14, 26), (50, 70), tuple(int(c) for c in shirt), -1)
    cv2.rectangle(image, (18, 70), (46, 124), tuple(int(c) for c in trousers), -1)
    return np.clip(image.astype(int) + rng.integers(-12, 12, image.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def embedder():
    from export.onnx_embedder import OnnxClipEmbedder

    return OnnxClipEmbedder(BUNDLED_STA)


@pytest.fixture
def store_path(tmp_path, embedder):
    """Three people recorded with the bundled model, one sighting each (two for person 2)."""
    path = tmp_path / "people.store"
    with open_store(path, model_info(embedder), writer=True) as store:
        run = store.begin_run({"cam3": "cam3.mp4"})
        sightings = []
        for gid in (1, 2, 3):
            for track in range(1 + (gid == 2)):
                image = person(10 * gid + track)
                feature = embed_photos(embedder, [image])
                member = TrackMember("cam3", 10 * gid + track, 5, 60, 0.5, 6.0, 3)
                sightings.append(TrackSighting(gid, member, Signature(feature.astype(np.float64), 3), image, 1.0, True))
        store.record(run, sightings, 4)
    return path


def test_search_by_photo_ranks_the_right_identity_first_with_cameras_times_and_a_thumbnail(tmp_path, store_path,
                                                                                            capsys):
    photo = tmp_path / "query.jpg"
    cv2.imwrite(str(photo), cv2.resize(person(21), (50, 110)))  # person 2, another crop size
    thumbs = tmp_path / "thumbs"
    assert main(["--store", str(store_path), "--image", str(photo), "--top", "3", "--json",
                 "--thumbnails", str(thumbs)]) == 0
    out = json.loads(capsys.readouterr().out)
    hits = out["hits"]
    assert [h["global_id"] for h in hits][0] == 2 and len(hits) == 3
    assert hits[0]["similarity"] > hits[1]["similarity"]
    assert hits[0]["cameras"] == ["cam3"] and hits[0]["sightings"] == 2
    assert hits[0]["where"][0]["first_frame"] == 5 and hits[0]["where"][0]["source"] == "cam3.mp4"
    thumb = hits[0]["thumbnail"]
    assert cv2.imread(thumb).shape[:2] == (128, 64) and os.stat(thumb).st_mode & 0o777 == 0o600
    assert main(["--store", str(store_path), "--image", str(photo)]) == 0  # the table
    table = capsys.readouterr().out
    assert "#2" in table.splitlines()[1] and "frames 5-60" in table


def test_history_forget_and_summary(tmp_path, store_path, capsys):
    assert main(["--store", str(store_path), "--identity", "2", "--json", "--thumbnails", str(tmp_path / "t")]) == 0
    history = json.loads(capsys.readouterr().out)
    assert [s["track_id"] for s in history["sightings"]] == [20, 21] and all(s["thumbnail"] for s in history["sightings"])
    assert main(["--store", str(store_path), "--forget", "2"]) == 0
    assert "0 of its vectors or thumbnails found" in capsys.readouterr().out
    assert main(["--store", str(store_path), "--identity", "2"]) == 1  # gone; says when it was forgotten
    assert main(["--store", str(store_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["identities"] == 2


def test_bad_photo_store_or_model_is_one_clear_error(tmp_path, store_path, caplog):
    assert main(["--store", str(store_path), "--image", str(tmp_path / "absent.jpg")]) == 2
    assert "photo not found" in caplog.text and "absent.jpg" in caplog.text
    assert main(["--store", str(tmp_path / "none.store"), "--identity", "1"]) == 2
    assert "identity store not found" in caplog.text
    other = tmp_path / "other.store"
    with open_store(other, ModelInfo(BUNDLED_STA.name, "0" * 64, 512, str(BUNDLED_STA)), writer=True):
        pass
    photo = tmp_path / "p.jpg"
    cv2.imwrite(str(photo), person(1))
    assert main(["--store", str(other), "--image", str(photo)]) == 2
    assert "vectors of two models cannot be compared" in caplog.text
