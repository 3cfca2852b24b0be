"""One fit of a comparison: build the pipeline, train on the stressed training fold, score the test.

``run_fit`` is what runs in a joblib or dask worker: it takes plain data and returns a plain,
JSON-ready record, and never raises for a failing fit (the error goes into the record).
"""

from __future__ import annotations

import time
import traceback
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.metaestimators import available_if

__all__ = ["TEACHERS", "TargetScaled", "make_pipeline", "make_teacher", "preprocessing", "run_fit"]

#: teachers ``lossreg compare --teacher`` can fit per training fold for distillation losses
TEACHERS = ("hist_gradient_boosting", "random_forest", "logistic_regression")


def preprocessing() -> Any:
    """Per-fold preprocessing: impute (median) and scale numbers, impute and one-hot the rest."""
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    return ColumnTransformer(
        [
            ("num", numeric, make_column_selector(dtype_include=np.number)),
            ("cat", categorical, make_column_selector(dtype_exclude=np.number)),
        ]
    )


def make_pipeline(
    task: str,
    loss: str,
    params: dict[str, Any],
    estimator_params: dict[str, Any],
    seed: int,
    teacher: str | None = None,
) -> Any:
    """Per-fold :func:`preprocessing`, then the lossreg estimator of the task (``teacher``:
    a ranking teacher's name, see :mod:`lossreg.compare._ranksurv`)."""
    from sklearn.pipeline import Pipeline

    from lossreg.compare._ranksurv import RANKSURV_TASKS, make_ranksurv_model
    from lossreg.estimators import LossClassifier, LossEmbedder, LossRegressor

    if task in RANKSURV_TASKS:
        ranksurv = make_ranksurv_model(task, loss, params, estimator_params, seed, teacher)
        return Pipeline([("prep", preprocessing()), ("model", ranksurv)])

    settings = dict(estimator_params)
    scaling = settings.pop("target_scaling", "standard")
    Model = {"regression": LossRegressor, "embedding": LossEmbedder}.get(task, LossClassifier)
    model = Model(
        loss=loss,
        random_state=seed,
        **settings,
        **{f"loss__{k}": v for k, v in params.items()},
    )
    if task == "regression":
        model = TargetScaled(model, scaling=scaling)
    return Pipeline([("prep", preprocessing()), ("model", model)])


def make_teacher(name: str, seed: int) -> Any:
    """A classifier named in :data:`TEACHERS`, after compare's :func:`preprocessing`."""
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    models = {
        "hist_gradient_boosting": HistGradientBoostingClassifier(random_state=seed),
        "random_forest": RandomForestClassifier(n_estimators=200, random_state=seed),
        "logistic_regression": LogisticRegression(max_iter=1000),
    }
    if name not in models:
        raise ValueError(f"Unknown teacher {name!r}; teachers: {', '.join(TEACHERS)}.")
    return Pipeline([("prep", preprocessing()), ("model", models[name])])


def _regressor_has(name: str) -> Any:
    def check(self: TargetScaled) -> bool:
        return hasattr(getattr(self, "regressor_", self.regressor), name)

    return check


class TargetScaled(RegressorMixin, BaseEstimator):
    """Fit ``regressor`` on training targets scaled by the training fold's statistics.

    A network starts with outputs near 0; a target with mean 150 and std 80 (diabetes)
    would need most of the epochs only to learn its offset, so every loss would look alike.
    ``"standard"`` centres and scales, ``"scale"`` only divides by the standard deviation
    (keeps signs: for losses that need positive targets), ``"none"`` leaves the target.
    Predictions, quantiles and intervals are mapped back, so metrics use the original units.
    """

    def __init__(self, regressor: Any, scaling: str = "standard") -> None:
        self.regressor = regressor
        self.scaling = scaling

    def fit(self, X: Any, y: Any) -> TargetScaled:
        from sklearn.base import clone

        if self.scaling not in ("standard", "scale", "none"):
            raise ValueError(
                f"target_scaling must be 'standard', 'scale' or 'none'. Got {self.scaling!r}."
            )
        y = np.asarray(y, dtype=np.float64)
        self.offset_ = float(y.mean()) if self.scaling == "standard" else 0.0
        spread = float(y.std()) if self.scaling != "none" else 1.0
        self.scale_ = spread if spread > 0 else 1.0
        self.regressor_ = clone(self.regressor).fit(X, (y - self.offset_) / self.scale_)
        return self

    def _back(self, values: Any) -> np.ndarray:
        return np.asarray(values) * self.scale_ + self.offset_

    def predict(self, X: Any) -> np.ndarray:
        return self._back(self.regressor_.predict(X))

    @available_if(_regressor_has("predict_quantiles"))
    def predict_quantiles(self, X: Any) -> np.ndarray:
        return self._back(self.regressor_.predict_quantiles(X))

    @available_if(_regressor_has("predict_interval"))
    def predict_interval(self, X: Any, alpha: float = 0.1) -> np.ndarray:
        return self._back(self.regressor_.predict_interval(X, alpha=alpha))

    @property
    def history_(self) -> Any:
        return self.regressor_.history_

    @property
    def criterion_(self) -> Any:
        return self.regressor_.criterion_


