"""The worker -> GUI hand-over: newest result per camera, one wake-up per batch, bounded."""

from __future__ import annotations

import threading

import numpy as np

from app.bridge import ResultBridge, ResultMailbox
from tracker.types import FrameResult


def result(camera: str, frame: int) -> FrameResult:
    empty = np.zeros((0,), np.int64)
    return FrameResult(camera, frame, np.zeros((4, 4, 3), np.uint8), np.zeros((0, 4), np.float32),
                       np.zeros((0,), np.float32), empty, empty)


def test_mailbox_keeps_the_newest_result_per_camera_and_wakes_once():
    wakes = []
    mailbox = ResultMailbox(lambda: wakes.append(1))
    for frame in (1, 2, 3):
        mailbox.offer(result("a", frame))
    mailbox.offer(result("b", 1))
    assert len(wakes) == 1
    taken = mailbox.take()
    assert {cam: r.frame_index for cam, r in taken.items()} == {"a": 3, "b": 1}
    assert mailbox.replaced == {"a": 2} and mailbox.received == 4
    assert mailbox.take() == {}
    mailbox.offer(result("a", 4))
    assert len(wakes) == 2  # taken, so the next result wakes the GUI again


def test_closed_mailbox_ignores_results():
    mailbox = ResultMailbox()
    mailbox.close()
    mailbox.offer(result("a", 1))
    assert mailbox.take() == {} and mailbox.received == 0


def test_mailbox_stays_bounded_under_a_fast_producer():
    mailbox = ResultMailbox()
    sizes = []

    def produce(camera: str) -> None:
        for frame in range(2000):
            mailbox.offer(result(camera, frame))

    threads = [threading.Thread(target=produce, args=(c,)) for c in ("a", "b", "c")]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        sizes.append(len(mailbox.take()))
    for t in threads:
        t.join()
    last = mailbox.take()
    assert max(sizes + [len(last)]) <= 3  # never more than one result per camera held
    assert mailbox.received == 6000


def test_bridge_delivers_a_signal_from_a_worker_thread_on_the_gui_thread(qtbot):
    bridge = ResultBridge()
    seen = []
    bridge.ready.connect(lambda: seen.append((threading.current_thread() is threading.main_thread(),
                                              bridge.mailbox.take())))
    worker = threading.Thread(target=lambda: bridge.mailbox.offer(result("cam0", 7)))
    with qtbot.waitSignal(bridge.ready, timeout=2000):
        worker.start()
        worker.join()
    qtbot.waitUntil(lambda: len(seen) == 1, timeout=2000)
    on_gui_thread, taken = seen[0]
    assert on_gui_thread and taken["cam0"].frame_index == 7
