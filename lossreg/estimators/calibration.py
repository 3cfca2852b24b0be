"""LossCalibratedClassifier: a post-hoc calibrator, fitted with a registered calibration loss."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from lossreg.links import resolve_link
from lossreg.params import check_params
from lossreg.registry import get_spec

from ._base import fold_data_params
from .distill import _resolve_method, as_logits

__all__ = ["LossCalibratedClassifier"]


class LossCalibratedClassifier(ClassifierMixin, BaseEstimator):
    """Calibrate a classifier's probabilities with a calibrator fitted by a registered loss.

    Like :class:`sklearn.calibration.CalibratedClassifierCV`, but the calibrator is the
    module of a calibration loss (``temperature_scaling``, ``correctness_aware``,
    ``h_calibration`` or any loss whose module has a ``calibrate(logits)`` method), fitted
    with torch on the held-out logits of ``estimator``.

    Parameters
    ----------
    estimator : classifier
        Gives the logits: ``log(predict_proba)`` (clipped at ``eps``) or
        ``decision_function`` (see ``response_method``).
    method : str, default="temperature_scaling"
        The calibration loss, by name.
    cv : "prefit", int, cross-validation generator or iterable, default="prefit"
        ``"prefit"``: ``estimator`` is already fitted and ``fit(X, y)`` receives a
        calibration split it was not trained on. Otherwise the calibrator is fitted on
        out-of-fold logits (``cross_val_predict``) and ``estimator`` is then refitted on all
        rows.
    method_params : dict, optional
        Hyperparameters of the calibration loss (e.g. ``{"affine": True}``).
    optimizer : {"lbfgs", "adam"}, default="lbfgs"
        Full-batch L-BFGS (strong Wolfe line search), as in temperature scaling; or Adam.
    max_iter : int, default=100
        L-BFGS iterations, or Adam steps.
    lr : float, default=0.01
        Adam's learning rate (L-BFGS uses 1 with its line search).
    response_method : {"auto", "predict_proba", "decision_function"}, default="auto"
    eps : float, default=1e-7
        Probabilities are clipped to ``[eps, 1]`` before the log.

    Attributes
    ----------
    estimator_ : classifier
        The fitted classifier giving the logits.
    calibrator_ : torch.nn.Module
        The fitted calibration loss module (``calibrator_.temperature_`` for a temperature).
    classes_ : ndarray of shape (n_classes,)
    loss_history_ : list of float
        The calibration loss after each optimizer step.
    """

    def __init__(
        self,
        estimator: Any = None,
        method: str = "temperature_scaling",
        *,
        cv: Any = "prefit",
        method_params: dict[str, Any] | None = None,
        optimizer: str = "lbfgs",
        max_iter: int = 100,
        lr: float = 0.01,
        response_method: str = "auto",
        eps: float = 1e-7,
    ) -> None:
        self.estimator = estimator
        self.method = method
        self.cv = cv
        self.method_params = method_params
        self.optimizer = optimizer
        self.max_iter = max_iter
        self.lr = lr
        self.response_method = response_method
        self.eps = eps

    def _estimator_logits(self, estimator: Any, X: Any) -> np.ndarray:
        resolved = _resolve_method(estimator, self.response_method)
        return as_logits(getattr(estimator, resolved)(X), resolved, eps=self.eps)

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LossCalibratedClassifier:
        """Fit the calibrator on held-out logits of ``estimator`` (and the estimator, with cv).

        ``sample_weight`` weighs the calibration rows in the calibration loss only; with a
        ``cv`` the estimator itself is fitted without weights.
        """
        if self.estimator is None:
            raise ValueError("LossCalibratedClassifier needs an estimator to calibrate.")
        if self.optimizer not in ("lbfgs", "adam"):
            raise ValueError(f"optimizer must be 'lbfgs' or 'adam'. Got {self.optimizer!r}.")
        spec = get_spec(self.method)
        if not callable(getattr(spec.factory, "calibrate", None)):
            raise ValueError(
                f"Loss {spec.name!r} is not a calibration loss: its module has no "
                "calibrate(logits) method. Use temperature_scaling, correctness_aware or "
                "h_calibration."
            )
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        y_encoded = encoder.transform(y)
        n_classes = len(self.classes_)
        if self.cv == "prefit":
            check_is_fitted(self.estimator)
            self.estimator_ = self.estimator
            logits = self._estimator_logits(self.estimator_, X)
        else:
            resolved = _resolve_method(self.estimator, self.response_method)
            output = cross_val_predict(clone(self.estimator), X, y, cv=self.cv, method=resolved)
            logits = as_logits(output, resolved, eps=self.eps)
            self.estimator_ = clone(self.estimator).fit(X, y)
        if logits.shape[1] != n_classes:
            raise ValueError(
                f"The estimator gives {logits.shape[1]} logit columns but y has {n_classes} "
                "classes; calibrate on data that holds every class the estimator knows."
            )
        params = dict(self.method_params or {})
        check_params(spec.name, spec.params, params, prefix="method_params.")
        task = "binary" if n_classes == 2 else "multiclass"
        # The spec's data params and its members' (data_params_of), as the other estimators.
        data_params = fold_data_params(spec, params, y_encoded, task, n_classes)
        calibrator = spec.factory(**params, **data_params).to(torch.float64)
        inputs = torch.as_tensor(logits, dtype=torch.float64)
        target = torch.as_tensor(y_encoded, dtype=torch.int64)
        weight = None
        if sample_weight is not None:
            weight = torch.as_tensor(np.asarray(sample_weight, dtype=np.float64))
        self.loss_history_ = self._optimize(calibrator, inputs, target, weight)
        self.calibrator_ = calibrator.eval()
        self.method_ = spec.name
        self._link = resolve_link(spec.link)
        return self

    def _optimize(
        self,
        calibrator: torch.nn.Module,
        inputs: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None,
    ) -> list[float]:
        parameters = [p for p in calibrator.parameters() if p.requires_grad]
        kwargs = {} if weight is None else {"sample_weight": weight}
        history: list[float] = []

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = calibrator(inputs, target, **kwargs)
            loss.backward()
            return loss

        if self.optimizer == "lbfgs":
            optimizer: torch.optim.Optimizer = torch.optim.LBFGS(
                parameters, lr=1.0, max_iter=int(self.max_iter), line_search_fn="strong_wolfe"
            )
            optimizer.step(closure)
            history.append(float(calibrator(inputs, target, **kwargs).detach()))
        else:
            optimizer = torch.optim.Adam(parameters, lr=self.lr)
            for _ in range(int(self.max_iter)):
                history.append(float(optimizer.step(closure)))
        return history

    def _calibrated(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "calibrator_")
        logits = torch.as_tensor(self._estimator_logits(self.estimator_, X), dtype=torch.float64)
        calibrator = copy.deepcopy(self.calibrator_)
        with torch.no_grad():
            return self._link(logits, calibrator).numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated class probabilities, columns in the order of ``classes_``."""
        return self._calibrated(X)

    def predict(self, X: Any) -> np.ndarray:
        """The class with the highest calibrated probability."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
