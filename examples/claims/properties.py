"""Numerical experiments for claims that are mathematical properties, not training comparisons.

A property claim file (``[property]`` instead of ``[compare]``) names one of
:data:`PROPERTIES` and its parameters; the experiment draws many random cases and returns
one row per case family with the number of draws that violate the property. The claim
holds when no draw does. A property experiment cannot prove the property; it can refute
it, and it checks that lossreg's implementation keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["PROPERTIES", "run_property", "sorting_quantiles"]

#: relative tolerance of a violation: float64 rounding of sums of a few terms
TOLERANCE = 1e-12


def sorting_quantiles(
    draws: int = 20000,
    seed: int = 0,
    losses: tuple[str, ...] = (
        "weighted_interval_score",
        "weighted_interval_score(alphas=(0.02, 0.05, 0.1, 0.2, 0.5, 0.8))",
        "pinball(quantiles=(0.1, 0.25, 0.5, 0.75, 0.9))",
    ),
) -> list[dict[str, Any]]:
    """Score random crossing quantile predictions before and after sorting each row.

    Per loss and draw: a target ``y ~ N(0, 1)`` and one prediction per quantile level drawn
    independently, ``q_j ~ N(0, s)`` with a scale ``s ~ U(0.1, 3)`` per draw, so most rows
    cross (a predicted level above a higher level's). The property: the loss of the sorted
    row (what lossreg's ``quantiles`` link returns) is never above the unsorted row's.

    Returns
    -------
    list of dict
        Per loss: ``case`` (its label), ``draws``, ``crossing`` (draws whose quantiles
        crossed), ``violations`` (sorted scored worse beyond float64 rounding), ``worst``
        (the largest increase, ≤ 0 when the property held) and ``mean_gain`` (the mean
        decrease from sorting, over crossing draws).
    """
    import torch

    from lossreg import create_loss
    from lossreg.compare._losses import parse_losses

    rng = np.random.default_rng(seed)
    rows = []
    for text in losses:
        (choice,) = parse_losses(text)
        loss = create_loss(choice.name, **choice.params, reduction="none")
        n_levels = len(loss.levels_)
        y = rng.normal(size=draws)
        scale = rng.uniform(0.1, 3.0, size=(draws, 1))
        pred = rng.normal(size=(draws, n_levels)) * scale
        unsorted = _score(loss, pred, y, torch)
        ordered = _score(loss, np.sort(pred, axis=1), y, torch)
        increase = ordered - unsorted
        crossing = np.any(np.diff(pred, axis=1) < 0, axis=1)
        violations = increase > TOLERANCE * (1.0 + np.abs(unsorted))
        rows.append(
            {
                "case": choice.label,
                "draws": draws,
                "crossing": int(crossing.sum()),
                "violations": int(violations.sum()),
                "worst": float(increase.max()),
                "mean_gain": float(-increase[crossing].mean()) if crossing.any() else 0.0,
                "outcome": not bool(violations.any()),
            }
        )
    return rows


def _score(loss: Any, pred: np.ndarray, y: np.ndarray, torch: Any) -> np.ndarray:
    with torch.no_grad():
        values = loss(torch.from_numpy(pred), torch.from_numpy(y))
    return values.numpy().astype(np.float64)


PROPERTIES: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "sorting_quantiles": sorting_quantiles,
}


def run_property(table: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the experiment a claim's ``[property]`` table names, with its parameters."""
    params = dict(table)
    name = params.pop("name", None)
    if name not in PROPERTIES:
        raise ValueError(
            f"Unknown property experiment {name!r}; experiments: {', '.join(PROPERTIES)}."
        )
    if "losses" in params:
        params["losses"] = tuple(params["losses"])
    return PROPERTIES[name](**params)
