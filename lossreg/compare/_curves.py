"""Training dynamics of one fit: per-epoch train / test scores and the metrics read from them.

``compare(..., curves=True)`` keeps a copy of the module's weights after every epoch (a skorch
callback), then replays them after the fit to score the training rows and the test fold epoch
by epoch. Replaying afterwards, rather than scoring inside the training loop, leaves the
training itself untouched: a fit with curves trains exactly as one without.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
from skorch.callbacks import Callback

__all__ = [
    "CURVE_METRICS",
    "CURVE_TASKS",
    "SNAPSHOT_CALLBACK",
    "EpochSnapshots",
    "check_curves",
    "curve_metrics",
    "diverged",
    "epoch_metrics",
    "learning_curves",
    "loss_rises",
    "record_divergence",
    "snapshots",
]

#: the tasks whose fits can record learning curves
CURVE_TASKS = ("binary", "multiclass", "regression")

#: name of the snapshot callback among the net's callbacks
SNAPSHOT_CALLBACK = "epoch_snapshots"

#: scalar metrics a fit with curves reports, per task kind, and whether greater is better
CURVE_METRICS: dict[str, dict[str, bool]] = {
    "classes": {
        "train_accuracy": True,
        "epochs_to_fit": False,
        "test_accuracy_auc": True,
        "loss_rises": False,
    },
    "regression": {"train_rmse": False, "test_rmse_auc": False, "loss_rises": False},
}


def curve_metrics(task: str, curves: bool) -> tuple[str, ...]:
    """The training-dynamics metrics a fit of ``task`` reports: ``diverged`` always, the
    :data:`CURVE_METRICS` of the task with ``curves``."""
    if not curves or task not in CURVE_TASKS:
        return ("diverged",)
    kind = "regression" if task == "regression" else "classes"
    return ("diverged", *CURVE_METRICS[kind])


def check_curves(task: str, curves: Any) -> None:
    """Raise a ``ValueError`` naming the fix when ``curves`` cannot apply to ``task``."""
    if not isinstance(curves, bool):
        raise ValueError(f"curves must be true or false. Got {curves!r}.")
    if curves and task not in CURVE_TASKS:
        raise ValueError(
            f"Learning curves are scored for {', '.join(CURVE_TASKS)} targets; this task is "
            f"{task!r}. Drop curves=True (--curves) for it."
        )


class EpochSnapshots(Callback):
    """Keep a CPU copy of the module's ``state_dict`` at the end of every epoch."""

    def initialize(self) -> EpochSnapshots:
        self.states_: list[dict[str, Any]] = []
        return self

    def on_epoch_end(self, net: Any, **kwargs: Any) -> None:
        state = net.module_.state_dict()
        self.states_.append({k: v.detach().cpu().clone() for k, v in state.items()})


def diverged(train_loss: list[float]) -> float:
    """1.0 when training diverged, else 0.0.

    Diverged means a non-finite training loss in some epoch, or a last-epoch loss above the
    first epoch's (the optimiser made the fit worse than where it started).
    """
    values = np.asarray(train_loss, dtype=np.float64)
    if len(values) == 0:
        return 0.0
    if not np.all(np.isfinite(values)):
        return 1.0
    return float(values[-1] > values[0])


def snapshots() -> tuple[str, EpochSnapshots]:
    """The named callback to add to an estimator's ``callbacks`` for :func:`learning_curves`."""
    return (SNAPSHOT_CALLBACK, EpochSnapshots())


def record_divergence(record: dict[str, Any], model: Any) -> None:
    """Set ``record["diverged"]`` of a finished compare fit from its training losses.

    A fit whose loss became non-finite never finishes: the estimator raises
    ``TrainingDivergedError``, which ``run_fit`` records as ``diverged = 1``.
    """
    losses = [float(v) for v in model.estimator_[-1].history_[:, "train_loss"]]
    record["diverged"] = diverged(losses)


