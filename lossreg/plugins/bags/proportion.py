"""Learning from label proportions: DLLP, proportion MSE and proportion KL on bag means."""

from __future__ import annotations

import torch

from ._private import BagLoss, bag_log_mean_proba, class_log_proba, proportion_matrix

__all__ = ["DLLP", "BagProportionMSE", "ProportionKL"]

#: Added to target proportions before their log, as the reference (mathilde-b/SFDA) does.
_PROPORTION_EPS = 1e-10


class DLLP(BagLoss):
    r"""Deep learning from label proportions: cross-entropy of bag proportions.

    With :math:`\bar p_b=\frac1{k_b}\sum_{i\in b}p_i` the mean predicted class distribution of
    bag :math:`b` and :math:`\alpha_b` its label proportions,

    .. math::

        L_b = -\sum_c \alpha_{b,c}\log\bar p_{b,c}
            = \mathrm{KL}(\alpha_b\Vert\bar p_b) + H(\alpha_b),

    averaged over the bags of the batch (``bag_weight="uniform"``) or weighted by bag size.

    Input: logits (N, C) (softmax), or one logit per row (N,) / (N, 1) for binary bags
    (sigmoid). ``bag``: one id per row; ``bag_target``: the bag's proportions repeated on
    each row, (N, C), or (N,) holding the positive fraction for binary bags. ``target`` is not
    used (instance labels are unknown in this setting).

    Parameters
    ----------
    bag_weight : {"uniform", "size"}, default="uniform"
        Average the bag losses uniformly, or weight each bag by its number of rows.
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    :math:`\log\bar p_b` is a logsumexp of the rows' log-probabilities minus :math:`\log k_b`,
    so saturated probabilities stay finite. The loss is exact only when the batch holds whole
    bags: with part of a bag it is the DLLP loss of that sub-bag against the whole bag's
    proportions (an approximation). Sample weights are per bag: a bag weighs the mean of its
    rows' weights. What was checked: the origin paper's abstract describes a "Batch
    Averager" layer (the mean of the instance predictions of a bag) trained against the
    bag's label distribution, which matches :math:`\bar p_b`; the cross-entropy form above is
    the catalogue's closed form (the paper's full text was not available here).

    References
    ----------
    Ardehaly, Culotta, "Co-Training for Demographic Classification Using Deep Learning from
    Label Proportions", ICDM Workshops 2017, arXiv:1709.04108.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 2.0]])
    >>> bag = torch.tensor([0, 0, 1, 1])
    >>> share = torch.tensor([0.5, 0.5, 1.0, 1.0])  # positive fraction of each row's bag
    >>> round(DLLP()(logits, None, bag=bag, bag_target=share).item(), 4)
    0.5121
    """

    _name = "dllp"

    def __init__(self, *, bag_weight: str = "uniform", reduction: str = "mean") -> None:
        super().__init__(bag_weight=bag_weight, reduction=reduction)

    def bag_losses(
        self, input: torch.Tensor, index: torch.Tensor, n_bags: int, target: torch.Tensor
    ) -> torch.Tensor:
        log_mean = bag_log_mean_proba(class_log_proba(input), index, n_bags)
        alpha = proportion_matrix(target, log_mean.shape[1], self._name)
        # 0 * log p = 0 even where p underflows to 0 (a class the bag does not hold).
        return -torch.where(alpha > 0, alpha * log_mean, torch.zeros_like(log_mean)).sum(dim=1)

    def extra_repr(self) -> str:
        return f"bag_weight={self.bag_weight!r}"


