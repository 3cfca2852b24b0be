"""Penalties on the network's features across environments: Deep CORAL and Fishr."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import nn

from lossreg import as_class_target, check_batch_reduction

from ._private import BatchWrapper, batch_reduce, group_ids, row_weights

__all__ = ["CrossEntropyParts", "DeepCORAL", "Fishr", "cross_entropy_parts", "logits_and_features"]


def logits_and_features(input: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the (logits, features) pair a ``logits+features`` loss receives, or raise."""
    if isinstance(input, Mapping) and "logits" in input and "features" in input:
        input = (input["logits"], input["features"])
    if not (isinstance(input, tuple | list) and len(input) == 2):
        raise ValueError(
            f"Loss {name!r} needs the network's features next to its logits: pass the input as "
            "(logits, features), features of shape (N, D) (estimators do this for you)."
        )
    logits, features = input
    if features.ndim != 2 or features.shape[0] != logits.shape[0]:
        raise ValueError(
            f"Loss {name!r}: features must be (N, D) with one row per logits row. Got "
            f"{tuple(features.shape)} for logits of shape {tuple(logits.shape)}."
        )
    return logits, features


class CrossEntropyParts(NamedTuple):
    """What a cross-entropy-plus-penalty loss on (logits, features) starts from."""

    logits: torch.Tensor
    features: torch.Tensor
    labels: torch.Tensor
    log_p: torch.Tensor  # log-softmax of the logits
    weight: torch.Tensor  # row weights (ones without sample weights)
    group: torch.Tensor  # environment / domain id per row
    ce: torch.Tensor  # per-row cross-entropy
    mass: torch.Tensor  # sum of the row weights
    value: torch.Tensor  # weighted mean cross-entropy


def cross_entropy_parts(
    input: Any,
    target: torch.Tensor,
    sample_weight: torch.Tensor | None,
    group: Any,
    name: str,
) -> CrossEntropyParts:
    """Split and check the input, and compute the weighted cross-entropy these losses share."""
    logits, features = logits_and_features(input, name)
    labels = as_class_target(target).to(logits.device)
    log_p = logits.log_softmax(dim=-1)
    weight = row_weights(sample_weight, log_p[:, 0])
    groups = group_ids(group, logits.shape[0], name).to(logits.device)
    ce = -log_p.gather(1, labels[:, None])[:, 0]
    mass = weight.sum()
    value = (ce * weight).sum() / mass.clamp_min(torch.finfo(ce.dtype).tiny)
    return CrossEntropyParts(logits, features, labels, log_p, weight, groups, ce, mass, value)


