"""Ordinal targets in ``lossreg compare``: a generator of ordered classes and ordinal metrics.

An ordinal target is a class target whose classes are ordered numbers (0 < 1 < ... < K-1, or
any increasing numeric labels); the distance between two classes is the difference of their
ranks, in class units. ``task="ordinal"`` scores the usual classification metrics plus
:data:`ORDINAL_METRICS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ORDINAL_DIRECTIONS", "ORDINAL_METRICS", "ordinal", "ordinal_metrics"]

#: metrics of ordinal targets, the first the default primary one
ORDINAL_METRICS = ("class_mae", "class_rmse", "qwk")

#: whether a larger value is better, per ordinal metric
ORDINAL_DIRECTIONS = {"class_mae": False, "class_rmse": False, "qwk": True}


def ordinal(
    n_samples: int = 2000,
    n_features: int = 10,
    n_informative: int = 5,
    n_classes: int = 5,
    noise: float = 0.5,
    n_votes: int = 0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Ordered classes: a latent score ``s = x·w + noise·ε`` cut into ``n_classes`` by its
    quantiles. ``x ~ N(0, 1)^d``; ``w`` (unit norm) weighs the first ``n_informative``
    features; the label noise is Gaussian in units of the noiseless score's std, so a row is
    mislabelled mostly into a neighbouring class. With ``n_votes > 0``, that many annotators
    each cut their own noisy score (independent ``ε`` per annotator): their vote counts are
    the columns ``votes_0 .. votes_{K-1}`` and the target is the majority vote (ties go to
    the class nearest the mean vote, then the lower). The frame asks for ``task="ordinal"``."""
    if not 2 <= n_classes <= 20:
        raise ValueError(f"ordinal: n_classes must be in [2, 20]. Got {n_classes!r}.")
    if not 1 <= n_informative <= n_features:
        raise ValueError(
            f"ordinal: n_informative must be in [1, n_features={n_features}]. "
            f"Got {n_informative!r}."
        )
    if noise < 0:
        raise ValueError(f"ordinal: noise must be >= 0. Got {noise!r}.")
    if n_votes < 0:
        raise ValueError(f"ordinal: n_votes must be >= 0 (0: no votes). Got {n_votes!r}.")
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((n_samples, n_features))
    weights = np.zeros(n_features)
    weights[:n_informative] = rng.uniform(0.5, 1.5, n_informative) * rng.choice(
        [-1.0, 1.0], n_informative
    )
    weights /= np.linalg.norm(weights)
    score = X @ weights + noise * rng.standard_normal(n_samples)
    # equal-frequency classes: cut at the score's quantiles
    cuts = np.quantile(score, np.arange(1, n_classes) / n_classes)
    y = np.searchsorted(cuts, score, side="right").astype(np.int64)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    if n_votes:
        noisy = (X @ weights)[:, None] + noise * rng.standard_normal((n_samples, n_votes))
        labels = np.searchsorted(cuts, noisy, side="right")
        counts = np.stack([(labels == k).sum(axis=1) for k in range(n_classes)], axis=1)
        # majority vote; among tied classes the one nearest the mean vote, then the lower
        distance = np.abs(np.arange(n_classes)[None, :] - labels.mean(axis=1, keepdims=True))
        y = np.argmax(counts - distance / (n_classes + 1), axis=1).astype(np.int64)
        for k in range(n_classes):
            frame[f"votes_{k}"] = counts[:, k]
    frame["target"] = y
    frame.attrs["task"] = "ordinal"
    return frame


def ordinal_metrics(y_true: Any, y_pred: Any, classes: Any) -> dict[str, float]:
    """Distance-aware scores of predicted classes on a test fold.

    Parameters
    ----------
    y_true, y_pred : array of shape (n,)
        True and predicted labels (ordered numbers).
    classes : array
        The model's classes; ranks are taken in the sorted union of ``classes`` and the labels
        in ``y_true``, so a class missing from a training fold still counts its distance.

    Returns
    -------
    dict
        ``class_mae`` (mean absolute distance in class units), ``class_rmse`` (its root mean
        square) and ``qwk`` (quadratic weighted Cohen's kappa; 1 perfect, 0 chance).
    """
    from sklearn.metrics import cohen_kappa_score

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    levels = np.union1d(np.asarray(classes), y_true)
    true_rank = np.searchsorted(levels, y_true)
    pred_rank = np.searchsorted(levels, y_pred)
    gap = np.abs(true_rank - pred_rank).astype(np.float64)
    labels = np.arange(len(levels))
    # a fold where the model predicts one class everywhere has kappa 0 (nan in sklearn)
    kappa = cohen_kappa_score(true_rank, pred_rank, weights="quadratic", labels=labels)
    return {
        "class_mae": float(gap.mean()),
        "class_rmse": float(np.sqrt((gap**2).mean())),
        "qwk": float(0.0 if np.isnan(kappa) else kappa),
    }
