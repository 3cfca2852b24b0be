"""Head- and tail-class accuracy of a classifier, and NC1 of its last hidden layer.

Long-tailed learning reports accuracy on the rare ("few-shot") classes apart from the
frequent ones. A data set's rows do not say which classes are rare, the training fold does:
after an ``imbalance`` scenario the classes are ranked by their number of training rows.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "TAIL_DIRECTIONS",
    "TAIL_METRICS",
    "head_tail_accuracy",
    "head_tail_scores",
    "tail_classes",
    "within_class_variability",
]

#: direction of each metric when a check compares losses on it
TAIL_DIRECTIONS: dict[str, bool] = {"tail_accuracy": True, "head_accuracy": True, "nc1": False}
TAIL_METRICS = tuple(TAIL_DIRECTIONS)


def tail_classes(train_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the head and the tail classes: the most and the least frequent thirds.

    Each third holds ``max(1, C // 3)`` classes, ranked by ``train_counts`` (rows per class
    in the training fold); among equal counts the later class counts as rarer, the order the
    ``imbalance`` scenario uses on a balanced data set.
    """
    counts = np.asarray(train_counts, dtype=np.float64)
    order = np.argsort(-counts, kind="stable")  # most frequent first
    size = max(1, len(counts) // 3)
    return np.sort(order[:size]), np.sort(order[-size:])


def head_tail_accuracy(
    y_index: np.ndarray, pred_index: np.ndarray, train_counts: np.ndarray
) -> dict[str, float]:
    """``tail_accuracy`` and ``head_accuracy``: mean per-class recall over each third.

    ``y_index`` and ``pred_index`` are class indices of the test rows. A class absent from the
    test fold is left out of its third's mean; a third with no class in the fold (or fewer
    than 3 classes, where head and tail would overlap) gives no value.
    """
    y_index, pred_index = np.asarray(y_index), np.asarray(pred_index)
    if len(train_counts) < 3:
        return {}
    out: dict[str, float] = {}
    for name, classes in zip(("head", "tail"), tail_classes(train_counts), strict=True):
        recalls = [np.mean(pred_index[y_index == k] == k) for k in classes if np.any(y_index == k)]
        if recalls:
            out[f"{name}_accuracy"] = float(np.mean(recalls))
    return out


def within_class_variability(features: np.ndarray, y_index: np.ndarray) -> dict[str, float]:
    r"""``nc1``: :math:`\mathrm{tr}(\Sigma_W\Sigma_B^{+})/K` of the features (Papyan et al., 2020).

    :math:`\Sigma_W` is the within-class covariance (rows about their class mean, averaged over
    the rows), :math:`\Sigma_B` the covariance of the K class means about their average (each
    class once, so a long-tailed fold does not tilt it), :math:`^{+}` the pseudo-inverse, over
    the K classes present. 0 when every class has collapsed to its mean; no value with fewer
    than 2 classes or class means that coincide.
    """
    features = np.asarray(features, dtype=np.float64)
    y_index = np.asarray(y_index)
    present = np.unique(y_index)
    if len(present) < 2:
        return {}
    means = np.stack([features[y_index == k].mean(axis=0) for k in present])
    spread = means - means.mean(axis=0)
    sigma_b = spread.T @ spread / len(present)
    if not np.any(sigma_b):
        return {}
    deviations = features - means[np.searchsorted(present, y_index)]
    sigma_w = deviations.T @ deviations / len(features)
    # Pseudo-inverse on the eigenvalues above round-off: Sigma_B has rank K-1 at most, and
    # inverting its numerically-zero directions would blow the trace up.
    values, vectors = np.linalg.eigh(sigma_b)
    keep = values > 1e-10 * values.max()
    inverse = (vectors[:, keep] / values[keep]) @ vectors[:, keep].T
    return {"nc1": float(np.trace(sigma_w @ inverse) / len(present))}


def head_tail_scores(
    classes: np.ndarray, y_test: np.ndarray, predicted: np.ndarray, y_fit: np.ndarray
) -> dict[str, float]:
    """:func:`head_tail_accuracy` from labels: the thirds ranked by the training labels ``y_fit``.

    ``classes`` are the fitted model's sorted classes (``classes_``); ``y_fit`` the training
    fold's labels as the model was fitted on them (after the scenario).
    """
    classes = np.asarray(classes)
    counts = np.array([np.sum(np.asarray(y_fit) == c) for c in classes])
    # predict returns values of classes_, so every label has its index
    y_index = np.searchsorted(classes, np.asarray(y_test))
    pred_index = np.searchsorted(classes, np.asarray(predicted))
    return head_tail_accuracy(y_index, pred_index, counts)
