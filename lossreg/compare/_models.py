"""Reference models for ``lossreg compare``: scikit-learn estimators fitted beside the losses.

``compare(..., models=["gaussian_nb"])`` (``--model gaussian_nb``) fits each named model on the
same stressed training folds as the losses and scores it on the same test folds, so a loss can
be paired with a classical model fold by fold (``model:gaussian_nb`` in the results). A model
has no training loss, no epochs and ignores the estimator settings, except ``supervised``: an
embedding comparison's fully supervised network (see :mod:`lossreg.compare._supervised`), and
``minhash_lsh``, a Jaccard-LSH blocker on the raw records scored by the blocking metrics only
(see :mod:`lossreg.compare._minhash`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from lossreg.compare._bag_models import bag_model_extras, llp_bp, torch_threads, use_settings
from lossreg.compare._store import finish_record, record_failure
from lossreg.compare._supervised import SUPERVISED, run_supervised_fit, supervised_classifier
from lossreg.compare._tail import head_tail_scores

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


def _minhash_lsh(task: str, seed: int) -> Any:
    from lossreg.compare._minhash import MinHashBlocker

    return MinHashBlocker(random_state=seed)  # reads the raw records (see make_model)


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
    "minhash_lsh": (_minhash_lsh, ("embedding",)),  # Jaccard-LSH blocker: see _minhash
    "hist_gradient_boosting": (_hist_gradient_boosting, (*_CLASSES, "regression")),
    "random_forest": (_random_forest, (*_CLASSES, "regression")),
    "llp_bp": (llp_bp, ("binary",)),  # learns from bags: see _bag_models
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
    from lossreg.compare._minhash import BLOCKER_MODELS

    name = label[len(MODEL_PREFIX) :]
    build, _ = REFERENCE_MODELS[name]
    if name in BLOCKER_MODELS:  # tokens of the raw records: no imputation or encoding
        return Pipeline([("model", build(task, seed))])
    return Pipeline([("prep", preprocessing()), ("model", build(task, seed))])


def run_model_fit(
    spec: dict[str, Any],
    X: pd.DataFrame,
    y: pd.Series,
    groups: pd.Series | None = None,
    bids: pd.Series | None = None,
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
        pipeline = use_settings(pipeline, spec["loss"], spec.get("estimator", {}))
        model = StressedEstimator(
            pipeline,
            spec["scenario"],
            spec["noise_seed"],
            bag_extras=bag_model_extras(spec["loss"]),
        )
        start = time.perf_counter()
        with torch_threads(spec):
            model.fit(X.iloc[train], y.iloc[train].to_numpy())
        record["fit_time"] = time.perf_counter() - start
        X_test, y_test = X.iloc[test], y.iloc[test].to_numpy()
        fitted = model.estimator_
        if spec.get("scenario_kind") == "novel_classes":
            from lossreg.compare._novel import score_novel_model

            record.update(score_novel_model(spec, model, X, y, test))
        elif spec["task"] == "embedding" and spec["loss"] == MODEL_PREFIX + "minhash_lsh":
            from lossreg.compare._minhash import score_blocker

            record.update(score_blocker(spec, fitted, X, y, test))
        elif spec["task"] == "embedding":
            from lossreg.compare._blocking import blocking_metrics
            from lossreg.compare._few_labels import score_raw_features

            record.update(score_raw_features(spec, model, X, y_test, test, groups))
            emb_test = np.asarray(fitted.transform(X_test), dtype=np.float64)
            record.update(blocking_metrics(emb_test, y_test, spec.get("blocking_k")))
        elif spec["task"] == "regression":
            record.update(regression_metrics(y_test, fitted.predict(X_test)))
        else:
            predicted, proba = fitted.predict(X_test), fitted.predict_proba(X_test)
            test_groups = None if groups is None else groups.iloc[test].to_numpy()
            scores, bins = classification_metrics(
                y_test, predicted, proba, fitted.classes_, spec["minority"], groups=test_groups
            )
            record.update(scores)
            if bids is not None:  # ads in auctions: paired with the losses on welfare
                from lossreg.compare._welfare import score_welfare

                test_bids = bids.iloc[test].to_numpy()
                record.update(score_welfare(y_test, proba, fitted.classes_, test_bids, test_groups))
            record.update(head_tail_scores(fitted.classes_, y_test, predicted, model.fit_rows_[1]))
            record["reliability"] = bins
            if spec.get("value"):  # campaign profit (lossreg.compare._campaign)
                from lossreg.compare._campaign import score_campaign

                record.update(score_campaign(spec["value"], fitted, model, X, y, test))
        record.update(model.corruption_)
        record["status"] = "ok"
    except Exception as exc:
        record_failure(record, exc)
    return finish_record(record)
