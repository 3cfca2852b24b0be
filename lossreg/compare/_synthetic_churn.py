"""Generated churn data with customer lifetime values for ``lossreg compare``: ``synthetic:churn``.

The setting of profit-driven churn prevention: a binary churn label and, per customer, a
heavy-tailed lifetime value that the features partly explain and that itself shifts the churn
risk. Registered in :data:`lossreg.compare._synthetic.GENERATORS`; fully determined by its
parameters. Compare it with ``value="clv"`` to score retention-campaign profit (see
:mod:`lossreg.compare._campaign`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["churn", "intercept_for_rate"]


def churn(
    n_samples: int = 2000,
    n_features: int = 8,
    churn_rate: float = 0.2,
    clv_median: float = 200.0,
    clv_spread: float = 1.0,
    clv_explained: float = 0.6,
    value_link: float = -0.5,
    interaction: float = 1.0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Customers with a churn label and a lifetime value ``clv``.

    Features ``x0 ..`` are standard normal. The lifetime value is log-normal:
    ``log(clv) = log(clv_median) + clv_spread * z`` with ``z`` a unit-variance mix of a linear
    function of ``x0, x1, x2`` (share ``clv_explained`` of its variance) and independent noise,
    so a few customers are worth many times the median. The churn log-odds are
    ``c + 0.8 x2 - 0.8 x3 + 0.6 x4 + interaction * x3 * x5 + value_link * z`` (``x5`` is
    ``x0`` when ``n_features < 6``): ``value_link < 0`` makes valuable customers churn less.
    ``c`` is set so that the mean churn probability is ``churn_rate``; labels are drawn from
    these probabilities, so churn is noisy given the features.

    Columns: ``x0 ..``, ``clv`` (a feature too: a customer's value is known when a campaign
    is planned) and ``target`` (1 = churns).
    """
    problems = [
        f"{name} must be an integer >= {low}. Got {value!r}."
        for name, value, low in (("n_samples", n_samples, 10), ("n_features", n_features, 5))
        if isinstance(value, bool) or not isinstance(value, int) or value < low
    ]
    for name, value, low, high in (
        ("churn_rate", churn_rate, 0.0, 1.0),
        ("clv_explained", clv_explained, 0.0, 1.0),
    ):
        if not isinstance(value, (int, float)) or not low < value < high:
            problems.append(f"{name} must be a number in ({low:g}, {high:g}). Got {value!r}.")
    for name, value in (("clv_median", clv_median), ("clv_spread", clv_spread)):
        if not isinstance(value, (int, float)) or value <= 0:
            problems.append(f"{name} must be a number > 0. Got {value!r}.")
    if problems:
        raise ValueError("synthetic:churn: " + " ".join(problems))
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((n_samples, n_features))
    explained = (X[:, 0] + X[:, 1] - X[:, 2]) / np.sqrt(3.0)
    z = np.sqrt(clv_explained) * explained + np.sqrt(1 - clv_explained) * rng.standard_normal(
        n_samples
    )
    clv = clv_median * np.exp(clv_spread * z)
    partner = X[:, 5] if n_features > 5 else X[:, 0]
    signal = 0.8 * X[:, 2] - 0.8 * X[:, 3] + 0.6 * X[:, 4] + interaction * X[:, 3] * partner
    signal = signal + value_link * z
    offset = intercept_for_rate(signal, churn_rate)
    probability = 1.0 / (1.0 + np.exp(-(signal + offset)))
    y = (rng.random(n_samples) < probability).astype(np.int64)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(n_features)])
    frame["clv"] = clv
    frame["target"] = y
    return frame


def intercept_for_rate(signal: np.ndarray, rate: float) -> float:
    """The intercept c with mean(sigmoid(signal + c)) = rate (bisection; the mean rises in c)."""
    low, high = -30.0, 30.0
    for _ in range(100):
        middle = (low + high) / 2
        if np.mean(1.0 / (1.0 + np.exp(-(signal + middle)))) < rate:
            low = middle
        else:
            high = middle
    return (low + high) / 2
