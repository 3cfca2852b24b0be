"""The semi-supervised form of ``weighted_sum``: supervised members see the labelled rows only.

When a member is ``semi_supervised`` (it learns from rows labelled -1), the composite is too:

.. math::
    L = \\sum_{m\\ \\text{supervised}} w_m\\, \\mathrm{mean}_{i:\\,y_i \\ge 0}\\, \\ell^{(m)}_i
        + \\sum_{m\\ \\text{semi-supervised}} w_m\\, L^{(m)}(\\text{all rows})

Each member is reduced on its own rows (a supervised member's mean is over the labelled rows
of the batch, weighted by their sample weights; 0 when the batch has none), so the composite
is batch-level: it has no per-row value and ``reduction="none"`` is refused. ``"sum"``
multiplies the value by the batch's total weight, as lossreg's batch-level losses do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

import lossreg

__all__ = ["member_flags", "semi_supervised_sum"]


def member_flags(params: Mapping[str, Any]) -> dict[str, Any]:
    """``effective_flags`` of ``weighted_sum``: semi-supervised and batch-level when a member is.

    Unknown members are left to the factory, which reports them with a suggestion.
    """
    losses = params.get("losses") or ()
    names = (losses,) if isinstance(losses, str) else tuple(losses)
    semi = False
    for name in names:
        try:
            semi = semi or lossreg.get_spec(name).semi_supervised
        except lossreg.UnknownLossError:
            continue
    # both flags every time, so a spec made for other parameters is set back too
    return {"semi_supervised": semi, "per_sample": not semi}


def _rows(value: Any, keep: torch.Tensor, n: int) -> Any:
    """The labelled rows of a per-row extra; anything else (not one value per row) unchanged."""
    if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == n:
        return value[keep]
    return value


def semi_supervised_sum(
    members: Sequence[torch.nn.Module],
    weights: Sequence[float],
    semi: Sequence[bool],
    wanted: Sequence[tuple[str, ...]],
    input: torch.Tensor,
    target: torch.Tensor,
    sample_weight: torch.Tensor | None,
    extras: Mapping[str, Any],
    reduction: str,
) -> torch.Tensor:
    """The weighted sum of the members' means, each over its own rows (see the module doc).

    ``members`` are built with ``reduction="mean"``; ``semi[m]`` says whether member ``m``
    sees every row (else the labelled rows, ``target >= 0``); ``wanted[m]`` are its fit
    extras.
    """
    labels = target.reshape(target.shape[0], -1)[:, 0] if target.ndim > 1 else target
    if bool((labels < -1).any()):
        raise ValueError(
            "weighted_sum with a semi-supervised member takes class indices >= 0, or -1 for "
            f"unlabeled rows; got the label {int(labels.min())}."
        )
    keep = labels >= 0
    n = input.shape[0]
    total = input.sum() * 0.0  # stays attached to the graph when every term is skipped
    for weight, member, everyone, names in zip(weights, members, semi, wanted):
        given = {k: v for k, v in extras.items() if k in names}
        if everyone:
            term = member(input, target, sample_weight=sample_weight, **given)
        elif not bool(keep.any()):
            continue  # a batch without labels has no supervised term
        else:
            rows = {k: _rows(v, keep, n) for k, v in given.items()}
            weight_rows = None if sample_weight is None else sample_weight[keep]
            term = member(input[keep], target[keep], sample_weight=weight_rows, **rows)
        total = total + weight * term
    if reduction == "sum":
        mass = n if sample_weight is None else sample_weight.sum()
        return total * mass
    return total
