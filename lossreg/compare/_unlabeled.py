"""Unlabeled training rows in ``lossreg compare``: hidden labels and rows without a target.

Three sources of unlabeled rows, usable together:

- the ``unlabeled:RATE`` scenario hides the labels of a share of each class's training rows
  (per fold; the test fold keeps its labels);
- rows of the data set whose target is missing (an empty cell, NaN) form an *unlabeled
  pool*: they are never in a test fold and join every training fold;
- ``target_domain="COLUMN=VALUE"`` names the rows of a shifted target domain: in every fold
  the training fold's target-domain rows lose their labels, and the test fold is scored on
  its target-domain rows (its source rows give ``source_accuracy``), the transductive
  domain-adaptation protocol.

A loss whose spec is ``semi_supervised`` gets these rows with the label ``-1`` (scikit-learn's
convention, which lossreg's estimators pass to such a loss unchanged); any other loss is
fitted on the labelled training rows only, so it is the supervised-only baseline trained on
exactly the labels the semi-supervised loss had.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "UNLABELED",
    "add_unlabeled",
    "check_pool",
    "domain_fold",
    "hide_labels",
    "hide_targets",
    "labelled_splits",
    "labelled_target",
    "learns_from_unlabeled",
    "parse_target_domain",
    "pool_mask",
    "split_off_pool",
]

#: the label of an unlabeled row, as scikit-learn's ``SelfTrainingClassifier`` writes it
UNLABELED = -1


def pool_mask(y: Any) -> np.ndarray:
    """True for the rows without a target (the unlabeled pool; none for multilabel targets)."""
    values = np.asarray(y, dtype=object)
    if values.ndim != 1:
        return np.zeros(len(values), dtype=bool)
    return np.asarray(pd.isna(values), dtype=bool)


def labelled_target(y: pd.Series, column: str) -> pd.Series:
    """The target's values without the pool's missing ones; an error if none is left."""
    labelled = y.dropna()
    if labelled.empty:
        raise ValueError(
            f"Target column {column!r} has no values: every row is missing its target. "
            "Rows without a target are unlabeled inputs; a comparison needs labelled rows too."
        )
    return labelled


def check_pool(y: pd.Series, task: str, column: str) -> None:
    """Allow missing targets (the unlabeled pool) for class targets only."""
    missing = int(y.isna().sum())
    if missing and task not in ("binary", "multiclass"):
        raise ValueError(
            f"Target column {column!r} has {missing} missing values. Rows without a target "
            f"are an unlabeled pool for binary and multiclass targets only (this task is "
            f"{task!r}); drop those rows or fill in their targets."
        )


def _check_marker_free(y: np.ndarray) -> None:
    """Refuse targets whose classes include the -1 marker, naming the fix."""
    if bool(_marked(y).any()):
        raise ValueError(
            "The class label -1 is also the marker of an unlabeled row; recode the classes "
            "(e.g. 0 .. C-1, or names) before comparing with unlabeled rows."
        )


def _marked(y: np.ndarray) -> np.ndarray:
    """True where ``y`` holds the -1 marker (numbers, or class names mixed with the int -1)."""
    if y.dtype.kind in "iuf":
        return y == UNLABELED
    if y.dtype.kind == "O":
        return np.array([not isinstance(v, str) and v == UNLABELED for v in y], dtype=bool)
    return np.zeros(len(y), dtype=bool)


def hide_labels(
    y: np.ndarray, rate: float, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """Set ``round(rate * n_k)`` labels of each class ``k`` to -1, keeping one per class.

    Per class rather than over all rows, so every class keeps its share of labels and at
    least one labelled row (a class without any would vanish from ``classes_``).
    """
    y = np.asarray(y)
    _check_marker_free(y)
    hidden = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        n_hide = min(round(rate * len(rows)), len(rows) - 1)
        hidden[rng.choice(rows, size=n_hide, replace=False)] = True
    # class names become an object array, so that the int -1 can sit among them
    out = y.astype(object) if y.dtype.kind not in "iuf" else y.copy()
    out[hidden] = UNLABELED
    return out, {"n_corrupted": int(hidden.sum())}


def split_off_pool(
    X: Any, y: np.ndarray, fit_params: dict[str, Any]
) -> tuple[Any, np.ndarray, dict[str, Any], Any, dict[str, Any]]:
    """Separate the pool rows (no target) from the labelled rows of a training fold.

    Returns ``(X, y, fit_params)`` of the labelled rows, then the pool's ``X`` (None when
    there is no pool) and its per-row fit parameters.
    """
    missing = pool_mask(y)
    if not missing.any():
        return X, y, fit_params, None, {}
    keep, pool = np.flatnonzero(~missing), np.flatnonzero(missing)
    labels = np.asarray(pd.Series(np.asarray(y)[keep]).infer_objects())
    if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)  # NaN made integer classes float; undo that
    split = {
        k: (_take(np.asarray(v), keep), _take(np.asarray(v), pool)) for k, v in fit_params.items()
    }
    return (
        _take(X, keep),
        labels,
        {k: v[0] for k, v in split.items()},
        _take(X, pool),
        {k: v[1] for k, v in split.items()},
    )


def add_unlabeled(
    estimator: Any,
    X: Any,
    y: np.ndarray,
    fit_params: dict[str, Any],
    info: dict[str, Any],
    pool_X: Any = None,
    pool_params: dict[str, Any] | None = None,
    *,
    marked: bool = False,
) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """Return the rows ``estimator`` is fitted on: with its unlabeled rows, or without them.

    ``marked``: ``y`` holds -1 markers (hidden labels); ``pool_X`` rows join as -1. A
    semi-supervised loss gets every row; any other loss only the labelled ones. ``info``
    gains the counts ``n_labeled`` and ``n_unlabeled`` (the unlabeled rows the loss was
    given). Without markers and pool, nothing changes (a regression target may be -1).
    """
    y = np.asarray(y)
    if not marked and pool_X is None:
        return X, y, fit_params
    if pool_X is not None:
        if not marked:
            _check_marker_free(y)
        if y.dtype.kind not in "iuf":
            y = y.astype(object)
        X = _concat(X, pool_X)
        y = np.concatenate([y, np.full(len(pool_X), UNLABELED, dtype=y.dtype)])
        fit_params = {
            k: np.concatenate([np.asarray(v), np.asarray((pool_params or {})[k])])
            for k, v in fit_params.items()
        }
    unlabeled = _marked(y)
    if unlabeled.any() and not learns_from_unlabeled(estimator):
        keep = np.flatnonzero(~unlabeled)
        X, y = _take(X, keep), y[keep]
        fit_params = {k: _take(np.asarray(v), keep) for k, v in fit_params.items()}
        unlabeled = unlabeled[keep]
    info["n_labeled"] = int((~unlabeled).sum())
    info["n_unlabeled"] = int(unlabeled.sum())
    info["n_train"] = len(y)
    return X, y, fit_params


def learns_from_unlabeled(estimator: Any) -> bool:
    """Whether the loss of ``estimator`` (a lossreg estimator, or a Pipeline ending in one)
    is ``semi_supervised``, i.e. learns from rows labelled -1."""
    from lossreg._effective import effective_spec
    from lossreg.registry import default_registry

    while hasattr(estimator, "steps") or hasattr(estimator, "regressor"):
        estimator = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator.regressor
    loss = getattr(estimator, "loss", None)
    if not isinstance(loss, str):
        return False
    params = {k[6:]: v for k, v in estimator.get_params(deep=False).items() if k[:6] == "loss__"}
    return bool(effective_spec(default_registry().get_spec(loss), params).semi_supervised)


def labelled_splits(
    y: pd.Series,
    splitter: Callable[[np.ndarray], Iterator[tuple[np.ndarray, np.ndarray]]],
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Split the labelled rows with ``splitter``; every training fold also gets the pool.

    ``splitter`` takes the positions of the labelled rows and yields (train, test) positions
    into that array, as scikit-learn splitters do; the result indexes the whole data set.
    """
    missing = pool_mask(y)
    labelled, pool = np.flatnonzero(~missing), np.flatnonzero(missing)
    for train, test in splitter(labelled):
        yield np.sort(np.concatenate([labelled[train], pool])), labelled[test]


