"""The viewer live on the real lab recording: frames, identities, selection, pause, stream life, shutdown."""

from __future__ import annotations

import pytest
from PyQt5.QtCore import QPoint, Qt
from PyQt5.QtWidgets import QFileDialog

from app.overlay import box_at
from app.tiles import CameraTile
from tests.app.conftest import pipeline_threads
from tests.app.helpers import colour_pixels, grab_rgb
from tracker.pipeline import colour_for
from tracker.sources import ReconnectPolicy
from tracker.types import CameraStatus

WAIT_MS = 40_000  # upper bound only: waits end as soon as their condition holds


def identified_tile(window) -> tuple[CameraTile, int] | None:
    """A tile showing a person with a global id that the identities panel lists."""
    for tile in window.grid.tiles.values():
        if tile.result is not None:
            listed = [int(g) for g in tile.result.global_id if g > 0 and int(g) in window.panel.global_ids]
            if listed:
                return tile, listed[0]
    return None


def settle(window, qtbot) -> None:
    """Pause and wait until the pipeline's last in-flight step was shown, so the views stop changing."""
    window.set_paused(True)
    qtbot.waitUntil(lambda: window.runner.settled, timeout=WAIT_MS)  # the step in flight has finished
    window._show_results()
    window._refresh_identities()


def empty_spot(tile) -> QPoint:
    """A point of the view over no box."""
    height, width = tile.result.image.shape[:2]
    for y in range(5, height, 40):
        for x in range(5, width, 40):
            if box_at(tile.result, x, y) is None:
                return tile.frame_to_widget(x, y)
    raise AssertionError("every point of the frame is inside a box")


def spot_on_identity(tile, gid: int) -> tuple[float, float]:
    """A source-pixel point where the box under the cursor is one of identity ``gid``'s boxes."""
    for index in (i for i, g in enumerate(tile.result.global_id) if g == gid):
        x1, y1, x2, y2 = (float(v) for v in tile.result.xyxy[index])
        for fy in (0.5, 0.3, 0.7, 0.15, 0.85):
            for fx in (0.5, 0.3, 0.7, 0.15, 0.85):
                x, y = x1 + fx * (x2 - x1), y1 + fy * (y2 - y1)
                if box_at(tile.result, x, y) == index:
                    return x, y
    raise AssertionError(f"every point of identity {gid}'s boxes is covered by a smaller box")


def test_two_lab_cameras_show_frames_identities_and_highlight(make_window, lab_videos, qtbot):
    window = make_window(lab_videos[:2])
    tiles = window.grid.tiles
    assert list(tiles) == ["cam0", "cam1"]
    qtbot.waitUntil(lambda: all(t.frames_shown >= 3 for t in tiles.values()), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: identified_tile(window) is not None, timeout=WAIT_MS)
    settle(window, qtbot)
    for tile in tiles.values():
        assert tile.result.image.shape == (728, 1288, 3)
        assert grab_rgb(tile).std() > 20  # a real picture, not the empty background
        assert tile.state.status == CameraStatus.RUNNING and "fps" in tile.header_text()
        assert tile.status_text() == "paused"

    panel = window.panel
    assert panel.rowCount() == len(panel.global_ids) >= 1
    assert not panel.item(0, 0).icon().isNull()  # the thumbnail
    ids = {i.global_id: i for i in window.runner.identities()}
    assert panel.item(0, 2).text() == ", ".join(ids[panel.global_ids[0]].cameras)
    assert panel.item(0, 5).text() == str(ids[panel.global_ids[0]].clip_count)

    # select the identity by clicking its row: its boxes are highlighted in every view
    tile, gid = identified_tile(window)
    before = colour_pixels(tile, colour_for(gid))
    row = panel.global_ids.index(gid)
    qtbot.mouseClick(panel.viewport(), Qt.LeftButton, pos=panel.visualItemRect(panel.item(row, 2)).center())
    assert window.selected == gid and panel.selected_id() == gid
    for view in tiles.values():
        assert view.highlight == gid
        for style in view.styles():
            assert style.highlighted == (style.global_id == gid)
    assert colour_pixels(tile, colour_for(gid)) > before  # thicker boxes in the identity's colour

    # clicking empty floor clears the selection; clicking a person selects their identity
    qtbot.mouseClick(tile, Qt.LeftButton, pos=empty_spot(tile))
    assert window.selected == 0 and panel.selected_id() == 0
    x, y = spot_on_identity(tile, gid)
    qtbot.mouseClick(tile, Qt.LeftButton, pos=tile.frame_to_widget(x, y))
    assert window.selected == gid  # the listed identity clicked in the view ...
    assert panel.selected_id() == gid  # ... is selected in the panel too

    # resume: frames flow again
    shown = {cam: t.result.frame_index for cam, t in tiles.items()}
    qtbot.wait(500)
    window._show_results()
    assert {cam: t.result.frame_index for cam, t in tiles.items()} == shown  # still paused
    assert window.runner.paused and window.pause_action.isChecked()
    window.pause_action.trigger()  # Pipeline > Pause again: resume
    assert not window.runner.paused
    qtbot.waitUntil(lambda: all(t.result.frame_index > shown[c] for c, t in tiles.items()), timeout=WAIT_MS)
    assert window.runner.error == ""


