"""Cross-entropy with rows dropped or down-weighted: ENT, loss truncation, TaiLr."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossModule, as_class_target

from ._private import log_probs

__all__ = ["ErrorNormTruncation", "LossTruncation", "TaiLr"]


class ErrorNormTruncation(LossModule):
    r"""Error norm truncation (ENT): cross-entropy on rows whose error norm is small.

    .. math::

        e_i = \lVert \mathrm{sg}(p_i) - e_{y_i} \rVert_2 \in [0, \sqrt 2], \qquad
        \ell_i = -\log p_t \cdot \mathbb 1[\text{row } i \text{ kept}]

    ``mode="threshold"`` keeps rows with :math:`e_i \le \theta`; ``mode="fraction"`` drops the
    :math:`\lfloor f N \rfloor` rows of the batch with the largest :math:`e_i` (rows tied with the
    cut-off value are kept). For the first ``start_iteration`` training calls every row is kept.

    Input logits have shape (N, C); targets are class indices of shape (N,).

    Parameters
    ----------
    mode : {"threshold", "fraction"}, default="threshold"
    threshold : float in (0, sqrt(2)], default=1.2
        :math:`\theta` for ``mode="threshold"``.
    fraction : float in [0, 1), default=0.1
        :math:`f` for ``mode="fraction"``.
    start_iteration : int in [0, inf), default=0
        Warm-up: training calls (batches) of plain CE before truncation starts.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    State: buffer ``step_`` counts the calls made in training mode (eval-mode calls neither
    count nor skip truncation). Dropped rows contribute 0 and stay in the denominator of
    ``"mean"`` in both modes, as in the authors' code, which sums the masked token losses and
    divides by the number of all tokens. The error norm is computed without gradient. Checked
    against tianjianl/error_norm_truncation (``label_smoothed_cross_entropy_token.py``:
    ``mask = el2n > threshold``; fraction mode sorts the norms in descending order, takes the
    value at index ``int(f * n)`` as cut-off and masks norms strictly above it; pruning starts
    at ``--start-prune-iteration``). That code has no default threshold (it is a script
    argument); 1.2 is the catalogue's value, inside the paper's sweep, and is not a verified
    paper default. Likewise ``fraction=0.1`` and ``start_iteration=0`` are our defaults.

    References
    ----------
    T. Li, H. Xu, P. Koehn, D. Khashabi, K. Murray. "Error Norm Truncation: Robust Training in
    the Presence of Data Noise for Text Generation Models." ICLR 2024, arXiv:2310.00840.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0]])
    >>> labels = torch.tensor([0, 1, 2, 1])
    >>> loss = ErrorNormTruncation(reduction="none")
    >>> [round(v, 4) for v in loss(logits, labels).tolist()]
    [0.1698, 0.4076, 1.0986, 0.0]
    """

    def __init__(
        self,
        *,
        mode: str = "threshold",
        threshold: float = 1.2,
        fraction: float = 0.1,
        start_iteration: int = 0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        if mode not in ("threshold", "fraction"):
            raise ValueError(f"mode must be 'threshold' or 'fraction'. Got {mode!r} instead.")
        self.mode = mode
        self.threshold = threshold
        self.fraction = fraction
        self.start_iteration = start_iteration
        self.register_buffer("step_", torch.zeros((), dtype=torch.long))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        log_p, log_pt = log_probs(input, target)
        nll = -log_pt
        step = int(self.step_)
        if self.training:
            self.step_ += 1
            if step < self.start_iteration:
                return nll
        with torch.no_grad():
            error = log_p.exp().scatter_add(
                1, as_class_target(target).unsqueeze(1), -torch.ones_like(log_pt).unsqueeze(1)
            )
            norm = error.norm(dim=1)
            if self.mode == "threshold":
                keep = norm <= self.threshold
            else:
                n_drop = int(self.fraction * norm.shape[0])
                cutoff = norm.sort(descending=True).values[min(n_drop, norm.shape[0] - 1)]
                keep = norm <= cutoff
        return torch.where(keep, nll, torch.zeros_like(nll))

    def extra_repr(self) -> str:
        return (
            f"mode={self.mode!r}, threshold={self.threshold}, fraction={self.fraction}, "
            f"start_iteration={self.start_iteration}, reduction={self.reduction!r}"
        )


class LossTruncation(LossModule):
    r"""Loss truncation: drop rows whose cross-entropy is above a running quantile.

    .. math::

        \ell_i = \mathrm{CE}_i \cdot \mathbb 1[\mathrm{CE}_i < \hat q_{1-c}]

    :math:`\hat q_{1-c}` is the :math:`(1-c)` quantile of the last ``window`` per-row losses
    seen in training, recomputed every ``window`` rows once ``min_count`` rows have been seen
    (hot start: every row is kept before that).

    Input logits have shape (N, C); targets are class indices of shape (N,).

    Parameters
    ----------
    drop_c : float in [0, 1), default=0.4
        Fraction :math:`c` of rows to drop.
    min_count : int in [0, inf), default=10000
        Rows seen before truncation starts (hot start).
    window : int in [1, inf), default=10000
        Size of the loss history, and the number of rows between two quantile updates.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    State (buffers, reset by rebuilding the module at ``fit``): ``history_`` (window,), the
    ring buffer of recent losses; ``count_``, rows seen; ``since_``, rows since the last
    quantile; ``cutoff_``, the current cut-off (1e8 until the first update, as in the origin
    code). Only training-mode calls update the state; every call applies the current cut-off.
    Dropped rows stay in the denominator of ``"mean"``. Checked against the ``LossDropper`` of
    the origin paper as reproduced in tianjianl/error_norm_truncation
    (``label_smoothed_cross_entropy_loss_truncation.py``: ``dropc=0.4``, ``min_count=10000``,
    ``recompute=10000``, ``np.percentile`` of the history at ``(1 - dropc) * 100``, mask
    ``loss < cutoff``); that file's own baseline wiring is broken (it never passes ``dropc``
    and masks an undefined variable), so the origin ``LossDropper`` logic was followed. The
    catalogue's batch-quantile variant is not provided. Drops hard-but-clean rows as readily
    as noisy ones.

    References
    ----------
    D. Kang, T. B. Hashimoto. "Improved Natural Language Generation via Loss Truncation."
    ACL 2020, arXiv:2004.14589.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0]])
    >>> labels = torch.tensor([0, 1, 2, 1])
    >>> loss = LossTruncation(min_count=4, window=4, reduction="none")
    >>> [round(v, 4) for v in loss(logits, labels).tolist()]
    [0.1698, 0.4076, 1.0986, 3.0949]
    >>> [round(v, 4) for v in loss(logits, labels).tolist()]
    [0.1698, 0.4076, 0.0, 0.0]
    """

    def __init__(
        self,
        *,
        drop_c: float = 0.4,
        min_count: int = 10000,
        window: int = 10000,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        self.drop_c = drop_c
        self.min_count = min_count
        self.window = window
        self.register_buffer("history_", torch.zeros(int(window), dtype=torch.get_default_dtype()))
        self.register_buffer("count_", torch.zeros((), dtype=torch.long))
        self.register_buffer("since_", torch.zeros((), dtype=torch.long))
        self.register_buffer("cutoff_", torch.tensor(1e8, dtype=torch.get_default_dtype()))

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        _, log_pt = log_probs(input, target)
        nll = -log_pt
        if self.training:
            keep_all = self._observe(nll.detach())
            if keep_all:
                return nll
        keep = nll.detach() < self.cutoff_.to(nll.dtype)
        return torch.where(keep, nll, torch.zeros_like(nll))

    def _observe(self, losses: torch.Tensor) -> bool:
        """Record a batch's losses; return True while the hot start keeps every row."""
        n = losses.shape[0]
        start = int(self.count_)
        slots = torch.arange(start, start + n, device=self.history_.device) % self.window
        # A batch longer than the window keeps only its last `window` losses, as the origin's
        # row-by-row ring buffer does.
        self.history_[slots[-self.window :]] = losses[-self.window :].to(self.history_)
        self.count_ += n
        self.since_ += n
        if int(self.count_) < self.window or int(self.count_) < self.min_count:
            return True
        if int(self.since_) > self.window:
            self.cutoff_.fill_(float(torch.quantile(self.history_, 1.0 - self.drop_c)))
            self.since_.zero_()
        return False

    def extra_repr(self) -> str:
        return (
            f"drop_c={self.drop_c}, min_count={self.min_count}, window={self.window}, "
            f"reduction={self.reduction!r}"
        )