def _weighted_moments(
    features: torch.Tensor, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of rows weighted as frequencies."""
    mass = weight.sum()
    mean = (weight[:, None] * features).sum(dim=0) / mass
    centred = features - mean
    cov = (weight[:, None] * centred).T @ centred / (mass - 1)
    return mean, cov


class DeepCORAL(BatchWrapper):
    r"""Deep CORAL: a base loss plus the mismatch of feature means and covariances across groups.

    For the groups :math:`a` of the batch (``group`` extra) with mean :math:`\mu_a` and
    unbiased covariance :math:`C_a` of their feature rows :math:`h_i\in\mathbb R^D`,

    .. math::

        \mathrm{pen}_{ab}=\tfrac1D\lVert\mu_a-\mu_b\rVert^2+\tfrac1{D^2}\lVert C_a-C_b\rVert_F^2,
        \qquad
        L=\frac{\sum_iw_i\ell_i}{\sum_iw_i}+\lambda\,\mathrm{mean}_{a<b}\,\mathrm{pen}_{ab},

    with :math:`\ell_i` the base loss of row i on the logits and :math:`w_i` the sample
    weights (1 by default), which also weigh the rows of :math:`\mu_a, C_a` as frequencies
    (:math:`C_a=\sum_iw_i(h_i-\mu_a)(h_i-\mu_a)^\top/(\sum_iw_i-1)`).

    The input is the pair ``(logits, features)``: logits as the base loss takes them (its
    target and link too), features (N, D). Groups whose rows weigh 1 or less in total have no
    covariance and are left out; with fewer than two such groups the penalty is 0.

    Parameters
    ----------
    base : str, default="cross_entropy"
        A registered per-row loss on the logits.
    base_params : dict or None, default=None
    coral_weight : float >= 0, default=1.0
        :math:`\lambda` (DomainBed's ``mmd_gamma``, searched in [0.1, 10]).
    reduction : {"mean", "sum"}, default="mean"
        ``sum`` multiplies the batch value by the total row weight.

    Notes
    -----
    Checked against p-lambda/wilds ``examples/algorithms/deepCORAL.py`` (``coral_penalty``:
    ``mean_diff = (mean_x - mean_y).pow(2).mean()``, ``cova_diff = (cova_x -
    cova_y).pow(2).mean()`` with covariances divided by ``len - 1``, summed over the pairs of
    groups in the batch and divided by their number; objective ``avg_loss + penalty *
    coral_penalty_weight``, avg_loss the mean over all rows) and DomainBed's ``CORAL``
    (same penalty, ``mmd_gamma = 1``): agreement. Departures: sample weights weigh the
    rows of the group statistics (the references have none), and a group with one row is
    skipped (the references would divide by zero). The origin (Sun & Saenko) compares one
    source and one target domain with :math:`\frac{1}{4D^2}\lVert C_S-C_T\rVert_F^2`; this is
    the multi-group WILDS/DomainBed form the catalogue names. Every batch should hold several
    rows of several groups: the spec declares ``sampler="group_balanced"`` (every group in
    every training batch in equal shares, as DomainBed draws one minibatch per domain and
    WILDS's ``deepCORAL`` defaults draw groups uniformly).

    References
    ----------
    B. Sun, K. Saenko, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation",
    ECCV 2016 Workshops, arXiv:1607.01719; P. W. Koh et al., "WILDS: A Benchmark of
    in-the-Wild Distribution Shifts", ICML 2021, arXiv:2012.07421.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, -1.0], [0.5, 0.5]])
    >>> features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [0.0, 0.0]])
    >>> loss = DeepCORAL(coral_weight=1.0)
    >>> group = torch.tensor([0, 0, 1, 1])
    >>> round(loss((logits, features), torch.tensor([0, 1, 0, 1]), group=group).item(), 4)
    4.7685
    """

    _name = "deep_coral"
    _own_extras = ("group",)

    def __init__(
        self,
        *,
        base: str = "cross_entropy",
        base_params: Mapping[str, Any] | None = None,
        coral_weight: float = 1.0,
        reduction: str = "mean",
        **data_params: Any,
    ) -> None:
        super().__init__(base=base, base_params=base_params, reduction=reduction, **data_params)
        self.coral_weight = coral_weight

    def forward(
        self,
        input: Any,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        group: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return the weighted mean base loss plus the weighted CORAL penalty."""
        logits, features = logits_and_features(input, self._name)
        losses = self.base_losses(logits, target, extras)
        weight = row_weights(sample_weight, losses)
        group = group_ids(group, losses.shape[0], self._name).to(losses.device)
        mass = weight.sum()
        value = (losses * weight).sum() / mass.clamp_min(torch.finfo(losses.dtype).tiny)
        return batch_reduce(
            value + self.coral_weight * self.penalty(features, group, weight), self.reduction, mass
        )

    def penalty(
        self, features: torch.Tensor, group: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        """Mean over pairs of groups of the squared mean and covariance differences."""
        features = features.to(weight.dtype) if features.dtype != weight.dtype else features
        moments = []
        for g in torch.unique(group).tolist():
            rows = group == g
            if float(weight[rows].sum()) > 1:  # a covariance needs more than one row's weight
                moments.append(_weighted_moments(features[rows], weight[rows]))
        total = features.new_zeros(())
        pairs = 0
        for a in range(len(moments)):
            for b in range(a + 1, len(moments)):
                (mean_a, cov_a), (mean_b, cov_b) = moments[a], moments[b]
                total = total + (mean_a - mean_b).square().mean() + (cov_a - cov_b).square().mean()
                pairs += 1
        return total / max(pairs, 1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, coral_weight={self.coral_weight!r}"


class Fishr(nn.Module):
    r"""Fishr: cross-entropy plus the spread of per-environment gradient variances of the head.

    For a linear head on features :math:`h_i` the gradient of row i's cross-entropy with
    respect to the head's weight and bias is, in closed form,

    .. math::

        g_i=\big[(p_i-e_{y_i})\otimes h_i,\ p_i-e_{y_i}\big]\in\mathbb R^{C(D+1)},
        \qquad p_i=\mathrm{softmax}(z_i).

    Per environment :math:`e` (``group`` extra) present in the batch, the variance
    :math:`v_e=\sum_{i\in e}w_i(g_i-\bar g_e)^2/\sum_{i\in e}w_i` (elementwise, biased) is
    smoothed by an exponential moving average, :math:`m_e\leftarrow\gamma m_e+(1-\gamma)v_e`
    (stored without gradient, :math:`m_e=0` before the first update), and used as
    :math:`\tilde v_e=(\gamma\,m_e^{\text{old}}+(1-\gamma)v_e)/(1-\gamma)`. With
    :math:`\bar v` the mean of the :math:`\tilde v_e` over the environments of the batch,

    .. math::

        L=\frac{\sum_iw_i\,\mathrm{CE}(z_i,y_i)}{\sum_iw_i}
        +\lambda_t\,\mathrm{mean}_e\,\mathrm{mean}_k(\tilde v_{e,k}-\bar v_k)^2,

    :math:`\lambda_t=0` for the first ``anneal_iters`` training steps, then ``penalty_weight``.

    The input is the pair ``(logits, features)``: logits (N, C), features (N, D) (the input
    of the linear head that produced the logits); targets are class indices (N,).

    Parameters
    ----------
    penalty_weight : float >= 0, default=1000.0
        :math:`\lambda` after the warm-up (DomainBed's ``lambda``, searched in [10, 1e4]).
    anneal_iters : int >= 0, default=1500
        Training steps without the penalty first (the moving averages are updated already).
    ema : float in [0, 1), default=0.95
        :math:`\gamma`, the decay of the moving averages.
    reduction : {"mean", "sum"}, default="mean"

    Attributes
    ----------
    ema_ : buffer of shape (G, C(D+1))
        The moving averages :math:`m_e`, grown to the largest environment id seen + 1.
    updates_ : buffer of shape (G,)
        How many updates each environment's average has had.
    step_ : buffer
        Training steps counted so far.

    Notes
    -----
    Checked against facebookresearch/DomainBed ``algorithms.py`` (``Fishr``: per-row
    gradients of ``CrossEntropyLoss(reduction='none')`` with respect to the classifier's
    parameters (BackPACK ``BatchGrad``), ``(env_grads - env_mean).pow(2).mean(dim=0)``, one
    ``MovingAverage(ema, oneminusema_correction=True)`` per domain, penalty
    ``l2_between_dicts`` (a mean of squares) to the domains' mean, divided by the number of
    domains; objective ``all_nll + penalty_weight * penalty`` with ``penalty_weight = 0``
    before ``penalty_anneal_iters``; ``lambda=1000``, ``penalty_anneal_iters=1500``,
    ``ema=0.95``) and ``lib/misc.py`` (``MovingAverage.update``: returns
    ``(ema * previous + (1 - ema) * data) / (1 - ema)`` and stores the undivided value,
    detached): agreement. The closed form of the head's per-row gradient replaces BackPACK
    (equal for a linear head, which the estimators' MLP has); the catalogue's "EMA rate 0.95
    from memory" is confirmed. Departures: the moving averages and the penalty cover the
    environments present in the batch (DomainBed draws every domain in every batch), the
    averages move in training mode only (validation batches read them), and sample weights
    weigh the rows of the variances. The reference resets Adam at the end of the warm-up,
    an optimiser behaviour not done here. Fishr needs several rows of each environment per
    batch: the spec declares ``sampler="group_balanced"`` (every environment in every
    training batch in equal shares, DomainBed's one minibatch per environment).

    References
    ----------
    A. Ramé, C. Dancette, M. Cord, "Fishr: Invariant Gradient Variances for
    Out-of-Distribution Generalization", ICML 2022, arXiv:2109.02934.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, -1.0], [0.5, 0.5]])
    >>> features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [0.0, 0.0]])
    >>> loss = Fishr(penalty_weight=10.0, anneal_iters=0)
    >>> group = torch.tensor([0, 0, 1, 1])
    >>> round(loss((logits, features), torch.tensor([0, 1, 0, 1]), group=group).item(), 4)
    0.2742
    """

    _name = "fishr"

    def __init__(
        self,
        *,
        penalty_weight: float = 1000.0,
        anneal_iters: int = 1500,
        ema: float = 0.95,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        self.penalty_weight = penalty_weight
        self.anneal_iters = anneal_iters
        self.ema = ema
        self.reduction = check_batch_reduction(reduction, self._name)
        self.register_buffer("ema_", torch.zeros(0, 0, dtype=torch.float64))
        self.register_buffer("updates_", torch.zeros(0, dtype=torch.long))
        self.register_buffer("step_", torch.zeros((), dtype=torch.long))

    def current_weight(self) -> float:
        """The penalty weight of this step: 0 during the warm-up, then ``penalty_weight``."""
        return self.penalty_weight if int(self.step_) >= self.anneal_iters else 0.0

    def forward(
        self,
        input: Any,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        group: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return the weighted mean cross-entropy plus the weighted Fishr penalty."""
        logits, features, labels, log_p, weight, group, _, mass, value = cross_entropy_parts(
            input, target, sample_weight, group, self._name
        )
        residual = log_p.exp() - nn.functional.one_hot(labels, logits.shape[1]).to(log_p.dtype)
        h = features.to(log_p.dtype)
        grads = torch.cat(
            [(residual[:, :, None] * h[:, None, :]).reshape(len(h), -1), residual], dim=1
        )
        value = value + self.current_weight() * self._penalty(grads, group, weight)
        if self.training:
            self.step_ += 1
        return batch_reduce(value, self.reduction, mass)

    def _penalty(
        self, grads: torch.Tensor, group: torch.Tensor, weight: torch.Tensor
    ) -> torch.Tensor:
        envs = torch.unique(group)
        self._grow(int(envs.max()) + 1, grads.shape[1])
        smoothed = []
        for env in envs.tolist():
            rows = group == env
            w = weight[rows][:, None]
            mass = w.sum().clamp_min(torch.finfo(grads.dtype).tiny)
            mean = (w * grads[rows]).sum(dim=0) / mass
            variance = (w * (grads[rows] - mean).square()).sum(dim=0) / mass
            previous = self.ema_[env].to(grads.dtype)
            if int(self.updates_[env]) == 0:
                previous = torch.zeros_like(previous)
            moving = self.ema * previous + (1 - self.ema) * variance
            if self.training:  # validation batches read the averages without moving them
                self.ema_[env] = moving.detach().to(self.ema_.dtype)
                self.updates_[env] += 1
            smoothed.append(moving / (1 - self.ema))
        stacked = torch.stack(smoothed)
        return (stacked - stacked.mean(dim=0)).square().mean()

    def _grow(self, n_envs: int, width: int) -> None:
        if self.ema_.shape[1:] != (width,):
            if self.ema_.shape[0]:
                raise ValueError(
                    f"Loss 'fishr': the head's gradient has {width} values per row but the "
                    f"moving averages hold {self.ema_.shape[1]}; the number of classes or the "
                    "feature width changed between calls."
                )
            self.ema_ = torch.zeros(0, width, dtype=self.ema_.dtype, device=self.ema_.device)
        if n_envs > self.ema_.shape[0]:
            extra = n_envs - self.ema_.shape[0]
            self.ema_ = torch.cat([self.ema_, self.ema_.new_zeros(extra, width)])
            self.updates_ = torch.cat([self.updates_, self.updates_.new_zeros(extra)])

    def _load_from_state_dict(
        self, state_dict: Mapping[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # The averages grow with the environments seen: take the saved shapes before loading.
        for name in ("ema_", "updates_"):
            saved = state_dict.get(prefix + name)
            buffer = self._buffers[name]
            if saved is not None and buffer is not None and saved.shape != buffer.shape:
                self._buffers[name] = torch.empty_like(saved, device=buffer.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"penalty_weight={self.penalty_weight!r}, anneal_iters={self.anneal_iters!r}, "
            f"ema={self.ema!r}, reduction={self.reduction!r}"
        )
