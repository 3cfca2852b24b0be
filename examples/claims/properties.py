"""Numerical experiments for claims that are not a comparison of losses by ``lossreg compare``.

A claim file with ``[property]`` instead of ``[compare]`` names one of :data:`PROPERTIES`
and its parameters; the experiment draws many random cases and returns one row per case
(a ``case`` label, an ``outcome`` and the numbers it rests on). A mathematical property
(:func:`sorting_quantiles`) holds when no draw violates it: the experiment cannot prove it,
it can refute it, and it checks that lossreg's implementation keeps it. A simulation
(:func:`madl_model_selection`) holds when its paired effect over the draws is significant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["PROPERTIES", "madl_model_selection", "run_property", "sorting_quantiles"]

#: relative tolerance of a violation: float64 rounding of sums of a few terms
TOLERANCE = 1e-12


def sorting_quantiles(
    draws: int = 20000,
    seed: int = 0,
    losses: tuple[str, ...] = (
        "weighted_interval_score",
        "weighted_interval_score(alphas=(0.02, 0.05, 0.1, 0.2, 0.5, 0.8))",
        "pinball(quantiles=(0.1, 0.25, 0.5, 0.75, 0.9))",
    ),
) -> list[dict[str, Any]]:
    """Score random crossing quantile predictions before and after sorting each row.

    Per loss and draw: a target ``y ~ N(0, 1)`` and one prediction per quantile level drawn
    independently, ``q_j ~ N(0, s)`` with a scale ``s ~ U(0.1, 3)`` per draw, so most rows
    cross (a predicted level above a higher level's). The property: the loss of the sorted
    row (what lossreg's ``quantiles`` link returns) is never above the unsorted row's.

    Returns
    -------
    list of dict
        Per loss: ``case`` (its label), ``draws``, ``crossing`` (draws whose quantiles
        crossed), ``violations`` (sorted scored worse beyond float64 rounding), ``worst``
        (the largest increase, ≤ 0 when the property held) and ``mean_gain`` (the mean
        decrease from sorting, over crossing draws).
    """
    import torch

    from lossreg import create_loss
    from lossreg.compare._losses import parse_losses

    rng = np.random.default_rng(seed)
    rows = []
    for text in losses:
        (choice,) = parse_losses(text)
        loss = create_loss(choice.name, **choice.params, reduction="none")
        n_levels = len(loss.levels_)
        y = rng.normal(size=draws)
        scale = rng.uniform(0.1, 3.0, size=(draws, 1))
        pred = rng.normal(size=(draws, n_levels)) * scale
        unsorted = _score(loss, pred, y, torch)
        ordered = _score(loss, np.sort(pred, axis=1), y, torch)
        increase = ordered - unsorted
        crossing = np.any(np.diff(pred, axis=1) < 0, axis=1)
        violations = increase > TOLERANCE * (1.0 + np.abs(unsorted))
        rows.append(
            {
                "case": choice.label,
                "draws": draws,
                "crossing": int(crossing.sum()),
                "violations": int(violations.sum()),
                "worst": float(increase.max()),
                "mean_gain": float(-increase[crossing].mean()) if crossing.any() else 0.0,
                "outcome": not bool(violations.any()),
            }
        )
    return rows


def _score(loss: Any, pred: np.ndarray, y: np.ndarray, torch: Any) -> np.ndarray:
    with torch.no_grad():
        values = loss(torch.from_numpy(pred), torch.from_numpy(y))
    return values.numpy().astype(np.float64)


def madl_model_selection(
    draws: int = 40,
    seed: int = 0,
    n_days: int = 1500,
    n_lags: int = 10,
    neighbors: tuple[int, ...] = (5, 10, 20, 50, 100),
) -> list[dict[str, Any]]:
    """Select a model by MADL or by MSE in GridSearchCV; compare the strategies' Sharpe ratios.

    Per draw: a daily return series with a weak AR(1) signal (0.1), GARCH(1, 1) volatility
    and Student-t (3 d.o.f.) shocks; the features are the last ``n_lags`` returns. On the
    first 70% of the days, ``GridSearchCV`` (5 time-series folds) picks the number of
    neighbours of a scaled k-nearest-neighbours regressor once by lossreg's MADL scorer and
    once by (negated) MSE. Each selected model trades ``sign(prediction)`` on the last 30%;
    the risk-adjusted return is the annualised Sharpe ratio of those trades.

    Returns
    -------
    list of dict
        One row: mean Sharpe ratios of both selections, the mean paired difference
        (MADL - MSE) with its 95% t interval over the draws, and ``outcome``: the interval
        lies above 0. ``per_draw`` holds the differences.
    """
    from scipy import stats
    from sklearn.metrics import get_scorer
    from sklearn.model_selection import GridSearchCV, TimeSeriesSplit
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from lossreg.plugins.regression_misc import make_madl_scorer

    rng = np.random.default_rng(seed)
    scorers = {"madl": make_madl_scorer(), "mse": get_scorer("neg_mean_squared_error")}
    sharpe: dict[str, list[float]] = {"madl": [], "mse": []}
    for _ in range(draws):
        returns = _garch_returns(rng, n_days + n_lags)
        X = np.column_stack([returns[n_lags - j - 1 : -j - 1] for j in range(n_lags)])
        y = returns[n_lags:]
        cut = int(0.7 * len(y))
        for name, scorer in scorers.items():
            search = GridSearchCV(
                make_pipeline(StandardScaler(), KNeighborsRegressor()),
                {"kneighborsregressor__n_neighbors": list(neighbors)},
                scoring=scorer,
                cv=TimeSeriesSplit(5),
            ).fit(X[:cut], y[:cut])
            trades = np.sign(search.predict(X[cut:])) * y[cut:]
            sharpe[name].append(float(trades.mean() / trades.std() * np.sqrt(252)))
    diff = np.subtract(sharpe["madl"], sharpe["mse"])
    half = stats.t.ppf(0.975, draws - 1) * diff.std(ddof=1) / np.sqrt(draws)
    return [
        {
            "case": f"kNN regressor, n_neighbors in {list(neighbors)}",
            "draws": draws,
            "sharpe_madl": float(np.mean(sharpe["madl"])),
            "sharpe_mse": float(np.mean(sharpe["mse"])),
            "diff": float(diff.mean()),
            "lo": float(diff.mean() - half),
            "hi": float(diff.mean() + half),
            "outcome": bool(diff.mean() - half > 0),
            "per_draw": diff.tolist(),
        }
    ]


def _garch_returns(rng: np.random.Generator, n: int, burn: int = 200) -> np.ndarray:
    """AR(1) (0.1) returns with GARCH(1, 1) volatility and unit-variance Student-t(3) shocks."""
    omega, alpha, beta, phi = 0.05, 0.1, 0.85, 0.1
    shocks = rng.standard_t(3, size=n + burn) / np.sqrt(3.0)
    out = np.zeros(n + burn)
    variance = omega / (1 - alpha - beta)
    noise = 0.0
    for t in range(1, n + burn):
        variance = omega + alpha * noise**2 + beta * variance
        noise = np.sqrt(variance) * shocks[t]
        out[t] = phi * out[t - 1] + noise
    return out[burn:]


PROPERTIES: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "sorting_quantiles": sorting_quantiles,
    "madl_model_selection": madl_model_selection,
}


def run_property(table: dict[str, Any]) -> list[dict[str, Any]]:
    """Run the experiment a claim's ``[property]`` table names, with its parameters."""
    params = dict(table)
    name = params.pop("name", None)
    if name not in PROPERTIES:
        raise ValueError(
            f"Unknown property experiment {name!r}; experiments: {', '.join(PROPERTIES)}."
        )
    for key in ("losses", "neighbors"):
        if key in params:
            params[key] = tuple(params[key])
    return PROPERTIES[name](**params)
