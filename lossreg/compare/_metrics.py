"""Metrics of one fitted model on its untouched test fold, per task; ECE and reliability bins."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics

from lossreg.compare._blocking import BLOCKING_DIRECTIONS, BLOCKING_METRICS
from lossreg.compare._campaign import CAMPAIGN_DIRECTIONS, CAMPAIGN_METRICS
from lossreg.compare._embedding_probes import EMBEDDING_PROBE_METRICS, GREATER_IS_BETTER_PROBES
from lossreg.compare._few_labels import FEW_LABEL_DIRECTIONS, FEW_LABEL_METRICS
from lossreg.compare._geometry import GEOMETRY_GREATER_IS_BETTER, GEOMETRY_METRICS
from lossreg.compare._interval_score import WIS_DIRECTIONS, weighted_interval_score
from lossreg.compare._multioutput import MULTIOUTPUT_DIRECTIONS
from lossreg.compare._novel import NOVEL_DIRECTIONS
from lossreg.compare._old_embedder import COMPATIBILITY_DIRECTIONS, COMPATIBILITY_METRICS
from lossreg.compare._ordinal import ORDINAL_DIRECTIONS
from lossreg.compare._precision_recall import (
    PRECISION_AT_RECALL,
    PRECISION_AT_RECALL_DIRECTIONS,
    precision_at_recall,
)
from lossreg.compare._pretrain import PRETRAIN_DIRECTIONS
from lossreg.compare._recommend import RECOMMENDATION_METRICS
from lossreg.compare._regions import SHOT_METRICS
from lossreg.compare._regression_embedding import REGRESSION_EMBEDDING_DIRECTIONS
from lossreg.compare._tail import TAIL_DIRECTIONS, TAIL_METRICS
from lossreg.compare._trading import GREATER_IS_BETTER_TRADING, TRADING_METRICS
from lossreg.compare._uncertainty import (
    CLASSIFICATION_UNCERTAINTY_METRICS,
    REGRESSION_UNCERTAINTY_METRICS,
    UNCERTAINTY_GREATER_IS_BETTER,
)
from lossreg.compare._votes import VOTE_DIRECTIONS
from lossreg.compare._welfare import WELFARE_DIRECTIONS

__all__ = [
    "GREATER_IS_BETTER",
    "classification_metrics",
    "expected_calibration_error",
    "regression_metrics",
    "reliability_bins",
]

#: direction of every metric a comparison reports
GREATER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "balanced_accuracy": True,
    "f1_macro": True,
    "log_loss": False,
    "ece": False,
    "minority_recall": True,
    "minority_f1": True,
    "foreground_recall": True,
    "roc_auc": True,
    "average_precision": True,
    **PRECISION_AT_RECALL_DIRECTIONS,
    "worst_class_recall": True,
    "worst_group_accuracy": True,
    "source_accuracy": True,  # target_domain runs: accuracy on the test fold's source rows
    "top3_accuracy": True,
    "error_auroc": True,
    "rmse": False,
    "mae": False,
    "r2": True,
    "pinball": False,
    **WIS_DIRECTIONS,
    "coverage_90": True,
    "interval_width_90": False,
    "mape": False,
    "tail_mae": False,
    "spearman": True,
    "map": True,
    "tail_map": True,
    "micro_f1": True,
    "macro_f1": True,
    "micro_roc_auc": True,
    "knn_accuracy": True,
    "linear_probe_accuracy": True,
    "outlier_roc_auc": True,
    "outlier_average_precision": True,
    **SHOT_METRICS,
    **GREATER_IS_BETTER_PROBES,
    **FEW_LABEL_DIRECTIONS,
    **COMPATIBILITY_DIRECTIONS,
    **GREATER_IS_BETTER_TRADING,
    **WELFARE_DIRECTIONS,
    "ndcg_at_10": True,
    "teacher_ndcg_at_10": True,
    **PRETRAIN_DIRECTIONS,
    "pair_accuracy": True,
    "kendall_tau": True,
    "c_index": True,
    "integrated_brier": False,
    "fit_time": False,
    **UNCERTAINTY_GREATER_IS_BETTER,
    **GEOMETRY_GREATER_IS_BETTER,
    **ORDINAL_DIRECTIONS,
    **VOTE_DIRECTIONS,
    **CAMPAIGN_DIRECTIONS,
    # training dynamics (lossreg.compare._curves): every fit, and fits with curves=True
    "diverged": False,
    "train_accuracy": True,
    "epochs_to_fit": False,
    "test_accuracy_auc": True,
    "train_rmse": False,
    "test_rmse_auc": False,
    "loss_rises": False,
}
GREATER_IS_BETTER.update(MULTIOUTPUT_DIRECTIONS)
GREATER_IS_BETTER.update(REGRESSION_EMBEDDING_DIRECTIONS)
GREATER_IS_BETTER.update(BLOCKING_DIRECTIONS)  # blocking_k (lossreg.compare._blocking)
GREATER_IS_BETTER.update(NOVEL_DIRECTIONS)  # novel_classes scenarios (lossreg.compare._novel)
GREATER_IS_BETTER.update(TAIL_DIRECTIONS)  # long-tailed classes (lossreg.compare._tail)
GREATER_IS_BETTER.update(dict.fromkeys(RECOMMENDATION_METRICS, True))  # top-k hits

CLASSIFICATION_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "log_loss",
    "ece",
    "minority_recall",
    "minority_f1",
    "foreground_recall",
    "roc_auc",
    "average_precision",
    PRECISION_AT_RECALL,
    "worst_class_recall",
    "worst_group_accuracy",
    "source_accuracy",
    "top3_accuracy",
    "error_auroc",
    *CLASSIFICATION_UNCERTAINTY_METRICS,
    *GEOMETRY_METRICS,
    *TAIL_METRICS,
    *CAMPAIGN_METRICS,
)
REGRESSION_METRICS = (
    "rmse",
    "mae",
    "r2",
    "pinball",
    *WIS_DIRECTIONS,
    "coverage_90",
    "interval_width_90",
    "mape",
    "tail_mae",
    "spearman",
    *REGRESSION_UNCERTAINTY_METRICS,
    *SHOT_METRICS,
    *TRADING_METRICS,
)

MULTILABEL_METRICS = ("map", "tail_map", "micro_f1", "macro_f1", "micro_roc_auc")
EMBEDDING_METRICS = (
    "knn_accuracy",
    "linear_probe_accuracy",
    *EMBEDDING_PROBE_METRICS,
    *FEW_LABEL_METRICS,
    *COMPATIBILITY_METRICS,
    *BLOCKING_METRICS,
)

#: neighbours of the kNN probe of embeddings
KNN_NEIGHBORS = 5

#: ``tail_mae`` scores the test rows whose target is at or above this quantile of the fold
TAIL_QUANTILE = 0.9

N_BINS = 10


def expected_calibration_error(y_true: Any, proba: np.ndarray, n_bins: int = N_BINS) -> float:
    """Top-label ECE with ``n_bins`` equal-width confidence bins.

    ``sum_b |B_b|/n * |accuracy(B_b) - confidence(B_b)|``, where a row falls in the bin of
    its highest predicted probability and is correct when that class is its label.
    ``y_true`` holds class indices (columns of ``proba``).
    """
    bins = reliability_bins(y_true, proba, n_bins)
    count = np.asarray(bins["count"], dtype=np.float64)
    gap = np.abs(np.asarray(bins["correct"]) - np.asarray(bins["confidence"]))
    return float(gap.sum() / count.sum()) if count.sum() else float("nan")


def reliability_bins(y_true: Any, proba: np.ndarray, n_bins: int = N_BINS) -> dict[str, list]:
    """Per confidence bin: rows, summed top-class confidence, correct rows (pool across folds)."""
    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true)
    confidence = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    # confidence 1.0 belongs to the last bin
    which = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    return {
        "count": np.bincount(which, minlength=n_bins).astype(int).tolist(),
        "confidence": np.bincount(which, confidence, minlength=n_bins).tolist(),
        "correct": np.bincount(which, correct, minlength=n_bins).tolist(),
    }


def classification_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray | None,
    classes: np.ndarray,
    minority: Any,
    groups: np.ndarray | None = None,
    scores: np.ndarray | None = None,
) -> tuple[dict[str, float], dict[str, list] | None]:
    """Metrics and reliability bins (None without probabilities) of a classifier on a fold.

    With ``groups`` (an id per test row), ``worst_group_accuracy`` is the lowest accuracy of
    any group present in the fold. ``scores``, the decision function of a loss without
    probabilities ((n,) for one binary score, else (n, C)), give it the metrics that only rank
    the rows: ``top3_accuracy`` (more than 3 classes), ``roc_auc``, ``average_precision`` and
    ``precision_at_recall_0.8`` (binary).
    """
    out = {
        "accuracy": metrics.accuracy_score(y_true, y_pred),
        "balanced_accuracy": metrics.balanced_accuracy_score(y_true, y_pred),
        "f1_macro": metrics.f1_score(y_true, y_pred, average="macro", labels=classes),
        "minority_recall": metrics.recall_score(
            y_true, y_pred, labels=[minority], average="macro", zero_division=0.0
        ),
        # F1 of the rarest class over the whole test fold (dataset-level, not batch-level)
        "minority_f1": metrics.f1_score(
            y_true, y_pred, labels=[minority], average="macro", zero_division=0.0
        ),
        # the recall of the class the model serves worst (classes absent from the fold skipped)
        "worst_class_recall": metrics.recall_score(
            y_true, y_pred, labels=np.unique(y_true), average=None, zero_division=0.0
        ).min(),
    }
    if groups is not None:
        groups = np.asarray(groups)
        out["worst_group_accuracy"] = min(
            float(np.mean(y_pred[groups == g] == y_true[groups == g])) for g in np.unique(groups)
        )
    bins = None
    if proba is None and scores is not None and len(classes) > 3:
        out["top3_accuracy"] = metrics.top_k_accuracy_score(
            np.searchsorted(classes, y_true),
            np.asarray(scores, dtype=np.float64),
            k=3,
            labels=np.arange(len(classes)),
        )
    if proba is None and scores is not None and len(classes) == 2:
        # ranking metrics need an order of the rows, not probabilities: a score link's
        # decision values (one per row, or one per class) rank the positive class
        index = np.searchsorted(classes, y_true)
        values = np.asarray(scores, dtype=np.float64)
        margin = values[:, 1] - values[:, 0] if values.ndim == 2 else values
        if len(np.unique(index)) == 2:
            out["roc_auc"] = metrics.roc_auc_score(index, margin)
            out["average_precision"] = metrics.average_precision_score(index, margin)
            out[PRECISION_AT_RECALL] = precision_at_recall(index, margin)
    if proba is not None:
        proba = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
        proba = proba / np.maximum(proba.sum(axis=1, keepdims=True), 1e-300)
        index = np.searchsorted(classes, y_true)
        bins = reliability_bins(index, proba)
        out["log_loss"] = metrics.log_loss(y_true, proba, labels=classes)
        out["ece"] = expected_calibration_error(index, proba)
        wrong = proba.argmax(axis=1) != index
        if 0 < wrong.sum() < len(wrong):
            # how well low confidence flags the rows the model gets wrong
            out["error_auroc"] = metrics.roc_auc_score(wrong, -proba.max(axis=1))
        if len(classes) > 3:
            out["top3_accuracy"] = metrics.top_k_accuracy_score(
                index, proba, k=3, labels=np.arange(len(classes))
            )
        present = np.unique(index)
        if len(classes) == 2:
            if len(present) == 2:
                out["roc_auc"] = metrics.roc_auc_score(index, proba[:, 1])
                out["average_precision"] = metrics.average_precision_score(index, proba[:, 1])
                out[PRECISION_AT_RECALL] = precision_at_recall(index, proba[:, 1])
        elif len(present) == len(classes):
            out["roc_auc"] = metrics.roc_auc_score(
                index, proba, multi_class="ovr", average="macro", labels=np.arange(len(classes))
            )
    return {k: float(v) for k, v in out.items()}, bins


def multilabel_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None, tail: Any = ()
) -> dict[str, float]:
    """mAP (over labels with a positive in the fold), tail-label mAP, micro/macro F1 of the
    predicted labels, micro ROC-AUC.

    ``tail`` holds the column indices of the rare labels (the rarest third of the data set's
    labels, chosen once for every fold).
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred).reshape(y_true.shape)
    out = {
        "micro_f1": metrics.f1_score(y_true, y_pred, average="micro", zero_division=0.0),
        "macro_f1": metrics.f1_score(y_true, y_pred, average="macro", zero_division=0.0),
    }
    if proba is not None:
        proba = np.asarray(proba, dtype=np.float64).reshape(y_true.shape)
        present = [j for j in range(y_true.shape[1]) if 0 < y_true[:, j].sum() < len(y_true)]
        ap = {j: metrics.average_precision_score(y_true[:, j], proba[:, j]) for j in present}
        if ap:
            out["map"] = float(np.mean(list(ap.values())))
        rare = [ap[j] for j in tail if j in ap]
        if rare:
            out["tail_map"] = float(np.mean(rare))
        if present:
            out["micro_roc_auc"] = metrics.roc_auc_score(y_true, proba, average="micro")
    return {k: float(v) for k, v in out.items()}


