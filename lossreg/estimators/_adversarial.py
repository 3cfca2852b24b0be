"""Virtual adversarial views: each row moved along the direction that most changes its output."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

__all__ = ["virtual_adversarial_perturbation", "virtual_adversarial_views"]


def virtual_adversarial_views(
    module: nn.Module, x: torch.Tensor, *, eps: float, xi: float
) -> torch.Tensor:
    """The module's logits on the clean rows and on their virtual adversarial copies, stacked.

    Rows ``0..N-1`` of the result are ``module(x)``, rows ``N..2N-1`` are
    ``module(x + r_adv)`` with ``r_adv`` from :func:`virtual_adversarial_perturbation`, in
    the module's current mode (training mode during training, as in the paper's code). Both
    halves keep their graph to the parameters; the perturbation itself is a constant.

    The perturbed forwards use copies of the module's buffers, so batch normalisation's
    running statistics move with the clean rows only (the paper's ``update_batch_stats=False``
    for the perturbed passes).

    Parameters
    ----------
    module : nn.Module
        The network, returning (N, C) logits.
    x : Tensor of shape (N, D)
        A batch of (scaled) inputs.
    eps : float > 0
        Norm of each row's perturbation, in the units of ``x``.
    xi : float > 0
        Finite-difference step of the power iteration.

    Returns
    -------
    Tensor of shape (2N, C)
    """
    clean = module(x)
    r_adv = virtual_adversarial_perturbation(module, x, eps=eps, xi=xi)
    state = {**dict(module.named_parameters()), **_buffer_copies(module, x.dtype)}
    adversarial = functional_call(module, state, (x + r_adv,))
    return torch.cat([clean, adversarial])


def virtual_adversarial_perturbation(
    module: nn.Module,
    x: torch.Tensor,
    *,
    eps: float,
    xi: float,
    direction: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""The virtual adversarial perturbation of each row, by one power iteration.

    With :math:`p = \mathrm{softmax}(f(x))` held fixed and a random unit direction
    :math:`d` per row,

    .. math::

        g = \nabla_r \mathrm{KL}\big(p \,\Vert\, \mathrm{softmax}(f(x + r))\big)
            \Big|_{r = \xi d}, \qquad r_{adv} = \epsilon\, g / \lVert g \rVert

    row by row (Miyato et al., 2018, one power iteration). The gradient is taken with respect
    to the perturbation only (``torch.autograd.grad``): nothing accumulates in the
    parameters' ``.grad``, and the module's buffers are not changed.

    Both passes (:math:`p` and the perturbed one) run in float64 on a copy of the parameters,
    whatever the training dtype: with :math:`\xi = 10^{-6}` on standardised features,
    :math:`x + \xi d` in float32 rounds to :math:`x` in most coordinates, and a float32
    :math:`p` differs from the perturbed pass by rounding errors larger than the step's own
    change, so the direction would be noise (a cosine near 0 with the exact :math:`H d`); in
    float64 it matches the exact Hessian-vector product. MPS devices have no float64 and keep
    the input's dtype. In the module's current mode: training mode during training, as in the
    paper's code; batch normalisation then normalises each pass with its own batch statistics.

    Parameters
    ----------
    module : nn.Module
        The network, returning (N, C) logits.
    x : Tensor of shape (N, D)
        A batch of inputs.
    eps, xi : float
        Radius of the perturbation and the finite-difference step.
    direction : Tensor of shape (N, D), optional
        The starting direction (normalised per row); by default drawn from a standard
        normal with torch's global generator, which the estimator seeds.

    Returns
    -------
    Tensor of shape (N, D), dtype of ``x``, without gradient
        A row whose gradient vanishes (a saturated softmax) gets a zero perturbation.
    """
    out_dtype = x.dtype
    dtype = x.dtype if x.device.type == "mps" else torch.float64
    d = torch.randn_like(x) if direction is None else direction.to(x)
    state = {
        name: value.detach().to(dtype) for name, value in module.named_parameters()
    } | _buffer_copies(module, dtype)
    x = x.detach().to(dtype)
    with torch.no_grad():
        log_p = functional_call(module, state, (x,)).log_softmax(dim=1)
    with torch.enable_grad():
        r = (xi * _unit_rows(d.to(dtype))).requires_grad_(True)
        log_q = functional_call(module, state, (x + r,)).log_softmax(dim=1)
        kl = (log_p.exp() * (log_p - log_q)).sum()
        (grad,) = torch.autograd.grad(kl, r)
    return (eps * _unit_rows(grad)).to(out_dtype)


def _unit_rows(v: torch.Tensor) -> torch.Tensor:
    """Each row divided by its Euclidean norm; an all-zero row stays zero."""
    norm = v.flatten(1).norm(dim=1).clamp_min(torch.finfo(v.dtype).tiny)
    return v / norm.reshape(-1, *([1] * (v.ndim - 1)))


def _buffer_copies(module: nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Copies of the module's buffers (floating ones in ``dtype``): updates stay in the copy."""
    return {
        name: value.detach().to(dtype, copy=True)
        if value.is_floating_point()
        else value.detach().clone()
        for name, value in module.named_buffers()
    }
