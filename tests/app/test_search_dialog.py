"""The viewer with ``--store``: Search by photo… and an identity's history across runs."""

from __future__ import annotations

import cv2
import numpy as np

from tests.tracker.test_search_cli import person
from tracker.signatures import Signature
from tracker.store import TrackSighting, open_store
from tracker.store.query import embed_photos
from tracker.store.session import model_info
from tracker.types import TrackMember


def filled_store(path, embedder):
    """People 1-3, person 2 seen in two runs."""
    store = open_store(path, model_info(embedder), writer=True)
    for run_sources in ({"cam0": "a.mp4"}, {"cam3": "b.mp4"}):
        run = store.begin_run(run_sources)
        camera = next(iter(run_sources))
        for gid in ((1, 2, 3) if camera == "cam0" else (2,)):
            image = person(10 * gid + (camera == "cam3"))
            feature = embed_photos(embedder, [image]).astype(np.float64)
            member = TrackMember(camera, gid, 1, 50, 0.0, 5.0, 2)
            store.record(run, [TrackSighting(gid, member, Signature(feature, 2), image, 1.0, True)], 4)
    return store


def test_search_by_photo_lists_identities_highlights_and_opens_their_history(make_window, models, tmp_path, qtbot):
    store = filled_store(tmp_path / "v.store", models[1])
    window = make_window(start=False, store=store)
    assert window.search_action.text() == "Search by photo…"
    photo = tmp_path / "who.jpg"
    cv2.imwrite(str(photo), person(20))
    dialog = window.search_photos([str(photo)])
    assert dialog.global_ids[0] == 2 and len(dialog.global_ids) == 3
    assert dialog.table.item(0, 1).text() == "#2" and dialog.table.item(0, 3).text() == "cam0, cam3"
    assert not dialog.table.item(0, 0).icon().isNull()  # the stored thumbnail
    dialog.table.selectRow(0)
    assert window.selected == 2  # chosen in the dialog: highlighted in the views
    history = dialog.show_history(2)
    assert history.table.rowCount() == 2 and "runs 1, 2" in history.summary.text()
    assert [history.table.item(r, 3).text() for r in range(2)] == ["cam0", "cam3"]
    assert window.search_photos([str(tmp_path / "absent.jpg")]) is None
    assert "photo not found" in window.statusBar().currentMessage()
    assert window.show_history(0) is None  # nothing selected
    store.close()


def test_without_a_store_there_is_no_search_menu(make_window):
    window = make_window(start=False)
    assert not hasattr(window, "search_action")
    assert "&Search" not in [a.text() for a in window.menuBar().actions()]
