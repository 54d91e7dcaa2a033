"""Record what a pipeline tells its ``IdentityMatcher`` and replay it through other matchers.

In lockstep (not real-time) mode every clip is embedded whatever the matcher decides, so the calls
the matcher receives (observations, clip features, track ends, resolves) do not depend on its
settings. Recording them once and replaying them through matchers with other settings therefore
gives exactly the identities a full run with those settings would give, in a fraction of the time:
``benchmarks/track_eval.py`` sweeps the matcher's settings this way.
"""

from __future__ import annotations

from typing import Any

from tracker.matching import IdentityMatcher

_CALLS = ("observe", "add_feature", "end_track", "resolve")


class RecordingMatcher:
    """Wraps a matcher: every call goes through to it and is appended to ``calls``."""

    def __init__(self, matcher: IdentityMatcher) -> None:
        self.matcher = matcher
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.matcher, name)
        if name not in _CALLS:
            return target

        def record(*args: Any) -> Any:
            self.calls.append((name, args))
            return target(*args)

        return record


def replay(calls: list[tuple[str, tuple[Any, ...]]], matcher: IdentityMatcher) -> IdentityMatcher:
    """Feed recorded calls to ``matcher``, then settle everything; returns it."""
    for name, args in calls:
        getattr(matcher, name)(*args)
    matcher.resolve()
    return matcher
