"""Uncertainty metrics of ``lossreg compare``: predicted spreads, quantile levels, vacuity, tails.

Regression models that predict a standard deviation (``gaussian_nll``, ``laplace_nll`` ...) are
scored on their Gaussian NLL, their sparsification error (AUSE) and, on generated data that
records the true noise level of each row, the correlation of the predicted with the true
standard deviation. Quantile models are scored on the coverage of a fixed set of levels, so that
losses with different levels compare. Classifiers are scored on how well their own uncertainty
(Dirichlet vacuity for evidential losses, one minus the top probability otherwise) flags their
errors, on their confidence on errors, and on the upper tail of their per-row test losses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "CLASSIFICATION_UNCERTAINTY_METRICS",
    "COVERAGE_AT",
    "QUANTILE_LEVELS",
    "REGRESSION_UNCERTAINTY_METRICS",
    "TAIL_LEVEL",
    "UNCERTAINTY_GREATER_IS_BETTER",
    "ause",
    "classification_uncertainty",
    "predicted_std",
    "quantile_coverage",
    "regression_uncertainty",
    "vacuity",
]

#: direction of every metric of this module
UNCERTAINTY_GREATER_IS_BETTER: dict[str, bool] = {
    "uncertainty_auroc": True,
    "mean_vacuity": False,
    "error_confidence": False,
    "log_loss_p90": False,
    "coverage_at_4": True,
    "coverage_at_16": True,
    "coverage_at_64": True,
    "gaussian_nll": False,
    "ause": False,
    "sigma_corr": True,
    "quantile_calibration_error": False,
    "squared_error_p90": False,
}

CLASSIFICATION_UNCERTAINTY_METRICS = (
    "uncertainty_auroc",
    "mean_vacuity",
    "error_confidence",
    "log_loss_p90",
    "coverage_at_4",
    "coverage_at_16",
    "coverage_at_64",
)
REGRESSION_UNCERTAINTY_METRICS = (
    "gaussian_nll",
    "ause",
    "sigma_corr",
    "quantile_calibration_error",
    "squared_error_p90",
)

#: the levels at which ``quantile_calibration_error`` checks coverage, whatever a loss's levels
QUANTILE_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

#: ``coverage_at_N``: the chance that N labels drawn from the predicted distribution hold the
#: row's label (pass@N), for each of these N
COVERAGE_AT = (4, 16, 64)

#: ``*_p90`` metrics are this quantile of the per-row test losses
TAIL_LEVEL = 0.9

#: sparsification steps of ``ause``: the fractions 0, 1/N, ..., (N-1)/N of rows removed
AUSE_STEPS = 50

# Probabilities and standard deviations are clipped here before a log: a model that puts
# exactly zero mass on a label would otherwise make the mean infinite and hide all else.
_TINY = 1e-12


def predicted_std(est: Any, X: Any) -> np.ndarray | None:
    """The standard deviation a fitted regressor predicts per row, in target units, or None.

    ``est`` is a :class:`~lossreg.estimators.LossRegressor`, or compare's ``TargetScaled``
    around one (its scale is undone). Losses without a scale head give None, as do several
    targets.
    """
    inner = getattr(est, "regressor_", est)
    offers = getattr(inner, "_loss_offers", None)
    if offers is None or not offers("predict_std"):
        return None
    _, std = inner.predict(X, return_std=True)
    std = np.asarray(std, dtype=np.float64)
    if std.ndim != 1:
        return None
    return std * float(getattr(est, "scale_", 1.0))


def vacuity(est: Any, X: Any) -> np.ndarray | None:
    """The Dirichlet vacuity ``C / S`` of each row for evidential losses (``edl_*``), or None."""
    criterion = getattr(est, "criterion_", None)
    if not callable(getattr(criterion, "vacuity", None)):
        return None
    return np.asarray(est._criterion_method(X, "vacuity"), dtype=np.float64).ravel()


def ause(errors: np.ndarray, uncertainty: np.ndarray, steps: int = AUSE_STEPS) -> float:
    """Area under the sparsification error curve, relative to the mean error of all rows.

    Rows are removed in order of decreasing predicted uncertainty (the curve) and in order of
    decreasing true error (the oracle); after removing each fraction ``k / steps`` the mean
    error of the remaining rows is taken. AUSE is the mean gap between the two curves divided
    by the mean error of all rows: 0 when the uncertainty ranks the errors perfectly, about
    the oracle's own area (well above 0) for an uninformative uncertainty.
    """
    errors = np.asarray(errors, dtype=np.float64)
    uncertainty = np.asarray(uncertainty, dtype=np.float64)
    n = len(errors)
    total = errors.mean()
    if n == 0 or total <= 0:
        return float("nan")
    # stable sorts: ties keep the rows' order, the same for every model
    by_uncertainty = errors[np.argsort(-uncertainty, kind="stable")]
    by_error = np.sort(errors)[::-1]
    gaps = []
    for k in range(steps):
        start = int(np.floor(k * n / steps))
        gaps.append(by_uncertainty[start:].mean() - by_error[start:].mean())
    return float(np.mean(gaps) / total)


def quantile_coverage(
    y_true: np.ndarray, levels: np.ndarray, values: np.ndarray
) -> dict[float, float] | None:
    """Share of rows at or below the predicted quantile, at each of :data:`QUANTILE_LEVELS`.

    A loss's own levels are interpolated linearly to the fixed levels (sorted per row first);
    None when the loss's levels do not span them (a loss that predicts only the median).
    """
    levels = np.asarray(levels, dtype=np.float64).ravel()
    values = np.asarray(values, dtype=np.float64).reshape(len(y_true), -1)
    if values.shape[1] != len(levels) or len(levels) < 2:
        return None
    order = np.argsort(levels)
    levels, values = levels[order], np.sort(values, axis=1)
    if levels[0] > QUANTILE_LEVELS[0] + 1e-9 or levels[-1] < QUANTILE_LEVELS[-1] - 1e-9:
        return None
    out = {}
    for level in QUANTILE_LEVELS:
        j = int(np.clip(np.searchsorted(levels, level, side="right") - 1, 0, len(levels) - 2))
        share = (level - levels[j]) / (levels[j + 1] - levels[j])
        q = values[:, j] + share * (values[:, j + 1] - values[:, j])
        out[level] = float(np.mean(np.asarray(y_true) <= q))
    return out


def regression_uncertainty(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    std: np.ndarray | None = None,
    true_sigma: np.ndarray | None = None,
    quantiles: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Uncertainty metrics of a regressor on a test fold.

    ``squared_error_p90`` always; with a predicted ``std``: ``gaussian_nll`` (mean NLL of the
    target under N(prediction, std²)), ``ause`` (absolute errors ranked by ``std``) and, with
    the rows' ``true_sigma``, ``sigma_corr`` (Pearson correlation of ``std`` and
    ``true_sigma``); with ``quantiles`` ``(levels, values)``: ``quantile_calibration_error``,
    the mean ``|coverage(l) - l|`` over :data:`QUANTILE_LEVELS`, and the per-level
    ``quantile_coverage`` (a list, not a metric).
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    residual = y_true - y_pred
    out: dict[str, Any] = {"squared_error_p90": float(np.quantile(residual**2, TAIL_LEVEL))}
    if std is not None:
        std = np.maximum(np.asarray(std, dtype=np.float64), _TINY)
        out["gaussian_nll"] = float(
            np.mean(0.5 * np.log(2 * np.pi * std**2) + residual**2 / (2 * std**2))
        )
        out["ause"] = ause(np.abs(residual), std)
        if true_sigma is not None:
            true_sigma = np.asarray(true_sigma, dtype=np.float64)
            if np.ptp(std) > 0 and np.ptp(true_sigma) > 0:
                out["sigma_corr"] = float(np.corrcoef(std, true_sigma)[0, 1])
    if quantiles is not None:
        coverage = quantile_coverage(y_true, *quantiles)
        if coverage is not None:
            out["quantile_calibration_error"] = float(
                np.mean([abs(c - level) for level, c in coverage.items()])
            )
            out["quantile_coverage"] = list(coverage.values())
    return out


def classification_uncertainty(
    y_index: np.ndarray, proba: np.ndarray, vacuity: np.ndarray | None = None
) -> dict[str, float]:
    """Uncertainty metrics of a classifier on a test fold.

    ``y_index`` holds class indices (columns of ``proba``). ``uncertainty_auroc`` is the
    AUROC with which the model's uncertainty flags its misclassified rows: ``vacuity`` where
    given (evidential losses), else one minus the top probability. ``mean_vacuity`` where
    given; ``error_confidence``, the mean top probability on misclassified rows;
    ``log_loss_p90``, the :data:`TAIL_LEVEL` quantile of the per-row log losses;
    ``coverage_at_N`` (N in :data:`COVERAGE_AT`), the mean of ``1 - (1 - p(y|x))^N``: how often
    N guesses drawn from the predicted distribution include the label (pass@N).
    """
    from sklearn.metrics import roc_auc_score

    # as the other class metrics: probabilities clipped to [0, 1] and rows summing to 1
    proba = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    proba = proba / np.maximum(proba.sum(axis=1, keepdims=True), 1e-300)
    y_index = np.asarray(y_index)
    top = proba.max(axis=1)
    wrong = proba.argmax(axis=1) != y_index
    own = np.maximum(proba[np.arange(len(y_index)), y_index], _TINY)
    out = {"log_loss_p90": float(np.quantile(-np.log(own), TAIL_LEVEL))}
    for n in COVERAGE_AT:
        # 1 - (1 - p)^N through log1p/expm1: exact for the tiny p where 1 - p rounds to 1
        out[f"coverage_at_{n}"] = float(np.mean(-np.expm1(n * np.log1p(-np.minimum(own, 1.0)))))
    if wrong.any():
        out["error_confidence"] = float(top[wrong].mean())
    score = 1.0 - top if vacuity is None else np.asarray(vacuity, dtype=np.float64)
    if 0 < wrong.sum() < len(wrong):
        out["uncertainty_auroc"] = float(roc_auc_score(wrong, score))
    if vacuity is not None:
        out["mean_vacuity"] = float(np.mean(vacuity))
    return out
