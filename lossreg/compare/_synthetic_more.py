"""More generated data sets for ``lossreg compare``: return series and classes made of sub-clusters.

Registered in :data:`lossreg.compare._synthetic.GENERATORS` as ``synthetic:returns(...)`` and
``synthetic:subclusters(...)``; like the others, fully determined by their parameters.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["returns", "subclusters"]


def returns(
    n_samples: int = 3000,
    n_lags: int = 10,
    ar: float = 0.15,
    df: float = 3.0,
    persistence: float = 0.9,
    random_state: int = 0,
) -> pd.DataFrame:
    """Next-period return from the ``n_lags`` previous returns (``x0`` is the latest).

    The series is an AR(2) with coefficients ``ar`` and ``-ar / 2`` plus Student-t
    (``df``) shocks scaled by a GARCH(1, 1) volatility whose ``persistence`` is
    ``alpha + beta`` (alpha = 0.1): a weak, learnable direction, heavy tails and calm and
    turbulent stretches, as in asset returns. Rows are consecutive periods in time order;
    returns are in percent of a unit daily volatility.
    """
    if not 0.0 <= persistence < 1.0:
        raise ValueError(f"persistence must be in [0, 1). Got {persistence!r}.")
    if df <= 2.0:
        raise ValueError(f"df must be > 2 (finite variance). Got {df!r}.")
    rng = np.random.default_rng(random_state)
    burn = 200
    total = n_samples + n_lags + burn
    alpha = min(0.1, persistence)
    beta = persistence - alpha
    omega = 1.0 - persistence  # unit long-run variance
    shocks = rng.standard_t(df, size=total) / np.sqrt(df / (df - 2.0))
    series = np.zeros(total)
    variance = 1.0
    for t in range(2, total):
        innovation = np.sqrt(variance) * shocks[t]
        series[t] = ar * series[t - 1] - 0.5 * ar * series[t - 2] + innovation
        variance = omega + alpha * innovation**2 + beta * variance
    series = series[burn:]
    lags = np.column_stack(
        [series[n_lags - k : n_lags - k + n_samples] for k in range(1, n_lags + 1)]
    )
    frame = pd.DataFrame(lags, columns=[f"x{j}" for j in range(n_lags)])
    frame["target"] = series[n_lags : n_lags + n_samples]
    return frame


def subclusters(
    n_samples: int = 2000,
    n_features: int = 10,
    n_classes: int = 4,
    per_class: int = 3,
    spread: float = 1.0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Classes that are unions of ``per_class`` Gaussian sub-clusters; ``group`` names them.

    Sub-cluster centres are drawn uniformly in ``[-3, 3]^n_features``, each class taking
    ``per_class`` of them, so a class is several separate blobs, not one; rows have unit
    noise times ``spread``. The ``group`` column (sub-cluster id, ``class * per_class + j``)
    is not a feature: compare scores how well embeddings keep it (``group_probe_accuracy``).
    """
    rng = np.random.default_rng(random_state)
    n_clusters = n_classes * per_class
    centres = rng.uniform(-3.0, 3.0, size=(n_clusters, n_features))
    cluster = rng.integers(0, n_clusters, size=n_samples)
    X = centres[cluster] + spread * rng.standard_normal((n_samples, n_features))
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    frame["target"] = cluster // per_class
    frame["group"] = cluster
    return frame
