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

from lossreg.compare._multioutput import loss_scaling

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
    calibrate: str | None = None,
) -> Any:
    """Per-fold :func:`preprocessing`, then the lossreg estimator of the task.

    With ``calibrate`` (a base loss), ``loss`` is a calibration loss fitted on a held-out
    share of the rows of a LossClassifier trained with ``calibrate`` (see ``_calibrate``).
    """
    from sklearn.pipeline import Pipeline

    from lossreg.compare._outlier import Reconstruction
    from lossreg.estimators import LossClassifier, LossEmbedder, LossRegressor

    settings = dict(estimator_params)
    scaling = loss_scaling(settings.pop("target_scaling", "standard"), loss)
    Model = {
        "regression": LossRegressor,
        "multioutput": LossRegressor,
        "outlier": LossRegressor,
        "embedding": LossEmbedder,
    }.get(task, LossClassifier)
    if calibrate is not None:
        from lossreg.compare._calibrate import HeldOutCalibrated

        base = Model(loss=calibrate, random_state=seed, **settings)
        model = HeldOutCalibrated(base, loss, dict(params), random_state=seed)
        return Pipeline([("prep", preprocessing()), ("model", model)])
    model = Model(
        loss=loss,
        random_state=seed,
        **settings,
        **{f"loss__{k}": v for k, v in params.items()},
    )
    if task in ("regression", "multioutput"):
        model = TargetScaled(model, scaling=scaling)
    elif task == "outlier":
        model = Reconstruction(model)  # the features, scaled by preprocessing, are its target
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
    Several target columns are scaled column by column. Predictions, quantiles and intervals
    are mapped back, so metrics use the original units.
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
        offset = y.mean(axis=0) if self.scaling == "standard" else np.zeros(y.shape[1:])
        spread = y.std(axis=0) if self.scaling != "none" else np.ones(y.shape[1:])
        spread = np.where(spread > 0, spread, 1.0)
        # floats for one target (as before), one value per column for several
        self.offset_ = float(offset) if y.ndim == 1 else offset
        self.scale_ = float(spread) if y.ndim == 1 else spread
        self.regressor_ = clone(self.regressor).fit(X, (y - self.offset_) / self.scale_)
        return self

    def _back(self, values: Any) -> np.ndarray:
        values = np.asarray(values)
        # per-column statistics meet axis 1, the target axis of (n, K, ...) outputs
        shape = (1, -1) + (1,) * (values.ndim - 2)
        scale = np.reshape(self.scale_, shape) if np.ndim(self.scale_) else self.scale_
        offset = np.reshape(self.offset_, shape) if np.ndim(self.offset_) else self.offset_
        return values * scale + offset

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

    from lossreg.compare._adapt import adapt_fit, source_loss
    from lossreg.compare._metrics import (
        classification_metrics,
        embedding_metrics,
        multilabel_metrics,
        regression_metrics,
    )
    from lossreg.compare._multioutput import score_heads, score_multioutput
    from lossreg.compare._outlier import outlier_metrics
    from lossreg.compare._scenarios import StressedEstimator
    from lossreg.compare._uncertainty import classification_uncertainty, vacuity
    from lossreg.compare._unlabeled import hide_targets

    rows = ("train", "test", "threads", "hidden", "source_test", "true_sigma")
    record = {k: v for k, v in spec.items() if k not in rows}
    threads_before = torch.get_num_threads()
    torch.set_num_threads(int(spec["threads"]))
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train, test = np.asarray(spec["train"]), np.asarray(spec["test"])
            loss, params = source_loss(spec)  # an adapted fit trains the source loss first
            pipeline = make_pipeline(
                spec["task"],
                loss,
                params,
                spec["estimator"],
                spec["model_seed"],
                spec.get("calibrate"),
            )
            teacher = None
            if spec.get("teacher") and _declares(spec["loss"], "teacher_logits"):
                teacher = make_teacher(spec["teacher"], spec["model_seed"])
            model = StressedEstimator(pipeline, spec["scenario"], spec["noise_seed"], teacher)
            fit_params = {}
            if groups is not None and _declares(spec["loss"], "group"):
                fit_params["model__group"] = groups.iloc[train].to_numpy()
            y_train = y.iloc[train].to_numpy()
            if spec.get("hidden"):  # target-domain rows: unlabeled in training
                y_train = hide_targets(y_train, train, spec["hidden"])
            start = time.perf_counter()
            model.fit(X.iloc[train], y_train, **fit_params)
            record["fit_time"] = time.perf_counter() - start
            prep, est = model.estimator_[:-1], model.estimator_[-1]
            if spec.get("adapt"):
                record.update(adapt_fit(est, prep, X, spec))
            X_test = prep.transform(X.iloc[test])
            y_test = y.iloc[test].to_numpy()
            if spec["task"] == "regression":
                sigma = spec.get("true_sigma")
                record.update(_regression(est, X_test, y_test, regression_metrics, sigma))
                fit_rows = _fit_rows(model, prep)
                record.update(score_heads(est, X_test, y_test, *fit_rows, record["mae"]))
            elif spec["task"] == "multioutput":
                record.update(score_multioutput(est, X_test, y_test, *_fit_rows(model, prep)))
            elif spec["task"] == "outlier":
                record.update(outlier_metrics(y_test, est.outlier_scores(X_test)))
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
                if proba is not None:
                    index = np.searchsorted(est.classes_, y_test)
                    record.update(classification_uncertainty(index, proba, vacuity(est, X_test)))
                record.update(_geometry(est, X_test, y_test, model.fit_rows_[1]))
                record["reliability"] = bins
                if spec.get("source_test"):  # in-distribution accuracy of a domain run
                    source = np.asarray(spec["source_test"])
                    predicted = est.predict(prep.transform(X.iloc[source]))
                    record["source_accuracy"] = float(
                        np.mean(predicted == y.iloc[source].to_numpy())
                    )
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


def _fit_rows(model: Any, prep: Any) -> tuple[np.ndarray, np.ndarray]:
    """The (stressed) training rows the model was fitted on, preprocessed, and their targets."""
    X_fit, y_fit = model.fit_rows_
    return prep.transform(X_fit), np.asarray(y_fit)


def _geometry(est: Any, X_test: np.ndarray, y_test: np.ndarray, y_fit: Any) -> dict[str, float]:
    """Class-mean geometry of the last hidden layer (models with one; see ``_geometry``)."""
    from lossreg.compare._geometry import class_geometry, hidden_features

    features = hidden_features(est, X_test)
    if features is None:
        return {}
    counts = np.array([np.sum(np.asarray(y_fit) == c) for c in est.classes_])
    return class_geometry(features, np.searchsorted(est.classes_, y_test), counts)


def _declares(loss: str, extra: str) -> bool:
    from lossreg.registry import default_registry

    return extra in default_registry().get_spec(loss).fit_extras


def _regression(
    est: Any, X_test: np.ndarray, y_test: np.ndarray, score: Any, true_sigma: Any = None
) -> dict[str, Any]:
    from lossreg.compare._uncertainty import predicted_std, regression_uncertainty

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
    out = score(y_test, pred, quantiles, interval)
    if pred.ndim == 1 and np.ndim(y_test) == 1:
        std = predicted_std(est, X_test)
        out.update(regression_uncertainty(y_test, pred, std, true_sigma, quantiles))
    return out
