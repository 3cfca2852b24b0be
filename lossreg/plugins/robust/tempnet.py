"""TempNet DRO cross-entropy: KL-DRO loss with per-row temperatures from a learned network."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossreg import Link, LossModule, as_class_target

__all__ = ["TempNetDROCE", "learned_temperature_link"]


class _TempNet(nn.Module):
    """Map a row of logits to a temperature in [tau_min, tau_max] (the authors' architecture)."""

    def __init__(self, n_classes: int, hidden: int, tau_min: float, tau_max: float) -> None:
        super().__init__()
        self.tau_min = tau_min
        self.tau_max = tau_max
        self.hidden = hidden
        self.proj = nn.Sequential(
            nn.Linear(n_classes, hidden), nn.Sigmoid(), nn.Dropout(0.5), nn.Linear(hidden, hidden)
        )
        self.log_scale = nn.Parameter(torch.zeros(1))
        self.last = nn.Linear(hidden, 1)
        with torch.no_grad():  # the authors start from weight 1, bias 0
            self.last.weight.fill_(1.0)
            self.last.bias.fill_(0.0)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        x = self.proj(F.normalize(logits, dim=-1))
        weights = torch.softmax(x / self.log_scale.exp(), dim=-1)
        score = self.last((weights - 1.0 / self.hidden) * x).squeeze(-1)
        return self.tau_min + (self.tau_max - self.tau_min) * torch.sigmoid(score)


class TempNetDROCE(LossModule):
    r"""KL-DRO cross-entropy with a per-row temperature predicted by a learned network (TempNet).

    .. math::

        \tau_i = \tau_{\min} + (\tau_{\max} - \tau_{\min})\,\sigma(g_\phi(z_i)), \qquad
        \ell_i = \tau_i \log \sum_k e^{(z_{ik} - z_{i y_i})/\tau_i} + (\rho - \log C)\,\tau_i

    i.e. :math:`\tau_i\,\mathrm{CE}(z_i/\tau_i, y_i) + (\rho - \log C)\tau_i`, the dual of the
    worst case over label distributions in a KL ball of radius :math:`\rho`, with the dual
    variable :math:`\tau_i` predicted by :math:`g_\phi`: L2-normalised logits :math:`\to`
    Linear(C, h) :math:`\to` sigmoid :math:`\to` dropout(0.5) :math:`\to` Linear(h, h) = :math:`x`;
    :math:`w = \mathrm{softmax}(x / e^{s})`; :math:`g = \mathrm{Linear}(h, 1)((w - 1/h)\odot x)`.

    Input logits have shape (N, C); targets are class indices of shape (N,). Predictions use
    :data:`learned_temperature_link`, :math:`\mathrm{softmax}(z / \tau(z))` with the fitted
    network.

    Parameters
    ----------
    rho : float in [0, inf), default=0.0
        KL radius :math:`\rho` (tuned in the paper).
    tau_min, tau_max : float, default=0.01, 1.2
        Range of the temperature, :math:`0 < \tau_{\min} < \tau_{\max}`.
    hidden : int in [1, inf), default=256
        Width :math:`h` of the temperature network.
    detach_input : bool, default=True
        Feed the network detached logits, so the loss reaches the model only through the
        cross-entropy term (as in the authors' LLaMA code, where the logits come from a frozen
        model); ``False`` lets the model also move :math:`\tau`.
    n_classes : int
        Data parameter: number of classes (input width of the network).
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Learnable: the network's parameters are ``nn.Parameter``s of this module and must reach the
    optimizer (spec ``learnable=True``). Stochastic in training mode (dropout 0.5); eval mode
    is deterministic. The network runs in its parameters' dtype; :math:`\tau` is cast back to
    the input's dtype. Checked against zhqiu/TempNet ``tempnet.py`` (``tau_cross_entropy``,
    ``TempNet(hid_size=256, tau_min=0.01)`` with ``tau_max = 1.2``): same loss and
    architecture. ``rho=0.0`` is the default of the authors' GPT-2 ``TempNet`` (their
    Megatron variant uses :math:`\tau \in [0.5, 5]`); the paper tunes :math:`\rho`. This is
    ``ldr_kl`` with margin 0, no normalisation and a predicted :math:`\lambda = \tau_i`, plus
    the :math:`\rho\tau` term.

    References
    ----------
    Z. Qiu et al. "To Cool or not to Cool? Temperature Network Meets Large Foundation Models
    via DRO." Code: zhqiu/TempNet.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0]])
    >>> labels = torch.tensor([0, 1, 2, 1])
    >>> loss = TempNetDROCE(n_classes=3, hidden=8, reduction="none").eval()
    >>> [round(v, 4) for v in loss(logits, labels).tolist()]
    [-0.6663, -0.5556, 0.0, 2.3151]
    """

    def __init__(
        self,
        *,
        n_classes: int,
        rho: float = 0.0,
        tau_min: float = 0.01,
        tau_max: float = 1.2,
        hidden: int = 256,
        detach_input: bool = True,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction=reduction)
        if not 0 < tau_min < tau_max:
            raise ValueError(
                f"Need 0 < tau_min < tau_max. Got tau_min={tau_min!r}, tau_max={tau_max!r}."
            )
        self.n_classes = n_classes
        self.rho = rho
        self.tau_min = tau_min
        self.tau_max = tau_max
        self.hidden = hidden
        self.detach_input = detach_input
        self.tempnet = _TempNet(int(n_classes), int(hidden), tau_min, tau_max)

    def temperature(self, input: torch.Tensor) -> torch.Tensor:
        """Return each row's temperature, shape (N,), in ``input``'s dtype."""
        dtype = self.tempnet.last.weight.dtype
        features = input.detach() if self.detach_input else input
        return self.tempnet(features.to(dtype)).to(input.dtype)

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        if input.ndim != 2 or input.shape[1] != self.n_classes:
            raise ValueError(
                f"Expected logits of shape (N, {self.n_classes}) (n_classes={self.n_classes}). "
                f"Got shape {tuple(input.shape)}."
            )
        labels = as_class_target(target)
        tau = self.temperature(input)
        gaps = (input - input.gather(1, labels.unsqueeze(1))) / tau.unsqueeze(1)
        return tau * torch.logsumexp(gaps, dim=1) + (self.rho - math.log(input.shape[1])) * tau

    def extra_repr(self) -> str:
        return (
            f"n_classes={self.n_classes}, rho={self.rho}, tau_min={self.tau_min}, "
            f"tau_max={self.tau_max}, hidden={self.hidden}, detach_input={self.detach_input}, "
            f"reduction={self.reduction!r}"
        )


def _learned_temperature(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    if criterion is None:
        return output.softmax(dim=-1)
    was_training = criterion.training
    criterion.eval()  # dropout off: predictions are deterministic
    try:
        with torch.no_grad():
            tau = criterion.temperature(output)
    finally:
        criterion.train(was_training)
    return (output / tau.unsqueeze(-1)).softmax(dim=-1)


#: softmax(z / tau(z)) with the fitted criterion's temperature network.
learned_temperature_link = Link(
    "learned_temperature",
    _learned_temperature,
    "proba",
    "softmax of the logits divided by the temperature the fitted TempNet predicts",
)
