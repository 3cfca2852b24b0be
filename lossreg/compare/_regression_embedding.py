"""Embeddings of regression targets (``task="embedding_regression"``): fitting and probes.

An embedding loss that weighs pairs by their continuous targets (``cwcl(kernel="laplace")``)
trains on ``y`` itself; a loss on class labels (``supcon``, ``triplet`` ...) is given the
quantile bins of ``y`` instead, with ``bin_targets`` (an estimator setting: one K for every
label loss, or a dict by loss name; losses on the targets themselves are never binned): the
K - 1 inner quantiles of each training fold's targets cut it into K classes of about equal
size. Label-free two-view losses (``info_nce``)
need neither. Every fit is scored by what its test embeddings tell about ``y``: a ridge
linear probe (``linear_probe_r2``) and a kNN regressor (``knn_r2``), both fitted on the
training fold's embeddings and targets.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone

from lossreg.compare._multioutput import scaling_stats

__all__ = [
    "REGRESSION_EMBEDDING_DIRECTIONS",
    "REGRESSION_EMBEDDING_METRICS",
    "TASK",
    "TargetPrepared",
    "bins_of",
    "check_regression_embedding",
    "quantile_bins",
    "regression_embedding_metrics",
]

#: the compare task
TASK = "embedding_regression"

#: metric -> greater is better
REGRESSION_EMBEDDING_DIRECTIONS = {"linear_probe_r2": True, "knn_r2": True}
REGRESSION_EMBEDDING_METRICS = tuple(REGRESSION_EMBEDDING_DIRECTIONS)

#: the ridge probe picks its penalty among these by leave-one-out on the training fold
PROBE_ALPHAS = tuple(np.logspace(-3, 3, 13))

#: neighbours of the kNN regressor probe
KNN_NEIGHBORS = 5


def bins_of(setting: Any, loss: str, params: dict[str, Any] | None = None) -> int | None:
    """The ``bin_targets`` of one loss: ``setting`` itself, or its entry for ``loss`` in a dict
    by loss name (``"default"`` for the others; None, no binning, without one).

    A loss that trains on the continuous targets (``params`` decide) is never binned.
    """
    if setting is None or takes_continuous_target(loss, params or {}):
        return None
    if isinstance(setting, dict):
        from lossreg.registry import default_registry

        registry = default_registry()
        named = {
            (k if k == "default" else registry.get_spec(k).name): v for k, v in setting.items()
        }
        setting = named.get(registry.get_spec(loss).name, named.get("default"))
        if setting is None:
            return None
    if isinstance(setting, bool) or not isinstance(setting, numbers.Integral) or setting < 2:
        raise ValueError(
            f"bin_targets must be an int >= 2 (the number of quantile bins of y), or a dict of "
            f"them by loss name; got {setting!r} for loss {loss!r}."
        )
    return int(setting)


def takes_continuous_target(name: str, params: dict[str, Any]) -> bool:
    """Whether loss ``name`` with ``params`` trains on real-valued targets (a target kernel)."""
    from lossreg.estimators._mode import loss_mode
    from lossreg.registry import default_registry

    return loss_mode(default_registry().get_spec(name), params).target == "continuous"


def check_regression_embedding(choices: list[Any], task: str, setting: Any) -> None:
    """Refuse, with the fix, ``bin_targets`` outside this task and losses it cannot feed."""
    from lossreg.estimators._mode import loss_mode
    from lossreg.registry import default_registry

    if task != TASK:
        if setting is not None:
            raise ValueError(
                f"bin_targets={setting!r} bins the continuous targets of task {TASK!r} for "
                f"losses on class labels; this task is {task!r}. Drop bin_targets."
            )
        return
    registry = default_registry()
    if isinstance(setting, dict):
        # UnknownLossError, with a suggestion, for a misspelt name
        setting = {k: v for k, v in setting.items() if k == "default" or registry.get_spec(k)}
    named = set()
    if isinstance(setting, dict):
        named = {registry.get_spec(k).name for k in setting if k != "default"}
    unfed = []
    for choice in choices:
        mode = loss_mode(registry.get_spec(choice.name), choice.params)
        binned = bins_of(setting, choice.name, choice.params) is not None
        if mode.target == "continuous" and choice.name in named:
            raise ValueError(
                f"bin_targets names {choice.name!r}, but {choice.label} trains on the "
                "continuous targets themselves. Leave it out of bin_targets."
            )
        label_free = mode.views == 2 and mode.target == "labels"
        if mode.target == "labels" and not binned and not label_free:
            unfed.append(choice.label)
    if unfed:
        raise ValueError(
            f"{', '.join(unfed)} train(s) on class labels, but task {TASK!r} has continuous "
            "targets: give such losses quantile bins of y with the estimator setting "
            f"bin_targets, e.g. estimator_params={{'bin_targets': {{{unfed[0].split('(')[0]!r}: "
            "10}} (CLI: --param bin_targets=10; TOML: [compare.estimator] bin_targets = "
            "{supcon = 10}), or compare losses "
            "that weigh pairs by the targets, e.g. cwcl(kernel='laplace')."
        )


def quantile_bins(y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Class ids 0 .. K-1 of ``y`` cut at its K - 1 inner quantiles, and those edges.

    Ties can merge bins (a target with few distinct values): the edges are deduplicated, so
    there may be fewer than K classes.
    """
    y = np.asarray(y, dtype=np.float64)
    edges = np.unique(np.quantile(y, np.linspace(0, 1, k + 1)[1:-1]))
    # side="left": a value equal to an edge (ties at a quantile) stays in the lower bin
    return np.searchsorted(edges, y, side="left"), edges