def embedding_metrics(
    train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray
) -> dict[str, float]:
    """Accuracy of a kNN (:data:`KNN_NEIGHBORS`, Euclidean) and of a logistic-regression probe
    trained on the training fold's embeddings and labels, on the test fold's embeddings."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.preprocessing import StandardScaler

    knn = KNeighborsClassifier(n_neighbors=min(KNN_NEIGHBORS, len(y_train)))
    knn.fit(train, y_train)
    scale = StandardScaler().fit(train)
    probe = LogisticRegression(max_iter=2000).fit(scale.transform(train), y_train)
    return {
        "knn_accuracy": float(np.mean(knn.predict(test) == y_test)),
        "linear_probe_accuracy": float(np.mean(probe.predict(scale.transform(test)) == y_test)),
    }


def regression_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    quantiles: tuple[np.ndarray, np.ndarray] | None = None,
    interval: np.ndarray | None = None,
) -> dict[str, float]:
    """RMSE, MAE, R², MAPE, tail MAE, Spearman rank correlation; mean pinball loss over the
    loss's levels and, for levels symmetric about a median, the weighted interval score;
    90% interval coverage and width.

    ``mape`` is the mean of ``|y - ŷ| / |y|`` (NaN when a target is 0); ``tail_mae`` the MAE on
    the rows whose target is at or above the fold's :data:`TAIL_QUANTILE` quantile.

    ``quantiles`` is ``(levels, predictions of shape (n, n_levels))``; ``interval`` is
    ``(n, 2)`` lower/upper bounds of the central 90% interval.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    out = {
        "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred))),
        "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
        "r2": float(metrics.r2_score(y_true, y_pred)),
        "mape": (
            float(np.mean(np.abs(y_true - y_pred) / np.abs(y_true)))
            if np.all(y_true != 0)
            else float("nan")
        ),
    }
    if np.ptp(y_pred) > 0 and np.ptp(y_true) > 0:  # a constant prediction ranks nothing
        from scipy.stats import spearmanr

        out["spearman"] = float(spearmanr(y_true, y_pred).statistic)
    tail = y_true >= np.quantile(y_true, TAIL_QUANTILE)
    out["tail_mae"] = float(np.mean(np.abs(y_true[tail] - y_pred[tail])))
    if quantiles is not None:
        levels, values = quantiles
        values = np.asarray(values, dtype=np.float64).reshape(len(y_true), -1)
        out["pinball"] = float(
            np.mean(
                [
                    metrics.mean_pinball_loss(y_true, values[:, j], alpha=float(level))
                    for j, level in enumerate(levels)
                ]
            )
        )
        wis = weighted_interval_score(y_true, levels, values)  # levels symmetric about 0.5
        if wis is not None:
            out["wis"] = wis
    if interval is not None:
        interval = np.asarray(interval, dtype=np.float64).reshape(len(y_true), 2)
        inside = (y_true >= interval[:, 0]) & (y_true <= interval[:, 1])
        out["coverage_90"] = float(inside.mean())
        out["interval_width_90"] = float(np.mean(interval[:, 1] - interval[:, 0]))
    return out
