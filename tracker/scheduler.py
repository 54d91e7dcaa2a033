"""Which finished clips go to the embedder this step, when there are more than it can take.

Offline (no time budget) every clip is embedded. In real-time mode the embedder gets a time
budget per pipeline step; the scheduler turns it into a clip count from the measured cost per clip
and picks the clips of the tracks that have the fewest clips so far (new tracks first, one clip per
track before any track gets a second). The rest is dropped, not queued, so the pipeline never
falls behind the video.
"""

from __future__ import annotations

import heapq
from typing import Mapping

from tracker.types import Clip


class ClipScheduler:
    """Picks the clips to embed each step.

    Args:
        budget_s: embedder seconds per step; None = no budget (embed everything).
        initial_cost_s: assumed seconds per clip until one batch was timed.
        smoothing: weight of the newest measurement in the cost's moving average.
    """

    def __init__(self, budget_s: float | None = None, initial_cost_s: float = 0.02, smoothing: float = 0.3) -> None:
        if budget_s is not None and budget_s <= 0:
            raise ValueError(f"budget_s must be > 0 or None, got {budget_s}")
        if initial_cost_s <= 0 or not 0 < smoothing <= 1:
            raise ValueError(f"initial_cost_s must be > 0 and smoothing in (0, 1], got {initial_cost_s}, {smoothing}")
        self.budget_s = budget_s
        self.cost_per_clip_s = initial_cost_s
        self.smoothing = smoothing
        self.submitted = 0
        self.embedded = 0
        self.dropped = 0

    def capacity(self) -> int | None:
        """Clips that fit in one step's budget (at least one), or None without a budget."""
        if self.budget_s is None:
            return None
        return max(1, int(self.budget_s / self.cost_per_clip_s))

    def select(self, clips: list[Clip], clip_counts: Mapping[tuple[str, int], int]) -> list[Clip]:
        """The clips to embed now; the others are dropped (and counted).

        Args:
            clips: clips finished this step, in arrival order.
            clip_counts: ``(camera_id, track_id)`` -> clips already in that track's signature.
        """
        self.submitted += len(clips)
        capacity = self.capacity()
        if capacity is None or len(clips) <= capacity:
            self.embedded += len(clips)
            return list(clips)
        counts = dict(clip_counts)
        # (clips the track would have, arrival order): fewest first, ties by arrival.
        heap = [(counts.get(c.key, 0), i) for i, c in enumerate(clips)]
        heapq.heapify(heap)
        chosen: list[int] = []
        while heap and len(chosen) < capacity:
            count, i = heapq.heappop(heap)
            current = counts.get(clips[i].key, 0)
            if count < current:  # this track got a clip chosen meanwhile: requeue behind the others
                heapq.heappush(heap, (current, i))
                continue
            chosen.append(i)
            counts[clips[i].key] = current + 1
        self.embedded += len(chosen)
        self.dropped += len(clips) - len(chosen)
        return [clips[i] for i in sorted(chosen)]

    def record(self, n_clips: int, seconds: float) -> None:
        """Fold a timed embedder call into the cost per clip."""
        if n_clips > 0 and seconds > 0:
            cost = seconds / n_clips
            self.cost_per_clip_s += self.smoothing * (cost - self.cost_per_clip_s)
