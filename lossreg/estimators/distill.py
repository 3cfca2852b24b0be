"""Teacher signals for distillation: a fitted scikit-learn model's (out-of-fold) logits."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import cross_val_predict
from sklearn.utils.validation import check_is_fitted

__all__ = ["DistilledClassifier", "as_logits", "teacher_logits"]

_METHODS = ("auto", "predict_proba", "decision_function")


def _resolve_method(estimator: Any, method: str) -> str:
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, _METHODS))}. Got {method!r}.")
    if method != "auto":
        return method
    if hasattr(estimator, "predict_proba"):
        return "predict_proba"
    if hasattr(estimator, "decision_function"):
        return "decision_function"
    raise ValueError(
        f"{type(estimator).__name__} has neither predict_proba nor decision_function; a "
        "teacher must give per-class probabilities or scores."
    )


def as_logits(output: Any, method: str, *, eps: float = 1e-7) -> np.ndarray:
    """Turn ``predict_proba`` or ``decision_function`` output into (N, C) logits.

    Probabilities become ``log(clip(p, eps, 1))``: their softmax gives back the probabilities
    (up to the clip), and the clip keeps a class the teacher rules out at a finite logit
    ``log(eps)`` instead of ``-inf``. A binary decision function (N,) becomes the two-class
    logits ``[0, d]``, whose softmax is ``sigmoid(d)``.
    """
    values = np.asarray(output, dtype=np.float64)
    if method == "predict_proba":
        return np.log(np.clip(values, eps, 1.0))
    if values.ndim == 1:
        return np.column_stack([np.zeros_like(values), values])
    return values


def teacher_logits(
    estimator: Any,
    X: Any,
    y: Any = None,
    *,
    cv: Any = None,
    method: str = "auto",
    eps: float = 1e-7,
    groups: Any = None,
    params: dict[str, Any] | None = None,
) -> np.ndarray:
    """Return a teacher's logits for each row of ``X``, out-of-fold when ``cv`` is given.

    Use them as the ``teacher_logits`` fit extra of a distillation loss::

        t = teacher_logits(HistGradientBoostingClassifier(), X, y, cv=5)
        LossClassifier(loss="knowledge_distillation").fit(X, y, teacher_logits=t)

    Parameters
    ----------
    estimator : scikit-learn classifier
        With ``cv=None`` it must be fitted already and its in-sample outputs are returned;
        otherwise it is cloned and fitted once per fold.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,), optional
        Needed with ``cv``.
    cv : None, int, cross-validation generator or iterable, default=None
        ``None``: the fitted ``estimator``'s outputs on ``X``. Otherwise passed to
        :func:`sklearn.model_selection.cross_val_predict`: each row's logits come from a
        model that did not see it, which is what honest distillation needs (in-sample
        logits of a flexible teacher are over-confident on its own training rows).
    method : {"auto", "predict_proba", "decision_function"}, default="auto"
        ``auto`` takes ``predict_proba`` when the estimator has it.
    eps : float, default=1e-7
        Probabilities are clipped to ``[eps, 1]`` before the log.
    groups : array-like, optional
        Group labels for a group-aware ``cv`` splitter.
    params : dict, optional
        Fit parameters routed to the estimator by ``cross_val_predict``.

    Returns
    -------
    ndarray of shape (n_samples, n_classes), float64
        Logits whose softmax is the teacher's probabilities; columns in the order of the
        sorted class labels, as ``LossClassifier`` encodes them.

    Notes
    -----
    Inside a cross-validation of the student, compute the teacher's logits from the
    student's training fold only (for example with a pipeline step that calls this function
    in ``fit``); logits computed once on all rows leak the validation folds' labels.
    """
    resolved = _resolve_method(estimator, method)
    if cv is None:
        check_is_fitted(estimator)
        output = getattr(estimator, resolved)(X)
    else:
        if y is None:
            raise ValueError("teacher_logits(..., cv=...) needs y to fit the teacher per fold.")
        output = cross_val_predict(
            clone(estimator), X, y, cv=cv, method=resolved, groups=groups, params=params
        )
    return as_logits(output, resolved, eps=eps)


class DistilledClassifier(ClassifierMixin, BaseEstimator):
    """Fit a teacher's out-of-fold logits, then a student on them, inside one ``fit``.

    Because the teacher's logits are computed from the rows passed to ``fit`` only, the
    pair can be cross-validated honestly (``cross_validate``, ``GridSearchCV``): no test
    fold's labels reach the student through the teacher.

    Parameters
    ----------
    teacher : scikit-learn classifier
        Cloned and fitted per fold of ``cv`` to give out-of-fold logits.
    student : classifier
        Fitted with ``fit(X, y, teacher_logits=...)``, e.g.
        ``LossClassifier(loss="knowledge_distillation")``.
    cv : int, cross-validation generator or iterable, default=5
        Folds for the teacher's out-of-fold logits.
    method : {"auto", "predict_proba", "decision_function"}, default="auto"
    eps : float, default=1e-7
        Probabilities are clipped to ``[eps, 1]`` before the log.

    Attributes
    ----------
    student_ : classifier
        The fitted student; predictions come from it alone.
    teacher_logits_ : ndarray of shape (n_samples, n_classes)
        The out-of-fold logits the student was trained on.
    classes_ : ndarray
    """

    def __init__(
        self,
        teacher: Any = None,
        student: Any = None,
        *,
        cv: Any = 5,
        method: str = "auto",
        eps: float = 1e-7,
    ) -> None:
        self.teacher = teacher
        self.student = student
        self.cv = cv
        self.method = method
        self.eps = eps

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> DistilledClassifier:
        """Compute the teacher's out-of-fold logits on ``X``, then fit the student on them."""
        if self.teacher is None or self.student is None:
            raise ValueError("DistilledClassifier needs both a teacher and a student.")
        logits = teacher_logits(self.teacher, X, y, cv=self.cv, method=self.method, eps=self.eps)
        kwargs: dict[str, Any] = {"teacher_logits": logits}
        if sample_weight is not None:
            kwargs["sample_weight"] = sample_weight
        self.student_ = clone(self.student).fit(X, y, **kwargs)
        self.teacher_logits_ = logits
        self.classes_ = self.student_.classes_
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The student's predicted classes."""
        check_is_fitted(self, "student_")
        return self.student_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """The student's class probabilities."""
        check_is_fitted(self, "student_")
        return self.student_.predict_proba(X)