def run_fit(
    spec: dict[str, Any], X: pd.DataFrame, y: pd.Series, groups: pd.Series | None = None
) -> dict[str, Any]:
    """Fit and score one (loss, scenario, repeat, fold); return its record.

    ``groups`` (an id per row) reach the loss as its ``group`` fit extra when it declares
    one, and give the test fold's ``worst_group_accuracy``.
    """
    import torch

    from lossreg.compare._metrics import (
        classification_metrics,
        embedding_metrics,
        multilabel_metrics,
        regression_metrics,
    )
    from lossreg.compare._ranksurv import RANKSURV_TASKS, score_ranksurv
    from lossreg.compare._scenarios import StressedEstimator

    record = {k: v for k, v in spec.items() if k not in ("train", "test", "threads")}
    threads_before = torch.get_num_threads()
    torch.set_num_threads(int(spec["threads"]))
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train, test = np.asarray(spec["train"]), np.asarray(spec["test"])
            pipeline = make_pipeline(
                spec["task"],
                spec["loss"],
                spec["params"],
                spec["estimator"],
                spec["model_seed"],
                teacher=spec.get("teacher"),
            )
            teacher = None
            ranksurv = spec["task"] in RANKSURV_TASKS  # these fit their own teacher
            if spec.get("teacher") and _declares(spec["loss"], "teacher_logits") and not ranksurv:
                teacher = make_teacher(spec["teacher"], spec["model_seed"])
            model = StressedEstimator(pipeline, spec["scenario"], spec["noise_seed"], teacher)
            fit_params = {}
            # a ranking model takes the query ids even for a pointwise loss (teacher folds)
            ranking = spec["task"] == "ranking"
            if groups is not None and (_declares(spec["loss"], "group") or ranking):
                fit_params["model__group"] = groups.iloc[train].to_numpy()
            start = time.perf_counter()
            model.fit(X.iloc[train], y.iloc[train].to_numpy(), **fit_params)
            record["fit_time"] = time.perf_counter() - start
            prep, est = model.estimator_[:-1], model.estimator_[-1]
            X_test = prep.transform(X.iloc[test])
            y_test = y.iloc[test].to_numpy()
            if ranksurv:
                test_groups = None if groups is None else groups.iloc[test].to_numpy()
                record.update(score_ranksurv(spec["task"], est, X_test, y_test, test_groups))
            elif spec["task"] == "regression":
                record.update(_regression(est, X_test, y_test, regression_metrics))
            elif spec["task"] == "embedding":
                X_fit, y_fit = model.fit_rows_
                record.update(
                    embedding_metrics(
                        model.estimator_.transform(X_fit),
                        np.asarray(y_fit),
                        model.estimator_.transform(X.iloc[test]),
                        y_test,
                    )
                )
            elif spec["task"] == "multilabel":
                proba = est.predict_proba(X_test) if hasattr(est, "predict_proba") else None
                record.update(
                    multilabel_metrics(
                        y_test, est.predict(X_test), proba, spec.get("tail_labels", ())
                    )
                )
            else:
                proba = est.predict_proba(X_test) if hasattr(est, "predict_proba") else None
                scores, bins = classification_metrics(
                    y_test,
                    est.predict(X_test),
                    proba,
                    est.classes_,
                    spec["minority"],
                    groups=None if groups is None else groups.iloc[test].to_numpy(),
                    scores=(
                        est.decision_function(X_test)
                        if proba is None and hasattr(est, "decision_function")
                        else None
                    ),
                )
                record.update(scores)
                record["reliability"] = bins
                if teacher is not None:
                    record["teacher_accuracy"] = float(
                        np.mean(model.teacher_.predict(X.iloc[test]) == y_test)
                    )
            history = est.history_
            record["train_loss"] = [float(v) for v in history[:, "train_loss"]]
            record["n_epochs"] = len(history)
            record.update(model.corruption_)
            record["status"] = "ok"
    except Exception as exc:
        record["status"] = "error"
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=-4)
    finally:
        torch.set_num_threads(threads_before)
    messages = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    if messages:
        record["warnings"] = messages[:5]
    record["finished_at"] = time.time()
    return record


def _declares(loss: str, extra: str) -> bool:
    from lossreg.registry import default_registry

    return extra in default_registry().get_spec(loss).fit_extras


def _regression(est: Any, X_test: np.ndarray, y_test: np.ndarray, score: Any) -> dict[str, Any]:
    pred = np.asarray(est.predict(X_test))
    quantiles = interval = None
    # Optional outputs: a loss whose helpers do not fit this shape still gets its point scores.
    levels = getattr(getattr(est, "criterion_", None), "levels_", None)
    if levels is not None and pred.ndim == 2 and np.ndim(y_test) == 1:
        # a quantile loss predicts one column per level: its point prediction is the level
        # nearest the median
        flat = levels.detach().cpu().numpy().ravel()
        if pred.shape[1] == len(flat):
            pred = pred[:, int(np.argmin(np.abs(flat - 0.5)))]
    if hasattr(est, "predict_quantiles") and levels is not None:
        try:
            quantiles = (levels.detach().cpu().numpy().ravel(), est.predict_quantiles(X_test))
        except (ValueError, RuntimeError):
            quantiles = None
    if hasattr(est, "predict_interval"):
        try:
            interval = est.predict_interval(X_test, alpha=0.1)
        except (ValueError, RuntimeError):
            interval = None
    return score(y_test, pred, quantiles, interval)
