"""Ranking and survival in ``lossreg compare``: their targets, folds, models and scores.

Ranking: a relevance target and a ``group`` column of query ids; folds keep queries whole.
Ranking losses train a :class:`~lossreg.LossRanker`; a regression loss (``mse``, ``huber``
...) trains a pointwise :class:`~lossreg.LossRegressor` on the relevance, or on a teacher's
scores when the comparison names a teacher (pointwise distillation, the baseline of
``margin_mse``). Survival: a time target and an ``event`` column; folds are stratified by
event, so every fold keeps the data set's share of censored rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

__all__ = [
    "RANKING_TEACHERS",
    "RANKSURV_TASKS",
    "RankingModel",
    "SurvivalModel",
    "make_ranksurv_model",
    "ranksurv_splits",
    "score_ranksurv",
    "survival_target",
    "vote_noise",
]

RANKSURV_TASKS = ("ranking", "survival")

#: regressors fitted on the relevance of each training fold as ranking teachers (pointwise:
#: scikit-learn has no LambdaMART)
RANKING_TEACHERS = ("hist_gradient_boosting", "random_forest")


def survival_target(frame: pd.DataFrame, time: str, event: str, name: str) -> pd.DataFrame:
    """The ``(time, event)`` target of a survival comparison, checked."""
    if event not in frame.columns or event == time:
        raise ValueError(
            f"Event column {event!r} is not a column of {name!r} besides the target; columns: "
            f"{', '.join(map(str, frame.columns[:20]))}."
        )
    times = pd.to_numeric(frame[time], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(times) | (times <= 0)
    if bad.any():
        raise ValueError(
            f"Survival times in {time!r} must be finite numbers > 0; {int(bad.sum())} are not "
            f"(first: {frame[time].iloc[int(np.flatnonzero(bad)[0])]!r})."
        )
    flags = pd.to_numeric(frame[event], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isin(flags, (0.0, 1.0)).all():
        raise ValueError(
            f"Event column {event!r} must hold 1 (event observed) or 0 (censored) per row."
        )
    if flags.sum() < 2:
        raise ValueError(f"Event column {event!r} has fewer than two observed events.")
    return pd.DataFrame({time: times, event: flags.astype(np.int64)})


def check_ranking(y: pd.Series, groups: pd.Series | None, name: str) -> None:
    """A ranking target is a number >= 0 per row (its relevance), with query ids."""
    if groups is None:
        raise ValueError(
            f"task='ranking' needs the query id of each row: name its column with group=... "
            f"(--group) in {name!r}."
        )
    values = pd.to_numeric(y, errors="coerce").to_numpy(dtype=np.float64)
    if not np.isfinite(values).all() or (values < 0).any():
        raise ValueError(
            f"A ranking target is the relevance of each row, a number >= 0; {y.name!r} holds "
            "other values."
        )


def ranksurv_splits(
    task: str, y: Any, groups: pd.Series | None, cv: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Shuffled folds: whole queries (ranking), stratified by the event (survival)."""
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    n = np.zeros(len(y))
    if task == "ranking":
        n_queries = int(groups.nunique())
        if n_queries < cv:
            raise ValueError(f"{n_queries} queries cannot make cv={cv} folds of whole queries.")
        return GroupKFold(cv, shuffle=True, random_state=seed).split(n, groups=groups)
    return StratifiedKFold(cv, shuffle=True, random_state=seed).split(n, y.iloc[:, 1])


