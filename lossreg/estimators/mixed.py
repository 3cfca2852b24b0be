"""LossMixedEstimator: one network predicting a numeric column and a class column together."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.validation import check_is_fitted

from ._base import LossEstimatorBase, fit_extras_from

__all__ = ["LossMixedEstimator", "encode_mixed_target"]


def encode_mixed_target(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check a mixed target and encode it: ``(encoded, classes)``.

    ``y`` has shape (n_samples, 2): column 0 numbers (the value), column 1 class labels of
    any type. ``encoded`` is (n_samples, 2) float64, the value then the class index into
    ``classes`` (sorted labels).

    Raises
    ------
    ValueError
        For another shape, a value column that is not finite numbers, missing class labels or
        fewer than two classes; the message names the problem and the expected layout.
    """
    array = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
    if hasattr(y, "to_numpy"):  # a DataFrame keeps each column's own type
        array = y.to_numpy(dtype=object)
    layout = "(n_samples, 2): a numeric column, then a class column"
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(
            f"LossMixedEstimator takes y of shape {layout}. Got shape {array.shape}. Stack "
            "the two targets with np.column_stack([values, labels]) (an object array keeps "
            "string labels)."
        )
    try:
        values = np.asarray(array[:, 0], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"Column 0 of y (the value) must hold numbers; got {array[:3, 0].tolist()!r} ... "
            f"y has shape {layout}."
        ) from None
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"Column 0 of y (the value) has {int(np.sum(~np.isfinite(values)))} missing or "
            "infinite values; drop or impute those rows."
        )
    labels = array[:, 1]
    # np.floating too: the labels of a float32 y are np.float32, not float
    missing = [v is None or (isinstance(v, (float, np.floating)) and np.isnan(v)) for v in labels]
    if any(missing):
        raise ValueError(
            f"Column 1 of y (the class) has {sum(missing)} missing labels; drop those rows."
        )
    labels = np.asarray(labels.tolist())  # one common type: ints, floats or strings
    encoder = LabelEncoder().fit(labels)
    if len(encoder.classes_) < 2:
        raise ValueError(
            f"Column 1 of y (the class) has a single class {encoder.classes_.tolist()!r}; a "
            "class head needs at least two."
        )
    encoded = np.column_stack([values, encoder.transform(labels).astype(np.float64)])
    return encoded, encoder.classes_


class LossMixedEstimator(LossEstimatorBase):
    """A network with a value head and a class head, trained with a loss for mixed targets.

    ``y`` has two columns: a numeric target and a class label. The network's output is
    (N, 1 + C): column 0 the predicted value, the other columns the logits of the C classes,
    and the loss (``lossreg list --task mixed``: ``uncertainty_weighted_mixed``) weighs the
    two tasks. Parameters are those of :class:`~lossreg.LossRegressor`; ``loss`` defaults to
    ``"uncertainty_weighted_mixed"``.

    Attributes
    ----------
    classes_ : ndarray
        The labels of the class column, sorted.
    net_, module_, criterion_, history_ : as for :class:`~lossreg.LossClassifier`

    Examples
    --------
    >>> import numpy as np
    >>> from lossreg import LossMixedEstimator
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 4)).astype(np.float32)
    >>> y = np.column_stack([X[:, 0] + X[:, 1], (X[:, 2] > 0).astype(int)])
    >>> model = LossMixedEstimator(max_iter=5, random_state=0).fit(X, y)
    >>> model.predict(X[:3]).shape, model.predict_proba(X[:3]).shape
    ((3, 2), (3, 2))
    """

    _tasks = ("mixed",)

    def __init__(
        self,
        loss: Any = "uncertainty_weighted_mixed",
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
    ) -> LossMixedEstimator:
        """Train on ``X`` and ``y`` of shape (n_samples, 2): a value, then a class label.

        ``sample_weight`` and the extras the loss declares are passed on as for the other
        estimators.
        """
        extras = fit_extras_from(locals())
        encoded, classes = encode_mixed_target(y)
        if self.warm_start and hasattr(self, "net_") and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"warm_start: the class column holds classes {classes.tolist()!r}, the fitted "
                f"model {self.classes_.tolist()!r}. Fit with warm_start=False to start over "
                "with these classes."
            )
        # _prepare_target sets classes_ inside _fit, which forgets it if the fit fails
        self._fit_classes = classes
        try:
            return self._fit(X, encoded, sample_weight, extras)
        finally:
            del self._fit_classes

    def _prepare_target(self, y: Any) -> tuple[str, np.ndarray, int]:
        self.classes_ = self._fit_classes
        self.n_outputs_ = 2
        return "mixed", np.asarray(y, dtype=np.float64), len(self.classes_)

    def _heads(self, X: Any) -> np.ndarray:
        """The linked output: the value, then the class probabilities."""
        check_is_fitted(self, "net_")
        return self._linked(X)

    def predict(self, X: Any) -> np.ndarray:
        """The predicted value and class label of each row, shape (n_samples, 2).

        Float64 when the class labels are numbers; an object array otherwise (the labels
        keep their type). Column 0 alone: :meth:`predict_value`.
        """
        heads = self._heads(X)
        labels = self.classes_[np.argmax(heads[:, 1:], axis=1)]
        numeric = np.issubdtype(self.classes_.dtype, np.number)
        out = np.empty((len(heads), 2), dtype=np.float64 if numeric else object)
        out[:, 0] = heads[:, 0]
        out[:, 1] = labels
        return out

    def predict_value(self, X: Any) -> np.ndarray:
        """The predicted value of each row, shape (n_samples,)."""
        return self._heads(X)[:, 0]

    def predict_proba(self, X: Any) -> np.ndarray:
        """The class probabilities of each row, shape (n_samples, n_classes), in the order
        of ``classes_``."""
        return self._heads(X)[:, 1:]

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        return tags
