"""Reference models for ``lossreg compare``: scikit-learn estimators fitted beside the losses.

``compare(..., models=["gaussian_nb"])`` (``--model gaussian_nb``) fits each named model on the
same stressed training folds as the losses and scores it on the same test folds, so a loss can
be paired with a classical model fold by fold (``model:gaussian_nb`` in the results). A model
has no training loss, no epochs and ignores the estimator settings, except ``supervised``: an
embedding comparison's fully supervised network (see :mod:`lossreg.compare._supervised`).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from lossreg.compare._supervised import SUPERVISED, run_supervised_fit, supervised_classifier

__all__ = ["MODEL_PREFIX", "REFERENCE_MODELS", "check_models", "make_model", "run_model_fit"]

#: loss labels of reference models start with this
MODEL_PREFIX = "model:"


def _gaussian_nb(task: str, seed: int) -> Any:
    from sklearn.naive_bayes import GaussianNB

    return GaussianNB()


def _logistic_regression(task: str, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000)


def _raw_features(task: str, seed: int) -> Any:
    from sklearn.preprocessing import FunctionTransformer

    # the preprocessed features are the embedding (see lossreg.compare._few_labels)
    return FunctionTransformer()


def _ridge(task: str, seed: int) -> Any:
    from sklearn.linear_model import Ridge

    return Ridge()


def _hist_gradient_boosting(task: str, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    model = (
        HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    )
    return model(random_state=seed)


def _random_forest(task: str, seed: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    model = RandomForestRegressor if task == "regression" else RandomForestClassifier
    return model(n_estimators=200, random_state=seed)


_CLASSES = ("binary", "multiclass")

#: name -> (builder(task, seed), the tasks it fits)
REFERENCE_MODELS: dict[str, tuple[Callable[[str, int], Any], tuple[str, ...]]] = {
    "gaussian_nb": (_gaussian_nb, _CLASSES),
    "logistic_regression": (_logistic_regression, _CLASSES),
    "ridge": (_ridge, ("regression",)),
    # multiclass: the k-means baseline of novel_classes scenarios (lossreg.compare._novel)
    "raw_features": (_raw_features, ("embedding", "multiclass")),
    SUPERVISED: (supervised_classifier, ("embedding",)),  # a network: see _supervised
    "hist_gradient_boosting": (_hist_gradient_boosting, (*_CLASSES, "regression")),
    "random_forest": (_random_forest, (*_CLASSES, "regression")),
}


def check_models(models: Any, task: str) -> list[str]:
    """The models' labels (``model:NAME``); a ``ValueError`` names each unusable one."""
    if models is None:
        return []
    names = [models] if isinstance(models, str) else list(models)
    problems = []
    for name in names:
        entry = REFERENCE_MODELS.get(name)
        if entry is None:
            problems.append(f"unknown model {name!r} (models: {', '.join(REFERENCE_MODELS)})")
        elif task not in entry[1]:
            problems.append(f"model {name!r} fits {', '.join(entry[1])} targets, not {task!r}")
    if len(set(names)) != len(names):
        problems.append(f"a model is listed twice in {names!r}")
    if problems:
        raise ValueError("Reference models: " + "; ".join(problems) + ".")
    return [MODEL_PREFIX + name for name in names]


def make_model(label: str, task: str, seed: int) -> Any:
    """compare's per-fold preprocessing, then the model a ``model:NAME`` label names."""
    from sklearn.pipeline import Pipeline

    from lossreg.compare._fit import preprocessing

    build, _ = REFERENCE_MODELS[label[len(MODEL_PREFIX) :]]
    return Pipeline([("prep", preprocessing()), ("model", build(task, seed))])


def run_model_fit(
    spec: dict[str, Any], X: pd.DataFrame, y: pd.Series, groups: pd.Series | None = None
) -> dict[str, Any]:
    """``run_fit`` for a reference model: same stressed rows, same test fold, same metrics."""
    from lossreg.compare._metrics import classification_metrics, regression_metrics
    from lossreg.compare._probe_target import PROBE_ROWS
    from lossreg.compare._scenarios import StressedEstimator

    if spec["loss"] == MODEL_PREFIX + SUPERVISED:  # trained with the comparison's settings
        return run_supervised_fit(spec, X, y)
    record = {k: v for k, v in spec.items() if k not in ("train", "test", "threads", *PROBE_ROWS)}
    try:
        train, test = np.asarray(spec["train"]), np.asarray(spec["test"])
        pipeline = make_model(spec["loss"], spec["task"], spec["model_seed"])
        model = StressedEstimator(pipeline, spec["scenario"], spec["noise_seed"])
        start = time.perf_counter()
        model.fit(X.iloc[train], y.iloc[train].to_numpy())
        record["fit_time"] = time.perf_counter() - start
        X_test, y_test = X.iloc[test], y.iloc[test].to_numpy()
        fitted = model.estimator_
        if spec.get("scenario_kind") == "novel_classes":
            from lossreg.compare._novel import score_novel_model

            record.update(score_novel_model(spec, model, X, y, test))
        elif spec["task"] == "embedding":
            from lossreg.compare._few_labels import score_raw_features

            record.update(score_raw_features(spec, model, X, y_test, test, groups))
        elif spec["task"] == "regression":
            record.update(regression_metrics(y_test, fitted.predict(X_test)))
        else:
            scores, bins = classification_metrics(
                y_test,
                fitted.predict(X_test),
                fitted.predict_proba(X_test),
                fitted.classes_,
                spec["minority"],
                groups=None if groups is None else groups.iloc[test].to_numpy(),
            )
            record.update(scores)
            record["reliability"] = bins
            if spec.get("value"):  # campaign profit (lossreg.compare._campaign)
                from lossreg.compare._campaign import score_campaign

                record.update(score_campaign(spec["value"], fitted, model, X, y, test))
        record.update(model.corruption_)
        record["status"] = "ok"
    except Exception as exc:
        record["status"] = "error"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=-4)
    record["finished_at"] = time.time()
    return record