def vote_noise(
    y: np.ndarray, votes: int, groups: Any, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """Replace soft pairwise preferences by the share of ``votes`` Bernoulli votes.

    Each query is a pair whose targets ``p`` and ``1 - p`` are the probabilities that each
    row is preferred; the pair's first row gets ``Binomial(votes, p) / votes`` and its
    partner the complement, as ``votes`` annotators would give. Returns the new targets and
    the number of pairs whose majority vote picks the less preferred row.
    """
    y = np.asarray(y, dtype=np.float64)
    if groups is None:
        raise ValueError(
            "The vote_noise scenario needs the pair (query) id of each row (group=...) and a "
            "loss that takes group."
        )
    if ((y < 0) | (y > 1)).any():
        raise ValueError(
            "The vote_noise scenario needs soft preferences in [0, 1] as targets (e.g. "
            "synthetic:ranking(n_levels=0, query_size=2))."
        )
    groups = np.asarray(groups)
    out = y.copy()
    flipped = 0
    _, first = np.unique(groups, return_index=True)
    for row in np.sort(first):
        rows = np.flatnonzero(groups == groups[row])
        if len(rows) != 2:
            raise ValueError(
                f"The vote_noise scenario takes pairs: query {groups[row]!r} has {len(rows)} "
                "rows in this training fold."
            )
        share = rng.binomial(votes, y[rows[0]]) / votes
        out[rows[0]], out[rows[1]] = share, 1.0 - share
        flipped += bool((share - 0.5) * (y[rows[0]] - 0.5) < 0)
    return out, flipped


def _split_params(estimator_params: dict[str, Any]) -> tuple[dict[str, Any], str]:
    settings = dict(estimator_params)
    return settings, settings.pop("target_scaling", "standard")


def _declares(loss: str, extra: str) -> bool:
    from lossreg.registry import default_registry

    return extra in default_registry().get_spec(loss).fit_extras


def _is_pointwise(loss: str) -> bool:
    from lossreg.registry import default_registry

    return "ranking" not in default_registry().get_spec(loss).tasks


def _teacher(name: str, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor

    models = {
        "hist_gradient_boosting": HistGradientBoostingRegressor(random_state=seed),
        "random_forest": RandomForestRegressor(n_estimators=200, random_state=seed),
    }
    if name not in models:
        raise ValueError(
            f"Unknown ranking teacher {name!r}; teachers: {', '.join(RANKING_TEACHERS)}."
        )
    return models[name]


class RankingModel(BaseEstimator):
    """A ranking loss's :class:`~lossreg.LossRanker`, or a regression loss's pointwise
    :class:`~lossreg.LossRegressor`, with an optional teacher for distillation.

    With ``teacher``, the teacher's out-of-fold scores on the training rows (3 folds of
    whole queries) reach losses that take ``teacher_logits`` (``margin_mse``) and are the
    target of a pointwise loss; ``teacher_`` is the teacher refitted on every training row.
    """

    def __init__(
        self,
        loss: str,
        params: dict[str, Any],
        estimator_params: dict[str, Any],
        seed: int,
        teacher: str | None = None,
    ) -> None:
        self.loss = loss
        self.params = params
        self.estimator_params = estimator_params
        self.seed = seed
        self.teacher = teacher

    def fit(self, X: Any, y: Any, group: Any = None) -> RankingModel:
        import torch
        from sklearn.model_selection import GroupKFold, KFold, cross_val_predict
        from threadpoolctl import threadpool_limits

        from lossreg.compare._fit import TargetScaled
        from lossreg.estimators import LossRanker, LossRegressor

        y = np.asarray(y, dtype=np.float64)
        settings, scaling = _split_params(self.estimator_params)
        loss_params = {f"loss__{k}": v for k, v in self.params.items()}
        target, extras = y, {}
        if self.teacher is not None:
            teacher = _teacher(self.teacher, self.seed)
            folds = (
                GroupKFold(3, shuffle=True, random_state=self.seed)
                if group is not None
                else KFold(3, shuffle=True, random_state=self.seed)
            )
            # OpenMP teachers (gradient boosting) would take every core of a shared machine:
            # keep them to the threads this fit was given
            with threadpool_limits(limits=torch.get_num_threads()):
                scores = cross_val_predict(clone(teacher), X, y, cv=folds, groups=group)
                self.teacher_ = teacher.fit(X, y)
            target = scores
            if _declares(self.loss, "teacher_logits"):
                extras["teacher_logits"] = scores.astype(np.float32)
        if _is_pointwise(self.loss):
            model = LossRegressor(loss=self.loss, random_state=self.seed, **settings, **loss_params)
            self.model_ = TargetScaled(model, scaling=scaling).fit(X, target)
        else:
            if group is not None and _declares(self.loss, "group"):
                extras["group"] = group
            self.model_ = LossRanker(
                loss=self.loss, random_state=self.seed, **settings, **loss_params
            ).fit(X, y, **extras)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """One ranking score per row (higher ranks first)."""
        return np.asarray(self.model_.predict(X), dtype=np.float64).reshape(-1)

    @property
    def history_(self) -> Any:
        return self.model_.history_


class SurvivalModel(BaseEstimator):
    """A :class:`~lossreg.LossSurvivalRegressor` fitted on times divided by the training
    fold's median observed time (parametric likelihoods train best on times of order 1);
    predictions are in the original units. ``y`` is an (n, 2) array of time and event."""

    def __init__(
        self, loss: str, params: dict[str, Any], estimator_params: dict[str, Any], seed: int
    ) -> None:
        self.loss = loss
        self.params = params
        self.estimator_params = estimator_params
        self.seed = seed

    def fit(self, X: Any, y: Any) -> SurvivalModel:
        from lossreg.estimators import LossSurvivalRegressor

        y = np.asarray(y, dtype=np.float64)
        self.train_time_, self.train_event_ = y[:, 0], y[:, 1].astype(np.int64)
        self.scale_ = float(np.median(self.train_time_))
        settings, _ = _split_params(self.estimator_params)
        self.model_ = LossSurvivalRegressor(
            loss=self.loss,
            random_state=self.seed,
            **settings,
            **{f"loss__{k}": v for k, v in self.params.items()},
        ).fit(X, self.train_time_ / self.scale_, event=self.train_event_)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted median survival time per row."""
        return self.model_.predict(X) * self.scale_

    def predict_risk(self, X: Any) -> np.ndarray:
        """Risk score per row (higher = earlier event)."""
        return self.model_.predict_risk(X)

    def predict_survival(self, X: Any, times: Any) -> np.ndarray | None:
        """``S(t | x)`` at ``times`` (n, T); None when the loss gives no survival curve."""
        if not hasattr(self.model_, "predict_survival"):
            return None
        return self.model_.predict_survival(X, np.asarray(times) / self.scale_)

    @property
    def history_(self) -> Any:
        return self.model_.history_


def make_ranksurv_model(
    task: str,
    loss: str,
    params: dict[str, Any],
    estimator_params: dict[str, Any],
    seed: int,
    teacher: str | None = None,
) -> BaseEstimator:
    """The model step of a ranking or survival comparison's pipeline."""
    if task == "ranking":
        return RankingModel(loss, params, estimator_params, seed, teacher)
    return SurvivalModel(loss, params, estimator_params, seed)


def score_ranksurv(
    task: str, model: Any, X_test: Any, y_test: np.ndarray, groups: Any
) -> dict[str, float]:
    """The metrics of a fitted ranking or survival model on its test fold."""
    from lossreg.compare._ranksurv_metrics import brier_grid, ranking_metrics, survival_metrics

    if task == "ranking":
        out = ranking_metrics(y_test, model.predict(X_test), groups)
        if getattr(model, "teacher_", None) is not None:
            import torch
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=torch.get_num_threads()):
                teacher_scores = model.teacher_.predict(X_test)
            teacher = ranking_metrics(y_test, teacher_scores, groups)
            out["teacher_ndcg_at_10"] = teacher["ndcg_at_10"]
        return out
    y_test = np.asarray(y_test, dtype=np.float64)
    grid = brier_grid(model.train_time_)
    return survival_metrics(
        y_test[:, 0],
        y_test[:, 1],
        model.predict_risk(X_test),
        model.predict_survival(X_test, grid),
        grid,
        (model.train_time_, model.train_event_),
    )
