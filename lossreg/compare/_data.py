"""Data for ``lossreg compare``: load a named, file or in-memory table; its task, fingerprint."""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossreg.compare._mixed import mixed_target
from lossreg.compare._multioutput import multioutput_target
from lossreg.compare._synthetic import PREFIX, make_synthetic
from lossreg.compare._unlabeled import check_pool, labelled_target, parse_target_domain

__all__ = ["SKLEARN_DATASETS", "TASKS", "Dataset", "detect_task", "load_data", "split_votes"]

#: the tasks a comparison can pose
TASKS = (
    "binary",
    "multiclass",
    "ordinal",
    "regression",
    "multilabel",
    "multioutput",
    "embedding",
    "outlier",
    "ranking",
    "survival",
    "mixed",
    "embedding_regression",
    "recommendation",
)

#: data sets that ship with scikit-learn, by the name ``lossreg compare`` accepts
SKLEARN_DATASETS = ("breast_cancer", "diabetes", "digits", "iris", "wine")

#: at most this many distinct integer values make a numeric target a class target
_MAX_CLASSES = 20


@dataclass(frozen=True)
class Dataset:
    """Features, target, the task they pose and a fingerprint of their content."""

    name: str
    X: pd.DataFrame
    #: a Series; a frame of 0/1 columns (multilabel), of float columns (multioutput) or of
    #: (time, event) columns (survival)
    y: pd.Series | pd.DataFrame
    task: str
    fingerprint: str
    #: group / environment id per row (``group=`` column), for losses that declare ``group``
    #: and for the worst-group metric, or query ids (ranking); None without one
    groups: pd.Series | None = None
    #: True for the rows of the target domain (``target_domain=``), None without one
    target_rows: np.ndarray | None = None
    #: the true noise standard deviation of each row, recorded by some generators
    #: (``synthetic:heteroscedastic``) in a ``true_sigma`` column; never a feature
    true_sigma: pd.Series | None = None
    #: annotator vote counts per row, one column per class named by it (``votes=``); or None
    votes: pd.DataFrame | None = None
    #: the labels embedding probes read instead of the target (``probe_target=``); or None
    probe: pd.Series | None = None
    #: the bid of each row (``bid=``): ads in auctions, see ``_welfare``; or None
    bids: pd.Series | None = None

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])


