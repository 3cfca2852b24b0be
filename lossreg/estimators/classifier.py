"""LossClassifier: a scikit-learn classifier trained with any registered loss."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from lossreg.targets import task_of_target

from ._adapt import AdaptMixin
from ._base import LossEstimatorBase, fit_extras_from
from ._bias import OUTPUT_BIAS, prior_bias, set_output_bias
from ._params import split_prefixed

__all__ = ["LossClassifier"]


def _has_proba(estimator: LossClassifier) -> bool:
    try:
        return estimator._link().has_proba
    except Exception:  # an unknown loss name fails at fit with a clear message, not here
        return True


def _has_scores(estimator: LossClassifier) -> bool:
    try:
        return estimator._link().kind == "score"
    except Exception:
        return False


class LossClassifier(AdaptMixin, ClassifierMixin, LossEstimatorBase):
    """A neural-network classifier trained with a registered loss, chosen by name.

    Binary, multiclass and multilabel (2-D 0/1 indicator ``y``) targets. skorch runs the
    training of a multilayer perceptron (or your own ``module``); the loss, its data params
    (class counts of the training rows ...) and its predict link come from the loss's
    :class:`~lossreg.LossSpec`.

    Parameters
    ----------
    loss : str or LossSpec, default="cross_entropy"
        A registered loss name or alias (``lossreg list --task multiclass``), or a spec.
    module : type or callable, default=None
        ``None`` builds :class:`~lossreg.estimators.MLP`; otherwise a ``torch.nn.Module``
        class, given ``n_features`` and ``n_outputs`` when its constructor takes them.
    max_iter : int, default=200
        Maximum number of epochs.
    batch_size : int or "auto", default="auto"
        Rows per batch; "auto" is ``min(200, n_samples)`` as in scikit-learn's MLP.
    lr : float, default=1e-3
        Learning rate.
    optimizer : {"adamw", "adam", "sgd", "rmsprop"} or torch optimizer class, default="adamw"
    weight_decay : float, default=0.0
        Passed to the optimizer (decoupled for AdamW).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows and stop when the validation loss stops
        improving; the best epoch's weights are kept. Without it, training stops when the
        training loss has not improved by ``tol`` for ``n_iter_no_change`` epochs.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    class_weight : dict, "balanced" or None, default=None
        As in scikit-learn; multiplied into the row weights that reach ``lossreg.reduce``.
    output_bias : {"default", "prior"}, default="default"
        "prior" starts the output layer's bias at the training rows' class frequencies:
        ``log(pi_k)`` under a softmax link, ``log(pi / (1 - pi))`` per output under a sigmoid
        link, so that the untrained network already predicts the priors (the initialisation
        of the focal-loss and sampling-free papers, useful on imbalanced data). It sets the
        bias of the module's last ``nn.Linear``; losses whose link is neither softmax nor
        sigmoid refuse it. "default" keeps PyTorch's initialisation.
    random_state : int, RandomState or None, default=None
        Seeds weight initialisation, shuffling and the validation split; the same seed gives
        identical results on CPU. The global torch RNG is left untouched.
    device : {"cpu", "cuda", "auto"} or str, default="cpu"
    verbose : int, default=0
        1 prints a table row per epoch.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit``.
    callbacks : list of skorch callbacks or (name, callback) pairs, default=None
    **kwargs
        ``loss__<name>`` (the loss's hyperparameters, see ``lossreg info LOSS``),
        ``module__<name>`` (``hidden_units``, ``activation``, ``dropout``, ``batch_norm`` for
        the MLP) and ``optimizer__<name>``.

    Attributes
    ----------
    classes_ : ndarray
        Class labels (``arange(n_labels)`` for multilabel targets).
    net_ : skorch NeuralNet
        The trained net; ``module_`` and ``criterion_`` are its network and fitted loss.
    history_ : skorch History
        Per-epoch ``train_loss`` (and ``valid_loss``), ``dur``.
    data_params_ : dict
        What the loss received from the training rows (``class_counts`` ...).
    n_iter_ : int
        Epochs run in the last fit.

    Notes
    -----
    Sparse ``X`` is densified. The spec's link decides the prediction methods: losses with
    probabilities offer ``predict_proba``; score-only losses offer ``decision_function``.
    """

    _tasks = ("binary", "multiclass", "multilabel")
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **LossEstimatorBase._parameter_constraints,
        "class_weight": [None, dict, StrOptions({"balanced"})],
        "output_bias": [StrOptions(set(OUTPUT_BIAS))],
    }

    def __init__(
        self,
        loss: Any = "cross_entropy",
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
        class_weight: Any = None,
        output_bias: str = "default",
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
        self.class_weight = class_weight
        self.output_bias = output_bias
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
    ) -> LossClassifier:
        """Train on ``X``, ``y``; per-row ``sample_weight`` and the extras the loss declares."""
        extras = fit_extras_from(locals())
        return self._fit(X, y, sample_weight, extras)

    def _prepare_target(self, y: Any) -> tuple[str, np.ndarray, int]:
        if np.ndim(y) == 2 and np.shape(y)[1] == 1:
            y = column_or_1d(y, warn=True)
        y = np.asarray(y)
        labeled = self._labeled_rows(y)
        check_classification_targets(y[labeled])
        task = task_of_target(y[labeled])
        continuing = self.warm_start and hasattr(self, "classes_") and hasattr(self, "net_")
        if task == "multilabel":
            y = y.astype(np.int64)
            classes = np.arange(y.shape[1])
            encoded, n_classes = y, y.shape[1]
        else:
            encoder = LabelEncoder().fit(y[labeled])
            classes = encoder.classes_
            if len(classes) < 2:
                raise ValueError(
                    f"LossClassifier needs at least 2 classes in y; got 1 class: {classes[0]!r}."
                )
            if continuing and not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"warm_start=True needs the classes of the first fit {self.classes_!r}; "
                    f"got {classes!r}."
                )
            # Unlabeled rows (semi-supervised losses) keep -1: the loss sees them as such.
            encoded = np.full(y.shape[0], -1, dtype=np.int64)
            encoded[labeled] = encoder.transform(y[labeled])
            n_classes = len(classes)
        self.classes_ = classes
        self.n_outputs_ = 1 if task != "multilabel" else int(encoded.shape[1])
        return task, encoded, n_classes

    def _labeled_rows(self, y: np.ndarray) -> np.ndarray:
        """Rows with a label: all, unless the loss is semi-supervised and y marks some -1."""
        everything = np.ones(y.shape[0], dtype=bool)
        # object: class names (strings) with the int -1 among them
        if y.ndim != 1 or y.dtype.kind not in "iufO" or not self._learns_from_unlabeled():
            return everything
        labeled = y != -1
        if not labeled.any():
            raise ValueError(
                "Every row of y is -1 (unlabeled); a semi-supervised loss needs some labels."
            )
        return labeled

    def _learns_from_unlabeled(self) -> bool:
        """Whether the loss, built with this estimator's ``loss__`` parameters, is semi-supervised
        (a composite is when a member is)."""
        from lossreg._effective import effective_spec

        return effective_spec(self._spec(), split_prefixed(self, "loss__")).semi_supervised

    def _row_weights(self, y_encoded: np.ndarray, task: str) -> np.ndarray | None:
        if self.class_weight is None:
            return None
        if task == "multilabel":
            raise ValueError(
                "class_weight is not supported for multilabel targets; use a loss with per-label "
                "weights (e.g. loss='bce', loss__pos_weight=[...]) or sample_weight."
            )
        weights = self.class_weight
        if isinstance(weights, dict):
            # Keys are the original labels, as in scikit-learn.
            weights = {int(np.searchsorted(self.classes_, k)): v for k, v in weights.items()}
        labeled = y_encoded >= 0  # unlabeled rows (-1) keep weight 1
        row_weights = np.ones(y_encoded.shape[0])
        row_weights[labeled] = compute_sample_weight(weights, y_encoded[labeled])
        return row_weights

    def _init_module(
        self,
        module: Any,
        spec: Any,
        task: str,
        y_counted: np.ndarray,
        n_classes: int,
        width: int,
    ) -> None:
        if task in ("binary", "multiclass"):  # for adapt(): the fit's labelled class counts
            self.class_counts_ = np.bincount(
                np.asarray(y_counted, dtype=np.int64), minlength=n_classes
            )
            self.__dict__.pop("adapt_history_", None)
        if self.output_bias == "prior":
            link = self._link().name
            set_output_bias(module, prior_bias(spec.name, link, task, y_counted, n_classes, width))

    # -- prediction ------------------------------------------------------------------------
    @available_if(_has_proba)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n_samples, n_classes); per-label for multilabel targets."""
        probs = self._linked(X)
        if self.task_ == "binary" and probs.shape[1] == 1:
            probs = np.hstack([1.0 - probs, probs])
        return probs

    @available_if(_has_proba)
    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    @available_if(_has_scores)
    def decision_function(self, X: Any) -> np.ndarray:
        """Decision scores: (n_samples,) for one binary score, else one column per class."""
        scores = self._linked(X)
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (a 0/1 indicator matrix for multilabel targets)."""
        values = self._linked(X)
        if self.task_ == "multilabel":
            threshold = 0.5 if self._link().has_proba else 0.0
            return (values > threshold).astype(np.int64)
        if values.shape[1] == 1:
            threshold = 0.5 if self._link().has_proba else 0.0
            return self.classes_[(values[:, 0] > threshold).astype(np.int64)]
        return self.classes_[values.argmax(axis=1)]

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = self._supports("multilabel")
        return tags
