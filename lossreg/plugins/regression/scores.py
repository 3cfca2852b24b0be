"""Scikit-learn style scores for metric-only regression entries (never training criteria)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["mbe_score"]


def mbe_score(y_true: Any, y_pred: Any, *, sample_weight: Any = None) -> float:
    r"""Mean bias error, :math:`\mathrm{MBE} = \mathrm{mean}_{i,k}(y_{ik} - \hat y_{ik})`.

    Signed (target minus prediction, the survey reference's convention): positive means the
    model under-predicts on average. The best value is 0 and neither sign is better, so it is
    a diagnostic, not a score to maximise or minimise: for model selection use its absolute
    value, e.g. ``make_scorer(lambda y, p: abs(mbe_score(y, p)), greater_is_better=False)``.
    It is not a training loss: as a function of the prediction it is unbounded below
    (minimising it drives predictions to :math:`+\infty`), which is why ``mbe`` is listed in
    ``NOT_REGISTERED``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,) or (n_samples, n_outputs)
    sample_weight : array-like of shape (n_samples,), optional
        Row weights; the result is the weighted mean over rows (and the mean over outputs).

    Returns
    -------
    float

    References
    ----------
    A. Jadon, A. Patil, S. Jadon. "A Comprehensive Survey of Regression Based Loss Functions
    for Time Series Forecasting." arXiv:2211.02989 (``MeanBiasError`` in the authors' code).

    Examples
    --------
    >>> round(mbe_score([1.0, 2.0, 3.0, 4.0], [0.0, 2.0, 3.5, 4.0]), 4)
    0.125
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred must have the same shape. Got {y_true.shape} and {y_pred.shape}."
        )
    per_row = (y_true - y_pred).reshape(y_true.shape[0], -1).mean(axis=1)
    return float(np.average(per_row, weights=sample_weight))
