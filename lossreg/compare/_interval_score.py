"""The weighted interval score of predicted quantiles on a test fold (``wis`` in compare)."""

from __future__ import annotations

import numpy as np

__all__ = ["WIS_DIRECTIONS", "interval_levels", "weighted_interval_score"]

#: lower is better
WIS_DIRECTIONS = {"wis": False}

#: tolerance when matching a lower level with its upper mirror 1 - level
_TOL = 1e-9


def interval_levels(levels: np.ndarray) -> list[tuple[int, int]] | None:
    """``(lower, upper)`` column pairs of central intervals, or None when the levels do not
    make a WIS: they must hold 0.5 and be symmetric about it (``l`` and ``1 - l``)."""
    levels = np.asarray(levels, dtype=np.float64).ravel()
    median = np.flatnonzero(np.abs(levels - 0.5) < _TOL)
    if median.size != 1 or levels.size % 2 == 0:
        return None
    lower = np.flatnonzero(levels < 0.5 - _TOL)
    pairs = []
    for i in lower:
        mirror = np.flatnonzero(np.abs(levels - (1.0 - levels[i])) < _TOL)
        if mirror.size != 1:
            return None
        pairs.append((int(i), int(mirror[0])))
    return pairs if 2 * len(pairs) + 1 == levels.size else None


def weighted_interval_score(
    y_true: np.ndarray, levels: np.ndarray, values: np.ndarray
) -> float | None:
    """Mean WIS of quantile predictions (Bracher et al. 2021), None when the levels have none.

    For the central intervals ``(l_k, u_k)`` at the levels ``alpha_k / 2`` and
    ``1 - alpha_k / 2`` and the median ``m``:
    ``WIS = (|y - m| / 2 + sum_k alpha_k / 2 * IS_k) / (K + 1/2)`` with the interval score
    ``IS = (u - l) + 2 / alpha (l - y)_+ + 2 / alpha (y - u)_+``. Computed from intervals,
    independently of the pinball loss, whose mean over the levels it equals twice (a test
    checks the identity). ``values`` is ``(n, n_levels)``, columns in the order of ``levels``.
    """
    pairs = interval_levels(levels)
    if pairs is None:
        return None
    levels = np.asarray(levels, dtype=np.float64).ravel()
    y = np.asarray(y_true, dtype=np.float64).ravel()
    values = np.asarray(values, dtype=np.float64).reshape(len(y), levels.size)
    median = values[:, int(np.argmin(np.abs(levels - 0.5)))]
    total = 0.5 * np.abs(y - median)
    for low, high in pairs:
        alpha = 2.0 * levels[low]
        lower, upper = values[:, low], values[:, high]
        score = (
            (upper - lower)
            + 2.0 / alpha * np.clip(lower - y, 0.0, None)
            + 2.0 / alpha * np.clip(y - upper, 0.0, None)
        )
        total = total + alpha / 2.0 * score
    return float(np.mean(total / (len(pairs) + 0.5)))
