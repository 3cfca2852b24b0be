"""Crowd votes in ``lossreg compare``: train on every annotator's vote, score against the votes.

A data set may carry, per row, how many annotators chose each class (``votes=`` columns, one
per class in sorted class order; ``synthetic:ordinal(n_votes=...)`` makes them). Its target is
the majority label. The ``votes`` scenario trains every loss on the votes instead: each
training row is repeated once per class it received votes for, weighted by that class's share
of the row's votes. For cross-entropy that is exactly training on the vote distribution; for
the squared EMD (``ordinal_emd``, ``r=2``) it differs from the EMD to the vote distribution by
a constant per row, so the gradients are those of the distributional target. Test folds are
scored against the votes with :data:`VOTE_METRICS`, whatever the training scenario.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["VOTE_DIRECTIONS", "VOTE_METRICS", "check_votes", "expand_votes", "vote_metrics"]

#: metrics against the test rows' vote distributions
VOTE_METRICS = ("vote_emd", "vote_ece")

#: whether a larger value is better, per vote metric
VOTE_DIRECTIONS = {"vote_emd": False, "vote_ece": False}

#: confidence bins of ``vote_ece``
_N_BINS = 10


def check_votes(has_votes: bool, scenarios: Any) -> None:
    """Fail before any fit when the ``votes`` scenario meets data without vote columns."""
    if not has_votes and any(s.kind == "votes" for s in scenarios):
        raise ValueError(
            "Scenario 'votes' trains on annotator votes, but the data has none: name the "
            "vote-count columns with votes=... (--votes), one per class in sorted class order, "
            "or generate them (synthetic:ordinal(n_votes=5))."
        )


def expand_votes(X: Any, votes: np.ndarray, classes: np.ndarray) -> tuple[Any, np.ndarray, dict]:
    """Repeat each row once per class it got votes for; return ``(X, y, fit_params)``.

    Parameters
    ----------
    X : DataFrame or array, shape (n, d)
    votes : array, shape (n, C)
        Vote counts per row and class (columns in the order of ``classes``).
    classes : array, shape (C,)

    Returns
    -------
    X_rep, y_rep, fit_params
        The repeated rows, their class labels and ``{"model__sample_weight": share, "rows":
        index}``: the share of the row's votes its class received (each row's weights sum
        to 1) and the original row of each copy.
    """
    votes = np.asarray(votes, dtype=np.float64)
    totals = votes.sum(axis=1)
    if np.any(totals <= 0):
        raise ValueError(
            f"{int((totals <= 0).sum())} training rows have no votes; every row needs at least one."
        )
    rows, cols = np.nonzero(votes)
    share = votes[rows, cols] / totals[rows]
    X_rep = X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]
    fit_params = {"model__sample_weight": share.astype(np.float32), "rows": rows}
    return X_rep, np.asarray(classes)[cols], fit_params


def vote_metrics(votes: Any, proba: np.ndarray, classes: Any = None) -> dict[str, float]:
    """How well predicted class distributions match the test rows' vote distributions.

    Parameters
    ----------
    votes : DataFrame or array, shape (n, C)
        Vote counts, classes in sorted order (ordered classes for ``vote_emd``); a frame's
        columns name the classes.
    proba : array, shape (n, c)
        Predicted probabilities over ``classes``.
    classes : array, optional
        The model's classes when ``votes`` is a frame: a class missing from the training
        fold gets probability 0. Without it, ``proba`` has the columns of ``votes``.

    Returns
    -------
    dict
        ``vote_emd``: mean earth mover's distance (1-Wasserstein, in class units) between the
        predicted and the vote distribution, ``sum_k |F_p(k) - F_v(k)|``. ``vote_ece``: the
        calibration error of the top class against the crowd: over 10 equal-width confidence
        bins, the row-weighted mean of ``|mean confidence - mean vote share of that class|``.
    """
    proba = np.asarray(proba, dtype=np.float64)
    if classes is not None and hasattr(votes, "columns"):
        full = np.zeros((proba.shape[0], votes.shape[1]))
        full[:, np.searchsorted(votes.columns.to_numpy(), np.asarray(classes))] = proba
        proba = full
    votes = np.asarray(votes, dtype=np.float64)
    shares = votes / votes.sum(axis=1, keepdims=True)
    emd = np.abs(np.cumsum(proba, axis=1) - np.cumsum(shares, axis=1)).sum(axis=1)
    top = proba.argmax(axis=1)
    confidence = proba[np.arange(len(top)), top]
    agreed = shares[np.arange(len(top)), top]
    which = np.minimum((confidence * _N_BINS).astype(int), _N_BINS - 1)
    count = np.bincount(which, minlength=_N_BINS)
    gap = np.abs(
        np.bincount(which, confidence, minlength=_N_BINS) - np.bincount(which, agreed, _N_BINS)
    )
    return {"vote_emd": float(emd.mean()), "vote_ece": float(gap.sum() / count.sum())}
