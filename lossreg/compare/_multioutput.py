"""Multi-output regression in ``lossreg compare``: the target check and the test-fold metrics.

Several numeric target columns make a ``multioutput`` task: one LossRegressor predicts all of
them. Besides the averaged scores, a fit reports per-output MAE and R² (lists in its record)
and scores that single out parts of the target: the first and last output (near and far
forecast horizons), row totals (counts), the entries far from a low-rank model of the
targets (hard outputs), and, for losses with several hypothesis heads, the oracle and the
best single head.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics

__all__ = [
    "HARD_QUANTILE",
    "HEAD_METRICS",
    "MULTIOUTPUT_DIRECTIONS",
    "MULTIOUTPUT_METRICS",
    "PCA_VARIANCE",
    "head_metrics",
    "hypothesis_heads",
    "loss_scaling",
    "multioutput_metrics",
    "multioutput_target",
    "scaling_stats",
    "score_heads",
    "score_multioutput",
]

#: metrics of losses with several hypothesis heads (any regression task); a model with one
#: prediction scores its own MAE on both
HEAD_METRICS = ("oracle_mae", "best_head_mae")

#: the metrics of a multioutput task; the first is the default primary metric
MULTIOUTPUT_METRICS = (
    "rmse",
    "mse",
    "mae",
    "r2",
    "worst_r2",
    "scaled_mae",
    "first_mae",
    "last_mae",
    "sum_mae",
    "hard_mae",
    *HEAD_METRICS,
)

#: direction of each metric above (registered into ``GREATER_IS_BETTER``)
MULTIOUTPUT_DIRECTIONS: dict[str, bool] = {
    "mse": False,
    "worst_r2": True,
    "scaled_mae": False,
    "first_mae": False,
    "last_mae": False,
    "sum_mae": False,
    "hard_mae": False,
    "oracle_mae": False,
    "best_head_mae": False,
}

#: explained variance of the low-rank (PCA) model of the training targets behind ``hard_mae``
PCA_VARIANCE = 0.9

#: ``hard_mae`` scores the test entries whose distance from that model is at or above this
#: quantile of the fold's distances
HARD_QUANTILE = 0.9


def loss_scaling(scaling: str | dict[str, str], loss: str) -> str:
    """The ``target_scaling`` of one loss: ``scaling`` itself, or its entry for ``loss`` in a
    dict by loss name (``"default"`` for the others, ``"standard"`` without one).

    A loss that standardises its targets itself (``phi_s_mse``) can so see them in their own
    units while the others are compared on standardised ones.
    """
    if not isinstance(scaling, dict):
        return scaling
    from lossreg.registry import default_registry

    registry = default_registry()
    for key in scaling:
        if key != "default":
            registry.get_spec(key)  # UnknownLossError, with a suggestion, for a misspelt name
    named = {registry.get_spec(k).name: v for k, v in scaling.items() if k != "default"}
    return named.get(registry.get_spec(loss).name, scaling.get("default", "standard"))


def scaling_stats(y: np.ndarray, scaling: str) -> tuple[np.ndarray, np.ndarray]:
    """Offset and spread of a ``target_scaling`` mode, column by column: scaled = (y - o) / s.

    ``"standard"`` centres and scales, ``"scale"`` only divides by the standard deviation
    (keeps signs), ``"none"`` leaves the target; a constant column keeps spread 1.
    """
    if scaling not in ("standard", "scale", "none"):
        raise ValueError(f"target_scaling must be 'standard', 'scale' or 'none'. Got {scaling!r}.")
    y = np.asarray(y, dtype=np.float64)
    offset = y.mean(axis=0) if scaling == "standard" else np.zeros(y.shape[1:])
    spread = y.std(axis=0) if scaling != "none" else np.ones(y.shape[1:])
    return offset, np.where(spread > 0, spread, 1.0)


def multioutput_target(frame: pd.DataFrame) -> pd.DataFrame:
    """Check several numeric target columns: numbers only, no missing values.

    Raises ``ValueError`` naming the offending column.
    """
    for column in frame.columns:
        series = frame[column]
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            raise ValueError(
                f"Several target columns make a multilabel (0/1 values) or a multioutput "
                f"(numeric values) target; column {column!r} holds {series.dtype} values. "
                "Convert it to numbers or leave it out of target=."
            )
        if series.isna().any():
            raise ValueError(
                f"Target column {column!r} has {int(series.isna().sum())} missing values."
            )
    return frame.astype(np.float64).set_axis([str(c) for c in frame.columns], axis=1)


def multioutput_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_train: np.ndarray | None = None,
    heads: np.ndarray | None = None,
    best_head: int | None = None,
) -> dict[str, Any]:
    """Scores of (n, K) predictions of (n, K) targets.

    ``rmse``, ``mse`` and ``mae`` pool every entry (in the targets' units); ``r2`` is the mean
    and ``worst_r2`` the lowest per-output R²; ``scaled_mae`` the mean over outputs of the MAE
    divided by the output's test standard deviation (outputs of different units weigh alike);
    ``first_mae`` / ``last_mae`` the MAE of the first / last output (near / far horizon);
    ``sum_mae`` the MAE of the row totals (total counts of a histogram). ``hard_mae`` is the
    MAE on the entries farthest (the top ``1 - HARD_QUANTILE``) from their reconstruction by
    the principal components of ``y_train`` that explain ``PCA_VARIANCE`` of its variance.
    ``heads`` (n, H, K), the predictions of H hypothesis heads, give :func:`head_metrics`.
    ``mae_per_output`` and ``r2_per_output`` are lists, one value per output.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(y_true.shape)
    error = np.abs(y_pred - y_true)
    per_r2 = metrics.r2_score(y_true, y_pred, multioutput="raw_values")
    spread = y_true.std(axis=0)
    out: dict[str, Any] = {
        "mse": float(np.mean((y_pred - y_true) ** 2)),
        "mae": float(error.mean()),
        "r2": float(np.mean(per_r2)),
        "worst_r2": float(np.min(per_r2)),
        "scaled_mae": float(np.mean(error.mean(axis=0) / np.where(spread > 0, spread, 1.0))),
        "first_mae": float(error[:, 0].mean()),
        "last_mae": float(error[:, -1].mean()),
        "sum_mae": float(np.mean(np.abs(y_pred.sum(axis=1) - y_true.sum(axis=1)))),
        "mae_per_output": error.mean(axis=0).tolist(),
        "r2_per_output": [float(v) for v in per_r2],
    }
    out["rmse"] = float(np.sqrt(out["mse"]))
    if y_train is not None and y_true.shape[1] > 1:
        gap = _distance_from_pca(np.asarray(y_train, dtype=np.float64), y_true)
        hard = gap >= np.quantile(gap, HARD_QUANTILE)
        out["hard_mae"] = float(error[hard].mean())
    out.update(head_metrics(y_true, y_pred if heads is None else heads, best_head))
    return out


def head_metrics(
    y_true: np.ndarray, predictions: np.ndarray, best_head: int | None = None
) -> dict[str, float]:
    """``oracle_mae``: the mean over rows of the lowest MAE any head reaches on that row;
    ``best_head_mae``: the MAE of head ``best_head`` (chosen beforehand, e.g. on training
    rows). ``predictions`` is (n, H, K) for H heads, or one prediction (n,) / (n, K), which
    scores its own MAE on both."""
    n = len(y_true)
    y = np.asarray(y_true, dtype=np.float64).reshape(n, 1, -1)
    values = np.asarray(predictions, dtype=np.float64)
    values = values.reshape(n, 1, -1) if values.ndim < 3 else values
    per_head = np.abs(values - y).mean(axis=2)  # (n, H)
    return {
        "oracle_mae": float(per_head.min(axis=1).mean()),
        "best_head_mae": float(per_head[:, best_head or 0].mean()),
    }


def _distance_from_pca(y_train: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|y - reconstruction| per entry, from the training targets' leading components."""
    mean = y_train.mean(axis=0)
    # standardised, so the components follow correlations and not the largest unit
    scale = y_train.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z_train, z = (y_train - mean) / scale, (y - mean) / scale
    _, singular, components = np.linalg.svd(z_train, full_matrices=False)
    ratio = np.cumsum(singular**2) / max(float(np.sum(singular**2)), 1e-300)
    rank = int(np.searchsorted(ratio, PCA_VARIANCE - 1e-12)) + 1
    basis = components[:rank]
    return np.abs(z - z @ basis.T @ basis)


def hypothesis_heads(regressor: Any, X: np.ndarray) -> np.ndarray | None:
    """The (n, H, K) predictions of a fitted LossRegressor whose loss has ``n_heads``
    hypothesis heads (``multi_hypothesis_min_mse``), in the units it was trained on; None
    for a loss with one prediction."""
    criterion = getattr(regressor, "criterion_", None)
    n_heads = getattr(criterion, "n_heads", None)
    if n_heads is None or not hasattr(regressor, "_forward64"):
        return None
    # the raw module output holds every head side by side; the link keeps only one of them
    output, _ = regressor._forward64(X)
    return output.numpy().reshape(len(output), int(n_heads), -1)


def score_multioutput(
    model: Any, X_test: np.ndarray, y_test: np.ndarray, X_train: np.ndarray, y_train: np.ndarray
) -> dict[str, Any]:
    """Score a fitted compare model (a ``TargetScaled`` LossRegressor, or any regressor) on a
    test fold; the training rows fix ``hard_mae``'s components and the best head."""
    y_test = np.asarray(y_test, dtype=np.float64)
    y_test = y_test.reshape(len(y_test), -1)
    y_train = np.asarray(y_train, dtype=np.float64).reshape(len(y_train), -1)
    heads, best = _heads_in_target_units(model, X_test, X_train, y_train)
    return multioutput_metrics(y_test, model.predict(X_test), y_train, heads, best)


def score_heads(
    model: Any,
    X_test: np.ndarray,
    y_test: np.ndarray,
    X_train: np.ndarray,
    y_train: np.ndarray,
    point_mae: float,
) -> dict[str, float]:
    """:func:`head_metrics` of a fitted single-target compare model on a test fold;
    ``point_mae`` (the MAE of its point prediction) on both for a model without heads."""
    y_test = np.asarray(y_test, dtype=np.float64).reshape(len(y_test), -1)
    y_train = np.asarray(y_train, dtype=np.float64).reshape(len(y_train), -1)
    heads, best = _heads_in_target_units(model, X_test, X_train, y_train)
    if heads is None:
        return dict.fromkeys(HEAD_METRICS, float(point_mae))
    return head_metrics(y_test, heads, best)


def _heads_in_target_units(
    model: Any, X_test: np.ndarray, X_train: np.ndarray, y_train: np.ndarray
) -> tuple[np.ndarray | None, int | None]:
    """Head predictions on the test rows and the head with the lowest training MSE."""
    inner = getattr(model, "regressor_", model)
    heads = hypothesis_heads(inner, X_test)
    if heads is None:
        return None, None
    offset = np.asarray(getattr(model, "offset_", 0.0), dtype=np.float64).reshape(1, 1, -1)
    scale = np.asarray(getattr(model, "scale_", 1.0), dtype=np.float64).reshape(1, 1, -1)
    train_heads = hypothesis_heads(inner, X_train) * scale + offset
    # the head chosen on training rows, as the loss's own select_head would on held-out rows
    best = int(((train_heads - y_train[:, None, :]) ** 2).mean(axis=(0, 2)).argmin())
    return heads * scale + offset, best
