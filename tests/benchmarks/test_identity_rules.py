"""benchmarks/identity_rules.py: its model of the matcher agrees with the matcher, and each rule
decides as documented."""

from __future__ import annotations

import numpy as np

from benchmarks.identity_eval import Tracklet, cluster_scores, run_stream
from benchmarks.identity_rules import log_n, margin, offline, simulate, softmax, threshold, z_norm
from tracker.matching import IdentityMatcher


def _stream(seed=0, people=8, tracklets=40, dim=16):
    rng = np.random.default_rng(seed)
    looks = rng.normal(0, 1, (people, dim)) + 1.5  # alike people
    pids = rng.integers(people, size=tracklets)
    rows = [Tracklet(f"t{i}", str(p), 1 + i % 3, 8) for i, p in enumerate(pids)]
    features = {r.name: looks[int(r.pid)] + rng.normal(0, 0.5, (2, dim)) for r in rows}
    return rows, features


def test_the_threshold_rule_groups_exactly_as_the_matcher_does():
    rows, features = _stream()
    for t in (0.8, 0.9, 0.95):
        modelled = simulate([features[r.name] for r in rows], threshold(t))
        real, _ = run_stream(IdentityMatcher(16, match_threshold=t, min_clips=2), rows, features, 4)
        truth = [r.pid for r in rows]
        # same partition (ids may be numbered differently)
        assert cluster_scores(modelled, real)["bcubed_f1"] == 1.0
        assert cluster_scores(truth, modelled) == cluster_scores(truth, real)


def test_rules_decide_as_documented():
    sims = np.array([0.90, 0.88, 0.2])
    assert threshold(0.85)(sims, 3) == 0 and threshold(0.95)(sims, 3) == -1
    assert margin(0.85, 0.01)(sims, 3) == 0 and margin(0.85, 0.05)(sims, 3) == -1  # the runner-up is close
    assert log_n(0.85, 0.02)(sims, 1) == 0 and log_n(0.85, 0.02)(sims, 1000) == -1  # 0.85 + 0.06 > 0.90
    assert softmax(0.8, 40)(np.array([0.9, 0.3]), 2) == 0
    assert softmax(0.8, 40)(sims, 3) == 0
    assert softmax(0.8, 40)(np.array([0.9, 0.9, 0.2]), 3) == -1  # two share the evidence: neither reaches 0.5
    cohort = np.concatenate([[0.9], np.full(20, 0.5) + np.linspace(-0.05, 0.05, 20)])
    assert z_norm(0.8, 3.0)(cohort, 21) == 0
    spread = np.concatenate([[0.9], np.linspace(0.5, 0.89, 20)])  # the query is close to many: a hub
    assert z_norm(0.8, 3.0)(spread, 21) == -1


def test_merging_joins_identities_that_become_alike():
    a = np.array([[1.0, 0, 0], [1.0, 0, 0]])
    b = np.array([[0.8, 0.6, 0], [0.8, 0.6, 0]])
    bridge = np.array([[0.95, 0.3, 0], [0.95, 0.3, 0]])
    clips = [a, b, bridge]
    assert len(set(simulate(clips, threshold(0.9)))) == 2  # bridge joins a; b stays apart
    assert len(set(simulate(clips, threshold(0.9), merge_at=0.88))) == 1  # a+bridge now close to b (0.882)


def test_offline_clustering_cuts_at_the_mean_similarity_between_groups():
    a, a2 = np.array([[1.0, 0, 0]] * 2), np.array([[0.96, 0.28, 0]] * 2)  # a.a2 = 0.96
    b = np.array([[0.6, 0.8, 0]] * 2)  # a.b = 0.6, a2.b = 0.8: mean 0.70 to the group {a, a2}
    assert len(set(offline([a, a2, b], 0.9))) == 2
    assert len(set(offline([a, a2, b], 0.69))) == 1 and len(set(offline([a, a2, b], 0.71))) == 2
    assert offline([a], 0.5) == [1] and offline([], 0.5) == []
    rows, features = _stream()  # the ceiling sees everything at once: at least as good as the online rule
    truth, clips = [r.pid for r in rows], [features[r.name] for r in rows]
    best = max(cluster_scores(truth, offline(clips, t))["bcubed_f1"] for t in (0.8, 0.9, 0.95))
    assert best >= max(cluster_scores(truth, simulate(clips, threshold(t)))["bcubed_f1"] for t in (0.8, 0.9, 0.95))
