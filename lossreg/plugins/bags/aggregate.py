"""Learning from aggregate responses: bag-level, instance-level and interpolating squared losses."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossModule

from ._private import BagLoss

__all__ = ["AggregateInterpolating", "BagMSE", "InstanceAggregateMSE"]

_PAPER = (
    'Javanmard, Chen, Mirrokni, Badanidiyuru, Fu, "Learning from Aggregate responses: Instance '
    'Level versus Bag Level Loss Functions", ICLR 2024, arXiv:2401.11081'
)


def _predictions(input: torch.Tensor, name: str) -> torch.Tensor:
    """One prediction per row, (N,), from (N,) or (N, 1)."""
    if input.ndim == 2 and input.shape[1] == 1:
        return input[:, 0]
    if input.ndim != 1:
        raise ValueError(
            f"Loss {name!r} takes one prediction per row, shape (N,) or (N, 1). Got shape "
            f"{tuple(input.shape)}."
        )
    return input


def _bag_stats(f: torch.Tensor, index: torch.Tensor, n_bags: int):
    """Bag sizes k_b and bag-mean predictions (B,)."""
    sizes = torch.zeros(n_bags, dtype=f.dtype, device=f.device).index_add(
        0, index, torch.ones_like(f)
    )
    means = torch.zeros(n_bags, dtype=f.dtype, device=f.device).index_add(0, index, f) / sizes
    return sizes, means


class BagMSE(BagLoss):
    r"""Bag-level squared loss between the bag's mean response and the mean prediction.

    .. math::

        L = \frac{1}{N}\sum_b k_b(\bar y_b-\bar f_b)^2 \quad(\texttt{bag\_weight="size"}),
        \qquad \frac1B\sum_b(\bar y_b-\bar f_b)^2 \quad(\texttt{"uniform"}).

    Input: predictions (N,) or (N, 1); ``bag``: one id per row; ``bag_target``: the bag's
    mean response repeated on each row. ``target`` is not used.

    Parameters
    ----------
    bag_weight : {"size", "uniform"}, default="size"
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Unbiased but high-variance (the paper's bag-level loss); instance predictions are only
    identified through their bag means. Exact only when the batch holds whole bags.

    References
    ----------
    Javanmard, Chen, Mirrokni, Badanidiyuru, Fu, "Learning from Aggregate responses: Instance
    Level versus Bag Level Loss Functions", ICLR 2024, arXiv:2401.11081.

    Examples
    --------
    >>> import torch
    >>> pred = torch.tensor([1.0, 3.0, 0.0, 1.0])
    >>> bag = torch.tensor([0, 0, 1, 1])
    >>> mean = torch.tensor([1.0, 1.0, 2.0, 2.0])
    >>> round(BagMSE()(pred, None, bag=bag, bag_target=mean).item(), 4)
    1.625
    """

    _name = "bag_mse"

    def __init__(self, *, bag_weight: str = "size", reduction: str = "mean") -> None:
        super().__init__(bag_weight=bag_weight, reduction=reduction)

    def bag_losses(
        self, input: torch.Tensor, index: torch.Tensor, n_bags: int, target: torch.Tensor
    ) -> torch.Tensor:
        _, means = _bag_stats(_predictions(input, self._name), index, n_bags)
        return (target.reshape(-1) - means).square()

    def extra_repr(self) -> str:
        return f"bag_weight={self.bag_weight!r}"


class AggregateInterpolating(BagLoss):
    r"""Interpolation between the bag-level and the instance-level aggregate losses.

    .. math::

        L = \frac1N\sum_b\Big[k_b(\bar y_b-\bar f_b)^2
            + \rho\sum_{i\in b}(f_i-\bar f_b)^2\Big],\qquad \rho\in[0, 1],

    so :math:`\rho=0` is :class:`BagMSE` and :math:`\rho=1` is :class:`InstanceAggregateMSE`
    (the instance loss is the bag loss plus the within-bag variance of the predictions).

    Input, ``bag`` and ``bag_target`` as for :class:`BagMSE`.

    Parameters
    ----------
    rho : float in [0, 1], default=0.5
        Weight of the within-bag prediction-variance regulariser (tune it by CV).
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    The decomposition is exact (tested). The paper's interpolating estimator combines the two
    losses with one tuning parameter; its exact parameterisation could not be checked against
    the paper's text here, so this follows the catalogue (a convex combination of the bag and
    instance losses, which is the form above). The paper fixes no default; 0.5 is lossreg's.
    Exact only when the batch holds whole bags.

    References
    ----------
    Javanmard, Chen, Mirrokni, Badanidiyuru, Fu, "Learning from Aggregate responses: Instance
    Level versus Bag Level Loss Functions", ICLR 2024, arXiv:2401.11081.

    Examples
    --------
    >>> import torch
    >>> pred = torch.tensor([1.0, 3.0, 0.0, 1.0])
    >>> bag = torch.tensor([0, 0, 1, 1])
    >>> mean = torch.tensor([1.0, 1.0, 2.0, 2.0])
    >>> round(AggregateInterpolating(rho=0.5)(pred, None, bag=bag, bag_target=mean).item(), 4)
    1.9375
    """

    _name = "aggregate_interpolating"

    def __init__(self, *, rho: float = 0.5, reduction: str = "mean") -> None:
        super().__init__(bag_weight="size", reduction=reduction)
        self.rho = rho

    def bag_losses(
        self, input: torch.Tensor, index: torch.Tensor, n_bags: int, target: torch.Tensor
    ) -> torch.Tensor:
        f = _predictions(input, self._name)
        sizes, means = _bag_stats(f, index, n_bags)
        spread = torch.zeros_like(means).index_add(0, index, (f - means[index]).square())
        # Bags are weighed by size in forward, so the spread enters as its per-row mean.
        return (target.reshape(-1) - means).square() + self.rho * spread / sizes

    def extra_repr(self) -> str:
        return f"rho={self.rho!r}"


class InstanceAggregateMSE(LossModule):
    r"""Instance-level aggregate loss: each row's prediction against its bag's mean response.

    .. math::

        \ell_i = (\bar y_{b(i)} - f(x_i))^2, \qquad
        L = \frac1N\sum_b\sum_{i\in b}(\bar y_b-f_i)^2
          = \texttt{bag\_mse} + \frac1N\sum_b\sum_{i\in b}(f_i-\bar f_b)^2 .

    Input: predictions (N,) or (N, 1); ``bag_target``: the bag's mean response per row.
    ``target`` is not used. Per-row, so it needs no bag ids and no bag-aware batching.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Biased, low variance: it shrinks the within-bag variation of the predictions.

    References
    ----------
    Javanmard, Chen, Mirrokni, Badanidiyuru, Fu, "Learning from Aggregate responses: Instance
    Level versus Bag Level Loss Functions", ICLR 2024, arXiv:2401.11081.

    Examples
    --------
    >>> import torch
    >>> pred = torch.tensor([1.0, 3.0, 0.0, 1.0])
    >>> mean = torch.tensor([1.0, 1.0, 2.0, 2.0])
    >>> loss = InstanceAggregateMSE(reduction="none")
    >>> [round(v, 4) for v in loss(pred, None, bag_target=mean).tolist()]
    [0.0, 4.0, 4.0, 1.0]
    """

    def per_sample_loss(
        self,
        input: torch.Tensor,
        target: torch.Tensor | None,
        bag_target: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        f = _predictions(input, "instance_aggregate_mse")
        if bag_target is None:
            raise ValueError(
                "Loss 'instance_aggregate_mse' needs 'bag_target' at fit time: the bag's mean "
                "response repeated on each row of the bag."
            )
        y = torch.as_tensor(bag_target, dtype=f.dtype, device=f.device).reshape(-1)
        if y.shape != f.shape:
            raise ValueError(
                f"Loss 'instance_aggregate_mse': bag_target has {y.shape[0]} values for "
                f"{f.shape[0]} rows; pass one per row."
            )
        return (y - f).square()
