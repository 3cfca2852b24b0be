"""Helpers shared by the survival losses: times, event indicators, capped exponentials."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import as_float_target

__all__ = ["LOG_CAP", "LOG_PARAM_MAX", "capped_exp", "event_of", "log_time", "split_columns"]

#: Largest exponent used for a cumulative hazard: exp(80) ~ 5.5e34 is finite in float32 and
#: float64, and a survival probability exp(-exp(80)) is 0 in both, so capping changes no
#: meaningful value while keeping the loss (and its gradient) finite at extreme outputs.
LOG_CAP = 80.0
#: Bound on a log-shape or log-scale output. exp(20) ~ 5e8 is far beyond any fitted survival
#: shape; without the bound a log-output of 1e3 would give an infinite shape and NaN gradients.
LOG_PARAM_MAX = 20.0


def capped_exp(x: torch.Tensor) -> torch.Tensor:
    """Return ``exp(min(x, LOG_CAP))``."""
    return torch.exp(x.clamp(max=LOG_CAP))


def split_columns(input: torch.Tensor, n: int, loss: str) -> list[torch.Tensor]:
    """Return the ``n`` columns of an (N, n) output, each (N,)."""
    if input.ndim != 2 or input.shape[1] != n:
        raise ValueError(
            f"Loss {loss!r} takes an output of shape (N, {n}) (one column per distribution "
            f"parameter). Got shape {tuple(input.shape)}; build the network with {n} outputs."
        )
    return list(input.unbind(dim=1))


def log_time(target: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Return log of the observed times (N,), floored at the dtype's smallest normal number.

    Times must be positive; the floor only keeps an exact 0 from giving log(0) = -inf.
    """
    times = as_float_target(target.reshape(-1), like[:, 0])
    if bool((times < 0).any()):
        raise ValueError("Survival times must be non-negative.")
    return torch.log(times.clamp_min(torch.finfo(like.dtype).tiny))


def event_of(event: Any, n: int, like: torch.Tensor) -> torch.Tensor:
    """Return the event indicator (1 = event, 0 = censored) as ``like``'s dtype.

    ``None`` means every row had its event (no censoring).
    """
    if event is None:
        return torch.ones(n, dtype=like.dtype, device=like.device)
    delta = torch.as_tensor(event, device=like.device).reshape(-1).to(like.dtype)
    if delta.shape[0] != n:
        raise ValueError(f"event has {delta.shape[0]} values but the batch has {n} rows.")
    if bool(((delta != 0) & (delta != 1)).any()):
        raise ValueError("event must hold 1 (event observed) or 0 (censored) per row.")
    return delta
