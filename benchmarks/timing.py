"""Wall-clock timing shared by the speed benchmarks: one call repeated, or several round-robin."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

logger = logging.getLogger(__name__)


def time_calls(call: Callable[[], Any], repeats: int, warmup: int) -> tuple[list[float], Any]:
    """Seconds per call over ``repeats`` timed calls after ``warmup`` untimed ones; and the last output."""
    out = None
    for _ in range(warmup):
        out = call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - start)
    return times, out


def round_robin(calls: Mapping[str, Callable[[], Any]], repeats: int, warmup: int,
                max_rounds: Mapping[str, int] | None = None) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Seconds per call of each named call, timed round-robin; and each call's last output.

    Round-robin (one call of each per round) spreads the load of other processes on a shared
    machine evenly over the calls, so their ratios hold even when the absolute numbers drift.
    Each call first runs ``max(warmup, 1)`` times untimed; ``max_rounds`` caps the timed rounds
    of slow calls.
    """
    caps = max_rounds or {}
    outs = {name: call() for name, call in calls.items() for _ in range(max(warmup, 1))}
    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(repeats):
        for name, call in calls.items():
            if round_ >= caps.get(name, repeats):
                continue
            start = time.perf_counter()
            outs[name] = call()
            times[name].append(time.perf_counter() - start)
        logger.info("round %d/%d done", round_ + 1, repeats)
    return times, outs