class BagProportionMSE(BagLoss):
    r"""Squared error between mean predicted and true bag proportions.

    .. math::

        L_b = \lVert\bar p_b-\alpha_b\rVert_2^2 = \sum_c(\bar p_{b,c}-\alpha_{b,c})^2,

    averaged over bags (uniformly or by size). Input, ``bag`` and ``bag_target`` as for
    :class:`DLLP`.

    Parameters
    ----------
    bag_weight : {"uniform", "size"}, default="uniform"
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    The sum runs over the model's output classes: with one sigmoid logit per row it is the
    binary :math:`(\bar p_b-\alpha_b)^2`; with two softmax outputs it is twice that. Weaker
    gradients than :class:`DLLP` when :math:`\bar p` saturates. Whole bags per batch are
    needed for the exact loss (see :class:`DLLP`).

    References
    ----------
    Havaldar, Sharma, Sareen, Shanmugam, Raghuveer, "Learning from Label Proportions:
    Bootstrapping Supervised Learners via Belief Propagation", ICLR 2024, arXiv:2310.08056
    (the proportion-MSE baseline); a closed form.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 2.0]])
    >>> bag = torch.tensor([0, 0, 1, 1])
    >>> share = torch.tensor([0.5, 0.5, 1.0, 1.0])
    >>> round(BagProportionMSE()(logits, None, bag=bag, bag_target=share).item(), 4)
    0.0805
    """

    _name = "bag_proportion_mse"

    def __init__(self, *, bag_weight: str = "uniform", reduction: str = "mean") -> None:
        super().__init__(bag_weight=bag_weight, reduction=reduction)

    def bag_losses(
        self, input: torch.Tensor, index: torch.Tensor, n_bags: int, target: torch.Tensor
    ) -> torch.Tensor:
        mean = bag_log_mean_proba(class_log_proba(input), index, n_bags).exp()
        if input.ndim == 1 or input.shape[-1] == 1:
            mean = mean[:, 1:]  # one sigmoid output: the positive class only
            alpha = target.reshape(-1, 1)
        else:
            alpha = proportion_matrix(target, mean.shape[1], self._name)
        return (mean - alpha).square().sum(dim=1)

    def extra_repr(self) -> str:
        return f"bag_weight={self.bag_weight!r}"


class ProportionKL(BagLoss):
    r"""KL divergence between the mean predicted bag proportion and the bag's proportion.

    .. math::

        L_b = \mathrm{KL}(\bar p_b\Vert\tau_b)
            = \sum_c\bar p_{b,c}\log\bar p_{b,c}-\sum_c\bar p_{b,c}\log(\tau_{b,c}+10^{-10})

    (``direction="pred_first"``, the reference's), or
    :math:`\mathrm{KL}(\tau_b\Vert\bar p_b)` (``direction="target_first"``, the same gradient
    as :class:`DLLP`); averaged over bags.

    Input: logits (N, C) (softmax) or one logit per row (binary); ``bag`` and ``bag_target``
    as for :class:`DLLP`.

    Parameters
    ----------
    direction : {"pred_first", "target_first"}, default="pred_first"
    bag_weight : {"uniform", "size"}, default="uniform"
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Checked against mathilde-b/SFDA ``losses.py`` (``EntKLProp``: ``loss_cons_prior`` =
    :math:`\sum\bar p\log\bar p - \sum\bar p\log(\tau+10^{-10})`, divided by the number of
    images = bags): agreement, including the :math:`10^{-10}` guard on :math:`\tau` (a zero
    target proportion otherwise gives :math:`+\infty`). The predicted side is computed in log
    space instead of adding :math:`10^{-10}`. Whole bags per batch are needed for the exact
    loss.

    References
    ----------
    Bateson, Kervadec, Dolz, Lombaert, Ben Ayed, "Source-Free Domain Adaptation for Image
    Segmentation", arXiv:2108.03152, 2021.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 2.0]])
    >>> bag = torch.tensor([0, 0, 1, 1])
    >>> share = torch.tensor([0.5, 0.5, 0.9, 0.9])
    >>> round(ProportionKL()(logits, None, bag=bag, bag_target=share).item(), 4)
    0.0656
    """

    _name = "proportion_kl"

    def __init__(
        self, *, direction: str = "pred_first", bag_weight: str = "uniform", reduction: str = "mean"
    ) -> None:
        super().__init__(bag_weight=bag_weight, reduction=reduction)
        self.direction = direction

    def bag_losses(
        self, input: torch.Tensor, index: torch.Tensor, n_bags: int, target: torch.Tensor
    ) -> torch.Tensor:
        log_mean = bag_log_mean_proba(class_log_proba(input), index, n_bags)
        tau = proportion_matrix(target, log_mean.shape[1], self._name)
        if self.direction == "pred_first":
            return (log_mean.exp() * (log_mean - (tau + _PROPORTION_EPS).log())).sum(dim=1)
        # 0 log 0 = 0 for classes the bag does not hold.
        safe = torch.where(tau > 0, tau, torch.ones_like(tau))
        terms = torch.where(tau > 0, tau * (safe.log() - log_mean), torch.zeros_like(tau))
        return terms.sum(dim=1)

    def extra_repr(self) -> str:
        return f"direction={self.direction!r}, bag_weight={self.bag_weight!r}"
