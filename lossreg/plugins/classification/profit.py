"""Decision-focused targeting losses: the regret of a retention campaign's targeting decisions."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossModule, as_float_target

__all__ = ["PnOChurnRegret", "campaign_benefit"]


def campaign_benefit(
    target: torch.Tensor, value: torch.Tensor, gamma: float, delta: float, contact_cost: float
) -> torch.Tensor:
    r"""Return the profit :math:`b_i` of targeting each customer, shape (N,).

    .. math::

        b_i = y_i\,[\gamma(v_i - \delta) - f] - (1 - y_i)(\delta + f)

    A targeted churner (:math:`y_i = 1`) accepts the incentive :math:`\delta` with probability
    :math:`\gamma` and is kept (its lifetime value :math:`v_i`); every contact costs :math:`f`;
    a targeted non-churner takes the incentive without being at risk. A customer left alone
    yields 0 (the reference decision).
    """
    y = as_float_target(target, value)
    return y * (gamma * (value - delta) - contact_cost) - (1 - y) * (delta + contact_cost)


class PnOChurnRegret(LossModule):
    r"""Regret of soft targeting decisions in a retention campaign (predict-and-optimize).

    Each row is a customer with churn label :math:`y_i \in \{0, 1\}`, a lifetime value
    :math:`v_i` (the ``value`` fit extra, in currency units, unscaled) and one score
    :math:`s_i`; :math:`\sigma(s_i)` is the (soft) decision to target the customer. With the
    benefit of targeting :math:`b_i` (:func:`campaign_benefit`) and the best decision
    :math:`z^*_i = \mathbb 1[b_i > 0]` in hindsight, the per-row regret is

    .. math::

        \ell_i = \big(z^*_i - \sigma(s_i)\big)\, b_i \;\ge\; 0,

    the profit lost against the perfect campaign. It is 0 when the decision is right and
    :math:`|b_i|` at worst, so rows matter in proportion to the money at stake, and the
    optimum targets a customer when its expected benefit is positive: the learned rule uses
    each customer's own value, not an average one. Predict: target the rows with
    :math:`s_i > 0`; :math:`\sigma(s)` is a targeting decision, not a churn probability.

    Input: one score per row, shape (N,) or (N, 1); target: {0, 1} churn labels, shape (N,);
    ``value``: (N,) lifetime values in currency units (not standardised).

    Parameters
    ----------
    gamma : float in (0, 1], default=0.3
        Probability that a targeted churner accepts the offer and stays.
    delta : float >= 0, default=10.0
        Cost of the incentive, paid by every targeted customer who accepts it.
    contact_cost : float >= 0, default=1.0
        Cost :math:`f` of contacting a customer.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    **What this implements, and what could not be checked.** Gómez-Vargas, Maldonado and
    Vairetti frame targeting as regret minimisation in a predict-and-optimize setting with
    individual lifetime values and train it by stochastic gradient descent (abstract of
    arXiv:2310.07047 / EJOR 2025). Only the paper's abstract and first page were reachable
    (arXiv HTML, publisher and repository pages), and no authors' code was found, so its exact
    surrogate, benefit formula and regulariser are unverified: this is the catalogue's
    reconstruction. The benefit is the standard retention-campaign profit of Neslin et al.
    (2006) and Verbraken et al. (2013, the maximum-profit measure MPC), with a row's own value
    in place of the average one; the defaults :math:`\gamma = 0.3, \delta = 10, f = 1` are
    that measure's (its :math:`\gamma \sim \mathrm{Beta}(6, 14)` has mean 0.3), not values
    read in this paper. The catalogue's per-row ``clv`` is the generic ``value`` fit extra
    here, and its :math:`f` the parameter ``contact_cost``. The catalogue's L2 weight acts on
    the model's weights: set it with the estimator's ``weight_decay`` (a loss does not see
    the weights). Since the loss is linear in :math:`\sigma(s_i)`, scores of easy rows
    saturate; that does not change the decisions, which are all this loss is for.

    References
    ----------
    N. Gómez-Vargas, S. Maldonado, C. Vairetti. "A predict-and-optimize approach to
    profit-driven churn prevention." European Journal of Operational Research 324(2), 2025,
    555-566, arXiv:2310.07047.

    T. Verbraken, W. Verbeke, B. Baesens. "A Novel Profit Maximizing Metric for Measuring
    Classification Performance of Customer Churn Prediction Models." IEEE TKDE 25(5), 2013.

    Examples
    --------
    >>> import torch
    >>> loss = PnOChurnRegret(reduction="none")
    >>> scores = torch.tensor([2.0, -2.0, 0.0, 1.0])
    >>> churn = torch.tensor([1, 1, 0, 0])
    >>> value = torch.tensor([200.0, 200.0, 50.0, 500.0])
    >>> [round(v, 3) for v in loss(scores, churn, value=value).tolist()]
    [6.675, 49.325, 5.5, 8.042]
    """

    def __init__(
        self,
        *,
        gamma: float = 0.3,
        delta: float = 10.0,
        contact_cost: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.gamma = gamma
        self.delta = delta
        self.contact_cost = contact_cost

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, *, value: Any = None, **extras: Any
    ) -> torch.Tensor:
        if input.ndim == 2 and input.shape[1] == 1:
            input = input[:, 0]
        if input.ndim != 1:
            raise ValueError(
                "pno_churn_regret takes one score per row, shape (N,) or (N, 1). Got shape "
                f"{tuple(input.shape)}; use an output size of 1."
            )
        if value is None:
            raise ValueError(
                "Loss 'pno_churn_regret' needs 'value' at fit time: pass fit(X, y, value=...) "
                "with each customer's lifetime value."
            )
        value = torch.as_tensor(value, device=input.device).to(input.dtype)
        if value.ndim == 2 and value.shape[1] == 1:
            value = value[:, 0]
        if value.ndim != 1:
            raise ValueError(
                "Loss 'pno_churn_regret' takes one lifetime value per row, shape (N,) or "
                f"(N, 1); got value of shape {tuple(value.shape)}. Pass one column."
            )
        if value.shape[0] != input.shape[0]:
            raise ValueError(
                f"value has {value.shape[0]} rows but the scores have {input.shape[0]}; pass "
                "one lifetime value per row."
            )
        benefit = campaign_benefit(target, value, self.gamma, self.delta, self.contact_cost)
        best = (benefit > 0).to(input.dtype)
        return (best - torch.sigmoid(input)) * benefit
