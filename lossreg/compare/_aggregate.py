"""``lossreg compare --aggregate``: the compared quantile losses as members of one aggregator.

With ``aggregate=["weighted", "best_single"]``, the compared losses (quantile losses at the
same levels: ``pinball``, ``quantile_huber``, ``weighted_interval_score`` ...) are not fitted
alone: they are the members of a :class:`~lossreg.estimators.QuantileAggregator`, fitted on
75% of every (stressed) training fold; its weights (or best member) come from the held-out
25% (:data:`AGGREGATE_HOLDOUT`). Each combine rule is a fit labelled ``aggregate:RULE``
(``weighted``, ``best_single``, ``mean``). The split and the members' seeds depend only on
(repeat, fold), so in a fold every rule combines the same fitted members and the paired
differences measure the combination alone. The baseline defaults to ``aggregate:best_single``.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pandas as pd

from lossreg.compare._store import finish_record, record_failure
from lossreg.compare._threads import limit_torch_threads
from lossreg.estimators.quantile_aggregator import COMBINE

__all__ = [
    "AGGREGATE_HOLDOUT",
    "AGGREGATE_PREFIX",
    "check_aggregate",
    "make_aggregate",
    "run_aggregate_fit",
]

#: loss labels of aggregator fits start with this
AGGREGATE_PREFIX = "aggregate:"

#: share of each training fold held out to measure the members and learn the weights
AGGREGATE_HOLDOUT = 0.25


def check_aggregate(
    aggregate: Any,
    choices: list[Any],
    baseline: str | None,
    task: str,
    registry: Any,
    conflicts: dict[str, Any],
) -> dict[str, Any]:
    """Check an ``aggregate`` setting against the compared losses.

    Returns ``{"labels", "baseline", "members", "levels"}``: the fit labels
    (``aggregate:RULE``), the baseline label, the members as ``[name, params]`` pairs and
    their shared quantile levels. Raises ``ValueError`` naming every problem: the rules, the
    task (one numeric target), a loss that predicts no quantiles or other levels, a baseline
    that is not one of the rules, and settings that do not apply to an aggregator
    (``conflicts``: option name -> value, the set ones are refused).
    """
    rules = [r.strip() for r in aggregate.split(",")] if isinstance(aggregate, str) else aggregate
    if not isinstance(rules, (list, tuple)) or not all(isinstance(r, str) for r in rules):
        rules = [repr(aggregate)]  # not names of rules: reported with the rules below
    rules = [r[len(AGGREGATE_PREFIX) :] if r.startswith(AGGREGATE_PREFIX) else r for r in rules]
    problems = []
    unknown = [r for r in rules if r not in COMBINE]
    if not rules or unknown or len(set(rules)) != len(rules):
        problems.append(
            f"aggregate takes distinct combine rules among {', '.join(COMBINE)}, e.g. "
            f"aggregate=['weighted', 'best_single']; got {aggregate!r}"
        )
    if task != "regression":
        problems.append(
            f"aggregate combines quantile regressors of one numeric target; the task is {task!r}"
        )
    used = sorted(name for name, value in conflicts.items() if value)
    if used:
        problems.append(f"aggregate cannot be combined with {', '.join(used)}")
    levels: dict[str, list[float] | None] = {}
    for choice in choices:
        try:
            module = registry.create_loss(choice.name, **choice.params)
        except (TypeError, ValueError):  # needs data parameters of a fold: no fixed levels
            module = None
        found = getattr(module, "levels_", None)
        levels[choice.label] = None if found is None else [float(v) for v in found.tolist()]
    not_quantile = [label for label, value in levels.items() if value is None]
    if not_quantile:
        problems.append(
            f"with aggregate every compared loss is a member and must predict quantiles; "
            f"{', '.join(map(repr, not_quantile))} does not (use pinball, quantile_huber, "
            "weighted_interval_score ...)"
        )
    distinct = {json.dumps(v) for v in levels.values() if v is not None}
    if len(distinct) > 1:
        listed = "; ".join(f"{label}: {v}" for label, v in levels.items() if v is not None)
        problems.append(
            f"the members must predict the same quantile levels; they predict {listed} "
            "(e.g. pinball(quantiles=[0.1, 0.3, 0.5, 0.7, 0.9]), quantile_huber(n_quantiles=5) "
            "and weighted_interval_score(alphas=[0.2, 0.6]) share five levels)"
        )
    if len(choices) < 2:
        problems.append(f"aggregate needs at least two member losses; got {len(choices)}")
    labels = [AGGREGATE_PREFIX + r for r in rules]
    default = AGGREGATE_PREFIX + (
        "best_single" if "best_single" in rules else rules[0] if rules else ""
    )
    chosen = default
    if baseline is not None:
        chosen = baseline if baseline.startswith(AGGREGATE_PREFIX) else AGGREGATE_PREFIX + baseline
        if chosen not in labels:
            problems.append(
                f"with aggregate the baseline is one of the aggregator fits ({', '.join(labels)}); "
                f"got baseline={baseline!r}"
            )
    if problems:
        raise ValueError("Aggregate: " + "; ".join(problems) + ".")
    return {
        "labels": labels,
        "baseline": chosen,
        "members": [[c.name, dict(c.params)] for c in choices],
        "levels": next(iter(levels.values())),
    }


def make_aggregate(spec: dict[str, Any]) -> Any:
    """compare's preprocessing, then a target-scaled QuantileAggregator of the fit's members.

    Every member is a LossRegressor with the comparison's estimator settings and its own seed
    (the fit's model seed plus its position), so two members of one loss still differ.
    """
    from sklearn.pipeline import Pipeline

    from lossreg.compare._fit import TargetScaled, preprocessing
    from lossreg.compare._losses import LossChoice
    from lossreg.compare._multioutput import loss_scaling
    from lossreg.estimators import LossRegressor, QuantileAggregator

    settings = dict(spec["estimator"])
    settings.pop("bin_targets", None)  # embedding regression only; a regressor has no classes
    members_spec = spec["aggregate"]["members"]
    # one scaling for the aggregate: the members' predictions are combined in one unit
    scaling = loss_scaling(settings.pop("target_scaling", "standard"), members_spec[0][0])
    seed = int(spec["model_seed"])
    members = [
        (
            LossChoice(name, params).label,
            LossRegressor(
                loss=name,
                random_state=seed + i,
                **settings,
                **{f"loss__{k}": v for k, v in params.items()},
            ),
        )
        for i, (name, params) in enumerate(members_spec)
    ]
    model = QuantileAggregator(
        members,
        quantiles=tuple(spec["aggregate"]["levels"]),
        combine=spec["loss"][len(AGGREGATE_PREFIX) :],
        holdout=AGGREGATE_HOLDOUT,
        random_state=seed,
    )
    return Pipeline([("prep", preprocessing()), ("model", TargetScaled(model, scaling=scaling))])


def run_aggregate_fit(spec: dict[str, Any], X: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    """``run_fit`` for an ``aggregate:RULE`` fit: same stressed rows, test fold and metrics as a
    quantile loss (``pinball``, ``wis``, ``coverage_90`` ..., from the aggregated quantiles),
    plus ``aggregate_weights`` (members x levels), ``best_member`` and ``member_pinball``
    (each member's held-out pinball loss)."""

    from lossreg.compare._metrics import regression_metrics
    from lossreg.compare._regions import with_shot_regions
    from lossreg.compare._scenarios import StressedEstimator
    from lossreg.compare._uncertainty import regression_uncertainty

    skip = ("train", "test", "threads", "true_sigma", "hidden", "source_test")
    record = {k: v for k, v in spec.items() if k not in skip}
    restore_threads = limit_torch_threads(spec.get("threads", 1))
    try:
        train, test = np.asarray(spec["train"]), np.asarray(spec["test"])
        model = StressedEstimator(
            make_aggregate(spec), spec["scenario"], spec["noise_seed"], regression=True
        )
        start = time.perf_counter()
        model.fit(X.iloc[train], y.iloc[train].to_numpy())
        record["fit_time"] = time.perf_counter() - start
        prep, scaled = model.estimator_[:-1], model.estimator_[-1]
        aggregator = scaled.regressor_
        X_test, y_test = prep.transform(X.iloc[test]), y.iloc[test].to_numpy()
        quantiles = (aggregator.levels_, scaled.predict_quantiles(X_test))
        try:
            interval = scaled.predict_interval(X_test, alpha=0.1)
        except ValueError:  # no 0.05 / 0.95 levels: no 90% interval metrics
            interval = None
        predicted = scaled.predict(X_test)
        score = with_shot_regions(regression_metrics, y.iloc[train].to_numpy())
        record.update(score(y_test, predicted, quantiles, interval))
        record.update(
            regression_uncertainty(y_test, predicted, None, spec.get("true_sigma"), quantiles)
        )
        record.update(
            aggregate_weights=aggregator.weights_.round(6).tolist(),
            best_member=aggregator.best_member_,
            # in the scaled units the members were fitted in
            member_pinball=dict(
                zip(
                    [name for name, _ in aggregator.members_],
                    aggregator.member_pinball_.mean(axis=1).round(6).tolist(),
                    strict=True,
                )
            ),
        )
        record.update(model.corruption_)
        record["status"] = "ok"
    except Exception as exc:
        record_failure(record, exc)
    finally:
        restore_threads()
    return finish_record(record)