class _NeverOpens:
    """A stream that cannot be reached."""

    def isOpened(self) -> bool:
        return False

    def release(self) -> None:
        pass


def test_bad_sources_show_their_state_in_their_own_tile_while_the_other_plays(make_window, lab_videos, qtbot,
                                                                          tmp_path):
    import cv2

    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    missing = tmp_path / "missing.mp4"

    def open_capture(uri):
        return _NeverOpens() if uri.startswith("fake://") else cv2.VideoCapture(uri)

    window = make_window([lab_videos[0], missing, garbage, "fake://gone"],
                         runner_kwargs={"open_capture": open_capture,
                                        "reconnect": ReconnectPolicy(initial_s=0.05, max_s=0.2)})
    tiles = window.grid.tiles
    assert list(tiles) == ["cam0", "missing", "garbage", "cam3"]
    qtbot.waitUntil(lambda: tiles["cam0"].frames_shown >= 3, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: tiles["cam3"].state.status == CameraStatus.RECONNECTING, timeout=WAIT_MS)
    assert tiles["missing"].status_text() == f"error: file not found: {missing} (expected a video file)"
    assert tiles["garbage"].status_text().startswith(f"error: cannot open {garbage}")
    assert tiles["cam3"].status_text().startswith("reconnecting: cannot open stream fake://gone; retry")
    for name in ("missing", "garbage", "cam3"):
        assert tiles[name].result is None
        rgb = grab_rgb(tiles[name])
        assert (rgb[:, :, 0].astype(int) - rgb[:, :, 2] > 100).sum() > 50  # the red/orange notice is painted
    assert tiles["cam0"].state.status == CameraStatus.RUNNING and tiles["cam0"].status_text() == ""


def test_a_file_that_ends_shows_ended(make_window, lab_videos, qtbot):
    window = make_window([lab_videos[1]], runner_kwargs={"max_frames": 5})
    tile = window.grid.tiles["cam1"]
    qtbot.waitUntil(lambda: tile.state is not None and tile.state.status == CameraStatus.ENDED, timeout=WAIT_MS)
    assert tile.status_text().startswith("ended")
    qtbot.waitUntil(lambda: tile.result is not None, timeout=WAIT_MS)
    assert tile.result.frame_index <= 5


def test_sources_added_from_the_menu_play_and_closing_stops_every_thread(make_window, lab_videos, qtbot,
                                                                         monkeypatch):
    window = make_window([])
    assert window.grid.tiles == {}
    qtbot.wait(300)
    assert window.runner.alive  # the viewer's worker waits for sources instead of ending
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(lab_videos[2])], ""))
    window.add_file_action.trigger()
    tile = window.grid.tiles["cam2"]
    qtbot.waitUntil(lambda: tile.frames_shown >= 2, timeout=WAIT_MS)
    assert pipeline_threads()
    window.close()
    assert not window.runner.alive
    assert pipeline_threads() == []
    assert tile.state.status == CameraStatus.STOPPED


def test_more_than_nine_cameras_are_refused(make_window, tmp_path):
    sources = [tmp_path / f"absent{i}.mp4" for i in range(10)]
    from app.window import ViewerWindow

    with pytest.raises(ValueError, match="at most 9 cameras, got 10"):
        ViewerWindow(window_config(), [str(s) for s in sources])
    window = make_window(sources[:9], start=False)
    assert len(window.grid.tiles) == 9
    assert window.add_source(str(sources[9])) is None
    assert "at most 9 cameras" in window.statusBar().currentMessage()


def window_config():
    from tests.app.conftest import TEST_CONFIG

    return TEST_CONFIG
