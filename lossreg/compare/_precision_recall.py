"""Precision at a fixed recall of binary targets (``precision_at_recall_0.8``).

Screening tasks (bug detectors, fraud alerts) fix how many true positives they must find and
ask how clean the alerts are then: the precision of the positive class (the second of the
sorted classes, the column ``average_precision`` scores) at the most selective threshold
whose recall is at least :data:`RECALL`. As TensorFlow's ``PrecisionAtRecall``, it is the
best precision over the thresholds that reach the recall, read from the precision-recall
curve of the predicted probabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics

__all__ = [
    "PRECISION_AT_RECALL",
    "PRECISION_AT_RECALL_DIRECTIONS",
    "RECALL",
    "precision_at_recall",
]

#: the recall the metric holds fixed
RECALL = 0.8

#: the metric's name in compare's records
PRECISION_AT_RECALL = f"precision_at_recall_{RECALL:g}"

#: its direction (registered into GREATER_IS_BETTER)
PRECISION_AT_RECALL_DIRECTIONS = {PRECISION_AT_RECALL: True}


def precision_at_recall(y_true: Any, score: Any, recall: float = RECALL) -> float:
    """The highest precision of class 1 among the thresholds on ``score`` with recall >= ``recall``.

    Parameters
    ----------
    y_true : array of shape (n,)
        0/1 labels (1 is the positive class); both must occur.
    score : array of shape (n,)
        Higher means more likely positive (the probability of class 1).
    recall : float in (0, 1], default=RECALL
    """
    if not 0.0 < recall <= 1.0:
        raise ValueError(f"recall must be in (0, 1]. Got {recall!r}.")
    y_true = np.asarray(y_true)
    if not (np.any(y_true == 1) and np.any(y_true == 0)):
        raise ValueError("precision_at_recall needs both classes (0 and 1) in y_true.")
    precision, reached, _ = metrics.precision_recall_curve(y_true, np.asarray(score))
    # the lowest threshold flags every row (recall 1), so some threshold always qualifies
    return float(precision[reached >= recall].max())