def parse_target_domain(text: str, frame: pd.DataFrame, name: str) -> tuple[str, np.ndarray]:
    """Read ``"COLUMN=VALUE"``; return the column and the mask of the target-domain rows.

    Values are compared as text, so ``site=2`` matches the integer 2 and the string "2".
    """
    column, sep, value = (part.strip() for part in str(text).partition("="))
    if not sep or not column or not value:
        raise ValueError(
            f"target_domain takes COLUMN=VALUE (e.g. 'domain=target', 'site=B'). Got {text!r}."
        )
    if column not in frame.columns:
        raise ValueError(
            f"Domain column {column!r} is not in {name!r}; columns: "
            f"{', '.join(map(str, frame.columns[:20]))}."
        )
    if frame[column].isna().any():
        raise ValueError(f"Domain column {column!r} has missing values.")
    mask = frame[column].astype(str).to_numpy() == value
    if mask.all() or not mask.any():
        seen = sorted(frame[column].astype(str).unique().tolist())[:10]
        raise ValueError(
            f"target_domain {text!r} must mark some rows but not all: column {column!r} has "
            f"the values {seen!r}; name one of them, a domain with source rows besides it."
        )
    return column, mask


def domain_fold(train: np.ndarray, test: np.ndarray, target_rows: np.ndarray) -> dict[str, Any]:
    """One fold of the domain-adaptation protocol, as row indices of the data set.

    ``train`` keeps every row (the target-domain ones are listed again in ``hidden``: their
    labels are hidden at fit time); ``test`` keeps the target-domain rows, the scored ones;
    ``source_test`` the test fold's source rows, for ``source_accuracy``.
    """
    train, test = np.asarray(train), np.asarray(test)
    return {
        "train": train.tolist(),
        "hidden": train[target_rows[train]].tolist(),
        "test": test[target_rows[test]].tolist(),
        "source_test": test[~target_rows[test]].tolist(),
    }


def hide_targets(y_train: np.ndarray, train: Any, hidden: Any) -> np.ndarray:
    """The training targets with the ``hidden`` rows' set to NaN (they join the pool)."""
    position = {row: i for i, row in enumerate(np.asarray(train).tolist())}
    out = np.asarray(y_train).astype(object)
    out[[position[row] for row in hidden]] = np.nan
    return out


def _take(X: Any, index: np.ndarray) -> Any:
    return X.iloc[index] if isinstance(X, (pd.DataFrame, pd.Series)) else X[index]


def _concat(X: Any, more: Any) -> Any:
    if isinstance(X, pd.DataFrame):
        return pd.concat([X, more], axis=0)
    return np.concatenate([np.asarray(X), np.asarray(more)])
