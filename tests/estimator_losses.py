"""Small losses given to the estimators as LossSpec objects, to observe what they receive."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lossreg import LossModule, LossSpec, Param, as_class_target


class RecordingCE(LossModule):
    """Cross-entropy that records what the estimator hands it (counts, weights, extras, epochs).

    References
    ----------
    A test fixture.
    """

    def __init__(
        self, *, class_counts: Any = None, scale: float = 1.0, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.class_counts = class_counts
        self.scale = scale
        self.seen_weights: list[torch.Tensor] = []
        self.seen_groups: list[torch.Tensor] = []
        self.epochs: list[tuple[int, int]] = []

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        self.epochs.append((epoch, max_epochs))

    def per_sample_loss(self, input, target, group=None, **extras):
        if group is not None:
            self.seen_groups.append(group.detach().clone())
        return self.scale * nn.functional.cross_entropy(
            input, as_class_target(target), reduction="none"
        )

    def forward(self, input, target, *, sample_weight=None, **extras):
        if sample_weight is not None:
            self.seen_weights.append(sample_weight.detach().clone())
        return super().forward(input, target, sample_weight=sample_weight, **extras)


def recording_spec(**changes: Any) -> LossSpec:
    fields: dict[str, Any] = {
        "name": "recording_ce",
        "factory": RecordingCE,
        "tasks": {"binary", "multiclass"},
        "link": "softmax",
        "params": (Param("scale", "float", 1.0, low=0, grid=(1.0, 2.0)),),
        "data_params": ("class_counts",),
        "summary": "Cross-entropy that records its inputs.",
        "reference": "A test fixture.",
    }
    fields.update(changes)
    return LossSpec(**fields)


class GroupCE(RecordingCE):
    """RecordingCE that requires a group id per row."""


def group_spec() -> LossSpec:
    return recording_spec(name="group_ce", factory=GroupCE, fit_extras=("group",))


class ExplodingCE(LossModule):
    """Cross-entropy that turns NaN from epoch ``at_epoch`` on (to test divergence handling).

    References
    ----------
    A test fixture.
    """

    def __init__(self, *, at_epoch: int = 2, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.at_epoch = at_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        self.epoch = epoch

    def per_sample_loss(self, input, target, **extras):
        loss = nn.functional.cross_entropy(input, as_class_target(target), reduction="none")
        return loss * float("nan") if self.epoch >= self.at_epoch else loss


def exploding_spec() -> LossSpec:
    return recording_spec(
        name="exploding_ce",
        factory=ExplodingCE,
        params=(Param("at_epoch", "int", 2, low=0),),
        data_params=(),
    )


class TemperedCE(LossModule):
    """Cross-entropy on logits divided by a learnable temperature.

    References
    ----------
    A test fixture.
    """

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def per_sample_loss(self, input, target, **extras):
        logits = input / self.log_temperature.exp()
        return nn.functional.cross_entropy(logits, as_class_target(target), reduction="none")


def tempered_spec() -> LossSpec:
    return recording_spec(
        name="tempered_ce", factory=TemperedCE, params=(), data_params=(), learnable=True
    )


def score_spec() -> LossSpec:
    """Multiclass hinge-like scores: no probabilities."""
    return recording_spec(name="score_ce", link="score", data_params=())


class SoftNeighbours(nn.Module):
    """Batch-level supervised contrastive loss on normalised embeddings (a test fixture).

    References
    ----------
    A test fixture.
    """

    def __init__(self, *, temperature: float = 0.2, reduction: str = "mean") -> None:
        super().__init__()
        self.temperature = temperature
        self.reduction = reduction
        self.batches: list[torch.Tensor] = []

    def forward(self, input, target, *, sample_weight=None, **extras):
        self.batches.append(target.detach().clone())
        z = nn.functional.normalize(input, dim=1)
        sim = z @ z.T / self.temperature
        eye = torch.eye(len(z), dtype=torch.bool)
        sim = sim.masked_fill(eye, float("-inf"))
        same = (target[:, None] == target[None, :]) & ~eye
        log_p = sim.log_softmax(dim=1)
        pos = torch.where(same, log_p, torch.zeros_like(log_p)).sum(1) / same.sum(1).clamp_min(1)
        return -pos.mean()


def neighbours_spec(**changes: Any) -> LossSpec:
    fields: dict[str, Any] = {
        "name": "soft_neighbours",
        "factory": SoftNeighbours,
        "tasks": {"embedding"},
        "link": "identity",
        "params": (Param("temperature", "float", 0.2, low=0, closed="neither"),),
        "per_sample": False,
        "sampler": "class_balanced",
        "summary": "Supervised contrastive fixture.",
        "reference": "A test fixture.",
    }
    fields.update(changes)
    return LossSpec(**fields)


class TwoViewAlignment(nn.Module):
    """Alignment of two views plus uniformity (a label-free test fixture).

    References
    ----------
    A test fixture.
    """

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, input, target, *, sample_weight=None, **extras):
        self.shapes.append((tuple(input.shape), tuple(target.shape)))
        z = nn.functional.normalize(input, dim=1)
        a, b = z.chunk(2)
        align = (a - b).square().sum(1).mean()
        uniform = torch.pdist(z).square().mul(-2).exp().mean().log()
        return align + uniform


def two_view_spec() -> LossSpec:
    return neighbours_spec(
        name="two_view_alignment", factory=TwoViewAlignment, params=(), sampler=None, views=2
    )
