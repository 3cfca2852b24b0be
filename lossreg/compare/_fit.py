"""One fit of a comparison: build the pipeline, train on the stressed training fold, score the test.

``run_fit`` is what runs in a joblib or dask worker: it takes plain data and returns a plain,
JSON-ready record, and never raises for a failing fit (the error goes into the record).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.metaestimators import available_if

from lossreg.compare._multioutput import loss_scaling, scaling_stats
from lossreg.compare._regression_embedding import TargetPrepared, bins_of
from lossreg.compare._store import finish_record, record_failure
from lossreg.compare._tail import head_tail_scores
from lossreg.compare._threads import limit_torch_threads

__all__ = ["TargetScaled", "make_pipeline", "preprocessing", "run_fit"]


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
    teacher: Any = None,
    pretrain: str | None = None,
    pretrain_data: dict[str, str] | None = None,
) -> Any:
    """Per-fold :func:`preprocessing`, then the lossreg estimator of the task.

    With ``calibrate`` (a base loss), ``loss`` is a calibration loss fitted on a held-out
    share of the rows of a LossClassifier trained with ``calibrate`` (see ``_calibrate``).
    ``teacher``: a ranking teacher's name (see :mod:`lossreg.compare._ranksurv`), or the
    teachers that decide where a ``pretrain`` network's own logits go.
    With ``pretrain`` (a base loss), the loss continues a network pretrained with it on the
    same rows (see ``_pretrain``), or on ``pretrain_data`` (``{"data", "target"}``: another
    set, preprocessed like the fold; see ``_pretrain_data``).
    """
    from sklearn.pipeline import Pipeline

    from lossreg.compare._outlier import Reconstruction
    from lossreg.compare._ranksurv import RANKSURV_TASKS, make_ranksurv_model
    from lossreg.compare._samplers import sampler_setting, split_sampler
    from lossreg.estimators import LossClassifier, LossEmbedder, LossMixedEstimator, LossRegressor

    if task in RANKSURV_TASKS:
        ranksurv = make_ranksurv_model(task, loss, params, estimator_params, seed, teacher)
        return Pipeline([("prep", preprocessing()), ("model", ranksurv)])

    settings = dict(estimator_params)
    params, sampler = split_sampler(params)  # a loss entry's sampler= is the estimator's
    if sampler is not None or "sampler" in settings:
        settings["sampler"] = sampler_setting(settings["sampler"] if sampler is None else sampler)
    scaling = loss_scaling(settings.pop("target_scaling", "standard"), loss)
    bins = bins_of(settings.pop("bin_targets", None), loss, params)
    Model = {
        "regression": LossRegressor,
        "multioutput": LossRegressor,
        "outlier": LossRegressor,
        "embedding": LossEmbedder,
        "mixed": LossMixedEstimator,
        "embedding_regression": LossEmbedder,
    }.get(task, LossClassifier)
    if settings.pop("whole_group_batches", False):  # batches cut by the group ids
        from lossreg.compare._group_batches import group_batched

        Model = group_batched(Model)
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
    if pretrain is not None:
        from lossreg.compare._pretrain import Pretrained, own_position, pretrain_base

        base = pretrain_base(Model, pretrain, settings, seed)
        model = Pretrained(base, model, own_position(teacher, loss, params, task))
        if pretrain_data is not None:
            from lossreg.compare._pretrain_data import PretrainingPipeline

            return PretrainingPipeline(
                [("prep", preprocessing()), ("model", model)],
                pretrain_data=pretrain_data["data"],
                pretrain_target=pretrain_data["target"],
            )
    if task in ("regression", "multioutput"):
        model = TargetScaled(model, scaling=scaling)
    elif task == "mixed":  # the value column is scaled as a regression target is
        from lossreg.compare._mixed import MixedTargetScaled

        model = MixedTargetScaled(model, scaling=scaling)
    elif task == "outlier":
        model = Reconstruction(model)  # the features, scaled by preprocessing, are its target
    elif task == "embedding_regression":
        model = TargetPrepared(model, bins=bins)  # binned (label losses) or standardised y
    return Pipeline([("prep", preprocessing()), ("model", model)])


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

    def fit(self, X: Any, y: Any, **fit_params: Any) -> TargetScaled:
        """Fit on scaled targets; a ``bag_target`` fit parameter (bag mean responses) is
        scaled like ``y``, the other fit parameters pass unchanged."""
        from sklearn.base import clone

        y = np.asarray(y, dtype=np.float64)
        offset, spread = scaling_stats(y, self.scaling)
        # floats for one target (as before), one value per column for several
        self.offset_ = float(offset) if y.ndim == 1 else offset
        self.scale_ = float(spread) if y.ndim == 1 else spread
        if "bag_target" in fit_params:
            bag_target = np.asarray(fit_params["bag_target"], dtype=np.float64)
            fit_params["bag_target"] = (bag_target - self.offset_) / self.scale_
        if "teacher_logits" in fit_params:  # regression teachers' predictions, side by side
            fit_params["teacher_logits"] = self._scaled_blocks(fit_params["teacher_logits"])
        scaled = (y - self.offset_) / self.scale_
        self.regressor_ = clone(self.regressor).fit(X, scaled, **fit_params)
        return self

    def _scaled_blocks(self, values: Any) -> np.ndarray:
        """Scale (N, m * K) predictions of m models of the K targets like the targets."""
        values = np.asarray(values, dtype=np.float64)
        k = int(np.size(self.scale_))
        blocks = values.reshape(len(values), -1, k)
        scaled = (blocks - np.reshape(self.offset_, -1)) / np.reshape(self.scale_, -1)
        return scaled.reshape(values.shape).astype(np.float32)

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
    spec: dict[str, Any],
    X: pd.DataFrame,
    y: pd.Series,
    groups: pd.Series | None = None,
    votes: pd.DataFrame | None = None,
    bids: pd.Series | None = None,
) -> dict[str, Any]:
    """Fit and score one (loss, scenario, repeat, fold); return its record.

    ``groups`` (an id per row) reach the loss as its ``group`` fit extra when it declares
    one, and give the test fold's ``worst_group_accuracy``. ``votes`` (vote counts per row,
    a column per class) are trained on by the ``votes`` scenario and give the test fold's
    ``vote_emd`` / ``vote_ece``. ``bids`` (a bid per row: ads in auctions, the ``groups``)
    reach the losses that declare ``bid`` and give a binary test fold's ``welfare``.
    """

    from lossreg.compare._adapt import adapt_fit, source_loss
    from lossreg.compare._bags import bag_extras_of
    from lossreg.compare._blocking import blocking_metrics
    from lossreg.compare._campaign import score_campaign, value_fit_params
    from lossreg.compare._curves import epoch_metrics, record_divergence, snapshots
    from lossreg.compare._embedding_probes import embedding_probe_metrics
    from lossreg.compare._few_labels import few_label_metrics
    from lossreg.compare._foreground import background_class, foreground_recall
    from lossreg.compare._metrics import (
        classification_metrics,
        embedding_metrics,
        multilabel_metrics,
        regression_metrics,
    )
    from lossreg.compare._models import MODEL_PREFIX, run_model_fit
    from lossreg.compare._multioutput import score_heads, score_multioutput
    from lossreg.compare._old_embedder import OldEmbedder
    from lossreg.compare._ordinal import ordinal_metrics
    from lossreg.compare._outlier import outlier_metrics
    from lossreg.compare._pretrain import pretrain_scores
    from lossreg.compare._probe_target import PROBE_ROWS, probe_view
    from lossreg.compare._ranksurv import RANKSURV_TASKS, score_ranksurv
    from lossreg.compare._regions import with_shot_regions
    from lossreg.compare._scenarios import StressedEstimator
    from lossreg.compare._teachers import FoldTeachers
    from lossreg.compare._uncertainty import classification_uncertainty, vacuity
    from lossreg.compare._unlabeled import hide_targets
    from lossreg.compare._votes import vote_metrics
    from lossreg.errors import TrainingDivergedError

    if spec["loss"].startswith(MODEL_PREFIX):  # a scikit-learn reference model, not a loss
        return run_model_fit(spec, X, y, groups, bids)
    if spec["task"] == "recommendation":  # see lossreg.compare._recommend
        from lossreg.compare._recommend import run_recommendation_fit

        return run_recommendation_fit(spec, X, y)
    if spec.get("aggregate"):  # an aggregator of the compared quantile losses
        from lossreg.compare._aggregate import run_aggregate_fit

        return run_aggregate_fit(spec, X, y)
    rows = ("train", "test", "threads", "hidden", "source_test", "true_sigma", *PROBE_ROWS)
    record = {k: v for k, v in spec.items() if k not in rows}
    restore_threads = limit_torch_threads(spec["threads"])
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train, test = np.asarray(spec["train"]), np.asarray(spec["test"])
            loss, params = source_loss(spec)  # an adapted fit trains the source loss first
            settings = spec["estimator"]
            if spec.get("curves"):
                settings = {
                    **settings,
                    "callbacks": [*(settings.get("callbacks") or []), snapshots()],
                }
            pipeline = make_pipeline(
                spec["task"],
                loss,
                params,
                settings,
                spec["model_seed"],
                spec.get("calibrate"),
                teacher=spec.get("teacher"),
                pretrain=spec.get("pretrain"),
                pretrain_data=spec.get("pretrain_data"),
            )
            teacher = None
            ranksurv = spec["task"] in RANKSURV_TASKS  # these fit their own teacher
            if spec["task"] == "embedding" and spec.get("teacher"):
                # every loss gets the earlier embedder: its gallery scores them all
                teacher = OldEmbedder(
                    spec["teacher"],
                    spec["model_seed"],
                    spec["loss"],
                    spec["params"],
                    spec["estimator"],
                )
            elif (
                spec.get("teacher")
                and _declares(spec["loss"], "teacher_logits", spec["params"])
                and not ranksurv
            ):
                teacher = FoldTeachers(
                    spec["teacher"], spec["task"], spec["model_seed"], spec["loss"], spec["params"]
                )
            model = StressedEstimator(
                pipeline,
                spec["scenario"],
                spec["noise_seed"],
                teacher,
                bag_extras=bag_extras_of(_fit_extras(spec["loss"])),
                regression=spec["task"] == "regression",
            )
            fit_params = {}
            # a ranking model takes the query ids even for a pointwise loss (teacher folds)
            ranking = spec["task"] == "ranking"
            by_group = ranking or spec["estimator"].get("whole_group_batches", False)
            if groups is not None and (
                _declares(spec["loss"], "group", spec["params"]) or by_group
            ):
                fit_params["model__group"] = groups.iloc[train].to_numpy()
            y_train = y.iloc[train].to_numpy()
            if spec.get("hidden"):  # target-domain rows: unlabeled in training
                y_train = hide_targets(y_train, train, spec["hidden"])
            if votes is not None and spec["scenario"] == "votes":
                fit_params["votes"] = votes.iloc[train]
            if bids is not None and _declares(spec["loss"], "bid", spec["params"]):
                fit_params["model__bid"] = bids.iloc[train].to_numpy()
            if spec.get("value") and _declares(spec["loss"], "value", spec["params"]):
                fit_params.update(value_fit_params(spec["value"], X, train))
            start = time.perf_counter()
            model.fit(X.iloc[train], y_train, **fit_params)
            record["fit_time"] = time.perf_counter() - start
            record_divergence(record, model)
            prep, est = model.estimator_[:-1], model.estimator_[-1]
            if spec.get("adapt"):
                record.update(adapt_fit(est, prep, X, spec))
            if spec.get("scenario_kind") == "novel_classes":  # see lossreg.compare._novel
                from lossreg.compare._novel import known_test_rows, score_novel_network

                X_all, y_all = prep.transform(X.iloc[test]), y.iloc[test].to_numpy()
                info, seed = model.corruption_, spec["model_seed"]
                record.update(score_novel_network(est, X_all, y_all, info, seed))
                test = known_test_rows(test, y, info)  # the classifier is scored on these
            X_test = prep.transform(X.iloc[test])
            y_test = y.iloc[test].to_numpy()
            if ranksurv:
                test_groups = None if groups is None else groups.iloc[test].to_numpy()
                record.update(score_ranksurv(spec["task"], est, X_test, y_test, test_groups))
            elif spec["task"] == "regression":
                sigma = spec.get("true_sigma")
                # few/many-shot regions need the training fold's targets beside the test fold
                score = with_shot_regions(regression_metrics, y.iloc[train].to_numpy())
                record.update(_regression(est, X_test, y_test, score, sigma))
                fit_rows = _fit_rows(model, prep)
                record.update(score_heads(est, X_test, y_test, *fit_rows, record["mae"]))
            elif spec["task"] == "multioutput":
                record.update(score_multioutput(est, X_test, y_test, *_fit_rows(model, prep)))
            elif spec["task"] == "outlier":
                record.update(outlier_metrics(y_test, est.outlier_scores(X_test)))
            elif spec["task"] == "mixed":
                from lossreg.compare._mixed import score_mixed

                record.update(score_mixed(est, X_test, y_test))
            elif spec["task"] == "embedding":
                # the probe column's labels when there is one (see _probe_target)
                X_fit, y_fit, y_test, probe_groups = probe_view(spec, model, X, groups, y_test)
                emb_fit, emb_test = (
                    model.estimator_.transform(X_fit),
                    model.estimator_.transform(X.iloc[test]),
                )
                record.update(embedding_metrics(emb_fit, np.asarray(y_fit), emb_test, y_test))
                record.update(
                    embedding_probe_metrics(
                        emb_fit, np.asarray(y_fit), emb_test, y_test, probe_groups
                    )
                )
                record.update(
                    few_label_metrics(
                        emb_fit,
                        np.asarray(y_fit),
                        emb_test,
                        y_test,
                        spec.get("probe_labels"),
                        spec["model_seed"],
                    )
                )
                # the target (entity ids) decides the matches, whatever the probes read
                record.update(blocking_metrics(emb_test, y.iloc[test], spec.get("blocking_k")))
                if teacher is not None:  # new test queries against the old gallery
                    record.update(model.teacher_.compatibility(X.iloc[test], y_test, emb_test))
            elif spec["task"] == "embedding_regression":
                from lossreg.compare._regression_embedding import regression_embedding_metrics

                X_fit, y_fit = model.fit_rows_
                record.update(
                    regression_embedding_metrics(
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
                predicted = est.predict(X_test)
                scores, bins = classification_metrics(
                    y_test,
                    predicted,
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
                if bids is not None:  # ads in auctions: the welfare of top-eCPM selection
                    from lossreg.compare._welfare import score_welfare

                    test_groups = None if groups is None else groups.iloc[test].to_numpy()
                    welfare = score_welfare(
                        y_test, proba, est.classes_, bids.iloc[test].to_numpy(), test_groups
                    )
                    record.update(welfare)
                record.update(foreground_recall(y_test, predicted, background_class(y)))
                record.update(head_tail_scores(est.classes_, y_test, predicted, model.fit_rows_[1]))
                if spec.get("value"):  # campaign profit of the targeting decisions
                    record.update(score_campaign(spec["value"], est, model, X, y, test, prep))
                if proba is not None:
                    index = np.searchsorted(est.classes_, y_test)
                    record.update(classification_uncertainty(index, proba, vacuity(est, X_test)))
                record.update(_geometry(est, X_test, y_test, model.fit_rows_[1]))
                if spec["task"] == "ordinal":
                    record.update(ordinal_metrics(y_test, predicted, est.classes_))
                if votes is not None and proba is not None:
                    record.update(vote_metrics(votes.iloc[test], proba, est.classes_))
                record["reliability"] = bins
                if spec.get("source_test"):  # in-distribution accuracy of a domain run
                    source = np.asarray(spec["source_test"])
                    on_source = est.predict(prep.transform(X.iloc[source]))
                    record["source_accuracy"] = float(
                        np.mean(on_source == y.iloc[source].to_numpy())
                    )
            if teacher is not None:  # the teachers' own test scores (teacher_accuracy ...)
                record.update(model.teacher_.scores(X.iloc[test], y_test))
            if spec.get("pretrain"):  # the network before the loss, and the change it made
                record.update(pretrain_scores(est, X_test, y_test, record["accuracy"]))
            history = est.history_
            record["train_loss"] = [float(v) for v in history[:, "train_loss"]]
            record["n_epochs"] = len(history)
            if spec.get("curves"):
                record.update(epoch_metrics(spec, model, X_test, y_test))
            record.update(model.corruption_)
            record["status"] = "ok"
    except TrainingDivergedError as exc:
        # a divergence is a result (the diverged rate of a loss), not a failed fit; NaN
        # weights have no test metrics
        record.update(status="ok", diverged=1.0, divergence=str(exc))
    except Exception as exc:
        record_failure(record, exc)
    finally:
        restore_threads()
    return finish_record(record, caught)


def _fit_rows(model: Any, prep: Any) -> tuple[np.ndarray, np.ndarray]:
    """The (stressed) training rows the model was fitted on, preprocessed, and their targets."""
    X_fit, y_fit = model.fit_rows_
    return prep.transform(X_fit), np.asarray(y_fit)


def _geometry(est: Any, X_test: np.ndarray, y_test: np.ndarray, y_fit: Any) -> dict[str, float]:
    """Class-mean geometry of the last hidden layer (models with one; see ``_geometry``)."""
    from lossreg.compare._geometry import class_geometry, hidden_features
    from lossreg.compare._tail import within_class_variability

    features = hidden_features(est, X_test)
    if features is None:
        return {}
    counts = np.array([np.sum(np.asarray(y_fit) == c) for c in est.classes_])
    y_index = np.searchsorted(est.classes_, y_test)
    return {
        **class_geometry(features, y_index, counts),
        **within_class_variability(features, y_index),
    }


def _fit_extras(loss: str) -> tuple[str, ...]:
    from lossreg.registry import default_registry

    return tuple(default_registry().get_spec(loss).fit_extras)


def _probe_groups(
    model: Any, groups: pd.Series | None, train: np.ndarray, test: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Group ids of the rows the model was fitted on and of the test rows (None: no groups)."""
    if groups is None:
        return None
    fitted = groups.iloc[train].to_numpy()
    kept = getattr(model, "kept_rows_", None)  # a scenario that drops rows (imbalance)
    return (fitted if kept is None else fitted[kept]), groups.iloc[test].to_numpy()


def _declares(loss: str, extra: str, params: dict[str, Any] | None = None) -> bool:
    from lossreg.compare._extras import declared_extras

    return extra in declared_extras(loss, params)


def _regression(
    est: Any, X_test: np.ndarray, y_test: np.ndarray, score: Any, true_sigma: Any = None
) -> dict[str, Any]:
    from lossreg.compare._trading import trading_metrics
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
    if pred.ndim == 1:  # a signed target (returns) also gets the P&L of trading on the sign
        out.update(trading_metrics(y_test, pred))
    return out
