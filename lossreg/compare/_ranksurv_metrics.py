"""Metrics of ``lossreg compare``'s ranking and survival tasks on one test fold."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "RANKING_METRICS",
    "SURVIVAL_METRICS",
    "integrated_brier_score",
    "kaplan_meier",
    "ranking_metrics",
    "survival_metrics",
]

#: the first is the primary metric of the task
RANKING_METRICS = ("ndcg_at_10", "pair_accuracy", "kendall_tau")
SURVIVAL_METRICS = ("c_index", "integrated_brier")

#: the integrated Brier score runs over this many times between these quantiles of the
#: training fold's observed times (beyond them few rows remain and the weights explode)
IBS_POINTS = 50
IBS_QUANTILES = (0.1, 0.9)


def ranking_metrics(y: Any, scores: Any, group: Any) -> dict[str, float]:
    """NDCG@10, pairwise accuracy and Kendall's τ of ``scores`` within the queries of ``group``.

    ``ndcg_at_10`` is :func:`lossreg.estimators.ranking.mean_ndcg` (queries of two or more
    rows). ``pair_accuracy`` is the share of the pairs of rows of one query with different
    relevance that the scores order correctly (tied scores count 1/2), pooled over queries.
    ``kendall_tau`` is the mean over queries with two or more relevance values of Kendall's
    τ-b between relevance and score (on two-row queries: ``2 * pair_accuracy - 1``).
    """
    from scipy.stats import kendalltau

    from lossreg.estimators.ranking import mean_ndcg

    y = np.asarray(y, dtype=np.float64).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    group = np.asarray(group).reshape(-1)
    out = {"ndcg_at_10": mean_ndcg(y, scores, group, k=10)}
    credit = pairs = 0.0
    taus = []
    for query in np.unique(group):
        rows = np.flatnonzero(group == query)
        rel, s = y[rows], scores[rows]
        ordered = rel[:, None] > rel[None, :]
        credit += float(
            (ordered * ((s[:, None] > s[None, :]) + 0.5 * (s[:, None] == s[None, :]))).sum()
        )
        pairs += float(ordered.sum())
        if len(np.unique(rel)) > 1:
            tau = kendalltau(rel, s).statistic
            # a query whose scores are all equal has no defined τ: it ranks nothing
            taus.append(0.0 if np.isnan(tau) else float(tau))
    if pairs:
        out["pair_accuracy"] = credit / pairs
    if taus:
        out["kendall_tau"] = float(np.mean(taus))
    return out


def kaplan_meier(time: Any, event: Any) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan–Meier estimate: the distinct ``event`` times and ``S`` just after each.

    Pass ``1 - event`` to estimate the censoring distribution ``G``.
    """
    time = np.asarray(time, dtype=np.float64).reshape(-1)
    event = np.asarray(event).reshape(-1).astype(bool)
    steps = np.unique(time[event])
    at_risk = (time[None, :] >= steps[:, None]).sum(axis=1)
    hits = (time[event][None, :] == steps[:, None]).sum(axis=1)
    return steps, np.cumprod(1.0 - hits / at_risk)


def _step(steps: np.ndarray, values: np.ndarray, at: np.ndarray, left: bool) -> np.ndarray:
    """A right-continuous step function (1 before the first step) at ``at``; ``left`` takes
    the limit from the left (the value just before a step at ``at``)."""
    index = np.searchsorted(steps, at, side="left" if left else "right")
    return np.concatenate([[1.0], values])[index]


def integrated_brier_score(
    time: Any,
    event: Any,
    survival: np.ndarray,
    grid: np.ndarray,
    train_time: Any,
    train_event: Any,
) -> float:
    """Graf et al.'s integrated Brier score of predicted survival curves under censoring.

    ``survival[i, j]`` is the predicted ``S(grid[j] | x_i)``. At each time ``t``:

    ``BS(t) = mean_i [S_i(t)^2 1(T_i <= t, δ_i = 1) / G(T_i-) + (1 - S_i(t))^2 1(T_i > t) / G(t)]``

    with ``G`` the Kaplan–Meier estimate of the censoring distribution on the training fold
    (inverse probability of censoring weights); the score is the trapezoid mean of ``BS``
    over ``grid``. Lower is better; 0.25 is what ``S = 1/2`` everywhere scores without
    censoring.
    """
    time = np.asarray(time, dtype=np.float64).reshape(-1)
    event = np.asarray(event).reshape(-1).astype(bool)
    survival = np.asarray(survival, dtype=np.float64)
    steps, g = kaplan_meier(train_time, 1 - np.asarray(train_event))
    floor = 1e-12  # a weight's G is > 0 on the grid (quantiles of the training times)
    g_at_t = np.maximum(_step(steps, g, grid, left=False), floor)
    g_at_event = np.maximum(_step(steps, g, time, left=True), floor)
    died = (time[:, None] <= grid[None, :]) & event[:, None]
    alive = time[:, None] > grid[None, :]
    brier = (
        survival**2 * died / g_at_event[:, None] + (1.0 - survival) ** 2 * alive / g_at_t[None, :]
    ).mean(axis=0)
    return float(np.trapezoid(brier, grid) / (grid[-1] - grid[0]))


def survival_metrics(
    time: Any,
    event: Any,
    risk: Any,
    survival: np.ndarray | None = None,
    grid: np.ndarray | None = None,
    train: tuple[Any, Any] | None = None,
) -> dict[str, float]:
    """Harrell's C-index of ``risk``; the integrated Brier score when the model gives
    survival curves on ``grid`` (``train``: the training fold's times and events, for the
    censoring weights)."""
    from lossreg.estimators.survival import concordance_index

    out = {"c_index": concordance_index(time, event, risk)}
    if survival is not None and grid is not None and train is not None:
        out["integrated_brier"] = integrated_brier_score(time, event, survival, grid, *train)
    return out


def brier_grid(train_time: Any) -> np.ndarray:
    """The times the integrated Brier score averages over (see :data:`IBS_QUANTILES`)."""
    low, high = np.quantile(np.asarray(train_time, dtype=np.float64), IBS_QUANTILES)
    return np.linspace(low, high, IBS_POINTS)
