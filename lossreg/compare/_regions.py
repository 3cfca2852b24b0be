"""Few-shot target regions of a regression: the DIR shot metrics and a generator with sparse
target regions (``synthetic:sparse_targets(...)``).

Deep imbalanced regression (Yang et al., ICML 2021) bins the target and calls a bin
many-shot when the training set has more than 100 rows in it and few-shot when it has fewer
than 20; errors are reported per region. ``few_shot_mae`` and ``many_shot_mae`` are the MAE
of the test rows whose target falls in such a bin of the *training fold*, so they need the
training targets beside the test fold's predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "FEW_SHOT",
    "MANY_SHOT",
    "SHOT_BINS",
    "SHOT_METRICS",
    "shot_region_metrics",
    "sparse_targets",
    "with_shot_regions",
]

#: DIR's thresholds: a bin with fewer training rows is few-shot, with more is many-shot
FEW_SHOT, MANY_SHOT = 20, 100

#: equal-width target bins spanning the training fold's targets
SHOT_BINS = 20

#: metric -> greater is better
SHOT_METRICS = {"few_shot_mae": False, "many_shot_mae": False}


def shot_region_metrics(
    y_train: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, n_bins: int = SHOT_BINS
) -> dict[str, float]:
    """MAE of the test rows in few-shot and in many-shot bins (NaN when a region has none).

    The bins are ``n_bins`` equal-width intervals over ``[min, max]`` of ``y_train``; test
    targets outside that range count in the end bins.
    """
    y_train = np.asarray(y_train, dtype=np.float64).ravel()
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    edges = np.linspace(y_train.min(), y_train.max(), n_bins + 1)
    counts = np.bincount(_bin(y_train, edges), minlength=n_bins)
    shots = counts[_bin(y_true, edges)]
    error = np.abs(y_true - y_pred)
    out = {}
    for name, rows in (("few_shot_mae", shots < FEW_SHOT), ("many_shot_mae", shots > MANY_SHOT)):
        out[name] = float(error[rows].mean()) if rows.any() else float("nan")
    return out


def with_shot_regions(score: Callable[..., dict[str, Any]], y_train: Any) -> Callable[..., Any]:
    """Wrap a ``score(y_true, y_pred, *rest)`` of regression metrics to add the shot metrics
    (one-column targets only)."""

    def scored(y_true: Any, y_pred: Any, *rest: Any) -> dict[str, Any]:
        out = score(y_true, y_pred, *rest)
        if np.ndim(y_true) == 1 and np.ndim(y_pred) == 1:
            out.update(shot_region_metrics(y_train, y_true, y_pred))
        return out

    return scored


def _bin(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    inner = edges[1:-1]
    return np.searchsorted(inner, values, side="right")


def sparse_targets(
    n_samples: int = 2000,
    n_features: int = 5,
    keep: float = 0.1,
    central: float = 0.7,
    noise: float = 0.2,
    random_state: int = 0,
) -> pd.DataFrame:
    """A regression target with sparse regions: ``y = f(x) + noise * e`` on ``x ~ U(-2, 2)^d``,
    keeping only a ``keep`` share of the rows whose target lies outside the central
    ``central`` share of the target distribution (both tails become few-shot regions)."""
    if not 0.0 < keep <= 1.0 or not 0.0 < central < 1.0 or n_features < 2:
        raise ValueError(
            "sparse_targets() needs keep in (0, 1], central in (0, 1) and n_features >= 2. "
            f"Got keep={keep!r}, central={central!r}, n_features={n_features!r}."
        )
    rng = np.random.default_rng(random_state)
    pool = int(np.ceil(n_samples / (central + (1 - central) * keep))) * 2
    X = rng.uniform(-2.0, 2.0, size=(pool, n_features))
    y = np.sin(X[:, 0]) + X[:, 1] + 0.5 * X[:, 0] * X[:, 1] + noise * rng.standard_normal(pool)
    low, high = np.quantile(y, [(1 - central) / 2, (1 + central) / 2])
    tail = (y < low) | (y > high)
    kept = np.flatnonzero(~tail | (rng.random(pool) < keep))[:n_samples]
    frame = pd.DataFrame(X[kept], columns=[f"x{j}" for j in range(n_features)])
    frame["target"] = y[kept]
    return frame
