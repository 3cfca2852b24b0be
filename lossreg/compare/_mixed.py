"""Mixed targets in ``lossreg compare``: one numeric and one class column, one network.

``task="mixed"`` (asked for by ``synthetic:mixed_targets``, or named with two target
columns, the numeric one first) fits :class:`~lossreg.LossMixedEstimator` with each loss for
mixed targets and scores each column with its own metrics: ``rmse``, ``mae``, ``r2`` on the
value, ``accuracy``, ``balanced_accuracy``, ``log_loss`` on the class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.base import BaseEstimator, clone

__all__ = ["MIXED_METRICS", "MixedTargetScaled", "mixed_metrics", "mixed_target", "score_mixed"]

#: the metrics of a mixed task; the first is the default primary metric
MIXED_METRICS = ("rmse", "mae", "r2", "accuracy", "balanced_accuracy", "log_loss")


def mixed_target(frame: pd.DataFrame) -> pd.DataFrame:
    """Check two target columns for a mixed task: numbers, then class labels; no missing ones.

    Raises ``ValueError`` naming the column and the fix.
    """
    columns = list(frame.columns)
    if len(columns) != 2:
        raise ValueError(
            f"task='mixed' takes two target columns, a numeric one then a class one; got "
            f"{len(columns)}: {', '.join(map(str, columns))}."
        )
    value, label = frame[columns[0]], frame[columns[1]]
    if not pd.api.types.is_numeric_dtype(value) or pd.api.types.is_bool_dtype(value):
        raise ValueError(
            f"The first target column of a mixed task is the numeric one; {columns[0]!r} "
            f"holds {value.dtype} values. List the numeric column first "
            f"(target='{columns[1]},{columns[0]}'), or convert it to numbers."
        )
    if pd.api.types.is_float_dtype(label) and not np.all(label.dropna() == label.dropna().round()):
        raise ValueError(
            f"The second target column of a mixed task holds the class labels; {columns[1]!r} "
            f"holds non-integer numbers. List the numeric column first "
            f"(target='{columns[1]},{columns[0]}')."
        )
    for column in columns:
        if frame[column].isna().any():
            raise ValueError(
                f"Target column {column!r} has {int(frame[column].isna().sum())} missing values."
            )
    if label.nunique() < 2:
        raise ValueError(f"The class column {columns[1]!r} of a mixed task has a single class.")
    return pd.DataFrame(
        {str(columns[0]): value.astype(np.float64), str(columns[1]): label.infer_objects()}
    )


def mixed_metrics(
    y_true: np.ndarray, value: np.ndarray, proba: np.ndarray, classes: np.ndarray
) -> dict[str, float]:
    """Scores of predicted values and class probabilities against (n, 2) true targets.

    ``classes`` orders the columns of ``proba``; the predicted class is the most probable.
    """
    truth = np.asarray(y_true, dtype=object)
    values = truth[:, 0].astype(np.float64)
    labels = np.asarray(truth[:, 1].tolist())
    value = np.asarray(value, dtype=np.float64)
    predicted = np.asarray(classes)[np.argmax(proba, axis=1)]
    error = value - values
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": float(metrics.r2_score(values, value)),
        "accuracy": float(np.mean(predicted == labels)),
        "balanced_accuracy": float(metrics.balanced_accuracy_score(labels, predicted)),
        "log_loss": float(metrics.log_loss(labels, np.clip(proba, 1e-15, 1.0), labels=classes)),
    }


def score_mixed(model: Any, X_test: np.ndarray, y_test: np.ndarray) -> dict[str, Any]:
    """Score a fitted :class:`MixedTargetScaled` on a test fold; the record also keeps the
    loss's learned log-variances (``log_var_value``, ``log_var_class``) when it has them."""
    out: dict[str, Any] = mixed_metrics(
        y_test, model.predict_value(X_test), model.predict_proba(X_test), model.classes_
    )
    log_var = getattr(model.criterion_, "log_var", None)
    if log_var is not None:
        s = log_var.detach().cpu().numpy().astype(np.float64)
        out["log_var_value"], out["log_var_class"] = float(s[0]), float(s[1])
    return out


class MixedTargetScaled(BaseEstimator):
    """Fit ``estimator`` with the value column standardised by the training fold's statistics.

    As ``TargetScaled`` does for regression: a network starts near 0, and a value in
    thousands would make its squared error swamp the cross-entropy of the class column for
    every loss alike. ``scaling`` ``"standard"`` centres and scales, ``"scale"`` divides by
    the standard deviation, ``"none"`` leaves the value. Predicted values are mapped back.
    """

    def __init__(self, estimator: Any, scaling: str = "standard") -> None:
        self.estimator = estimator
        self.scaling = scaling

    def fit(self, X: Any, y: Any, **fit_params: Any) -> MixedTargetScaled:
        from lossreg.compare._multioutput import scaling_stats

        y = np.array(y, dtype=object)
        values = y[:, 0].astype(np.float64)
        offset, spread = scaling_stats(values, self.scaling)
        self.offset_, self.scale_ = float(offset), float(spread)
        y[:, 0] = (values - self.offset_) / self.scale_
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        return self

    @property
    def classes_(self) -> np.ndarray:
        return self.estimator_.classes_

    def predict_value(self, X: Any) -> np.ndarray:
        return self.estimator_.predict_value(X) * self.scale_ + self.offset_

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.estimator_.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        out = self.estimator_.predict(X)
        out[:, 0] = self.predict_value(X)
        return out

    @property
    def history_(self) -> Any:
        return self.estimator_.history_

    @property
    def criterion_(self) -> Any:
        return self.estimator_.criterion_
