"""LossEmbedder: a scikit-learn transformer that learns an embedding with a metric loss."""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from lossreg.spec import LossSpec

from ._augment import FeatureCorruption
from ._base import LossEstimatorBase, fit_extras_from
from ._mode import loss_mode
from ._params import split_prefixed
from ._pseudo_labels import PSEUDO_LABEL_FIELD, PseudoLabelDiverse

#: the ``sampler`` options that are names; a PseudoLabelDiverse instance is the other kind
SAMPLER_NAMES = ("auto", "random", "class_balanced", "pseudo_label_diverse")

__all__ = ["LossEmbedder"]


class LossEmbedder(TransformerMixin, LossEstimatorBase):
    """Train a network that maps rows to embeddings with an embedding loss, chosen by name.

    ``fit(X, y)`` trains the network with a metric-learning loss (``lossreg list --task
    embedding``: triplet, contrastive, supcon, proxy_anchor ...); ``transform(X)`` returns the
    embeddings, e.g. for a k-nearest-neighbour classifier in a Pipeline. Self-supervised losses
    (two views, e.g. ``info_nce``, ``barlow_twins``) train without ``y``: each batch is
    augmented twice by random feature corruption. A loss whose hyperparameters make it weigh
    pairs by continuous targets (``cwcl(kernel="laplace")``) takes a real-valued ``y`` as it
    is (not label-encoded; ``classes_`` is None) and two augmented views per batch.

    Parameters
    ----------
    loss : str or LossSpec, default="triplet"
    n_components : int, default=32
        Embedding width: the network's output size.
    augmentation : float or callable, default=0.3
        For two-view losses: the feature-corruption rate of
        :class:`~lossreg.estimators.FeatureCorruption`, or a callable ``x -> x'`` on a batch
        tensor (it must use torch's global random generator to stay seeded).
    sampler : str or PseudoLabelDiverse, default="auto"
        How training batches are drawn. ``"auto"``: as the loss's spec says (P×K
        class-balanced batches for pair losses, random batches otherwise). ``"random"``:
        shuffled rows. ``"class_balanced"``: several rows of each of several classes (needs
        ``y``). ``"pseudo_label_diverse"``, or a
        :class:`~lossreg.estimators.PseudoLabelDiverse` with its settings: before training,
        an autoencoder is fitted on the training rows and k-means on its latent codes gives
        each row a pseudo-label (``pseudo_labels_``); batches then hold no two rows of one
        pseudo-label where possible (G-SimCLR). Losses whose spec batches by a fit extra
        (whole groups, bags) keep their own sampler: only ``"auto"`` is accepted for them.
    module, max_iter, batch_size, lr, optimizer, weight_decay, early_stopping,
    validation_fraction, n_iter_no_change, tol, random_state, device, verbose, warm_start,
    callbacks, **kwargs
        As in :class:`~lossreg.LossClassifier`; ``batch_size="auto"`` is 256 here, since
        pair and triplet losses need many rows per batch.

    Attributes
    ----------
    classes_ : ndarray or None
        Labels seen in ``fit`` (``None`` for label-free losses).
    pseudo_labels_ : ndarray of int
        With the pseudo-label-diverse sampler: each training row's pseudo-label.
    net_, module_, criterion_, history_, n_iter_
        As in :class:`~lossreg.LossClassifier`.

    Notes
    -----
    Losses that need several rows per class in a batch (spec ``sampler="class_balanced"``)
    are given batches of 4 rows from each of ``batch_size // 4`` classes.
    """

    _tasks = ("embedding",)
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **LossEstimatorBase._parameter_constraints,
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "augmentation": [Interval(numbers.Real, 0, 1, closed="left"), callable],
        "sampler": [StrOptions(set(SAMPLER_NAMES)), PseudoLabelDiverse],
    }

    def __init__(
        self,
        loss: Any = "triplet",
        *,
        n_components: int = 32,
        augmentation: Any = 0.3,
        sampler: Any = "auto",
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
        self.n_components = n_components
        self.augmentation = augmentation
        self.sampler = sampler
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
        y: Any = None,
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
    ) -> LossEmbedder:
        """Train the embedding network; ``y`` may be omitted for label-free losses."""
        extras = fit_extras_from(locals())
        self._validate_params()  # before the loss name is looked up
        mode = loss_mode(self._spec(), split_prefixed(self, "loss__"))
        self._continuous = mode.target == "continuous"
        if y is None:
            spec = self._spec()
            if mode.views != 2 or self._continuous:
                raise ValueError(
                    f"LossEmbedder with loss {spec.name!r} requires y to be passed, but the "
                    "target y is None: the loss needs labels (or, with a target kernel, "
                    "continuous targets), pass fit(X, y). Only two-view "
                    "(self-supervised) losses such as 'info_nce' train without y."
                )
            self._no_labels = True
            y = np.zeros(np.shape(X)[0], dtype=np.int64)
        else:
            self._no_labels = False
        return self._fit(X, y, sample_weight, extras)

    def _prepare_target(self, y: Any) -> tuple[str, np.ndarray, int]:
        y = np.asarray(y)
        if y.ndim != 1:
            raise ValueError(f"LossEmbedder takes one label per row; got y of shape {y.shape}.")
        if getattr(self, "_continuous", False):
            return self._continuous_target(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = None if self._no_labels else encoder.classes_
        self.n_outputs_ = self.n_components
        return "embedding", encoder.transform(y), len(encoder.classes_)

    def _continuous_target(self, y: np.ndarray) -> tuple[str, np.ndarray, int]:
        """A loss on continuous targets (cwcl's target kernel) gets y itself, as floats."""
        if y.dtype.kind not in "iuf":
            raise ValueError(
                f"Loss {self._spec().name!r} with these parameters weighs pairs by their "
                f"continuous targets, so y must be numeric; got dtype {y.dtype}."
            )
        self.classes_ = None
        self.n_outputs_ = self.n_components
        return "embedding", y.astype(np.float64), 0

    def _target_tensor(self, spec: LossSpec, task: str, y_encoded: np.ndarray) -> torch.Tensor:
        if getattr(self, "_continuous", False):
            return torch.tensor(y_encoded, dtype=torch.float32)
        return super()._target_tensor(spec, task, y_encoded)

    def _data_task(self, task: str) -> str:
        return "multiclass"  # labels of an embedding loss are classes

    def _output_width(
        self,
        spec: LossSpec,
        task: str,
        n_classes: int,
        n_outputs: int,
        params: dict[str, Any],
        n_features: int,
    ) -> int:
        if spec.output_size is None:
            return int(self.n_components)
        # The spec may adjust the requested width (equal-width heads ...): it sees
        # n_components as n_outputs, the embedding width asked for.
        return super()._output_width(
            spec, task, n_classes, int(self.n_components), params, n_features
        )

    def _batch_size_auto(self, n: int) -> int:
        return min(256, n)

    def _batch_sampler(self, spec: LossSpec) -> str | None:
        """The training-batch sampler of the net: the ``sampler`` option over the spec's."""
        choice = self._sampler_choice(spec)
        if choice == "auto":
            return spec.sampler
        if choice == "random":
            return None
        return "pseudo_label_diverse" if isinstance(choice, PseudoLabelDiverse) else choice

    def _sampler_choice(self, spec: LossSpec) -> Any:
        """``sampler`` checked against the loss and the target; the name becomes settings."""
        choice = self.sampler
        if choice == "auto":
            return choice
        if spec.sampler not in (None, "class_balanced"):
            raise ValueError(
                f"Loss {spec.name!r} draws its batches by a fit extra "
                f"(sampler={spec.sampler!r}); sampler={choice!r} would break them apart. "
                "Leave sampler='auto' for this loss."
            )
        if choice == "class_balanced" and self._no_labels:
            raise ValueError(
                "sampler='class_balanced' draws several rows of each class, but fit got no "
                "labels: pass fit(X, y), or use sampler='pseudo_label_diverse' for classes "
                "found by k-means."
            )
        return PseudoLabelDiverse() if choice == "pseudo_label_diverse" else choice

    def _extras(
        self,
        loss: str,
        declared: tuple[str, ...],
        extras: dict[str, Any],
        X: np.ndarray,
        widths: dict[str, tuple[int, ...]] | None = None,
    ) -> dict[str, torch.Tensor]:
        tensors = super()._extras(loss, declared, extras, X, widths)
        self.__dict__.pop("pseudo_labels_", None)  # from an earlier fit with another sampler
        choice = self._sampler_choice(self._spec())
        if isinstance(choice, PseudoLabelDiverse):
            n = X.shape[0]
            size = self._batch_size_auto(n) if self.batch_size == "auto" else self.batch_size
            # a second draw of the estimator's random_state: not the network's own seed
            seed = int(check_random_state(self.random_state).randint(2**31 - 1, size=2)[1])
            labels = choice.pseudo_labels(X, batch_size=min(int(size), n), seed=seed)
            self.pseudo_labels_ = labels
            tensors[PSEUDO_LABEL_FIELD] = torch.as_tensor(labels)
        return tensors

    def _augmenter(self) -> Any:
        if callable(self.augmentation):
            return self.augmentation
        return FeatureCorruption(rate=float(self.augmentation))

    def transform(self, X: Any) -> np.ndarray:
        """Embeddings of ``X``, shape (n_samples, n_components), in float64."""
        out, _ = self._forward64(X)
        return out.numpy()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names ``lossembedder0`` ... of the embedding columns."""
        # The width is the trained network's (a spec may round n_components up).
        width = self.transform(np.zeros((1, self.n_features_in_))).shape[1]
        return np.asarray([f"lossembedder{i}" for i in range(width)], dtype=object)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.required = not self._label_free()
        tags.target_tags.multi_output = False
        return tags

    def _label_free(self) -> bool:
        try:
            mode = loss_mode(self._spec(), split_prefixed(self, "loss__"))
        except Exception:
            return False
        return mode.views == 2 and mode.target == "labels"
