"""Replaying recorded matcher calls gives exactly the identities of the live run."""

from __future__ import annotations

import numpy as np

from tracker.matcher_log import RecordingMatcher, replay
from tracker.matching import IdentityMatcher

D = 8


def test_replay_reproduces_the_live_identities_and_other_settings_change_them():
    rng = np.random.default_rng(3)
    people = rng.normal(0, 1, (5, D)) + 2.0  # alike people
    live = RecordingMatcher(IdentityMatcher(D, match_threshold=0.9, min_clips=2))
    track = 0
    for step in range(40):
        pid = step % 5 if step < 20 else int(rng.integers(5))
        track += 1
        camera = f"cam{step % 2}"
        for f in range(4):
            live.observe(camera, track, 10 * step + f, step + f / 10, (0, 0, 10, 20))
        for _ in range(2):
            live.add_feature(camera, track, people[pid] + rng.normal(0, 0.3, D))
        live.resolve()
        live.end_track(camera, track)
        live.resolve()
    live.resolve()
    assert live.calls and {name for name, _ in live.calls} == {"observe", "add_feature", "end_track", "resolve"}

    def grouping(matcher):
        return sorted(sorted((m.camera_id, m.track_id) for m in i.members) for i in matcher.identities())

    again = replay(live.calls, IdentityMatcher(D, match_threshold=0.9, min_clips=2))
    assert grouping(again) == grouping(live.matcher)
    looser = replay(live.calls, IdentityMatcher(D, match_threshold=0.5, min_clips=2))
    assert len(looser.identities()) < len(again.identities())
