"""Training losses of the paper: identity cross entropy plus batch-hard triplet (margin 0.3).

RFU (paper Sec. 3.3, Fig. 4) computes the triplet loss on the **raw feature** (FC1 output, before
the final BatchNorm); ``triplet_feature="bn"`` gives the paper's "Training: No" row of Table 2.
Not in the paper, off by default: a circle loss term (Sun et al., CVPR 2020) on the cosine
similarities of the same feature, which aims every positive pair above 1 - m and every negative
pair below m: one decision boundary for all people, which open-set matching with one threshold needs.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

TRIPLET_FEATURES = ("raw", "bn")


class LossOutput(NamedTuple):
    """The loss to back-propagate and its parts (detached scalars for logging).

    total: ``cross_entropy + triplet`` (scalar with grad).
    cross_entropy, triplet: the two terms, detached.
    accuracy: fraction of the batch whose logits pick the right identity.
    triplet_active: fraction of anchors whose hardest triplet still violates the margin.
    """

    total: torch.Tensor
    cross_entropy: torch.Tensor
    triplet: torch.Tensor
    accuracy: torch.Tensor
    triplet_active: torch.Tensor
    circle: torch.Tensor | None = None  # the circle term before its weight; None when off

    def parts(self) -> dict[str, torch.Tensor]:
        """The components present (the circle term only when on), keyed by name."""
        return {name: value for name, value in self._asdict().items() if value is not None}

    def as_floats(self) -> dict[str, float]:
        """Every component as a Python float, keyed by name (for CSV/TensorBoard)."""
        return {name: float(value.detach()) for name, value in self.parts().items()}


def pairwise_euclidean(features: torch.Tensor) -> torch.Tensor:
    """``(B, D)`` -> ``(B, B)`` Euclidean distances, float32, with a gradient-safe square root."""
    x = features.float()
    squared = x.pow(2).sum(dim=1)
    dist2 = squared[:, None] + squared[None, :] - 2.0 * x @ x.t()
    # The clamp keeps sqrt's gradient finite on the diagonal (distance 0 to itself).
    return dist2.clamp_min(1e-12).sqrt()


def batch_hard_triplet(
    features: torch.Tensor, labels: torch.Tensor, margin: float = 0.3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch-hard triplet loss (Hermans et al. 2017): per anchor, its farthest positive and nearest negative.

    ``loss = mean_a max(0, max_p d(a, p) - min_n d(a, n) + margin)`` with Euclidean d, which equals the
    mean over anchors of the largest hinge over all of the anchor's (positive, negative) pairs.

    Args:
        features: ``(B, D)`` embeddings.
        labels: ``(B,)`` integer identities; every anchor needs at least one negative in the batch.
        margin: the hinge margin (0.3 in the paper).

    Returns:
        ``(loss, active)``: the scalar loss and the fraction of anchors with a non-zero hinge.
    """
    if features.dim() != 2 or labels.dim() != 1 or features.shape[0] != labels.shape[0]:
        raise ValueError(
            f"features must be (B, D) and labels (B,), got {tuple(features.shape)} and {tuple(labels.shape)}"
        )
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    dist = pairwise_euclidean(features)
    same = labels[:, None] == labels[None, :]
    if bool(same.all()):
        raise ValueError("batch-hard triplet needs at least two identities in the batch")
    # Self-distance is ~0, so it never wins the max unless the anchor has no other positive.
    hardest_positive = dist.masked_fill(~same, float("-inf")).amax(dim=1)
    hardest_negative = dist.masked_fill(same, float("inf")).amin(dim=1)
    hinge = F.relu(hardest_positive - hardest_negative + margin)
    return hinge.mean(), (hinge > 0).float().mean()


def circle_loss(features: torch.Tensor, labels: torch.Tensor, margin: float = 0.25, scale: float = 64.0
                ) -> torch.Tensor:
    """Pair-wise circle loss (Sun et al. 2020) on cosine similarities, averaged over anchors.

    Per anchor: ``softplus(logsumexp_n(g a_n (s_n - m)) + logsumexp_p(-g a_p (s_p - (1 - m))))`` with
    ``a_p = max(0, 1 + m - s_p)``, ``a_n = max(0, s_n + m)`` (no gradient through the weights), s the
    cosine similarity, positives the anchor's other clips of the same identity. Anchors without a
    positive or a negative in the batch are skipped.
    """
    if features.dim() != 2 or labels.dim() != 1 or features.shape[0] != labels.shape[0]:
        raise ValueError(
            f"features must be (B, D) and labels (B,), got {tuple(features.shape)} and {tuple(labels.shape)}"
        )
    x = F.normalize(features.float(), dim=1)
    sim = x @ x.t()
    same = labels[:, None] == labels[None, :]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    negative = ~same
    alpha_p = (1.0 + margin - sim.detach()).clamp_min(0.0)
    alpha_n = (sim.detach() + margin).clamp_min(0.0)
    logit_p = (-scale * alpha_p * (sim - (1.0 - margin))).masked_fill(~positive, float("-inf"))
    logit_n = (scale * alpha_n * (sim - margin)).masked_fill(~negative, float("-inf"))
    usable = positive.any(dim=1) & negative.any(dim=1)
    if not bool(usable.any()):
        raise ValueError("circle loss needs an anchor with a positive and a negative in the batch")
    per_anchor = F.softplus(torch.logsumexp(logit_n[usable], dim=1) + torch.logsumexp(logit_p[usable], dim=1))
    return per_anchor.mean()


class ReIDLoss:
    """Cross entropy on the logits plus batch-hard triplet on the raw (RFU) or BN feature.

    Args:
        margin: triplet margin (0.3).
        label_smoothing: cross-entropy label smoothing in [0, 1); 0 (off) by default.
        triplet_feature: "raw" (RFU, default) or "bn".
        circle_weight: weight of a circle loss term (margin 0.25, scale 64) on the same feature as
            the triplet; 0 (off, as in the paper) by default.
    """

    def __init__(self, margin: float = 0.3, label_smoothing: float = 0.0, triplet_feature: str = "raw",
                 circle_weight: float = 0.0) -> None:
        if circle_weight < 0:
            raise ValueError(f"circle_weight must be >= 0, got {circle_weight}")
        self.circle_weight = circle_weight
        if triplet_feature not in TRIPLET_FEATURES:
            raise ValueError(f"unknown triplet_feature {triplet_feature!r}; choose from {list(TRIPLET_FEATURES)}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.margin = margin
        self.label_smoothing = label_smoothing
        self.triplet_feature = triplet_feature

    def __call__(
        self, raw_feature: torch.Tensor, bn_feature: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor
    ) -> LossOutput:
        """Shapes: features ``(B, D)``, logits ``(B, num_classes)``, labels ``(B,)`` int64."""
        if logits is None:
            raise ValueError("logits are None: the model must be in training mode to compute the loss")
        ce = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        feature = raw_feature if self.triplet_feature == "raw" else bn_feature
        triplet, active = batch_hard_triplet(feature, labels, self.margin)
        accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()
        if not self.circle_weight:
            return LossOutput(ce + triplet, ce.detach(), triplet.detach(), accuracy, active.detach())
        circle = circle_loss(feature, labels)
        return LossOutput(ce + triplet + self.circle_weight * circle, ce.detach(), triplet.detach(), accuracy,
                          active.detach(), circle.detach())
