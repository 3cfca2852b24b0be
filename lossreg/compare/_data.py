"""Data for ``lossreg compare``: load a named, file or in-memory table; its task, fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossreg.compare._synthetic import PREFIX, make_synthetic

__all__ = ["SKLEARN_DATASETS", "Dataset", "detect_task", "load_data"]

#: data sets that ship with scikit-learn, by the name ``lossreg compare`` accepts
SKLEARN_DATASETS = ("breast_cancer", "diabetes", "digits", "iris", "wine")

#: at most this many distinct integer values make a numeric target a class target
_MAX_CLASSES = 20


@dataclass(frozen=True)
class Dataset:
    """Features, target, the task they pose and a fingerprint of their content."""

    name: str
    X: pd.DataFrame
    #: a Series, a frame of 0/1 columns for a multilabel target, or of (time, event) columns
    #: for a survival target
    y: pd.Series | pd.DataFrame
    task: str
    fingerprint: str
    #: group / environment id per row (``group=`` column), for losses that declare ``group``
    #: and for the worst-group metric, or query ids (ranking); None without one
    groups: pd.Series | None = None

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])


def load_data(
    data: Any = None,
    target: str | list[str] | None = None,
    task: str | None = None,
    group: str | None = None,
    event: str | None = None,
) -> Dataset:
    """Return a :class:`Dataset` from a scikit-learn data set name, a CSV/Parquet file or a frame.

    Parameters
    ----------
    data : str, path or DataFrame, default=None
        One of :data:`SKLEARN_DATASETS` (``None`` is ``"breast_cancer"``), generated data
        ``"synthetic:NAME(param=value, ...)"`` (see :mod:`lossreg.compare._synthetic`), a
        ``.csv`` or ``.parquet`` file, or a DataFrame holding the target column.
    target : str or list of str, optional
        The target column; ``"target"`` for the scikit-learn data sets. Required otherwise.
        Several columns (a list, or names separated by commas) of 0/1 values make a
        multilabel target, one label per column.
    task : {"binary", "multiclass", "regression", "multilabel", "embedding", "ranking", \
"survival"}, optional
        Overrides the task detected from the target; ``"embedding"`` (never detected) fits
        LossEmbedder on class labels and scores its embeddings with kNN and a linear probe;
        ``"ranking"`` (never detected) takes the target as relevance and ``group`` as query ids.
    group : str, optional
        A column of group (environment, domain) ids: taken out of the features, passed to
        losses that declare the ``group`` fit extra, and scored by ``worst_group_accuracy``;
        the query ids of a ranking task.
    event : str, optional
        A column of event indicators (1 observed, 0 censored): the target is then a survival
        time and the task ``"survival"``; ``y`` becomes a frame of (time, event).
    """
    if data is None:
        data = "breast_cancer"
    if isinstance(data, pd.DataFrame):
        frame, name = data, "dataframe"
    elif isinstance(data, str) and data in SKLEARN_DATASETS:
        frame, name = _sklearn_frame(data), data
        target = target or "target"
    elif isinstance(data, str) and data.startswith(PREFIX):
        name, frame = make_synthetic(data)
        # a multilabel generator names its label columns target_0, target_1, ...
        labels = [c for c in frame.columns if str(c).startswith("target_")]
        target = target or ("target" if "target" in frame.columns else labels)
        # a generator's group ids would give the label away as a feature
        group = group or ("group" if "group" in frame.columns else None)
        event = event or ("event" if "event" in frame.columns else None)
        if event is not None and task is None:
            task = "survival"
    else:
        path = Path(data)
        if not path.is_file():
            raise ValueError(
                f"Unknown data {str(data)!r}: not a file, not one of the scikit-learn data "
                f"sets ({', '.join(SKLEARN_DATASETS)}) and not generated data "
                f"({PREFIX}NAME(...), e.g. {PREFIX}classification(n_classes=10))."
            )
        frame, name = _read_file(path), path.name
    if target is None:
        raise ValueError(
            f"Name the target column of {name!r} with target=... (--target); columns: "
            f"{', '.join(map(str, frame.columns[:20]))}."
        )
    columns = _target_columns(target)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"Target column {missing[0]!r} is not in {name!r}; columns: "
            f"{', '.join(map(str, frame.columns[:20]))}."
        )
    if event is not None or task == "survival":
        from lossreg.compare._ranksurv import survival_target

        if event is None or len(columns) != 1 or task not in (None, "survival"):
            raise ValueError(
                "A survival comparison takes one time column (target=...) and one event column "
                f"(event=...), with task 'survival'. Got target={target!r}, event={event!r}, "
                f"task={task!r}."
            )
        y = survival_target(frame, columns[0], event, name)
        frame = frame.drop(columns=[event])
    elif len(columns) > 1:
        y = _multilabel_target(frame[columns])
    else:
        # An object column of Python ints (class names that are numbers) reads as "unknown"
        # to scikit-learn's target checks; give it its real dtype.
        y = frame[columns[0]].infer_objects()
        if y.isna().any():
            raise ValueError(
                f"Target column {columns[0]!r} has {int(y.isna().sum())} missing values."
            )
    groups = None
    if group is not None:
        if group not in frame.columns or group in columns:
            raise ValueError(
                f"Group column {group!r} is not a feature column of {name!r}; columns: "
                f"{', '.join(map(str, frame.columns[:20]))}."
            )
        if frame[group].isna().any():
            raise ValueError(f"Group column {group!r} has missing values.")
        groups = frame[group].reset_index(drop=True)
        frame = frame.drop(columns=[group])
    X = _normalise_features(frame.drop(columns=columns))
    y = y.reset_index(drop=True)
    X = X.reset_index(drop=True)
    if event is not None:
        detected = "survival"
    elif isinstance(y, pd.DataFrame):
        if task not in (None, "multilabel"):
            raise ValueError(
                f"Several target columns make a multilabel target; task={task!r} needs one."
            )
        detected = "multilabel"
    else:
        detected = task or detect_task(y)
    tasks = ("binary", "multiclass", "regression", "multilabel", "embedding", "ranking")
    if detected not in (*tasks, "survival"):
        raise ValueError(f"task must be {', '.join(tasks)} or survival. Got {detected!r}.")
    if detected == "ranking":
        from lossreg.compare._ranksurv import check_ranking

        check_ranking(y, groups, name)
    if detected == "embedding" and detect_task(y) == "regression":
        raise ValueError("task='embedding' scores embeddings with class labels; y is continuous.")
    if detected == "multilabel" and not isinstance(y, pd.DataFrame):
        raise ValueError("A multilabel target needs several target columns of 0/1 values.")
    # group ids are part of what a comparison ran on: results of other groupings do not match
    digest = fingerprint(X, y) if groups is None else fingerprint(X.assign(__group__=groups), y)
    return Dataset(name, X, y, detected, digest, groups)


def detect_task(y: pd.Series) -> str:
    """binary / multiclass for non-numeric or few-valued integer targets, else regression."""
    values = y.to_numpy()
    n_unique = int(pd.Series(values).nunique())
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if numeric:
        as_float = values.astype(np.float64)
        integral = bool(np.all(np.isfinite(as_float)) and np.all(as_float == np.round(as_float)))
        if not integral or n_unique > _MAX_CLASSES:
            return "regression"
    if n_unique < 2:
        raise ValueError("The target has a single value; there is nothing to compare.")
    return "binary" if n_unique == 2 else "multiclass"


def _target_columns(target: str | list[str]) -> list[str]:
    if isinstance(target, str):
        return [c.strip() for c in target.split(",") if c.strip()]
    return [str(c) for c in target]


def _multilabel_target(frame: pd.DataFrame) -> pd.DataFrame:
    """Check a multilabel target: 0/1 (or boolean) values, no missing ones."""
    if frame.isna().any().any():
        raise ValueError("A multilabel target column has missing values.")
    values = frame.to_numpy()
    try:
        numeric = values.astype(np.float64)
    except (TypeError, ValueError):
        numeric = None
    if numeric is None or not np.isin(numeric, (0.0, 1.0)).all():
        raise ValueError(
            "Several target columns make a multilabel target, whose values must be 0 or 1; "
            f"columns {', '.join(map(str, frame.columns))} hold other values."
        )
    return pd.DataFrame(numeric.astype(np.int64), columns=[str(c) for c in frame.columns])


def fingerprint(X: pd.DataFrame, y: pd.Series | pd.DataFrame) -> str:
    """A short content hash of features and target (values, column names, dtypes)."""
    digest = hashlib.sha256()
    target = y if isinstance(y, pd.DataFrame) else y.to_frame("__target__")
    for part in (X, target):
        digest.update(repr([(str(c), str(t)) for c, t in part.dtypes.items()]).encode())
        digest.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _sklearn_frame(name: str) -> pd.DataFrame:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.copy()
    if name not in ("diabetes",) and hasattr(bunch, "target_names"):
        # Class names read better in reports than 0/1/2.
        names = np.asarray(bunch.target_names)
        frame["target"] = pd.Series(names[frame["target"].to_numpy()], dtype=object)
    return frame


def _read_file(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return pd.read_csv(path)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    raise ValueError(f"Cannot read {str(path)!r}: use a .csv or .parquet file.")


def _normalise_features(X: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns as float, everything else as object (categorical) with NaN for missing."""
    out = {}
    for column in X.columns:
        series = X[column]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            out[str(column)] = series.astype(np.float64)
        else:
            values = series.astype(object)
            out[str(column)] = values.where(series.notna(), np.nan)
    return pd.DataFrame(out, index=X.index)
