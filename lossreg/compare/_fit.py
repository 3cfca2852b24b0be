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

__all__ = ["make_pipeline", "run_fit"]


def make_pipeline(
    task: str, loss: str, params: dict[str, Any], estimator_params: dict[str, Any], seed: int
) -> Any:
    """Per-fold preprocessing (impute + scale numbers, impute + one-hot categories), the model."""
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from lossreg.estimators import LossClassifier, LossRegressor

    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    prep = ColumnTransformer(
        [
            ("num", numeric, make_column_selector(dtype_include=np.number)),
            ("cat", categorical, make_column_selector(dtype_exclude=np.number)),
        ]
    )
    Model = LossRegressor if task == "regression" else LossClassifier
    model = Model(
        loss=loss,
        random_state=seed,
        **estimator_params,
        **{f"loss__{k}": v for k, v in params.items()},
    )
    return Pipeline([("prep", prep), ("model", model)])


def run_fit(spec: dict[str, Any], X: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    """Fit and score one (loss, scenario, repeat, fold); return its record."""
    import torch

    from lossreg.compare._metrics import classification_metrics, regression_metrics
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
                spec["task"], spec["loss"], spec["params"], spec["estimator"], spec["model_seed"]
            )
            model = StressedEstimator(pipeline, spec["scenario"], spec["noise_seed"])
            start = time.perf_counter()
            model.fit(X.iloc[train], y.iloc[train].to_numpy())
            record["fit_time"] = time.perf_counter() - start
            prep, est = model.estimator_[:-1], model.estimator_[-1]
            X_test = prep.transform(X.iloc[test])
            y_test = y.iloc[test].to_numpy()
            if spec["task"] == "regression":
                record.update(_regression(est, X_test, y_test, regression_metrics))
            else:
                proba = est.predict_proba(X_test) if hasattr(est, "predict_proba") else None
                scores, bins = classification_metrics(
                    y_test, est.predict(X_test), proba, est.classes_, spec["minority"]
                )
                record.update(scores)
                record["reliability"] = bins
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


def _regression(est: Any, X_test: np.ndarray, y_test: np.ndarray, score: Any) -> dict[str, Any]:
    pred = est.predict(X_test)
    quantiles = interval = None
    # Optional outputs: a loss whose helpers do not fit this shape still gets its point scores.
    levels = getattr(getattr(est, "criterion_", None), "levels_", None)
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
