"""Cross entropy + batch-hard triplet, checked against brute force."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from reid_model.losses import ReIDLoss, batch_hard_triplet, circle_loss, pairwise_euclidean


def brute_force_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float) -> float:
    """Per anchor, the largest hinge over ALL its (positive, negative) pairs; then the mean."""
    n = len(labels)
    per_anchor = []
    for a in range(n):
        worst = 0.0
        for p, q in itertools.product(range(n), range(n)):
            if p == a or labels[p] != labels[a] or labels[q] == labels[a]:
                continue
            d_ap = torch.linalg.vector_norm(features[a] - features[p]).item()
            d_an = torch.linalg.vector_norm(features[a] - features[q]).item()
            worst = max(worst, d_ap - d_an + margin)
        per_anchor.append(worst)
    return sum(per_anchor) / n


@pytest.mark.parametrize("margin", [0.3, 0.0, 5.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_batch_hard_matches_brute_force(margin: float, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    # Scaled so that some anchors violate the margin and some do not.
    features = torch.randn(12, 8, generator=g) * 0.3 + labels[:, None].float() * 0.2
    loss, active = batch_hard_triplet(features, labels, margin)
    assert loss.item() == pytest.approx(brute_force_triplet(features, labels, margin), abs=1e-5)
    assert 0.0 <= active.item() <= 1.0


def test_batch_hard_zero_when_identities_are_far_apart() -> None:
    labels = torch.tensor([0, 0, 1, 1])
    features = torch.tensor([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.1, 0.0]])
    loss, active = batch_hard_triplet(features, labels, 0.3)
    assert loss.item() == 0.0 and active.item() == 0.0


def test_pairwise_euclidean_and_finite_gradient_at_zero_distance() -> None:
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [4.0, 6.0]], requires_grad=True)
    dist = pairwise_euclidean(x)
    assert dist[0, 2].item() == pytest.approx(5.0, abs=1e-5)
    loss, _ = batch_hard_triplet(x, torch.tensor([0, 0, 1]), 10.0)
    loss.backward()
    assert torch.isfinite(x.grad).all()


def _outputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    raw = torch.randn(6, 16, generator=g)
    bn = torch.randn(6, 16, generator=g) * 3
    logits = torch.randn(6, 5, generator=g)
    return raw, bn, logits, labels


@pytest.mark.parametrize("feature", ["raw", "bn"])
def test_reid_loss_components(feature: str) -> None:
    raw, bn, logits, labels = _outputs()
    out = ReIDLoss(triplet_feature=feature)(raw, bn, logits, labels)
    expected_triplet, _ = batch_hard_triplet(raw if feature == "raw" else bn, labels, 0.3)
    assert out.triplet.item() == pytest.approx(expected_triplet.item(), rel=1e-6)
    assert out.cross_entropy.item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)
    assert out.total.item() == pytest.approx(out.cross_entropy.item() + out.triplet.item(), rel=1e-6)
    floats = out.as_floats()
    assert set(floats) == {"total", "cross_entropy", "triplet", "accuracy", "triplet_active"}


def test_raw_and_bn_triplet_differ() -> None:
    raw, bn, logits, labels = _outputs()
    assert ReIDLoss(triplet_feature="raw")(raw, bn, logits, labels).triplet != ReIDLoss(triplet_feature="bn")(
        raw, bn, logits, labels
    ).triplet


def test_label_smoothing_off_by_default_and_flag_applies_it() -> None:
    raw, bn, logits, labels = _outputs()
    plain = ReIDLoss()(raw, bn, logits, labels).cross_entropy
    smooth = ReIDLoss(label_smoothing=0.1)(raw, bn, logits, labels).cross_entropy
    assert plain.item() == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)
    assert smooth.item() == pytest.approx(F.cross_entropy(logits, labels, label_smoothing=0.1).item(), rel=1e-6)
    assert smooth.item() != pytest.approx(plain.item())


def test_gradient_flows_to_features_and_logits() -> None:
    raw, bn, logits, labels = _outputs()
    raw.requires_grad_(True)
    logits.requires_grad_(True)
    ReIDLoss(margin=10.0)(raw, bn, logits, labels).total.backward()
    assert raw.grad.abs().sum() > 0 and logits.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kwargs",
    [{"triplet_feature": "pooled"}, {"label_smoothing": 1.0}, {"label_smoothing": -0.1}, {"margin": -1.0}],
)
def test_bad_loss_options_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ReIDLoss(**kwargs)


def test_bad_loss_inputs_raise() -> None:
    raw, bn, logits, labels = _outputs()
    with pytest.raises(ValueError, match="two identities"):
        batch_hard_triplet(raw, torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        batch_hard_triplet(raw, labels[:4])
    with pytest.raises(ValueError, match="training mode"):
        ReIDLoss()(raw, bn, None, labels)


def test_circle_loss_of_a_perfect_batch_by_hand() -> None:
    # positives identical (s_p = 1), negatives orthogonal (s_n = 0): a_p = a_n = 0.25, every logit
    # 64 * 0.25 * -0.25 = -4; each anchor has 1 positive and 2 negatives: softplus(-4 + log 2 - 4)
    features = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert circle_loss(features, labels).item() == pytest.approx(math.log1p(2 * math.exp(-8.0)), rel=1e-5)


def test_circle_loss_pulls_positives_together_and_pushes_negatives_apart() -> None:
    g = torch.Generator().manual_seed(1)
    features = (torch.randn(8, 16, generator=g) + 2.0).requires_grad_()  # every pair alike: negatives too
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~torch.eye(8, dtype=torch.bool)

    def sims(x):
        x = F.normalize(x.detach(), dim=1)
        s = x @ x.t()
        return s[same & off_diagonal].mean().item(), s[~same].mean().item()

    before, loss = sims(features), circle_loss(features, labels)
    loss.backward()
    after = sims(features - 0.05 * features.grad)
    assert after[0] > before[0] and after[1] < before[1]
    harder = circle_loss(torch.cat([features[:2], features[:2] + 0.01, features[4:]]).detach(), labels)
    assert harder.item() > loss.item()  # identity 1 made a copy of identity 0: a much worse batch


@pytest.mark.parametrize("labels", [[0, 0, 0, 0], [0, 1, 2, 3]])
def test_circle_loss_needs_an_anchor_with_a_positive_and_a_negative(labels) -> None:
    with pytest.raises(ValueError, match="a positive and a negative"):
        circle_loss(torch.randn(4, 8), torch.tensor(labels))
    with pytest.raises(ValueError, match="features must be"):
        circle_loss(torch.randn(4, 8), torch.tensor(labels[:3]))


def test_reid_loss_adds_the_weighted_circle_term() -> None:
    raw, bn, logits, labels = _outputs()
    out = ReIDLoss(circle_weight=0.5)(raw, bn, logits, labels)
    assert out.circle.item() == pytest.approx(circle_loss(raw, labels).item(), rel=1e-6)
    assert out.total.item() == pytest.approx(out.cross_entropy.item() + out.triplet.item() + 0.5 * out.circle.item(),
                                             rel=1e-6)
    assert set(out.as_floats()) == {"total", "cross_entropy", "triplet", "accuracy", "triplet_active", "circle"}
    bn_out = ReIDLoss(triplet_feature="bn", circle_weight=1.0)(raw, bn, logits, labels)
    assert bn_out.circle.item() == pytest.approx(circle_loss(bn, labels).item(), rel=1e-6)
    with pytest.raises(ValueError, match="circle_weight must be >= 0"):
        ReIDLoss(circle_weight=-1.0)
