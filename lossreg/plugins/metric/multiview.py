"""ColloSSL multi-view contrastive loss: time-aligned rows of other devices as positives."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import LossModule, as_class_target

from ._private import check_embeddings, neg_inf

__all__ = ["MultiviewContrastive", "device_mmd"]

#: Widths of the Gaussian kernels summed in the device MMD (ColloSSL ``distances.py``).
_MMD_WIDTHS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 100.0)
_MMD_FLOOR = 1e-4


def _kernel_mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    squared = (a.unsqueeze(1) - b.unsqueeze(0)).square().sum(-1)
    widths = torch.tensor(_MMD_WIDTHS, dtype=a.dtype, device=a.device)
    return torch.exp(-squared.unsqueeze(-1) / (2 * widths)).sum(-1).mean()


def device_mmd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared MMD of two samples (rows), ColloSSL's sum of Gaussian kernels, floored at 1e-4."""
    value = _kernel_mean(a, a) + _kernel_mean(b, b) - 2 * _kernel_mean(a, b)
    return value.clamp_min(_MMD_FLOOR)


class MultiviewContrastive(LossModule):
    r"""ColloSSL's multi-device contrastive loss (closest device positive, all devices negative).

    Rows are windows recorded by several devices (the target: a device id per row) at several
    times (the ``group`` extra: rows of one group are time-aligned). For a batch, the
    distance between two devices is the MMD of their rows' input features; device
    :math:`P(A)`, the closest to device :math:`A`, is its positive device and every other device
    :math:`B\ne A` is a negative device. For an anchor row :math:`a` of device :math:`A`:

    .. math::

        \ell_a = -\log\frac{\sum_{p} w_+ e^{s(a,p)/\tau}}
                 {\sum_{p} w_+ e^{s(a,p)/\tau} + \sum_{B\ne A} w_B\, e^{s(a,n_B)/\tau}}

    where :math:`p` runs over the rows of device :math:`P(A)` in the anchor's group (time-aligned
    positives), :math:`n_B` is a random row of device :math:`B` (time-misaligned negative, drawn
    at each call), :math:`s` is the cosine similarity and, with ``weighted``,
    :math:`w_B\propto 1/\mathrm{MMD}(A,B)`, :math:`w_+\propto 1`, both divided by their maximum
    (unweighted: all 1). Anchors without a time-aligned row of their positive device have
    loss 0 and count in the mean.

    Input: embeddings (N, D); target: device ids (N,); fit extras ``group`` (time ids, N) and
    ``features`` (the rows' inputs, routed by the estimator). ``reduction="none"`` returns
    (N,). Randomness comes from torch's global generator.

    Parameters
    ----------
    temperature : float in (0, inf), default=0.05
        :math:`\tau` (the value of the authors' multi-device runs).
    weighted : bool, default=True
        Weight negative devices by their inverse MMD to the anchor's device.
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Checked against the authors' code (akhilmathurs/collossl): ``loss_fn.py``
    (``weighted_group_contrastive_loss_with_temp``: the loss above), ``simclr_utitlities.py``
    (``group_supervised_contrastive_train_model``: weights 1 for positives and 1/distance for
    negatives, divided by their maximum; ``unsync_neg`` shuffles each negative device's rows),
    ``device_selection.py`` (``closest_pos_all_neg``: the closest device by MMD is positive,
    all other devices are negative), ``distances.py`` (the multi-width Gaussian MMD, floored at
    1e-4) and ``hparam_tuning_mp.py`` (multi-device runs: temperature 0.05, ``unsync_neg``,
    dynamic per-batch device selection, ``closest_pos_all_neg``, weighted). Departures: the
    code computes the MMD on the norm of the accelerometer channels of IMU windows, here on the
    rows' input features; it uses one anchor device per batch, here every row is an anchor; a
    negative is a random row of its device (with replacement) rather than a shuffled
    permutation. The catalogue entry left the device rule open; the code's is followed. Use
    ``sampler="whole_groups"`` batches (declared) so that time-aligned rows share a batch.

    References
    ----------
    Y. Jain et al. "ColloSSL: Collaborative Self-Supervised Learning for Human Activity
    Recognition." Proc. ACM IMWUT, 2022, doi:10.1145/3517246, arXiv:2202.00758.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> device, time = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1])
    >>> loss = MultiviewContrastive(temperature=0.5, reduction="none")
    >>> picks = torch.tensor([[0, 3], [2, 1], [0, 3], [2, 1]])
    >>> [round(v, 4) for v in loss.given_negatives(x, device, time, x, picks).tolist()]
    [0.0605, 0.0605, 0.311, 0.311]
    """

    def __init__(
        self, *, temperature: float = 0.05, weighted: bool = True, reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        self.temperature = temperature
        self.weighted = weighted

    def draw_negatives(self, target: torch.Tensor) -> torch.Tensor:
        """For each row and device (in sorted id order), a random row of that device: (N, K)."""
        devices = as_class_target(target)
        ids = devices.unique()
        columns = []
        for device_id in ids:
            rows = (devices == device_id).nonzero(as_tuple=True)[0]
            draw = torch.randint(rows.shape[0], (devices.shape[0],), device=devices.device)
            columns.append(rows[draw])
        return torch.stack(columns, dim=1)

    def per_sample_loss(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        group: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        picks = self.draw_negatives(target)
        return self.given_negatives(input, target, group, features, picks)

    def given_negatives(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        group: torch.Tensor | None,
        features: torch.Tensor | None,
        picks: torch.Tensor,
    ) -> torch.Tensor:
        """The per-row loss with the negatives ``picks`` (N, K) (see :meth:`draw_negatives`)."""
        x = check_embeddings(input)
        if group is None or features is None:
            raise ValueError(
                "MultiviewContrastive needs 'group' (time ids) and 'features' (the inputs, to "
                "compare devices): pass fit(X, y=device_ids, group=time_ids)."
            )
        devices = as_class_target(target)
        times = as_class_target(group)
        n = x.shape[0]
        if devices.shape[0] != n or times.shape[0] != n:
            raise ValueError(
                f"Got {n} embeddings, {devices.shape[0]} device ids and {times.shape[0]} "
                "group ids; pass one of each per row."
            )
        ids = devices.unique()
        k = ids.shape[0]
        if k < 2:
            return x.sum(dim=1) * 0  # one device: no positive device, no loss (kept in graph)
        device_index = torch.searchsorted(ids, devices)
        inputs = features.detach().to(x.dtype).reshape(n, -1)
        mmd = torch.ones((k, k), dtype=x.dtype, device=x.device)
        with torch.no_grad():
            for a in range(k):
                for b in range(a + 1, k):
                    value = device_mmd(inputs[device_index == a], inputs[device_index == b])
                    mmd[a, b] = mmd[b, a] = value
        eye = torch.eye(k, dtype=torch.bool, device=x.device)
        closest = mmd.masked_fill(eye, float("inf")).argmin(dim=1)
        if self.weighted:
            inverse = (1 / mmd).masked_fill(eye, 0.0)
            top = inverse.max(dim=1).values.clamp_min(1.0)  # the positive's weight is 1
            log_w_neg = inverse.log() - top.log().unsqueeze(1)
            log_w_pos = -top.log()
        else:
            log_w_neg = torch.zeros((k, k), dtype=x.dtype, device=x.device)
            log_w_pos = torch.zeros(k, dtype=x.dtype, device=x.device)
        z = F.normalize(x, dim=1)
        logits = z @ z.T / self.temperature
        anchor = device_index
        positive = (times.unsqueeze(1) == times.unsqueeze(0)) & (
            device_index.unsqueeze(0) == closest[anchor].unsqueeze(1)
        )
        pos_logits = (logits + log_w_pos[anchor].unsqueeze(1)).masked_fill(
            ~positive, neg_inf(logits)
        )
        numerator = torch.logsumexp(pos_logits, dim=1)
        rows = torch.arange(n, device=x.device).unsqueeze(1)
        neg_logits = logits[rows, picks] + log_w_neg[anchor]
        other = device_index.unsqueeze(1) != torch.arange(k, device=x.device)
        neg_logits = neg_logits.masked_fill(~other, neg_inf(logits))
        denominator = torch.logsumexp(torch.cat([numerator.unsqueeze(1), neg_logits], 1), 1)
        has_positive = positive.any(dim=1)
        return torch.where(has_positive, denominator - numerator, torch.zeros_like(numerator))

    def extra_repr(self) -> str:
        return (
            f"temperature={self.temperature}, weighted={self.weighted}, "
            f"reduction={self.reduction!r}"
        )
