"""Teacher signals for distillation: a fitted scikit-learn model's (out-of-fold) logits."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import cross_val_predict
from sklearn.utils.validation import check_is_fitted

__all__ = ["as_logits", "teacher_logits"]

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
