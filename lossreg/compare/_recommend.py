"""Recommendation in ``lossreg compare``: interaction tables, per-user folds, fits and top-k scores.

A recommendation comparison (``task="recommendation"``) reads one row per observed
(user, item) interaction: one feature column of user ids and the item id as target, both
encoded to 0, 1, ... over the whole table (the catalogue is every item in it). Folds hold
out a share of each user's interactions (stratified by user); each loss trains a
:class:`~lossreg.estimators.recommender.LossRecommender` on the training interactions with
sampled negatives, and each test user's held-out items are looked for among the 20
best-scored items of the whole catalogue that the user did not interact with in training:
``recall_at_20`` and ``ndcg_at_20``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from lossreg.compare._store import finish_record, record_failure
from lossreg.compare._threads import limit_torch_threads

__all__ = [
    "RECOMMENDATION_METRICS",
    "interaction_table",
    "recommendation_splits",
    "run_recommendation_fit",
    "supports_recommendation",
]

#: the metrics of a recommendation comparison, the primary first
RECOMMENDATION_METRICS = ("ndcg_at_20", "recall_at_20")

#: the length of the recommended lists that are scored
TOP_K = 20


def interaction_table(X: pd.DataFrame, y: pd.Series, name: str) -> tuple[pd.DataFrame, pd.Series]:
    """The user ids (one column ``user``) and item ids of an interaction table, as codes."""
    if X.shape[1] != 1:
        raise ValueError(
            f"task='recommendation' reads one feature column of user ids and the item ids as "
            f"target; {name!r} has {X.shape[1]} feature columns "
            f"({', '.join(map(str, X.columns[:10]))}). Keep only the user column."
        )
    if X.iloc[:, 0].isna().any() or y.isna().any():
        raise ValueError(f"The user and item columns of {name!r} must not have missing values.")
    users, _ = pd.factorize(X.iloc[:, 0], sort=True)
    items, _ = pd.factorize(y, sort=True)
    return pd.DataFrame({"user": users}), pd.Series(items, name=y.name)


def supports_recommendation(spec: Any) -> bool:
    """Whether a registered loss can train a LossRecommender (see ``sampled_layout``)."""
    from lossreg.estimators.recommender import sampled_layout

    return sampled_layout(spec) is not None


def recommendation_splits(
    users: pd.Series, cv: int, seed: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Shuffled folds that hold out about 1/cv of every user's interactions."""
    from sklearn.model_selection import StratifiedKFold

    counts = users.value_counts()
    if counts.min() < cv:
        raise ValueError(
            f"User {counts.idxmin()!r} has {int(counts.min())} interactions; cv={cv} folds "
            f"hold out part of every user's interactions and need at least {cv} per user. "
            "Drop the users with fewer, or lower cv."
        )
    return StratifiedKFold(cv, shuffle=True, random_state=seed).split(np.zeros(len(users)), users)


def run_recommendation_fit(spec: dict[str, Any], X: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    """``run_fit`` for a recommendation comparison: train on the fold, score its held-out items."""

    from lossreg.errors import TrainingDivergedError
    from lossreg.estimators.recommender import LossRecommender, top_k_metrics

    record = {k: v for k, v in spec.items() if k not in ("train", "test", "threads")}
    restore_threads = limit_torch_threads(spec["threads"])
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train, test = np.asarray(spec["train"]), np.asarray(spec["test"])
            users = X["user"].to_numpy()
            items = y.to_numpy()
            model = LossRecommender(
                loss=spec["loss"],
                random_state=spec["model_seed"],
                n_users=int(users.max()) + 1,
                n_items=int(items.max()) + 1,  # the whole catalogue, test-only items included
                **spec["estimator"],
                **{f"loss__{k}": v for k, v in spec["params"].items()},
            )
            start = time.perf_counter()
            model.fit(users[train, None], items[train])
            record["fit_time"] = time.perf_counter() - start
            tested = np.unique(users[test])
            held_out = [items[test][users[test] == u] for u in tested]
            record.update(top_k_metrics(model.recommend(tested, k=TOP_K), held_out, k=TOP_K))
            record["train_loss"] = [float(v) for v in model.history_]
            record["n_epochs"] = len(model.history_)
            record["status"] = "ok"
    except TrainingDivergedError as exc:  # a result (the diverged rate), not a failed fit
        record.update(status="ok", diverged=1.0, divergence=str(exc))
    except Exception as exc:
        record_failure(record, exc)
    finally:
        restore_threads()
    return finish_record(record, caught)
