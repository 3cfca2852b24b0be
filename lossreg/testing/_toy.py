"""Toy inputs for the conformance kit: tiny batches shaped per task, as estimators build them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from lossreg.spec import SIZED_EXTRAS, LossSpec
from lossreg.targets import compute_data_params, data_param_names, extra_widths, output_size

__all__ = ["FEATURE_DIM", "TASK_ORDER", "Toy", "make_toy", "primary_task"]

#: The task a check uses when a loss declares several: the first of these that it declares.
TASK_ORDER = (
    "multiclass",
    "binary",
    "multilabel",
    "regression",
    "embedding",
    "ordinal",
    "ranking",
    "bag",
    "survival",
    "mixed",
)

#: Tasks whose data params are computed as for these target types (same label encoding).
_DATA_PARAM_TASK = {
    "binary": "binary",
    "multiclass": "multiclass",
    "multilabel": "multilabel",
    "regression": "regression",
    "embedding": "multiclass",
    "ordinal": "multiclass",
    "bag": "binary",
    "ranking": "regression",
    "survival": "regression",
    "mixed": "mixed",
}

#: Tasks whose targets are class labels.
CLASS_TASKS = frozenset({"binary", "multiclass", "embedding", "ordinal", "bag"})
#: Tasks whose rows are coupled: a row's loss depends on the other rows of the batch.
COUPLED_TASKS = frozenset({"embedding", "ranking", "bag"})
#: Fit extras that couple rows the same way (groups and bags are made of several rows).
COUPLING_EXTRAS = frozenset({"group", "bag", "bag_target"})


N_ROWS = 12
N_CLASSES = 3
N_LABELS = 3
N_FEATURES = 4  # embedding width
#: Width D of the toy features a ``logits+features`` loss receives next to its logits.
FEATURE_DIM = 8


@dataclass(frozen=True)
class Toy:
    """A toy batch: module input, target, per-row fit extras and the fitted data params.

    Every tensor in ``extras`` has one entry per row along its first dimension. For a loss
    whose spec says ``outputs="logits+features"``, ``input`` holds the logits and
    ``features`` the network features (N, :data:`FEATURE_DIM`); the loss receives the pair
    (:attr:`output`).
    """

    task: str
    input: torch.Tensor
    target: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    data_params: dict[str, Any] = field(default_factory=dict)
    width: int = 1
    views: int = 1
    features: torch.Tensor | None = None

    @property
    def output(self) -> Any:
        """What the loss receives: ``input``, or the pair ``(input, features)``."""
        return self.input if self.features is None else (self.input, self.features)

    @property
    def n(self) -> int:
        """Rows of the batch (a two-view input holds 2n output rows for n rows)."""
        return int(self.target.shape[0])

    def rows(self, index: Sequence[int] | torch.Tensor) -> Toy:
        """Return the batch made of these rows (a permutation, duplicates ...), extras included."""
        index = torch.as_tensor(index, dtype=torch.long)
        # Two views: output rows i and i+n belong to row i, so both halves move together.
        input_index = index if self.views == 1 else torch.cat([index, index + self.n])
        return replace(
            self,
            input=self.input[input_index],
            target=self.target[index],
            extras={k: v[index] for k, v in self.extras.items()},
            features=None if self.features is None else self.features[input_index],
        )

    def to(self, dtype: torch.dtype) -> Toy:
        """Return the batch with its floating tensors cast to ``dtype``."""

        def cast(t: torch.Tensor) -> torch.Tensor:
            return t.to(dtype) if t.is_floating_point() else t

        return replace(
            self,
            input=cast(self.input),
            target=cast(self.target),
            extras={k: cast(v) for k, v in self.extras.items()},
            features=None if self.features is None else cast(self.features),
        )

    def with_input(self, input: torch.Tensor) -> Toy:
        return replace(self, input=input)


def primary_task(spec: LossSpec) -> str:
    """Return the task checks use for ``spec``: the first of :data:`TASK_ORDER` it declares."""
    for task in TASK_ORDER:
        if task in spec.tasks:
            return task
    return sorted(spec.tasks)[0]


def _labels(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    # Every class appears (several times), in a shuffled order.
    return rng.permutation(np.arange(n) % k).astype(np.int64)


def toy_target(task: str, rng: np.random.Generator, n: int, n_outputs: int = 1) -> np.ndarray:
    """Return encoded training targets for ``task`` as numpy (what an estimator sees)."""
    if task == "binary" or task == "bag":
        return _labels(rng, n, 2)
    if task in ("multiclass", "embedding", "ordinal"):
        return _labels(rng, n, N_CLASSES)
    if task == "multilabel":
        y = rng.integers(0, 2, size=(n, N_LABELS))
        y[0], y[1] = 1, 0  # each label has positives and negatives
        return y.astype(np.int64)
    if task == "ranking":
        return rng.integers(0, 3, size=n).astype(np.float64)  # graded relevance
    if task == "survival":
        return rng.exponential(size=n) + 0.1
    if task == "mixed":  # a positive value, then a class index as a float
        return np.column_stack([rng.gamma(2.0, 0.5, size=n) + 0.05, _labels(rng, n, N_CLASSES)])
    # Positive targets, so that losses with a restricted target domain (counts, logarithms,
    # positive scales) accept them; predictions are centred at 0, so residuals take both signs.
    y = rng.gamma(2.0, 0.5, size=(n, n_outputs)) + 0.05
    return y[:, 0] if n_outputs == 1 else y


def unlabel_rows(y: np.ndarray) -> np.ndarray:
    """Mark half of each class's rows unlabeled (-1), for a ``semi_supervised`` loss.

    Such a loss learns from the unlabeled rows (entropy, self-training, clustering terms), so
    a toy with labels only would check a loss that is zero, or that never sees its main term.
    Every class keeps labeled rows.
    """
    y = y.copy()
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        y[rows[: len(rows) // 2]] = -1
    return y


def make_toy(
    spec: LossSpec,
    params: Mapping[str, Any] | None = None,
    task: str | None = None,
    *,
    n: int = N_ROWS,
    n_outputs: int = 1,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
    scale: float = 1.5,
) -> Toy:
    """Build a toy batch for ``spec`` on ``task``, the way an estimator would.

    Data params come from :func:`lossreg.targets.compute_data_params` on the toy targets and
    the head width from :func:`lossreg.targets.output_size`, so the kit builds a loss exactly
    as the estimators will. ``n_outputs`` sets K for multi-output regression.
    """
    task = task or primary_task(spec)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    y = toy_target(task, rng, n, n_outputs)

    dp_task = _DATA_PARAM_TASK.get(task, "regression")
    n_classes = 1
    if dp_task in ("binary", "multiclass"):
        n_classes = int(y.max()) + 1
    elif dp_task == "multilabel":
        n_classes = n_outputs = int(y.shape[1])
    elif dp_task == "mixed":
        n_classes, n_outputs = int(y[:, 1].max()) + 1, 2
    if task == "embedding":
        n_outputs = N_FEATURES
    width = output_size(
        spec,
        task,
        n_classes=n_classes,
        n_outputs=n_outputs,
        params=params,
        n_features=N_FEATURES,  # the width of the toy ``features`` extra
    )
    if spec.semi_supervised and task in CLASS_TASKS:
        y = unlabel_rows(y)
    # Unlabeled rows (-1) stay out of the data params, as estimators keep them out.
    labeled = y[y >= 0] if spec.semi_supervised and task in CLASS_TASKS else y
    two_part = spec.outputs == "logits+features"
    common = {"width": width, "feature_width": FEATURE_DIM if two_part else None}
    data_params = compute_data_params(spec.data_params, labeled, dp_task, **common)
    for name in data_param_names(spec, params):
        # A member's data param this task does not define (a class count on regression
        # targets) is left out, as estimators leave it out: the member then says what it lacks.
        if name not in data_params:
            try:
                data_params.update(compute_data_params((name,), labeled, dp_task, **common))
            except ValueError:
                continue

    if (task in CLASS_TASKS and width >= 2) or task in ("multiclass", "embedding", "ordinal"):
        target = torch.as_tensor(y, dtype=torch.long)
    else:
        target = torch.as_tensor(y, dtype=dtype)
    flat = width == 1 and task not in ("multiclass", "multilabel", "embedding", "ordinal")
    # A two-view loss sees the outputs of two augmentations of each row, stacked: (2n, D).
    shape = (n * spec.views,) if flat else (n * spec.views, width)
    input = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype) * scale

    features = None
    if two_part:
        # Drawn after the logits, so a loss's toy logits do not change with its outputs field.
        features = torch.randn((n * spec.views, FEATURE_DIM), generator=gen, dtype=torch.float64)
        features = features.to(dtype)
    # Sized extras (two models' logits side by side, old embeddings) as wide as the loss says.
    widths = extra_widths(
        spec,
        task,
        width=width,
        n_classes=n_classes,
        n_outputs=n_outputs,
        params=params,
        n_features=N_FEATURES,
    )
    extras = {
        name: _extra(name, y, task, n_classes, width, rng, dtype, widths.get(name, (None,))[0])
        for name in spec.fit_extras
    }
    return Toy(task, input, target, extras, data_params, width, spec.views, features)


def toy_extra(
    name: str,
    y: np.ndarray,
    task: str,
    n_classes: int,
    width: int,
    rng: np.random.Generator,
    bag_size: int = 3,
    feature_width: int = FEATURE_DIM,
    columns: int | None = None,
) -> np.ndarray:
    """Return the toy value of fit extra ``name`` for targets ``y``, as numpy (one entry per row).

    Values respect what the extra means for the task: a class task's ``bag_target`` holds the
    bag's class proportions ((N,) positive share for two classes, (N, C) otherwise), its
    ``teacher_logits`` one logit per class (not per output column: a multi-head output is
    wider), ``rejected_label`` a class other than the row's label, ``teacher_features``
    ``feature_width`` values (the student's feature width). ``columns``, for a sized extra
    (a loss's ``extra_widths``), overrides those widths: (N,) for 1, (N, columns) otherwise.
    """
    n = int(y.shape[0])
    if columns is not None and name in SIZED_EXTRAS:
        return rng.normal(size=(n, columns)) if columns > 1 else rng.normal(size=n)
    class_task = task in CLASS_TASKS
    if name == "group":
        return np.arange(n) % 3
    if name == "bag":
        return np.arange(n) // bag_size
    if name == "bag_target":
        bags = np.arange(n) // bag_size
        if class_task and n_classes > 2:
            values = np.eye(n_classes)[y.astype(np.int64)]  # bag class proportions (N, C)
        else:
            values = y.reshape(n, -1).mean(axis=1).astype(np.float64)
        return np.stack([values[bags == b].mean(axis=0) for b in bags])
    if name == "teacher_logits":
        # One logit per class (a two-head output is wider than that); one column per output
        # for value and embedding tasks; one logit per row for a one-output binary head.
        per_class = task in ("binary", "multiclass", "ordinal", "bag") and width >= 2
        cols = n_classes if per_class else width
        return rng.normal(size=(n, cols)) if width > 1 else rng.normal(size=n)
    if name == "sample_index":
        return np.arange(n)
    if name == "event":
        return rng.integers(0, 2, size=n).astype(np.float64)
    if name == "rejected_label":
        k = max(n_classes, 2)
        return (y.astype(np.int64) + rng.integers(1, k, size=n)) % k
    if name == "features":
        return rng.normal(size=(n, N_FEATURES))
    if name == "value":
        return rng.lognormal(mean=4.0, sigma=1.0, size=n)  # heavy-tailed, positive amounts
    if name == "teacher_features":
        # As wide as the student's features (the toy's, or the smoke fit's MLP's).
        return rng.normal(size=(n, feature_width))
    if name == "bid":
        return rng.uniform(0.5, 2.0, size=n)  # bids are >= 0
    raise ValueError(f"The conformance kit has no toy value for fit extra {name!r}.")


def _extra(
    name: str,
    y: np.ndarray,
    task: str,
    n_classes: int,
    width: int,
    rng: np.random.Generator,
    dtype: torch.dtype,
    columns: int | None = None,
) -> torch.Tensor:
    value = toy_extra(name, y, task, n_classes, width, rng, columns=columns)
    if np.issubdtype(value.dtype, np.integer):
        return torch.as_tensor(value, dtype=torch.long)
    return torch.as_tensor(value, dtype=torch.float64).to(dtype)