def load_data(
    data: Any = None,
    target: str | list[str] | None = None,
    task: str | None = None,
    group: str | None = None,
    target_domain: str | None = None,
    votes: str | list[str] | None = None,
    event: str | None = None,
    probe_target: str | None = None,
    bid: str | None = None,
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
        Several columns (a list, names separated by commas, or a pattern such as
        ``"target_*"``) of 0/1 values make a multilabel target, one label per column; of
        other numbers, a multioutput (multi-output regression) target.
    task : str, optional
        One of :data:`TASKS`; overrides the task detected from the target; ``"embedding"``
        (never detected) fits LossEmbedder on class labels and scores its embeddings with kNN
        and a linear probe; ``"outlier"`` (never detected) trains each loss to reconstruct the
        features and scores how well its outlier score finds the rows whose target is 1;
        ``"ordinal"`` (never detected, but asked for by ``synthetic:ordinal``) treats integer
        classes as ordered and adds the ordinal metrics (``class_mae``, ``qwk`` ...);
        ``"ranking"`` (never detected) takes the target as relevance and ``group`` as query ids;
        ``"mixed"`` (never detected, but asked for by ``synthetic:mixed_targets``) takes two
        target columns, a numeric one then a class one (see :mod:`lossreg.compare._mixed`).
    group : str, optional
        A column of group (environment, domain) ids: taken out of the features, passed to
        losses that declare the ``group`` fit extra, and scored by ``worst_group_accuracy``;
        the query ids of a ranking task.
    target_domain : str, optional
        ``"COLUMN=VALUE"``: the rows where COLUMN (not a feature) equals VALUE are a shifted
        target domain, unlabeled in training and scored in testing (see
        :mod:`lossreg.compare._unlabeled`).
    votes : str or list of str, optional
        Columns of annotator vote counts, one per class in sorted class order (names
        separated by commas, or a list): taken out of the features, scored against as
        ``vote_emd`` / ``vote_ece`` and trained on by the ``votes`` scenario. Generated data
        with ``votes_0 ..`` columns uses them without being told.
    event : str, optional
        A column of event indicators (1 observed, 0 censored): the target is then a survival
        time and the task ``"survival"``; ``y`` becomes a frame of (time, event).
    probe_target : str, optional
        Embeddings: a second label column (not a feature) that the embedding probes read
        instead of the target (see :mod:`lossreg.compare._probe_target`). Generated data
        that names one (``synthetic:multidevice``: ``activity``) uses it for embeddings.
    bid : str, optional
        A column of bids (>= 0) of ads in auctions (``group`` ids): taken out of the
        features, passed to losses that declare the ``bid`` fit extra, and scored with the
        binary test folds' ``welfare`` (see :mod:`lossreg.compare._welfare`). Generated data
        with a ``bid`` column (``synthetic:auctions``) uses it without being told.
    """
    if data is None:
        data = "breast_cancer"
    true_sigma = None
    if isinstance(data, pd.DataFrame):
        frame, name = data, "dataframe"
    elif isinstance(data, str) and data in SKLEARN_DATASETS:
        frame, name = _sklearn_frame(data), data
        target = target or "target"
    elif isinstance(data, str) and data.startswith(PREFIX):
        name, frame = make_synthetic(data)
        if "true_sigma" in frame.columns:  # the answer to the variance head, not a feature
            true_sigma = frame["true_sigma"].reset_index(drop=True)
            frame = frame.drop(columns=["true_sigma"])
        # multilabel and multioutput generators name their columns target_0, target_1, ...
        labels = [c for c in frame.columns if str(c).startswith("target_")]
        target = target or ("target" if "target" in frame.columns else labels)
        task = task or frame.attrs.get("task")  # a generator may ask for one (ordinal)
        # a generator's group ids would give the label away as a feature
        group = group or ("group" if "group" in frame.columns else None)
        votes = votes or [c for c in frame.columns if str(c).startswith("votes_")] or None
        event = event or ("event" if "event" in frame.columns else None)
        bid = bid or ("bid" if "bid" in frame.columns else None)  # synthetic:auctions
        if event is not None and task is None:
            task = "survival"
        if task == "embedding":  # a generator's second label would be a feature otherwise
            probe_target = probe_target or frame.attrs.get("probe_target")
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
    columns = _target_columns(target, frame.columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"Target column {missing[0]!r} is not in {name!r}; columns: "
            f"{', '.join(map(str, frame.columns[:20]))}."
        )
    several = len(columns) > 1
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
    elif task == "mixed":  # a numeric column, then a class column
        y = mixed_target(frame[columns])
    elif several and (
        task == "multioutput" or (task != "multilabel" and not _zero_one(frame[columns]))
    ):
        y = multioutput_target(frame[columns])
    elif several:
        y = _multilabel_target(frame[columns])
    else:
        # An object column of Python ints (class names that are numbers) reads as "unknown"
        # to scikit-learn's target checks; give it its real dtype.
        y = frame[columns[0]].infer_objects()
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
    bids = None
    if bid is not None:
        from lossreg.compare._welfare import split_bids

        frame, bids = split_bids(frame, bid, [*columns, group], name, group)
    probe = None
    if probe_target is not None:
        from lossreg.compare._probe_target import split_probe_target

        probe = split_probe_target(frame, probe_target, [*columns, group], name)
        frame = frame.drop(columns=[probe_target])
    target_rows = None
    if target_domain is not None:
        domain, target_rows = parse_target_domain(target_domain, frame, name)
        frame = frame.drop(columns=[domain])
    vote_frame = None
    if votes is not None:
        vote_frame = split_votes(frame, _target_columns(votes), y, name)
        frame = frame.drop(columns=list(vote_frame.attrs["columns"]))
    X = _normalise_features(frame.drop(columns=columns))
    if task == "recommendation":  # user ids and item ids, as codes (see _recommend)
        from lossreg.compare._recommend import interaction_table

        X, y = interaction_table(X, y, name)
    y = y.reset_index(drop=True)
    X = X.reset_index(drop=True)
    if event is not None:
        detected = "survival"
    elif task == "mixed":
        detected = "mixed"
    elif isinstance(y, pd.DataFrame):
        detected = "multioutput" if y.dtypes.iloc[0] == np.float64 else "multilabel"
        if task not in (None, detected):
            raise ValueError(
                f"Several target columns make a multilabel (0/1 values) or a multioutput "
                f"(numeric values) target; task={task!r} needs one column. Use "
                f"task={detected!r} for these columns, or name one target column."
            )
    else:
        # rows without a target are an unlabeled pool (class targets only; checked below)
        detected = task or detect_task(labelled_target(y, columns[0]))
        check_pool(y, detected, columns[0])
    if detected not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}. Got {detected!r}.")
    if target_rows is not None and detected not in ("binary", "multiclass"):
        raise ValueError(
            f"target_domain applies to binary and multiclass targets (its rows become "
            f"unlabeled, label -1); this task is {detected!r}."
        )
    if detected == "outlier" and not set(pd.unique(y)) <= {0, 1}:
        raise ValueError(
            "task='outlier' needs a 0/1 target (1 marks an outlier); target "
            f"{columns[0]!r} has values {sorted(map(repr, pd.unique(y)))[:5]}."
        )
    if detected == "ordinal" and not (
        pd.api.types.is_numeric_dtype(y) and detect_task(y) != "regression"
    ):
        raise ValueError(
            "task='ordinal' needs ordered class labels: a few integer values whose order is the "
            "class order (map names such as 'low' < 'high' to 0, 1, ... first)."
        )
    if detected == "ranking":
        from lossreg.compare._ranksurv import check_ranking

        check_ranking(y, groups, name)
    if detected == "embedding" and detect_task(y.dropna()) == "regression":
        raise ValueError(
            "task='embedding' scores embeddings with class labels; y is continuous. Use "
            "task='embedding_regression' to embed rows by a continuous target."
        )
    if detected == "embedding_regression" and not pd.api.types.is_numeric_dtype(y):
        raise ValueError(
            f"task='embedding_regression' needs a numeric target; {columns[0]!r} holds "
            f"{y.dtype} values."
        )
    if detected in ("multilabel", "multioutput") and not isinstance(y, pd.DataFrame):
        kind = "0/1" if detected == "multilabel" else "numeric"
        raise ValueError(f"A {detected} target needs several target columns of {kind} values.")
    # group ids, target-domain marks and votes are part of what a comparison ran on: results
    # of other ones do not match
    keyed = X if groups is None else X.assign(__group__=groups)
    if probe is not None:
        keyed = keyed.assign(__probe__=probe)
    if bids is not None:
        keyed = keyed.assign(__bid__=bids.to_numpy())
    if target_rows is not None:
        keyed = keyed.assign(__target_domain__=target_rows)
    if vote_frame is not None:
        keyed = keyed.assign(**{f"__votes_{i}__": c for i, (_, c) in enumerate(vote_frame.items())})
    digest = fingerprint(keyed, y)
    return Dataset(
        name,
        X,
        y,
        detected,
        digest,
        groups,
        target_rows=target_rows,
        true_sigma=true_sigma,
        votes=vote_frame,
        probe=probe,
        bids=bids,
    )


def split_votes(frame: pd.DataFrame, columns: list[str], y: Any, name: str) -> pd.DataFrame:
    """Vote-count columns as a frame whose columns are the sorted class labels."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"Vote column {missing[0]!r} is not in {name!r}; columns: "
            f"{', '.join(map(str, frame.columns[:20]))}."
        )
    if isinstance(y, pd.DataFrame):
        raise ValueError("Votes need a single class target, not a multilabel one.")
    classes = np.unique(y.to_numpy())
    if len(columns) != len(classes):
        raise ValueError(
            f"{len(columns)} vote columns for {len(classes)} classes: pass one vote-count "
            "column per class, in sorted class order."
        )
    try:
        counts = frame[columns].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        counts = np.array([[np.nan]])
    if np.isnan(counts).any() or (counts < 0).any():
        raise ValueError(f"Vote columns {', '.join(columns)} must hold counts >= 0.")
    if (counts.sum(axis=1) <= 0).any():
        raise ValueError(f"{int((counts.sum(axis=1) <= 0).sum())} rows have no votes.")
    out = pd.DataFrame(counts, columns=classes).reset_index(drop=True)
    out.attrs["columns"] = tuple(columns)
    return out


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


def _target_columns(target: str | list[str], available: Any = ()) -> list[str]:
    """Column names from ``"a,b"`` or a list; a name with ``*`` or ``?`` matches columns
    of ``available`` (``"target_*"``), in their order."""
    names = [c.strip() for c in target.split(",")] if isinstance(target, str) else target
    columns: list[str] = []
    for name in (str(n) for n in names if str(n).strip()):
        if "*" not in name and "?" not in name:
            columns.append(name)
            continue
        matched = [str(c) for c in available if fnmatch.fnmatchcase(str(c), name)]
        if not matched:
            raise ValueError(
                f"Target pattern {name!r} matches no column; columns: "
                f"{', '.join(map(str, list(available)[:20]))}."
            )
        columns.extend(matched)
    return columns


def _zero_one(frame: pd.DataFrame) -> bool:
    """Whether every value is 0 or 1 (a multilabel target) and not other numbers."""
    try:
        values = frame.to_numpy().astype(np.float64)
    except (TypeError, ValueError):
        return False  # not numbers: the multioutput check names the column
    return bool(np.isin(values[~np.isnan(values)], (0.0, 1.0)).all())


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
