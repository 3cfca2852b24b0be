"""Global contrastive losses with per-row state across batches: SogCLR and iSogCLR."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule

from ._private import neg_inf, split_views

__all__ = ["ISogCLR", "SogCLR"]


class SogCLR(LossModule):
    r"""SogCLR: the global contrastive loss optimised with a moving-average estimator per row.

    Objective :math:`F=\frac1n\sum_i\tau\log\mathbb E_{j\in S_i^-}e^{(s_{ij}-s_i^+)/\tau}` over
    the whole training set, estimated with one state per training row:

    .. math::

        u_i \leftarrow (1-\gamma)\,u_i + \gamma\,\frac{1}{2(B-1)}\sum_{j\in S_i^-}e^{s_{ij}/\tau},
        \qquad
        \ell_i = -s_i^+ + \frac{1}{2(B-1)}\sum_{j\in S_i^-}
                 \mathrm{sg}\Big(\frac{e^{s_{ij}/\tau}}{u_i}\Big)s_{ij}

    for both views as anchors (their losses are added, their :math:`u` estimates averaged
    into the stored state), with cosine similarities :math:`s`, the other view as positive
    :math:`s_i^+` and the :math:`2(B-1)` other embeddings of the batch as negatives
    :math:`S_i^-`. :math:`\ell_i` is a surrogate: its gradient estimates the objective's, its
    value is not the objective (it can be negative).

    Input: embeddings (2N, D), rows i and i+N two views of row i; target: ignored; extra
    ``sample_index`` (N,) ints in ``[0, n_samples)``, a stable id of each training row.
    ``reduction="none"`` returns (N,).

    State: buffer ``log_u_`` (n_samples,), :math:`\log u_i` (``-inf`` = row not seen yet; a
    row seen for the first time starts at its batch estimate). It is kept in log space
    because :math:`e^{s/\tau}` overflows float32 for :math:`\tau < 0.012`. Updated only in
    ``train()`` mode with gradients enabled; a new module (each ``fit``) starts empty.

    Parameters
    ----------
    temperature : float in (0, inf), default=0.1
        :math:`\tau`.
    gamma : float in (0, 1], default=0.9
        Weight of the current batch in the moving average (1 = no memory).
    n_samples : int
        Data param: rows in the training fold (size of the state).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against LibAUC ``libauc/losses/contrastive.py`` (``GCLoss_v1``): same surrogate,
    moving average, symmetrised sum and mean over rows. Differences: LibAUC initialises
    :math:`u` only when the whole batch's :math:`u` sums to 0 (here: per row), stores
    :math:`u` in linear space on the CPU and moves it to CUDA unconditionally. With
    ``gamma=1`` the gradient is that of InfoNCE without the positive in the denominator.

    References
    ----------
    Z. Yuan, Y. Wu, Z.-H. Qiu, X. Du, L. Zhang, D. Zhou, T. Yang. "Provable Stochastic
    Optimization for Global Contrastive Learning: Small Batch Does Not Harm Performance."
    ICML 2022, arXiv:2202.12387.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [-0.6, 0.8]])
    >>> loss = SogCLR(n_samples=10, reduction="none")
    >>> [round(v, 4) for v in loss(x, None, sample_index=torch.tensor([3, 7])).tolist()]
    [-1.003, -1.003]
    """

    def __init__(
        self,
        *,
        n_samples: int,
        temperature: float = 0.1,
        gamma: float = 0.9,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.n_samples = n_samples
        self.temperature = temperature
        self.gamma = gamma
        self.register_buffer("log_u_", torch.full((int(n_samples),), float("-inf")))

    def _row_temperature(self, index: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x.new_full((index.shape[0],), self.temperature)

    def _update_temperature(self, index: torch.Tensor, grad: torch.Tensor) -> None:
        """Hook for iSogCLR's temperature step (SogCLR keeps a global temperature)."""

    def _direction(
        self, a: torch.Tensor, b: torch.Tensor, tau: torch.Tensor, log_u_old: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Surrogate loss, updated log u and temperature gradient for anchors ``a``."""
        n = a.shape[0]
        logits = torch.cat([a @ b.T, a @ a.T], dim=1)  # (n, 2n)
        eye = torch.eye(n, dtype=torch.bool, device=a.device)
        negative = ~torch.cat([eye, eye], dim=1)  # not the positive, not the anchor itself
        scaled = (logits / tau.unsqueeze(1)).masked_fill(~negative, neg_inf(logits))
        log_count = math.log(2 * (n - 1))
        log_mean = torch.logsumexp(scaled, dim=1) - log_count
        seen = torch.isfinite(log_u_old)
        current = log_mean.detach()
        if self.gamma < 1:
            moved = torch.logaddexp(
                math.log1p(-self.gamma) + log_u_old, math.log(self.gamma) + current
            )
            log_u = torch.where(seen, moved, current)
        else:
            log_u = current
        weights = torch.exp(scaled.detach() - log_u.unsqueeze(1)).masked_fill(~negative, 0)
        positive = torch.diagonal(logits)
        kept = logits.masked_fill(~negative, 0)
        loss = -positive + (weights * kept).sum(dim=1) / (2 * (n - 1))
        # d/dtau of the objective, up to rho: log u - mean_j w_ij s_ij / tau_i.
        weighted_scaled = (weights * scaled.detach().masked_fill(~negative, 0)).sum(dim=1)
        return loss, log_u, log_u - weighted_scaled / (2 * (n - 1))

    def per_sample_loss(
        self,
        input: torch.Tensor,
        target: torch.Tensor | None,
        *,
        sample_index: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        name = type(self).__name__
        if sample_index is None:
            raise ValueError(
                f"{name} keeps one state per training row and needs sample_index: pass "
                "fit(X, y, sample_index=...) with a stable row id in [0, n_samples)."
            )
        x, _, n_rows = split_views(input, None)
        if n_rows < 2:
            raise ValueError(f"{name} needs a (2N, D) batch of two views with N >= 2.")
        index = torch.as_tensor(sample_index, device=x.device).reshape(-1).long()
        if index.shape[0] != n_rows:
            raise ValueError(
                f"{name} got {index.shape[0]} sample_index values for {n_rows} rows (a (2N, D) "
                "batch has N rows)."
            )
        a, b = F.normalize(x[:n_rows], dim=1), F.normalize(x[n_rows:], dim=1)
        tau = self._row_temperature(index, x)
        log_u_old = self.log_u_[index].to(x.dtype)
        loss_a, log_u_a, grad_a = self._direction(a, b, tau, log_u_old)
        loss_b, log_u_b, grad_b = self._direction(b, a, tau, log_u_old)
        if self.training and torch.is_grad_enabled():
            with torch.no_grad():
                stored = torch.logaddexp(log_u_a, log_u_b) - math.log(2)
                self.log_u_[index] = stored.to(self.log_u_.dtype)
                self._update_temperature(index, (grad_a + grad_b) / 2)
        return loss_a + loss_b

    def extra_repr(self) -> str:
        return (
            f"n_samples={self.n_samples}, temperature={self.temperature}, gamma={self.gamma}, "
            f"reduction={self.reduction!r}"
        )


class ISogCLR(SogCLR):
    r"""iSogCLR: SogCLR with an individual temperature per training row, tuned by its own rule.

    Objective :math:`F=\frac1n\sum_i\big[\tau_i\log\mathbb E_{j\in S_i^-}
    e^{(s_{ij}-s_i^+)/\tau_i}+\tau_i\rho\big]`, the SogCLR surrogate with :math:`\tau_i` in
    place of :math:`\tau`, and after each training call, outside autograd:

    .. math::

        g_i = \log u_i + \rho - \frac{1}{2(B-1)}\sum_{j}w_{ij}\,s_{ij}/\tau_i, \quad
        m_i \leftarrow (1-\beta)m_i + \beta g_i, \quad
        \tau_i \leftarrow \mathrm{clip}(\tau_i - \eta m_i, \tau_{\min}, \tau_{\max})

    with :math:`g_i` averaged over the two views' directions. Input, output and the
    ``log_u_`` state as :class:`SogCLR`; extra state ``tau_`` and ``grad_tau_``
    (n_samples,), updated only in ``train()`` mode with gradients enabled.

    Parameters
    ----------
    temperature : float in (0, inf), default=0.1
        Initial :math:`\tau_i`.
    gamma : float in (0, 1], default=0.9
    rho : float in [0, inf), default=0.3
        :math:`\rho` (0.1-0.5 unimodal; 6 with the bimodal bounds 0.005-0.05).
    eta : float in (0, inf), default=0.01
        Step size of the temperature update.
    beta : float in (0, 1], default=0.9
        Momentum weight of the current temperature gradient.
    tau_min, tau_max : float, default=0.05, 0.7
        Bounds of :math:`\tau_i`.
    n_samples : int
        Data param.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against LibAUC ``GCLoss_v1(enable_isogclr=True)``: same update (there indexed
    with an ``(B, 1)`` temperature column that also hard-codes ``.cuda()``). The loss differs
    between two training calls on the same batch, since :math:`\tau_i` moves (flagged
    ``stochastic``). Evaluate with ``eval()`` to freeze the state.

    References
    ----------
    Z.-H. Qiu, Q. Hu, Z. Yuan, D. Zhou, L. Zhang, T. Yang. "Not All Semantics are Created
    Equal: Contrastive Self-supervised Learning with Automatic Temperature
    Individualization." ICML 2023, arXiv:2305.11965.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [-0.6, 0.8]])
    >>> loss = ISogCLR(n_samples=10)
    >>> round(loss(x, None, sample_index=torch.tensor([3, 7])).item(), 4)
    -1.003
    >>> [round(v, 4) for v in loss.tau_[[3, 7]].tolist()]
    [0.1034, 0.1034]
    """

    def __init__(
        self,
        *,
        n_samples: int,
        temperature: float = 0.1,
        gamma: float = 0.9,
        rho: float = 0.3,
        eta: float = 0.01,
        beta: float = 0.9,
        tau_min: float = 0.05,
        tau_max: float = 0.7,
        reduction: str = "mean",
    ) -> None:
        super().__init__(
            n_samples=n_samples, temperature=temperature, gamma=gamma, reduction=reduction
        )
        self.rho = rho
        self.eta = eta
        self.beta = beta
        self.tau_min = tau_min
        self.tau_max = tau_max
        self.register_buffer("tau_", torch.full((int(n_samples),), float(temperature)))
        self.register_buffer("grad_tau_", torch.zeros(int(n_samples)))

    def _row_temperature(self, index: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.tau_[index].to(x.dtype)

    def _update_temperature(self, index: torch.Tensor, grad: torch.Tensor) -> None:
        momentum = (1 - self.beta) * self.grad_tau_[index] + self.beta * (grad + self.rho).to(
            self.grad_tau_.dtype
        )
        self.grad_tau_[index] = momentum
        self.tau_[index] = (self.tau_[index] - self.eta * momentum).clamp(
            self.tau_min, self.tau_max
        )

    def extra_repr(self) -> str:
        return (
            f"n_samples={self.n_samples}, temperature={self.temperature}, gamma={self.gamma}, "
            f"rho={self.rho}, eta={self.eta}, beta={self.beta}, tau_min={self.tau_min}, "
            f"tau_max={self.tau_max}, reduction={self.reduction!r}"
        )
