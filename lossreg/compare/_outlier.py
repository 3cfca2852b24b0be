"""The ``outlier`` task of ``lossreg compare``: reconstruction-based outlier detection.

Each loss trains a :class:`~lossreg.LossRegressor` to reconstruct its (preprocessed) input,
an autoencoder when the network has a narrow hidden layer (``module__hidden_units=[32, 4,
32]``). The labels (1 = outlier) are never shown to the model: the training fold keeps its
outliers, as in unsupervised detection, and the test fold's labels only score the ranking of
its rows by outlier score (ROC AUC and average precision).

The outlier score of a row is the loss's own score when its criterion has one
(``outlier_score``, e.g. ``apre``'s adjusted probabilistic reconstruction error), else the
mean squared reconstruction error over the columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn import metrics
from sklearn.base import BaseEstimator

__all__ = ["OUTLIER_METRICS", "Reconstruction", "outlier_metrics"]

OUTLIER_METRICS = ("outlier_roc_auc", "outlier_average_precision")


class Reconstruction(BaseEstimator):
    """Fit ``regressor`` with the input as its target; score rows by how badly they rebuild.

    Parameters
    ----------
    regressor : LossRegressor
        Trained on ``(X, X)``; any ``y`` given to :meth:`fit` (the outlier labels) is ignored.
    """

    def __init__(self, regressor: Any) -> None:
        self.regressor = regressor

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> Reconstruction:
        from sklearn.base import clone

        X = np.asarray(X, dtype=np.float32)
        self.regressor_ = clone(self.regressor).fit(X, X, **fit_params)
        self.history_ = self.regressor_.history_
        return self

    def outlier_scores(self, X: Any) -> np.ndarray:
        """One score per row, larger for rows that look more like outliers."""
        X = np.asarray(X, dtype=np.float64)
        criterion = self.regressor_.criterion_
        if hasattr(criterion, "outlier_score"):
            target = torch.as_tensor(X, dtype=torch.float64)
            scores = self.regressor_._criterion_method(X, "outlier_score", target=target)
            return np.asarray(scores, dtype=np.float64).reshape(len(X))
        rebuilt = np.asarray(self.regressor_.predict(X), dtype=np.float64).reshape(X.shape)
        return ((X - rebuilt) ** 2).mean(axis=1)


def outlier_metrics(is_outlier: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ROC AUC and average precision of ``scores`` for finding the rows marked 1.

    NaN when the fold holds no outlier, or only outliers (nothing to rank against); a
    non-finite score (a diverged model) ranks its row as the most anomalous, so it costs the
    model instead of failing the fold.
    """
    is_outlier = np.asarray(is_outlier).astype(np.int64)
    scores = np.where(np.isfinite(scores), scores, np.inf)
    scores = np.where(np.isinf(scores), np.finfo(np.float64).max, scores)
    if is_outlier.min() == is_outlier.max():
        return dict.fromkeys(OUTLIER_METRICS, float("nan"))
    return {
        "outlier_roc_auc": float(metrics.roc_auc_score(is_outlier, scores)),
        "outlier_average_precision": float(metrics.average_precision_score(is_outlier, scores)),
    }
