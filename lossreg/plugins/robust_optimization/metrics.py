"""Worst-group accuracy, the metric that the group-robust losses are judged by."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["worst_group_accuracy"]


def worst_group_accuracy(y_true: Any, y_pred: Any, *, group: Any) -> float:
    """Return the lowest accuracy over the groups present in ``group``.

    Use it as a scorer with group ids routed by scikit-learn's metadata routing:
    ``make_scorer(worst_group_accuracy).set_score_request(group=True)``.

    >>> worst_group_accuracy([0, 1, 1, 0], [0, 1, 0, 0], group=[0, 0, 1, 1])
    0.5
    """
    y_true, y_pred, group = (np.asarray(a).ravel() for a in (y_true, y_pred, group))
    if not (y_true.shape == y_pred.shape == group.shape):
        raise ValueError(
            f"y_true, y_pred and group must have the same length; got {y_true.shape[0]}, "
            f"{y_pred.shape[0]} and {group.shape[0]}."
        )
    return float(min((y_pred[group == g] == y_true[group == g]).mean() for g in np.unique(group)))
