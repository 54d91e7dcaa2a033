"""The camera tile and the identities panel on hand-made results (deterministic, no pipeline)."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt5.QtCore import QPoint, Qt

from app.identities_panel import IdentitiesPanel, format_seconds
from app.tiles import CameraTile
from tests.app.helpers import colour_pixels
from tracker.pipeline import colour_for
from tracker.types import CameraState, CameraStatus, FrameResult, GlobalIdentity, TrackMember


def frame_result(frame_index: int = 1) -> FrameResult:
    gids = np.array([3, 5, 0], np.int64)
    boxes = np.array([[20, 20, 60, 90], [100, 10, 150, 95], [160, 30, 190, 80]], np.float32)
    return FrameResult("cam0", frame_index, np.zeros((100, 200, 3), np.uint8), boxes, np.full(3, 0.9, np.float32),
                       np.array([1, 2, 3], np.int64), gids, tuple(colour_for(int(g)) for g in gids))


@pytest.fixture
def tile(qtbot) -> CameraTile:
    tile = CameraTile("cam0", trail_length=5)
    qtbot.addWidget(tile)
    tile.resize(440, 260)
    tile.show()
    qtbot.waitExposed(tile)
    tile.set_result(frame_result())
    tile.repaint()
    return tile


def test_tile_draws_boxes_in_identity_colours_and_highlights_one(tile):
    plain = {gid: colour_pixels(tile, colour_for(gid)) for gid in (3, 5)}
    assert plain[3] > 100 and plain[5] > 100
    tile.set_highlight(5)
    assert colour_pixels(tile, colour_for(5)) > 1.5 * plain[5]  # three times thicker
    assert colour_pixels(tile, colour_for(3)) == 0  # dimmed
    assert [s.highlighted for s in tile.styles()] == [False, True, False]
    tile.set_highlight(None)
    assert colour_pixels(tile, colour_for(3)) == plain[3]


def test_clicking_a_person_reports_their_identity(tile, qtbot):
    cases = [((125, 50), 5), ((40, 55), 3), ((175, 55), 0), ((95, 5), -1)]
    for (x, y), expected in cases:
        with qtbot.waitSignal(tile.clicked, timeout=1000) as signal:
            qtbot.mouseClick(tile, Qt.LeftButton, pos=tile.frame_to_widget(x, y))
        assert signal.args == ["cam0", expected]


@pytest.mark.parametrize("state, paused, header, notice", [
    (CameraState("cam0", "a.mp4", CameraStatus.RUNNING, "", 50, 48, 2, 9.5, 0.12, 268), False,
     "cam0  running   9.5 fps  dropped 2  latency 120 ms  frame 50/268", ""),
    (CameraState("cam0", "a.mp4", CameraStatus.RUNNING, "", 50, 48, 2, 9.5, 0.12, 268), True, None, "paused"),
    (CameraState("cam0", "/x.mp4", CameraStatus.ERROR, "file not found: /x.mp4 (expected a video file)"), False,
     "cam0  error", "error: file not found: /x.mp4 (expected a video file)"),
    (CameraState("cam0", "rtsp://h/1", CameraStatus.RECONNECTING, "no frames from rtsp://h/1; retry 2 in 1.0s"), False,
     "cam0  reconnecting", "reconnecting: no frames from rtsp://h/1; retry 2 in 1.0s"),
    (CameraState("cam0", "a.mp4", CameraStatus.ENDED, "end of file after 268 frames", 268, 268, 0, 0, 0, 268), False,
     None, "ended: end of file after 268 frames"),
])
def test_tile_shows_state_and_statistics(tile, state, paused, header, notice):
    tile.set_state(state, paused)
    if header is not None:
        assert tile.header_text() == header
    assert tile.status_text() == notice


def identity(gid: int, cameras: tuple[str, ...], first: float, last: float, clips: int, thumb: bool = True):
    members = tuple(TrackMember(cam, i + 1, 1, 10, first, last, clips) for i, cam in enumerate(cameras))
    thumbnail = np.full((256, 128, 3), 40 * gid % 255, np.uint8) if thumb else None
    return GlobalIdentity(gid, members, clips, thumbnail, colour_for(gid))


def test_panel_lists_identities_and_keeps_the_selection_across_refreshes(qtbot):
    panel = IdentitiesPanel()
    qtbot.addWidget(panel)
    panel.update_identities([identity(4, ("cam1",), 3.0, 75.0, 2), identity(2, ("cam0", "cam2"), 0.5, 9.25, 7)])
    assert panel.global_ids == [2, 4]
    assert [panel.item(0, c).text() for c in range(1, 6)] == ["#2", "cam0, cam2", "0.5 s", "9.2 s", "7"]
    assert panel.item(1, 4).text() == "1:15"
    assert not panel.item(0, 0).icon().isNull()

    with qtbot.waitSignal(panel.identity_selected, timeout=1000) as signal:
        panel.selectRow(1)
    assert signal.args == [4] and panel.selected_id() == 4
    with qtbot.assertNotEmitted(panel.identity_selected):
        panel.update_identities([identity(4, ("cam1", "cam0"), 3.0, 80.0, 3), identity(2, ("cam0",), 0.5, 9.0, 7),
                                 identity(7, ("cam3",), 12.0, 13.0, 1, thumb=False)])
    assert panel.global_ids == [2, 4, 7] and panel.selected_id() == 4
    assert panel.item(1, 5).text() == "3" and panel.item(2, 0).icon().isNull()

    with qtbot.waitSignal(panel.identity_selected, timeout=1000) as signal:  # 4 merged into 2
        panel.update_identities([identity(2, ("cam0", "cam1"), 0.5, 80.0, 10)])
    assert signal.args == [0] and panel.global_ids == [2] and panel.selected_id() == 0


def test_panel_selects_an_identity_clicked_before_its_row_exists(qtbot):
    panel = IdentitiesPanel()
    qtbot.addWidget(panel)
    with qtbot.assertNotEmitted(panel.identity_selected):
        panel.select_identity(9)
        assert panel.selected_id() == 0
        panel.update_identities([identity(9, ("cam0",), 1.0, 2.0, 1)])
    assert panel.selected_id() == 9


@pytest.mark.parametrize("seconds, text", [(0, "0.0 s"), (59.94, "59.9 s"), (60, "1:00"), (3725.4, "62:05")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_tile_click_before_any_frame_does_nothing(qtbot):
    tile = CameraTile("cam9")
    qtbot.addWidget(tile)
    with qtbot.assertNotEmitted(tile.clicked):
        qtbot.mouseClick(tile, Qt.LeftButton, pos=QPoint(5, 5))
    with pytest.raises(ValueError, match="cam9 has not painted a frame yet"):
        tile.frame_to_widget(1, 1)