def epoch_metrics(
    spec: dict[str, Any], model: Any, X_test: np.ndarray, y_test: np.ndarray
) -> dict[str, Any]:
    """:func:`learning_curves` and :func:`loss_rises` of one fitted compare model.

    ``model`` is compare's fitted ``StressedEstimator``; the training rows are the
    (corrupted) rows it was fitted on, after its fitted preprocessing.
    """
    prep, est = model.estimator_[:-1], model.estimator_[-1]
    X_fit, y_fit = model.fit_rows_
    out = learning_curves(
        est,
        spec["task"],
        prep.transform(X_fit),
        np.asarray(y_fit),
        X_test,
        y_test,
        int(spec["estimator"].get("max_iter", 100)),
    )
    out["loss_rises"] = loss_rises([float(v) for v in est.history_[:, "train_loss"]])
    return out


def loss_rises(train_loss: list[float]) -> float:
    """The share of epoch-to-epoch steps in which the training loss went up (NaN: 1 epoch)."""
    values = np.asarray(train_loss, dtype=np.float64)
    if len(values) < 2:
        return math.nan
    return float(np.mean(np.diff(values) > 0))


def learning_curves(
    est: Any,
    task: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    max_epochs: int,
) -> dict[str, Any]:
    """Score every epoch's weights of a fitted estimator on its training rows and test fold.

    Parameters
    ----------
    est : estimator
        The fitted lossreg estimator (or compare's ``TargetScaled`` around one) whose net ran
        an :class:`EpochSnapshots` callback.
    task : str
        ``binary`` / ``multiclass`` (accuracy) or ``regression`` (RMSE in target units).
    X_train, y_train, X_test, y_test : arrays
        Preprocessed features and targets of the rows the model was fitted on and of the
        test fold.
    max_epochs : int
        The fit's epoch budget: a fit stopped early keeps its last score until then, so
        ``*_auc`` (the mean of the test curve over the budget) compares fits of any length.

    Returns
    -------
    dict
        Per-epoch lists ``train_<score>_curve`` / ``test_<score>_curve`` and the scalars of
        :data:`CURVE_METRICS`; ``epochs_to_fit`` (classes) is the first epoch (from 1) with
        every training row right, ``max_epochs + 1`` when no epoch reached it.
    """
    inner = getattr(est, "regressor_", est)
    net = inner.net_
    snapshots = dict(net.callbacks_).get(SNAPSHOT_CALLBACK)
    if snapshots is None:
        raise ValueError(
            f"The estimator ran no {SNAPSHOT_CALLBACK!r} callback: fit it with "
            f"callbacks=[({SNAPSHOT_CALLBACK!r}, EpochSnapshots())] to get learning curves."
        )
    final = copy.deepcopy(net.module_.state_dict())
    regression = task == "regression"
    name = "rmse" if regression else "accuracy"
    train_curve, test_curve = [], []
    try:
        for state in snapshots.states_:
            net.module_.load_state_dict(state)
            train_curve.append(_score(est, X_train, y_train, regression))
            test_curve.append(_score(est, X_test, y_test, regression))
    finally:
        net.module_.load_state_dict(final)
    out: dict[str, Any] = {
        f"train_{name}_curve": train_curve,
        f"test_{name}_curve": test_curve,
    }
    if not train_curve:
        return out
    padded = test_curve + [test_curve[-1]] * max(0, max_epochs - len(test_curve))
    out[f"train_{name}"] = train_curve[-1]
    out[f"test_{name}_auc"] = float(np.mean(padded))
    if not regression:
        fitted = [i + 1 for i, acc in enumerate(train_curve) if acc >= 1.0]
        out["epochs_to_fit"] = float(fitted[0] if fitted else max_epochs + 1)
    return out


def _score(est: Any, X: np.ndarray, y: np.ndarray, regression: bool) -> float:
    pred = np.asarray(est.predict(X))
    if regression:
        if pred.ndim > 1:  # quantile columns in level order: the middle one is the median
            pred = pred.reshape(len(y), -1)[:, pred.shape[1] // 2]
        error = pred.astype(np.float64) - np.asarray(y, dtype=np.float64)
        # a diverged epoch predicts NaN or inf: its RMSE is inf, not an exception
        return float(np.sqrt(np.mean(error**2))) if np.all(np.isfinite(error)) else math.inf
    return float(np.mean(pred == np.asarray(y)))
