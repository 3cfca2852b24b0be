"""Evidential-loss helpers: evidence functions, the Dirichlet KL, the Dirichlet-mean link."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lossreg import Link

__all__ = ["DIRICHLET_MEAN", "EVIDENCE", "dirichlet_alpha", "kl_to_uniform_dirichlet"]


def _exp_evidence(z: torch.Tensor) -> torch.Tensor:
    # exp overflows float32 beyond ~88 and makes alpha huge; the reference clamps at +-10.
    return z.clamp(-10, 10).exp()


#: Evidence functions g(z) >= 0.
EVIDENCE = {"relu": F.relu, "softplus": F.softplus, "exp": _exp_evidence}


def dirichlet_alpha(logits: torch.Tensor, evidence: str) -> torch.Tensor:
    """Return the Dirichlet parameters :math:`\\alpha = g(z) + 1`, shape (N, C)."""
    return EVIDENCE[evidence](logits) + 1


def kl_to_uniform_dirichlet(alpha: torch.Tensor) -> torch.Tensor:
    """Return :math:`\\mathrm{KL}(\\mathrm{Dir}(\\alpha)\\Vert\\mathrm{Dir}(1))` per row."""
    n_classes = alpha.shape[-1]
    total = alpha.sum(dim=-1)
    log_norm = torch.lgamma(total) - _lgamma_of(n_classes, alpha) - torch.lgamma(alpha).sum(-1)
    digamma_gap = torch.digamma(alpha) - torch.digamma(total).unsqueeze(-1)
    return log_norm + ((alpha - 1) * digamma_gap).sum(dim=-1)


def _lgamma_of(n: int, like: torch.Tensor) -> torch.Tensor:
    """Return :math:`\\log\\Gamma(n)` as a scalar tensor of ``like``'s dtype and device."""
    return torch.lgamma(torch.tensor(float(n), dtype=like.dtype, device=like.device))


def _dirichlet_mean(output: torch.Tensor, criterion: Any) -> torch.Tensor:
    evidence = getattr(criterion, "evidence", None)
    if evidence not in EVIDENCE:
        raise ValueError(
            "The Dirichlet-mean link needs the fitted evidential loss module (it names the "
            "evidence function); pass the criterion to the link."
        )
    alpha = dirichlet_alpha(output, evidence)
    return alpha / alpha.sum(dim=-1, keepdim=True)


#: ``predict_proba`` = alpha / S with alpha = g(z) + 1 and the criterion's evidence function g.
DIRICHLET_MEAN = Link(
    "dirichlet_mean",
    _dirichlet_mean,
    "proba",
    "Dirichlet mean alpha / S with alpha = evidence(z) + 1 (not softmax)",
)