class TargetPrepared(TransformerMixin, BaseEstimator):
    """Fit an embedder on each training fold's targets, binned or standardised.

    ``bins`` (an int): the embedder is fitted on the quantile-bin ids of ``y``
    (:func:`quantile_bins`, edges from this training fold only). Otherwise ``y`` is
    standardised with the fold's mean and standard deviation, so that a target kernel's
    bandwidth is in standard deviations of the target. ``transform`` is the embedder's.
    """

    def __init__(self, embedder: Any, bins: int | None = None) -> None:
        self.embedder = embedder
        self.bins = bins

    def fit(self, X: Any, y: Any, **fit_params: Any) -> TargetPrepared:
        y = np.asarray(y, dtype=np.float64)
        if self.bins is not None:
            target, self.bin_edges_ = quantile_bins(y, self.bins)
        else:
            offset, spread = scaling_stats(y, "standard")
            target, self.bin_edges_ = (y - offset) / spread, None
        self.embedder_ = clone(self.embedder).fit(X, target, **fit_params)
        return self

    def transform(self, X: Any) -> np.ndarray:
        return self.embedder_.transform(X)

    @property
    def history_(self) -> Any:
        return self.embedder_.history_

    @property
    def criterion_(self) -> Any:
        return self.embedder_.criterion_


def regression_embedding_metrics(
    train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray
) -> dict[str, float]:
    """R² on the test fold of a ridge probe and a kNN regressor fitted on training embeddings.

    The ridge probe reads standardised embeddings and picks its penalty among
    :data:`PROBE_ALPHAS` by leave-one-out on the training fold (``RidgeCV``).
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.neighbors import KNeighborsRegressor
    from sklearn.preprocessing import StandardScaler

    y_train = np.asarray(y_train, dtype=np.float64)
    scale = StandardScaler().fit(train)
    probe = RidgeCV(alphas=PROBE_ALPHAS).fit(scale.transform(train), y_train)
    knn = KNeighborsRegressor(n_neighbors=min(KNN_NEIGHBORS, len(y_train))).fit(train, y_train)
    return {
        "linear_probe_r2": float(r2_score(y_test, probe.predict(scale.transform(test)))),
        "knn_r2": float(r2_score(y_test, knn.predict(test))),
    }
