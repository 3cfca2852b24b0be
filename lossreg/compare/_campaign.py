"""Retention-campaign profit of a binary model's targeting decisions, from a per-row value column.

``value="clv"`` (``--value clv``) names a numeric feature column holding each row's monetary
value (a customer's lifetime value). The column stays a feature (the value of a customer is
known when a campaign is planned); its raw numbers also reach the losses that declare the
``value`` fit extra (``pno_churn_regret``) and score every binary fit on the test fold by the
profit of the campaign its decisions would run. Targeting customer *i* (positive class =
churner, :math:`y_i = 1`) earns

.. math::  b_i = y_i[\\gamma(v_i - \\delta) - f] - (1 - y_i)(\\delta + f),

leaving it alone earns 0 (Neslin et al. 2006; Verbraken et al. 2013, whose defaults
:math:`\\gamma = 0.3, \\delta = 10, f = 1` these are; ``value="clv(gamma=0.2, delta=5,
contact_cost=2)"`` changes them). Metrics, each a mean per test-fold customer:

- ``campaign_profit``: target the rows the model predicts positive (its own decisions);
- ``campaign_profit_tuned``: target the rows whose positive-class score (probability, or
  decision score without one) exceeds the threshold that maximises the campaign profit on the
  training fold's rows (the profit-based threshold of a churn classifier);
- ``campaign_profit_expected`` (models with probabilities): target a row when its expected
  benefit :math:`p_i[\\gamma(v_i - \\delta) - f] - (1 - p_i)(\\delta + f)` is positive;
- ``campaign_target_rate``: the share of test rows ``campaign_profit`` targets;
- ``campaign_profit_max``: the hindsight optimum (target exactly the rows with
  :math:`b_i > 0`), the same for every model of a fold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CAMPAIGN_DEFAULTS",
    "CAMPAIGN_DIRECTIONS",
    "CAMPAIGN_METRICS",
    "campaign_benefits",
    "campaign_scores",
    "check_value",
    "profit_threshold",
    "score_campaign",
    "value_fit_params",
]

#: the campaign's economics (Verbraken et al. 2013's defaults): acceptance probability of a
#: targeted churner, incentive cost, contact cost
CAMPAIGN_DEFAULTS: dict[str, float] = {"gamma": 0.3, "delta": 10.0, "contact_cost": 1.0}

CAMPAIGN_DIRECTIONS: dict[str, bool] = {
    "campaign_profit": True,
    "campaign_profit_tuned": True,
    "campaign_profit_expected": True,
    "campaign_profit_max": True,
    # descriptive (no better side); listed so the report's metric table shows it
    "campaign_target_rate": True,
}
CAMPAIGN_METRICS = tuple(CAMPAIGN_DIRECTIONS)


def check_value(
    value: str | None, X: pd.DataFrame, task: str, fit_extras: dict[str, tuple[str, ...]]
) -> dict[str, Any] | None:
    """Validate ``value`` ("COLUMN" or "COLUMN(gamma=..., delta=..., contact_cost=...)").

    ``fit_extras`` maps each compared loss's label to the extras it declares: a loss that
    needs ``value`` without a value column is refused here rather than in every fit.
    """
    needing = sorted(label for label, extras in fit_extras.items() if "value" in extras)
    if value is None:
        if needing:
            raise ValueError(
                f"Loss(es) {', '.join(needing)} need each row's monetary value (fit extra "
                "'value'): name its column with value='COLUMN' (--value COLUMN)."
            )
        return None
    if task != "binary":
        raise ValueError(
            f"value={value!r} scores the campaign profit of binary targeting decisions; this "
            f"comparison's task is {task!r}. Use a binary target (1 = the class to target)."
        )
    from lossreg.compare._losses import parse_losses

    try:
        parsed = parse_losses(value)
    except ValueError as exc:
        raise ValueError(
            f"value must be a column name, optionally with the campaign's settings: "
            f"'clv' or 'clv(gamma=0.3, delta=10.0, contact_cost=1.0)'. Got {value!r} ({exc})."
        ) from None
    if len(parsed) != 1:
        raise ValueError(f"value names one column; got {value!r}.")
    column, settings = parsed[0].name, dict(parsed[0].params)
    unknown = sorted(set(settings) - set(CAMPAIGN_DEFAULTS))
    if unknown:
        raise ValueError(
            f"Unknown campaign setting(s) {unknown} in value={value!r}; known: "
            f"{', '.join(CAMPAIGN_DEFAULTS)}."
        )
    numbers = (int, float, np.integer, np.floating)
    bad = {k: v for k, v in settings.items() if isinstance(v, bool) or not isinstance(v, numbers)}
    if bad:
        raise ValueError(
            f"value={value!r}: campaign settings are numbers, e.g. 'clv(gamma=0.3, delta=10.0, "
            f"contact_cost=1.0)'. Got {bad}."
        )
    campaign = {**CAMPAIGN_DEFAULTS, **{k: float(v) for k, v in settings.items()}}
    if not 0 < campaign["gamma"] <= 1 or campaign["delta"] < 0 or campaign["contact_cost"] < 0:
        raise ValueError(
            f"value={value!r}: gamma must lie in (0, 1] and delta, contact_cost be >= 0. Got "
            f"{campaign}."
        )
    if column not in X.columns:
        raise ValueError(
            f"Value column {column!r} is not a feature column; columns: "
            f"{', '.join(map(str, X.columns[:20]))}."
        )
    values = pd.to_numeric(X[column], errors="coerce")
    if values.isna().any() or not np.isfinite(values.to_numpy(dtype=np.float64)).all():
        raise ValueError(
            f"Value column {column!r} must hold a finite number in every row (a customer's "
            "lifetime value); it has missing or non-numeric entries."
        )
    return {"column": column, **campaign}


def value_fit_params(value: dict[str, Any], X: pd.DataFrame, rows: np.ndarray) -> dict[str, Any]:
    """The ``value`` fit extra of the training rows, raw (not standardised)."""
    return {"model__value": X[value["column"]].to_numpy(dtype=np.float64)[rows]}


def campaign_benefits(positive: np.ndarray, values: np.ndarray, campaign: dict[str, Any]) -> Any:
    """Profit of targeting each row, (N,): see the module docstring."""
    gamma, delta, f = campaign["gamma"], campaign["delta"], campaign["contact_cost"]
    y = np.asarray(positive, dtype=np.float64)
    return y * (gamma * (np.asarray(values, dtype=np.float64) - delta) - f) - (1 - y) * (delta + f)


def profit_threshold(scores: np.ndarray, benefits: np.ndarray) -> float:
    """The score threshold t maximising the profit of targeting the rows with score > t.

    Rows with equal scores are targeted together; targeting nobody (t = the largest score) is
    a candidate, and among equally profitable thresholds the highest (fewest contacts) wins.
    t lies midway between two distinct scores, so unseen rows are cut consistently.
    """
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    s, gain = scores[order], np.cumsum(np.asarray(benefits, dtype=np.float64)[order])
    # a cut after position k is possible only where the next score is lower (ties together)
    ends = np.flatnonzero(np.r_[s[1:] < s[:-1], True])
    profits = np.r_[0.0, gain[ends]]
    best = int(np.argmax(profits))  # the first maximum: the fewest rows targeted
    if best == 0:
        return float(s[0]) if len(s) else 0.0
    k = ends[best - 1]
    return float(s[k] + s[k + 1]) / 2 if k + 1 < len(s) else -np.inf


def score_campaign(
    value: dict[str, Any],
    est: Any,
    model: Any,
    X: pd.DataFrame,
    y: pd.Series,
    test: np.ndarray,
    transform: Any = None,
) -> dict[str, float]:
    """Campaign metrics of a fit of ``compare``: ``model`` is its fitted ``StressedEstimator``.

    ``est`` predicts from ``transform``-ed rows (a fitted preprocessing, or None when ``est``
    is a whole pipeline on raw rows); the profit threshold is tuned on the rows ``model``
    was fitted on (after the scenario), with their own values.
    """
    X_fit, y_fit = model.fit_rows_
    column = value["column"]
    values_fit = np.asarray(X_fit[column], dtype=np.float64)
    values_test = X[column].to_numpy(dtype=np.float64)[test]
    X_test = X.iloc[test]
    if transform is not None:
        X_fit, X_test = transform.transform(X_fit), transform.transform(X_test)
    fit_rows = (X_fit, np.asarray(y_fit), values_fit)
    return campaign_scores(value, est, X_test, y.iloc[test].to_numpy(), values_test, fit_rows)


def campaign_scores(
    value: dict[str, Any],
    est: Any,
    X_test: np.ndarray,
    y_test: np.ndarray,
    values_test: np.ndarray,
    fit_rows: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> dict[str, float]:
    """The campaign metrics of one fitted binary model on its test fold.

    ``X_test`` is what ``est`` predicts from; ``fit_rows`` holds the training rows the model
    was fitted on (in the same form), their labels and their values (for the profit-based
    threshold).
    """
    positive_class = est.classes_[-1]
    positive = np.asarray(y_test) == positive_class
    benefit = campaign_benefits(positive, values_test, value)
    decided = np.asarray(est.predict(X_test)) == positive_class
    out = {
        "campaign_profit": float(np.mean(benefit * decided)),
        "campaign_target_rate": float(np.mean(decided)),
        "campaign_profit_max": float(np.mean(np.maximum(benefit, 0.0))),
    }
    X_fit, y_fit, values_fit = fit_rows
    labelled = np.isin(np.asarray(y_fit), est.classes_)  # unlabeled rows cannot be scored
    fit_scores = _positive_score(est, X_fit)[labelled]
    fit_benefit = campaign_benefits(
        np.asarray(y_fit)[labelled] == positive_class, values_fit[labelled], value
    )
    threshold = profit_threshold(fit_scores, fit_benefit)
    out["campaign_profit_tuned"] = float(
        np.mean(benefit * (_positive_score(est, X_test) > threshold))
    )
    if hasattr(est, "predict_proba"):
        p = np.asarray(est.predict_proba(X_test))[:, -1]
        gain = campaign_benefits(np.ones_like(p), values_test, value)
        loss = -campaign_benefits(np.zeros_like(p), values_test, value)
        out["campaign_profit_expected"] = float(np.mean(benefit * (p * gain > (1 - p) * loss)))
    return out


def _positive_score(est: Any, X: np.ndarray) -> np.ndarray:
    """The positive class's probability, or the decision score of a model without one."""
    if hasattr(est, "predict_proba"):
        return np.asarray(est.predict_proba(X))[:, -1]
    scores = np.asarray(est.decision_function(X))
    return scores[:, -1] if scores.ndim == 2 else scores
