"""LossRegressor: a scikit-learn regressor trained with any registered loss."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _num_samples

from ._base import LossEstimatorBase, fit_extras_from

__all__ = ["LossRegressor"]


class LossRegressor(RegressorMixin, LossEstimatorBase):
    """A neural-network regressor trained with a registered loss, chosen by name.

    Single- and multi-output targets. Parameters are those of
    :class:`~lossreg.LossClassifier` without ``class_weight``; ``loss`` defaults to ``"mse"``.
    ``predict`` applies the loss's link (identity for point losses; expected bin value,
    Gaussian mean, quantiles ... for losses that say so).
    """

    _tasks = ("regression",)

    def __init__(
        self,
        loss: Any = "mse",
        *,
        module: Any = None,
        max_iter: int = 200,
        batch_size: int | str = "auto",
        lr: float = 1e-3,
        optimizer: Any = "adamw",
        weight_decay: float = 0.0,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        random_state: Any = None,
        device: Any = "cpu",
        verbose: int = 0,
        warm_start: bool = False,
        callbacks: list[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.loss = loss
        self.module = module
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks
        self._store_prefixed(kwargs)

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        group: Any = None,
        bag: Any = None,
        bag_target: Any = None,
        teacher_logits: Any = None,
        sample_index: Any = None,
        event: Any = None,
        rejected_label: Any = None,
        teacher_features: Any = None,
        bid: Any = None,
        value: Any = None,
    ) -> LossRegressor:
        """Train on ``X``, ``y``; per-row ``sample_weight`` and the extras the loss declares.

        Conformal losses (those whose module has ``calibrate``, e.g. ``r2ccp``) train on
        ``1 - validation_fraction`` of the rows and calibrate on the rest (split conformal
        prediction), so ``predict_interval`` covers new rows at the nominal level.
        """
        extras = fit_extras_from(locals())
        if not self._loss_offers("calibrate"):
            return self._fit(X, y, sample_weight, extras)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        train, held_out = train_test_split(
            np.arange(_num_samples(X)), test_size=self.validation_fraction, random_state=seed
        )

        def rows(value: Any, index: np.ndarray) -> Any:
            return None if value is None else _safe_indexing(value, index)

        self._fit(
            rows(X, train),
            rows(y, train),
            rows(sample_weight, train),
            {name: rows(value, train) for name, value in extras.items()},
        )
        out, _ = self._forward64(rows(X, held_out))
        target = torch.as_tensor(np.asarray(rows(y, held_out), dtype=np.float64))
        self.criterion_.calibrate(out, target.reshape(out.shape[0], -1).squeeze(-1))
        return self

    def _prepare_target(self, y: Any) -> tuple[str, np.ndarray, int]:
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        self.n_outputs_ = 1 if y.ndim == 1 else int(y.shape[1])
        return "regression", y, 1

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Predicted values: (n_samples,) for one target, else (n_samples, n_outputs).

        With ``return_std=True`` (losses that predict a scale: ``gaussian_nll``,
        ``laplace_nll`` ...), also the predicted standard deviations, shaped alike.
        """
        values = self._squeeze(self._linked(X))
        if not return_std:
            return values
        if not self._loss_offers("predict_std"):
            raise ValueError(
                f"Loss {self._spec().name!r} predicts no standard deviation. Use a loss that "
                "predicts a scale, e.g. loss='gaussian_nll' or loss='laplace_nll'."
            )
        return values, self._squeeze(self._criterion_method(X, "predict_std"))

    @available_if(
        lambda self: self._loss_offers("predict_interval") or self._loss_offers("predict_intervals")
    )
    def predict_interval(self, X: Any, alpha: float = 0.1) -> np.ndarray:
        """``1 - alpha`` prediction intervals: (n_samples, 2) columns lower, upper
        ((n_samples, n_outputs, 2) for several targets).

        Distributional losses give central intervals; conformal losses (``r2ccp``) give the
        smallest interval enclosing their conformal prediction set.
        """
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1). Got {alpha!r} instead.")
        if self._loss_offers("predict_interval"):
            lower, upper = self._criterion_method(X, "predict_interval", alpha=alpha)
            return self._squeeze(np.stack([lower, upper], axis=-1))
        segments = self._criterion_method(X, "predict_intervals", alpha=alpha)  # (N, S, 2)
        with np.errstate(all="ignore"):
            return np.stack(
                [np.nanmin(segments[..., 0], axis=1), np.nanmax(segments[..., 1], axis=1)],
                axis=-1,
            )

    @available_if(lambda self: self._loss_offers("predict_quantiles"))
    def predict_quantiles(self, X: Any) -> np.ndarray:
        """Predicted quantiles at the loss's levels: (n_samples, n_levels), or
        (n_samples, n_outputs, n_levels) for several targets; sorted along the levels."""
        return self._squeeze(self._criterion_method(X, "predict_quantiles"))

    def _squeeze(self, values: np.ndarray) -> np.ndarray:
        """Drop the target axis (axis 1) of single-target predictions."""
        if self.n_outputs_ == 1 and values.ndim >= 2 and values.shape[1] == 1:
            return values[:, 0]
        return values