class TaiLr(LossModule):
    r"""TaiLr: cross-entropy re-weighted by a total-variation-motivated, detached row weight.

    .. math::

        w_i = \mathrm{clip}\Big(\mathrm{sg}\Big[\frac{p_t}{\gamma + (1-\gamma)\,p_t}\Big],
        w_{\min}, 1\Big), \qquad \ell_i = -w_i \log p_t

    :math:`\gamma = 0` gives :math:`w_i = 1`, plain cross-entropy; :math:`\gamma = 1` gives
    :math:`w_i = p_t`. Rows the model finds unlikely (noisy labels) are down-weighted.

    Input logits have shape (N, C); targets are class indices of shape (N,).

    Parameters
    ----------
    gamma : float in [0, 1], default=0.1
        Mixing coefficient :math:`\gamma` ("density ratio threshold" in the authors' code).
    min_weight : float in [0, 1], default=0.3
        Floor :math:`w_{\min}` of the weight.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The catalogue marked this entry unverified and said :math:`\gamma = 1` recovers CE; the
    authors' code (thu-coai/TaiLr, ``fairseq/criterions/tailr.py``) computes
    :math:`w = \exp(\log p_t - \log(\gamma + (1-\gamma)p_t))` without gradient, clamps it to
    ``[min_weight, 1]`` and multiplies the NLL, so CE is :math:`\gamma = 0` and this form was
    followed. Defaults are the authors' IWSLT14 script (``--density-ratio-threshold 0.1
    --density-min-weight 0.3``); the argparse defaults there are 1.0 and 0.0. The label
    smoothing term of that criterion is left out (use a composite with ``cross_entropy``).
    The re-implementation in tianjianl/error_norm_truncation uses the NLL instead of
    :math:`p_t` in the numerator; it was not followed.

    References
    ----------
    H. Ji, P. Ke, Z. Hu, R. Zhang, M. Huang. "Tailoring Language Generation Models under Total
    Variation Distance." ICLR 2023, arXiv:2302.13344.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0]])
    >>> labels = torch.tensor([0, 1, 2, 1])
    >>> loss = TaiLr(reduction="none")
    >>> [round(v, 4) for v in loss(logits, labels).tolist()]
    [0.1668, 0.3881, 0.9155, 0.9956]
    """

    def __init__(
        self, *, gamma: float = 0.1, min_weight: float = 0.3, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.gamma = gamma
        self.min_weight = min_weight

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        _, log_pt = log_probs(input, target)
        with torch.no_grad():
            p_t = log_pt.exp()
            denom = self.gamma + (1.0 - self.gamma) * p_t
            # p_t / denom; at gamma = 0 and p_t = 0 (underflow) the ratio is 1 by continuity.
            weight = torch.where(denom > 0, (log_pt - denom.log()).exp(), torch.ones_like(p_t))
            weight = weight.clamp(min=self.min_weight, max=1.0)
        return -weight * log_pt

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, min_weight={self.min_weight}, reduction={self.reduction!r}"
