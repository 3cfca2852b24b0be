"""Foreground recall: how well a classifier finds the rows that are not the dominant class.

When one "none of the above" class dominates (background relations in scene graphs, "no
event", "no finding"), accuracy mostly counts background rows; what matters is how many of
the other rows are found. The background is the most frequent class of the whole table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics

__all__ = ["background_class", "foreground_recall"]


def background_class(y: Any) -> Any:
    """The most frequent class of ``y`` (the first of the tied ones in sorted order)."""
    classes, counts = np.unique(np.asarray(y), return_counts=True)
    value = classes[int(np.argmax(counts))]
    return value.item() if hasattr(value, "item") else value


def foreground_recall(y_true: Any, y_pred: Any, background: Any) -> dict[str, float]:
    """``foreground_recall``: mean recall over the classes other than ``background`` in the fold.

    Each foreground class present in ``y_true`` counts equally (a rare class as much as a
    common one); NaN when the fold holds background rows only.

    Examples
    --------
    >>> foreground_recall([0, 0, 1, 1, 2], [0, 1, 1, 0, 2], background=0)
    {'foreground_recall': 0.75}
    """
    y_true = np.asarray(y_true)
    present = [c for c in np.unique(y_true) if c != background]
    if not present:
        return {"foreground_recall": float("nan")}
    recall = metrics.recall_score(
        y_true, np.asarray(y_pred), labels=present, average="macro", zero_division=0.0
    )
    return {"foreground_recall": float(recall)}
