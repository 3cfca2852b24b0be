"""lossreg compare: head/tail-class accuracy and NC1 of the last hidden layer."""

from __future__ import annotations

import numpy as np
import pytest

from lossreg.compare import compare
from lossreg.compare._metrics import CLASSIFICATION_METRICS, GREATER_IS_BETTER
from lossreg.compare._tail import head_tail_accuracy, tail_classes, within_class_variability

FAST = {"max_iter": 3, "module__hidden_units": (8,), "batch_size": 64}


def test_tail_classes_rank_by_training_counts_later_class_rarer_among_ties():
    head, tail = tail_classes(np.array([5, 50, 5, 20, 9, 50]))
    assert head.tolist() == [1, 5] and tail.tolist() == [0, 2]
    head, tail = tail_classes(np.array([10, 10, 10, 10]))  # balanced: index order
    assert head.tolist() == [0] and tail.tolist() == [3]


def test_head_tail_accuracy_is_the_mean_recall_of_each_third():
    y = np.array([0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4, 5])
    pred = np.array([0, 1, 1, 1, 2, 0, 0, 0, 3, 4, 0, 0])
    counts = np.array([100, 80, 40, 20, 5, 2])  # head {0, 1}, tail {4, 5}
    out = head_tail_accuracy(y, pred, counts)
    assert out["head_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert out["tail_accuracy"] == pytest.approx((0.5 + 0.0) / 2)
    # a tail class absent from the test fold is left out of the mean
    keep = y != 5
    assert head_tail_accuracy(y[keep], pred[keep], counts)["tail_accuracy"] == 0.5
    assert head_tail_accuracy(np.array([0, 1]), np.array([0, 1]), np.array([3, 1])) == {}


def _nc1_loop(features, y):
    """tr(S_W pinv(S_B)) / K with explicit sums over rows and classes."""
    classes = sorted(set(y.tolist()))
    d = features.shape[1]
    means = {
        k: sum(features[i] for i in range(len(y)) if y[i] == k) / np.sum(y == k) for k in classes
    }
    grand = sum(means.values()) / len(classes)
    s_w, s_b = np.zeros((d, d)), np.zeros((d, d))
    for i in range(len(y)):
        v = features[i] - means[y[i]]
        s_w += np.outer(v, v) / len(y)
    for k in classes:
        v = means[k] - grand
        s_b += np.outer(v, v) / len(classes)
    return np.trace(s_w @ np.linalg.pinv(s_b, rcond=1e-10)) / len(classes)


def test_nc1_against_a_loop_reference_and_zero_when_collapsed():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), [30, 10, 5, 3])
    centres = rng.normal(size=(4, 6)) * 3
    features = centres[y] + rng.normal(size=(48, 6))
    assert within_class_variability(features, y)["nc1"] == pytest.approx(_nc1_loop(features, y))
    assert within_class_variability(centres[y], y)["nc1"] == pytest.approx(0.0, abs=1e-12)
    wider = centres[y] + 3 * rng.normal(size=(48, 6))
    assert within_class_variability(wider, y)["nc1"] > within_class_variability(features, y)["nc1"]
    assert within_class_variability(np.ones((6, 2)), np.array([0, 0, 1, 1, 2, 2])) == {}


def test_metrics_are_known_to_checks_and_reports():
    assert {"tail_accuracy", "head_accuracy", "nc1"} <= set(CLASSIFICATION_METRICS)
    assert GREATER_IS_BETTER["tail_accuracy"] and not GREATER_IS_BETTER["nc1"]


def test_compare_records_tail_accuracy_after_imbalance():
    frame = compare(
        "synthetic:classification(n_samples=600, n_classes=6, n_features=8, n_informative=6)",
        losses="cross_entropy,neural_collapse_reg(base='logit_adjusted')",
        scenarios=["imbalance:20"],
        models=["gaussian_nb"],
        cv=2,
        estimator_params=FAST,
        torch_threads=1,
    )
    assert (frame["status"] == "ok").all()
    assert frame[["tail_accuracy", "head_accuracy"]].notna().all().all()
    assert frame[["tail_accuracy", "head_accuracy"]].stack().between(0, 1).all()
    # the reference model has accuracies but no hidden layer, so no NC1
    model = frame["loss_label"] == "model:gaussian_nb"
    assert model.any() and frame.loc[model, "nc1"].isna().all()
    assert (frame.loc[~model, "nc1"] >= 0).all()
