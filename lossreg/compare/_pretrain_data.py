"""``lossreg compare --pretrain LOSS --pretrain-data DATA``: pretrain on a set beside the folds.

Two-phase training pretrains on a large set that is not the distribution scored (synthetic
bugs, another hospital, a simulator) and fine-tunes on the small real set. With
``pretrain_data``, compare's pretraining (:mod:`lossreg.compare._pretrain`) uses that set
instead of the training fold: before each fold's fit, the fold's preprocessing is fitted on
the training fold as always, the pretraining set is transformed with it (the pretrained
network sees its rows in the coordinates the real rows have), the ``pretrain`` loss is fitted
on it, and each compared loss continues from that network on the training fold. Neither the
scenario nor the test fold touches the pretraining set.

The set is named like ``data`` (a scikit-learn name, ``synthetic:NAME(...)``, a CSV or
Parquet file) and must have the same feature columns and target column; it is loaded once per
worker process.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

__all__ = ["PretrainingPipeline", "check_pretrain_data", "pretraining_set"]


def check_pretrain_data(
    pretrain_data: Any, pretrain: str | None, dataset: Any
) -> dict[str, str] | None:
    """Load and check the pretraining set; return its name, target column and fingerprint.

    Returns None without ``pretrain_data``; refuses it without ``pretrain``, in a form that
    cannot be named in a record (a DataFrame), with other feature columns than ``dataset``'s
    or with missing labels; for a classification ``pretrain`` loss (whose whole network is
    continued, output layer included), with other classes.
    """
    from lossreg.compare._pretrain import embeds

    if pretrain_data is None:
        return None
    if pretrain is None:
        raise ValueError(
            "pretrain_data (--pretrain-data) is the set a network is pretrained on: it needs "
            "pretrain=LOSS (--pretrain), e.g. pretrain='supcon' or 'cross_entropy'."
        )
    if not isinstance(pretrain_data, str):
        raise ValueError(
            "pretrain_data must name a data set (a scikit-learn name, 'synthetic:NAME(...)', "
            f"a CSV or Parquet file) so that its records can be resumed; got a "
            f"{type(pretrain_data).__name__}. Write it to a file and pass the path."
        )
    target = str(dataset.y.name)
    X, y = pretraining_set(pretrain_data, target)
    wanted, have = list(dataset.X.columns), list(X.columns)
    if have != wanted:
        missing = [c for c in wanted if c not in have]
        extra = [c for c in have if c not in wanted]
        raise ValueError(
            f"pretrain_data {pretrain_data!r} must have the data's feature columns, in the "
            f"same order: missing {missing[:10]}, extra {extra[:10]}, data's columns "
            f"{wanted[:10]}{' ...' if len(wanted) > 10 else ''}."
        )
    if pd.isna(y).any():
        raise ValueError(
            f"pretrain_data {pretrain_data!r} has rows without a {target!r} label; the "
            "pretraining loss learns from labels. Drop those rows."
        )
    if not embeds(pretrain):
        ours, theirs = np.unique(dataset.y.dropna()), np.unique(y)
        if not np.array_equal(ours, theirs):
            raise ValueError(
                f"pretrain={pretrain!r} trains the whole network, output layer included, so "
                f"pretrain_data {pretrain_data!r} needs the data's classes {ours.tolist()}; "
                f"it has {theirs.tolist()}. Pretrain an embedding instead (e.g. "
                "pretrain='supcon'): only its hidden layers are continued."
            )
    fingerprint = _dataset(pretrain_data, target).fingerprint
    return {"data": pretrain_data, "target": target, "fingerprint": fingerprint}


def pretraining_set(data: str, target: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The features and labels of a pretraining set."""
    dataset = _dataset(data, target)
    if isinstance(dataset.y, pd.DataFrame) or dataset.task not in ("binary", "multiclass"):
        raise ValueError(
            f"pretrain_data {data!r} needs one column of class labels {target!r}; its target "
            f"is {dataset.task}."
        )
    return dataset.X, dataset.y.to_numpy()


@lru_cache(maxsize=4)
def _dataset(data: str, target: str) -> Any:
    # cached: every fit of a worker process pretrains on the same set
    from lossreg.compare._data import load_data

    return load_data(data, target=target)


class PretrainingPipeline(Pipeline):
    """A Pipeline whose last step (a ``Pretrained``) pretrains on another, preprocessed set.

    ``fit`` fits the preprocessing steps on the training rows, transforms the pretraining
    set ``pretrain_data`` with them and gives it to the last step as ``pretrain_rows``.
    Prediction is the Pipeline's. Without ``pretrain_data`` it is a plain Pipeline (as its
    slices are).

    Parameters
    ----------
    steps : list of (name, estimator)
        As Pipeline's; the last one takes ``fit(X, y, pretrain_rows=(X_pre, y_pre))``.
    pretrain_data : str, optional
        The pretraining set, named as compare's ``data``.
    pretrain_target : str, default="target"
        Its label column.
    """

    def __init__(
        self,
        steps: list[tuple[str, Any]],
        *,
        pretrain_data: str | None = None,
        pretrain_target: str = "target",
        memory: Any = None,
        verbose: bool = False,
    ) -> None:
        super().__init__(steps, memory=memory, verbose=verbose)
        self.pretrain_data = pretrain_data
        self.pretrain_target = pretrain_target

    def fit(self, X: Any, y: Any = None, **params: Any) -> PretrainingPipeline:
        """Fit the preprocessing, then the last step with the preprocessed pretraining set.

        ``params`` go to the last step (``<its name>__<param>``), as compare passes them.
        """
        if self.pretrain_data is None:
            return super().fit(X, y, **params)
        last = self.steps[-1][0]
        routed = {}
        for key, value in params.items():
            step, _, name = key.partition("__")
            if step != last or not name:
                raise ValueError(
                    f"PretrainingPipeline passes fit parameters to its last step only "
                    f"({last}__NAME); got {key!r}."
                )
            routed[name] = value
        X_pre, y_pre = pretraining_set(self.pretrain_data, self.pretrain_target)
        # the training fold fits the preprocessing; the pretraining set is only transformed
        for _, step in self.steps[:-1]:
            X = step.fit_transform(X, y)
            X_pre = step.transform(X_pre)
        self.steps[-1][1].fit(X, y, pretrain_rows=(X_pre, y_pre), **routed)
        return self
