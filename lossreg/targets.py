"""Targets: the task a target array poses, the data params a fold yields, a loss's output size.

Shared by the estimators and the conformance kit, so both derive a loss's fitted inputs the
same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lossreg.links import resolve_link
from lossreg.spec import DATA_PARAMS, LossSpec

__all__ = [
    "WIDTH_PARAMS",
    "accepted_widths",
    "column_width",
    "compute_data_params",
    "data_param_names",
    "extra_widths",
    "output_size",
    "rule_text",
    "task_of_target",
]

_TYPE_TO_TASK = {
    "binary": "binary",
    "multiclass": "multiclass",
    "multilabel-indicator": "multilabel",
    "continuous": "regression",
    "continuous-multioutput": "regression",
}


def task_of_target(y: Any) -> str:
    """Return the lossreg task of a target array, from scikit-learn's ``type_of_target``.

    Raises
    ------
    ValueError
        For target types no loss task covers (``multiclass-multioutput``, ``unknown``).
    """
    from sklearn.utils.multiclass import type_of_target

    kind = type_of_target(y, input_name="y")
    if kind not in _TYPE_TO_TASK:
        raise ValueError(
            f"Unsupported target type {kind!r}. lossreg estimators take binary, multiclass, "
            "multilabel-indicator (2-D 0/1) or continuous targets."
        )
    return _TYPE_TO_TASK[kind]


#: Data params that are the network's output width, not a statistic of the targets.
WIDTH_PARAMS = frozenset({"embedding_dim", "feature_dim"})


def compute_data_params(
    names: Iterable[str],
    y: np.ndarray,
    task: str,
    n_classes: int | None = None,
    *,
    width: int | None = None,
    feature_width: int | None = None,
) -> dict[str, Any]:
    """Compute the data params a loss asks for, from the training rows only.

    Parameters
    ----------
    names : iterable of str
        Keys of :data:`lossreg.spec.DATA_PARAMS`.
    y : ndarray
        Encoded targets: class indices 0..C-1 (binary, multiclass), a 0/1 indicator matrix
        (multilabel), floats (regression), or (N, 2) floats, a value and a class index
        (mixed).
    task : str
        The task of ``y``.
    n_classes : int, optional
        Number of classes; defaults to ``max(y) + 1`` for class targets.
    width : int, optional
        The network's output width (from :func:`output_size`), for ``embedding_dim``.
    feature_width : int, optional
        The width of the features a ``logits+features`` network returns, for ``feature_dim``.

    Returns
    -------
    dict
        Plain Python values (ints, floats, lists), so they show in ``repr`` and pickle.
    """
    y = np.asarray(y)
    out: dict[str, Any] = {}
    for name in names:
        if name not in DATA_PARAMS:
            raise KeyError(f"Unknown data param {name!r}; known: {', '.join(DATA_PARAMS)}")
        if name == "feature_dim":
            if feature_width is None:
                raise ValueError(
                    "Data param 'feature_dim' is the width of the network's features: pass "
                    "feature_width=..."
                )
            out[name] = int(feature_width)
        elif name in WIDTH_PARAMS:
            if width is None:
                raise ValueError(
                    f"Data param {name!r} is the network's output width: pass "
                    "width=output_size(...)."
                )
            out[name] = int(width)
        else:
            out[name] = _data_param(name, y, task, n_classes)
    return out


def _data_param(name: str, y: np.ndarray, task: str, n_classes: int | None) -> Any:
    n = int(y.shape[0])
    if name == "n_samples":
        return n
    if task in ("binary", "multiclass"):
        c = int(n_classes if n_classes is not None else y.max() + 1)
        counts = np.bincount(y.astype(np.int64).ravel(), minlength=c)
        per_class = {
            "n_classes": c,
            "class_counts": [int(v) for v in counts],
            "class_priors": [float(v) / n for v in counts],
            "n_outputs": 1,
        }
        if name in per_class:
            return per_class[name]
    elif task == "multilabel":
        positives = y.reshape(n, -1).sum(axis=0)
        per_label = {
            "n_classes": int(positives.shape[0]),
            "class_counts": [int(v) for v in positives],
            "class_priors": [float(v) / n for v in positives],
            "n_outputs": int(positives.shape[0]),
        }
        if name in per_label:
            return per_label[name]
        if name == "label_cooccurrence":
            indicator = (y.reshape(n, -1) > 0).astype(np.int64)
            return [[int(v) for v in row] for row in indicator.T @ indicator]
    elif task == "mixed":
        # a value column, then class indices: the class statistics are the class column's
        labels = y.reshape(n, 2)[:, 1].astype(np.int64)
        c = int(n_classes if n_classes is not None else labels.max() + 1)
        counts = np.bincount(labels, minlength=c)
        per_column = {
            "n_classes": c,
            "class_counts": [int(v) for v in counts],
            "class_priors": [float(v) / n for v in counts],
            "n_outputs": 2,
        }
        if name in per_column:
            return per_column[name]
    elif task == "regression":
        values = y.reshape(n, -1).astype(np.float64)
        lo, hi = values.min(axis=0), values.max(axis=0)
        per_output = {
            "n_outputs": int(values.shape[1]),
            "target_min": float(lo[0]) if values.shape[1] == 1 else [float(v) for v in lo],
            "target_max": float(hi[0]) if values.shape[1] == 1 else [float(v) for v in hi],
        }
        if name == "target_values":
            # Distribution-aware losses (histogram weights, quantiles, target PCA) need them all.
            if values.shape[1] == 1:
                return [float(v) for v in values[:, 0]]
            return [[float(v) for v in row] for row in values]
        if name in per_output:
            return per_output[name]
    raise ValueError(f"Data param {name!r} is not defined for {task} targets.")


def output_size(
    spec: LossSpec,
    task: str,
    *,
    n_classes: int = 1,
    n_outputs: int = 1,
    params: Mapping[str, Any] | None = None,
    n_features: int | None = None,
) -> int:
    """Return how many outputs the network needs for ``spec`` on ``task``.

    ``spec.output_size(context)`` decides when the spec sets it (``context`` holds the loss's
    hyperparameters, ``n_classes``, ``n_outputs``, ``task`` and, when known, ``n_features``,
    the input width); otherwise a sigmoid link
    needs one output per label (one for binary), any other link on class targets (binary,
    multiclass, ordinal levels) one output per class, and on other targets one per target
    column.
    """
    if spec.output_size is not None:
        context = _context(spec, task, n_classes, n_outputs, params, n_features)
        return int(spec.output_size(context))
    link = resolve_link(spec.link)
    if task in ("binary", "multiclass", "ordinal"):
        return 1 if link.name == "sigmoid" else n_classes
    return n_outputs


def _context(
    spec: LossSpec,
    task: str,
    n_classes: int,
    n_outputs: int,
    params: Mapping[str, Any] | None,
    n_features: int | None,
) -> dict[str, Any]:
    context = {**spec.defaults, **(params or {}), "n_classes": n_classes}
    context.update(n_outputs=n_outputs, task=task)
    if n_features is not None:
        context["n_features"] = n_features
    return context


def accepted_widths(value: Any) -> tuple[int, ...] | None:
    """Normalise what an ``extra_widths`` rule returns: None, or a tuple of accepted widths."""
    if value is None:
        return None
    if isinstance(value, Iterable) and not isinstance(value, str):
        widths = tuple(int(v) for v in value)
        return widths or None
    return (int(value),)


def extra_widths(
    spec: LossSpec,
    task: str,
    *,
    width: int,
    n_classes: int = 1,
    n_outputs: int = 1,
    params: Mapping[str, Any] | None = None,
    n_features: int | None = None,
    criterion: Any = None,
) -> dict[str, tuple[int, ...]]:
    """Return the widths (columns per row) the loss accepts for its sized fit extras.

    ``spec.extra_widths`` rules are called with :func:`output_size`'s context plus ``width``,
    the network's output width. A loss built from others may say more once built: a
    ``criterion`` with an ``extra_widths_(context)`` method adds its members' rules. Extras
    without a rule (or whose rule returns None) are absent: any width is accepted.
    """
    context = _context(spec, task, n_classes, n_outputs, params, n_features)
    context["width"] = int(width)
    out: dict[str, tuple[int, ...]] = {}
    for name, rule in spec.extra_widths.items():
        widths = accepted_widths(rule(context))
        if widths is not None:
            out[name] = widths
    dynamic = getattr(criterion, "extra_widths_", None)
    if callable(dynamic):
        for name, value in dynamic(context).items():
            widths = accepted_widths(value)
            if widths is not None and name not in out:
                out[name] = widths
    return out


def column_width(value: Any) -> int:
    """Columns per row of a per-row array: 1 for (N,), the product of the rest otherwise."""
    shape = np.shape(value)
    return int(np.prod(shape[1:])) if len(shape) > 1 else 1


def data_param_names(spec: LossSpec, params: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """Return every data param to compute for ``spec`` with these hyperparameters.

    ``spec.data_params``, then, for a loss built from others, what ``spec.data_params_of``
    says its members need (called with the defaults updated by ``params``), once each.
    """
    names = list(spec.data_params)
    if spec.data_params_of is not None:
        names.extend(spec.data_params_of({**spec.defaults, **(params or {})}))
    return tuple(dict.fromkeys(names))


def rule_text(rule: Any) -> str:
    """What a spec's callable (an ``extra_widths`` rule ...) computes, for messages and info.

    The first line of its docstring, else its qualified name.
    """
    doc = inspect.getdoc(rule) if not isinstance(rule, type) else None
    if doc and doc != inspect.getdoc(type(rule)):
        return doc.strip().splitlines()[0]
    return getattr(rule, "__qualname__", None) or repr(rule)
