"""``lossreg compare --calibrate BASE``: compare post-hoc calibration losses on one base model.

With ``calibrate``, the compared losses are calibration losses (``temperature_scaling``,
``correctness_aware``, ``h_calibration`` ...): in every fit, the base model (a
:class:`~lossreg.estimators.LossClassifier` trained with the ``BASE`` loss) is trained on a
share of the (stressed) training fold and the calibration loss is fitted on the rest, with
:class:`~lossreg.estimators.LossCalibratedClassifier`. The split and the base model's seed
depend only on (repeat, fold), so every calibration loss of a fold calibrates the same base
model and the paired differences measure the calibrators alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

__all__ = ["CALIBRATION_SHARE", "HeldOutCalibrated", "check_calibrate", "is_calibration_loss"]

#: share of each training fold held out to fit the calibrator
CALIBRATION_SHARE = 0.2


def is_calibration_loss(name: str, registry: Any = None) -> bool:
    """Whether a registered loss is a post-hoc calibrator (its module has ``calibrate``)."""
    from lossreg.registry import default_registry

    spec = (registry or default_registry()).get_spec(name)
    return callable(getattr(spec.factory, "calibrate", None))


def check_calibrate(
    base: Any, labels: list[str], names: list[str], task: str, registry: Any
) -> str:
    """Check a ``calibrate`` setting; return the base loss's canonical name.

    Raises ``ValueError`` naming the offending value: the task must have classes, the base must
    be a classification loss that is not itself a calibrator, and every compared loss must be
    a calibration loss.
    """
    if not isinstance(base, str) or not base:
        raise ValueError(
            f"calibrate must name the base model's loss, e.g. calibrate='cross_entropy'. "
            f"Got {base!r}."
        )
    if task not in ("binary", "multiclass"):
        raise ValueError(
            f"calibrate={base!r} calibrates class probabilities; the target is {task}. "
            "Drop calibrate, or compare on a class target."
        )
    spec = registry.get_spec(base)  # UnknownLossError with a suggestion
    supported = task in spec.tasks or (task == "binary" and "multiclass" in spec.tasks)
    if not supported or is_calibration_loss(spec.name, registry):
        raise ValueError(
            f"calibrate={base!r}: the base model must be trained with a classification loss "
            f"that is not a calibrator, e.g. calibrate='cross_entropy'."
        )
    wrong = [label for label, n in zip(labels, names) if not is_calibration_loss(n, registry)]
    if wrong:
        calibrators = [n for n in registry.list_losses(task=task) if is_calibration_loss(n)]
        raise ValueError(
            f"With calibrate={base!r} every compared loss is a post-hoc calibrator; "
            f"{', '.join(map(repr, wrong))} is not. Calibration losses: "
            f"{', '.join(calibrators)} (the baseline defaults to temperature_scaling)."
        )
    return spec.name


class HeldOutCalibrated(ClassifierMixin, BaseEstimator):
    """Train ``estimator`` on part of the rows, fit a calibration loss on the rest.

    Parameters
    ----------
    estimator : classifier
        The base model (a LossClassifier, whose ``history_`` compare reports).
    method : str
        The calibration loss, by name.
    method_params : dict, optional
        Its hyperparameters.
    calibration_share : float, default=CALIBRATION_SHARE
        Share of the rows held out (stratified) for the calibrator.
    random_state : int, default=0
        Seeds the split.
    """

    def __init__(
        self,
        estimator: Any = None,
        method: str = "temperature_scaling",
        method_params: dict[str, Any] | None = None,
        calibration_share: float = CALIBRATION_SHARE,
        random_state: int = 0,
    ) -> None:
        self.estimator = estimator
        self.method = method
        self.method_params = method_params
        self.calibration_share = calibration_share
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> HeldOutCalibrated:
        """Split, train the base model, fit the calibrator on the held-out rows."""
        from sklearn.model_selection import train_test_split

        from lossreg.estimators import LossCalibratedClassifier

        if not 0 < self.calibration_share < 1:
            raise ValueError(
                f"calibration_share must be in (0, 1). Got {self.calibration_share!r}."
            )
        y = np.asarray(y)
        _, counts = np.unique(y, return_counts=True)
        # stratify when every class can give a row to both sides
        stratify = y if counts.min() >= 2 else None
        X_train, X_cal, y_train, y_cal = train_test_split(
            X,
            y,
            test_size=self.calibration_share,
            random_state=self.random_state,
            stratify=stratify,
        )
        self.base_ = clone(self.estimator).fit(X_train, y_train)
        self.calibrated_ = LossCalibratedClassifier(
            self.base_, method=self.method, cv="prefit", method_params=self.method_params
        ).fit(X_cal, y_cal)
        self.classes_ = self.calibrated_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities."""
        return self.calibrated_.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        """The class of highest calibrated probability."""
        return self.calibrated_.predict(X)

    @property
    def history_(self) -> Any:
        """The base model's training history."""
        return self.base_.history_
