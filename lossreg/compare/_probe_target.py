"""A second label column for embedding probes (``probe_target=COLUMN``, ``--probe-target``).

A self-supervised embedding loss may train on one column and be judged on another: a
multi-device contrastive loss learns from device ids (its target) and time-window ids (its
group), while what the embedding is for is recognising the activity. With
``compare(..., task="embedding", probe_target="activity")`` the ``activity`` column is
neither a feature nor the training target: every metric that reads classes off the
embeddings (``knn_accuracy``, ``linear_probe_accuracy``, the few-label probe,
``recall_at_1`` ...) reads it instead of the target, on the training fold's rows and the
test fold. The stress scenarios still act on the training target only; the probe column
stays clean.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "PROBE_ROWS",
    "check_probe_target",
    "probe_fold",
    "probe_view",
    "split_probe_target",
]

#: keys of a fit's spec that hold the probe labels of its rows (never part of its record)
PROBE_ROWS = ("probe_train", "probe_test")


def split_probe_target(frame: pd.DataFrame, column: str, taken: list[str], name: str) -> pd.Series:
    """The probe column of ``frame`` as a Series of class labels; ``ValueError`` otherwise.

    ``taken`` are the columns already used otherwise (the target, the group): the probe
    column must be another one.
    """
    if column in taken:
        raise ValueError(
            f"Probe target column {column!r} is already the target or the group column; "
            "name a second label column for the probes (e.g. the activity beside device ids)."
        )
    if not isinstance(column, str) or column not in frame.columns:
        raise ValueError(
            f"Probe target column {column!r} is not in {name!r}; columns: "
            f"{', '.join(map(str, frame.columns[:20]))}."
        )
    values = frame[column]
    if values.isna().any():
        raise ValueError(
            f"Probe target column {column!r} has {int(values.isna().sum())} missing values; "
            "every row needs a label to be probed with."
        )
    from lossreg.compare._data import detect_task

    if detect_task(values.infer_objects()) == "regression":
        raise ValueError(
            f"Probe target column {column!r} holds continuous values; embedding probes "
            "predict class labels (a few integer or text values)."
        )
    return values.infer_objects().reset_index(drop=True)


def check_probe_target(has_probe: bool, task: str) -> None:
    """A probe column serves embedding comparisons only."""
    if has_probe and task != "embedding":
        raise ValueError(
            f"probe_target names the labels read off embeddings (task='embedding'); this "
            f"task is {task!r}. Drop probe_target, or make that column the target."
        )


def probe_fold(train: np.ndarray, test: np.ndarray, probe: pd.Series) -> dict[str, list[Any]]:
    """The probe labels of a fold's training and test rows, for its fit spec."""
    values = probe.to_numpy()
    return {"probe_train": values[train].tolist(), "probe_test": values[test].tolist()}


def probe_view(
    spec: dict[str, Any],
    model: Any,
    X: pd.DataFrame,
    groups: pd.Series | None,
    y_test: np.ndarray,
) -> tuple[Any, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """The rows and labels an embedding's probes use: ``(X_fit, y_fit, y_test, groups)``.

    Without a probe column: the rows the model was fitted on (after the scenario), their
    (possibly corrupted) targets and the test fold's targets. With one: every row of the
    training fold and its clean probe labels, the test fold's probe labels; ``groups``
    (group ids of those training rows and of the test rows) follows the same rows.
    """
    from lossreg.compare._fit import _probe_groups

    train, test = np.asarray(spec["train"]), np.asarray(spec["test"])
    if "probe_train" not in spec:
        X_fit, y_fit = model.fit_rows_
        return X_fit, np.asarray(y_fit), y_test, _probe_groups(model, groups, train, test)
    split = None
    if groups is not None:
        split = groups.iloc[train].to_numpy(), groups.iloc[test].to_numpy()
    return (
        X.iloc[train],
        np.asarray(spec["probe_train"]),
        np.asarray(spec["probe_test"]),
        split,
    )
