"""Calibration losses against float64 loop references, and LossCalibratedClassifier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

import lossreg
from lossreg.estimators.calibration import LossCalibratedClassifier


@pytest.fixture(scope="module", autouse=True)
def _one_native_thread():
    # scikit-learn's BLAS / OpenMP threads crawl on a busy 2-core machine; tiny fits need one.
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def registry():
    return lossreg.Registry(entry_points=False)


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(11)
    z = torch.randn(40, 3, generator=gen, dtype=torch.float64) * 3
    y = torch.randint(0, 3, (40,), generator=gen)
    w = torch.rand(40, generator=gen, dtype=torch.float64)
    return z, y, w


def _softmax(row):
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    return [e / sum(exps) for e in exps]


def _set_temperature(loss, value):
    loss.double()  # a float64 log T, so that T is the exact value the loops use
    with torch.no_grad():
        loss.log_temperature.fill_(math.log(value))
    return loss


# -- temperature scaling --------------------------------------------------------------------


@pytest.mark.reference("temperature_scaling")
@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.5])
def test_temperature_scaling_matches_torch_cross_entropy(registry, data, temperature):
    z, y, _ = data
    loss = registry.create_loss("temperature_scaling", n_classes=3, reduction="none")
    _set_temperature(loss, temperature)
    torch.testing.assert_close(loss(z, y), F.cross_entropy(z / temperature, y, reduction="none"))


def test_vector_scaling_and_link(registry, data):
    z, y, w = data
    loss = registry.create_loss("temperature_scaling", affine=True, n_classes=3)
    with torch.no_grad():
        loss.weight.copy_(torch.tensor([0.5, 2.0, 1.0]))
        loss.bias.copy_(torch.tensor([0.1, 0.0, -0.3]))
    calibrated = z * torch.tensor([0.5, 2.0, 1.0], dtype=z.dtype) + torch.tensor(
        [0.1, 0.0, -0.3], dtype=z.dtype
    )
    expected = F.cross_entropy(calibrated, y, reduction="none")
    torch.testing.assert_close(loss(z, y, sample_weight=w), (expected * w).sum() / w.sum())
    link = lossreg.get_spec("temperature_scaling").link
    torch.testing.assert_close(link(z, loss), calibrated.softmax(1))
    torch.testing.assert_close(link(z, None), z.softmax(1))


# -- correctness aware ----------------------------------------------------------------------


def _ca_loop(z, y, temperature, balanced, weights=None):
    rows = [1.0] * len(y) if weights is None else list(weights)
    correct = [float(max(range(len(r)), key=lambda k: r[k]) == yi) for r, yi in zip(z, y)]
    acc = sum(c * s for c, s in zip(correct, rows)) / sum(rows)
    num = den = 0.0
    for r, c, s in zip(z, correct, rows):
        conf = max(_softmax([v / temperature for v in r]))
        w = s * ((1 - acc) if c else acc) if balanced else s
        num += w * (conf - c) ** 2
        den += w
    return num / den


@pytest.mark.reference("correctness_aware")
@pytest.mark.parametrize(("temperature", "balanced"), [(1.0, True), (2.0, True), (0.7, False)])
def test_correctness_aware_matches_loop(registry, data, temperature, balanced):
    z, y, w = data
    loss = _set_temperature(
        registry.create_loss("correctness_aware", balanced=balanced), temperature
    )
    expected = _ca_loop(z.tolist(), y.tolist(), temperature, balanced)
    assert loss(z, y).item() == pytest.approx(expected, rel=1e-10)
    weighted = _ca_loop(z.tolist(), y.tolist(), temperature, balanced, w.tolist())
    assert loss(z, y, sample_weight=w).item() == pytest.approx(weighted, rel=1e-10)
    total = registry.create_loss("correctness_aware", balanced=balanced, reduction="sum")
    _set_temperature(total, temperature)
    assert total(z, y).item() == pytest.approx(expected * len(y), rel=1e-10)


def test_correctness_aware_edge_cases(registry):
    z = torch.tensor([[3.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    loss = registry.create_loss("correctness_aware")
    assert loss(z, torch.tensor([0, 1])).item() == 0.0  # all correct: zero weight, not NaN
    with pytest.raises(ValueError, match="batch-level"):
        registry.create_loss("correctness_aware", reduction="none")


# -- h-calibration --------------------------------------------------------------------------


def _h_loop(probs, outcomes, veclen, epsilon, weighting):
    events = sorted(
        ((p, o) for prow, orow in zip(probs, outcomes) for p, o in zip(prow, orow)),
        key=lambda e: e[0],
    )
    n, half = len(events), veclen // 2
    errors = []
    for j in range(n):
        total = 0.0
        for k in range(j - half, j + half + 1):
            if 0 <= k < n:
                total += events[k][0] - events[k][1]
        errors.append(max(abs(total / (2 * half + 1)) - epsilon, 0.0))
    if weighting == "unweighted":
        return sum(errors) / n
    bins = np.array_split(np.arange(n), 15)
    means = [sum(errors[i] for i in b) / len(b) for b in bins if len(b)]
    return sum(means) / len(means)


@pytest.mark.reference("h_calibration")
@pytest.mark.parametrize(
    ("veclen", "weighting", "leave_one_out", "temperature"),
    [(10, "unweighted", True, 1.0), (20, "equal_mass", True, 2.0), (6, "equal_mass", False, 0.8)],
)
def test_h_calibration_matches_loop(registry, data, veclen, weighting, leave_one_out, temperature):
    z, y, _ = data
    loss = registry.create_loss(
        "h_calibration", veclen=veclen, weighting=weighting, leave_one_out=leave_one_out
    )
    _set_temperature(loss, temperature)
    probs = [_softmax([v / temperature for v in r]) for r in z.tolist()]
    outcomes = [[float(c == yi) for c in range(3)] for yi in y.tolist()]
    if leave_one_out:
        parts = []
        for c in range(3):
            keep = [i for i, yi in enumerate(y.tolist()) if yi != c]
            sub_p, sub_o = [probs[i] for i in keep], [outcomes[i] for i in keep]
            parts.append(_h_loop(sub_p, sub_o, veclen, 1e-20, weighting))
        expected = sum(parts) / 3
    else:
        expected = _h_loop(probs, outcomes, veclen, 1e-20, weighting)
    assert loss(z, y).item() == pytest.approx(1e5 * expected, rel=1e-9)


def test_h_calibration_rejects_weights_and_gives_gradients(registry, data):
    z, y, w = data
    loss = registry.create_loss("h_calibration", veclen=10)
    with pytest.raises(ValueError, match="sample weights"):
        loss(z, y, sample_weight=w)
    loss(z.float(), y).backward()
    assert torch.isfinite(loss.log_temperature.grad)


# -- LossCalibratedClassifier ---------------------------------------------------------------


@pytest.fixture(scope="module")
def splits():
    X, y = make_classification(
        600, 40, n_informative=4, n_redundant=0, n_classes=3, flip_y=0.1, random_state=0
    )
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, test_size=0.66, random_state=0)
    X_cal, X_test, y_cal, y_test = train_test_split(X_rest, y_rest, test_size=0.5, random_state=0)
    # Almost unregularised on few rows and many noise features: over-confident.
    model = LogisticRegression(C=1e3, max_iter=2000).fit(X_train, y_train)
    return model, (X_train, y_train), (X_cal, y_cal), (X_test, y_test)


def test_temperature_scaling_lowers_held_out_log_loss(splits):
    model, _, (X_cal, y_cal), (X_test, y_test) = splits
    before = log_loss(y_test, model.predict_proba(X_test))
    calibrated = LossCalibratedClassifier(model, "temperature_scaling").fit(X_cal, y_cal)
    after = log_loss(y_test, calibrated.predict_proba(X_test))
    assert calibrated.calibrator_.temperature_ > 1.5  # it softens an over-confident model
    assert after < before - 0.1
    np.testing.assert_array_equal(calibrated.predict(X_test), model.predict(X_test))


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("correctness_aware", None),
        ("h_calibration", {"veclen": 50}),
        ("temperature_scaling", {"affine": True}),
    ],
)
def test_other_calibration_losses_fit(splits, method, params):
    model, _, (X_cal, y_cal), (X_test, y_test) = splits
    calibrated = LossCalibratedClassifier(model, method, method_params=params, max_iter=30).fit(
        X_cal, y_cal
    )
    proba = calibrated.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    assert log_loss(y_test, proba) < log_loss(y_test, model.predict_proba(X_test))


def test_cross_validated_calibration_and_sklearn_conventions(splits):
    _, (X_train, y_train), _, (X_test, _) = splits
    labels = np.array(["a", "b", "c"])[y_train]
    estimator = LossCalibratedClassifier(LogisticRegression(C=100.0, max_iter=300), cv=3)
    clone(estimator)
    assert estimator.get_params()["method"] == "temperature_scaling"
    estimator.fit(X_train, labels)
    assert list(estimator.classes_) == ["a", "b", "c"]
    assert set(estimator.predict(X_test)) <= {"a", "b", "c"}
    assert estimator.calibrator_.temperature_ > 1.0


def test_calibrator_rejects_non_calibration_losses(splits):
    model, _, (X_cal, y_cal), _ = splits
    with pytest.raises(ValueError, match="not a calibration loss"):
        LossCalibratedClassifier(model, "cross_entropy").fit(X_cal, y_cal)
    with pytest.raises(lossreg.InvalidLossParameterError, match="affine"):
        LossCalibratedClassifier(model, method_params={"afine": True}).fit(X_cal, y_cal)


def test_calibration_loss_as_a_training_loss_predicts_through_the_temperature():
    from lossreg import LossClassifier

    X, y = make_classification(100, 4, random_state=3)
    clf = LossClassifier(loss="temperature_scaling", max_iter=3, random_state=0).fit(X, y)
    assert clf.criterion_.log_temperature.requires_grad
    np.testing.assert_allclose(clf.predict_proba(X).sum(1), 1.0)


def test_calibration_gives_probabilities_to_a_score_only_classifier(splits):
    from sklearn.svm import LinearSVC

    _, (X_train, y_train), (X_cal, y_cal), (X_test, _) = splits
    svm = LinearSVC(C=1.0).fit(X_train, y_train)
    assert not hasattr(svm, "predict_proba")
    calibrated = LossCalibratedClassifier(svm, "temperature_scaling").fit(X_cal, y_cal)
    proba = calibrated.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(calibrated.predict(X_test), svm.predict(X_test))
    binary = (y_train == 0).astype(int)
    svm2 = LinearSVC(C=1.0).fit(X_train, binary)  # decision_function (N,) -> logits [0, d]
    cal2 = LossCalibratedClassifier(svm2).fit(X_cal, (y_cal == 0).astype(int))
    assert cal2.predict_proba(X_test).shape == (len(X_test), 2)


def test_calibrator_gets_member_data_params_like_the_other_estimators(splits, monkeypatch):
    from dataclasses import replace

    import lossreg.estimators.calibration as calibration
    from lossreg.plugins.calibration.temperature import TemperatureScaling

    class CountedTemperature(TemperatureScaling):
        def __init__(self, *, class_counts=None, **kwargs):
            super().__init__(**kwargs)
            self.class_counts = class_counts

    def member_counts(params):
        """A composite whose member needs class counts."""
        return ("class_counts",)

    spec = replace(
        lossreg.get_spec("temperature_scaling"),
        name="counted_temperature",
        aliases=(),
        factory=CountedTemperature,
        data_params_of=member_counts,
    )
    monkeypatch.setattr(
        calibration, "get_spec", lambda name: spec if name == spec.name else lossreg.get_spec(name)
    )
    model, _, (X_cal, y_cal), _ = splits
    calibrated = LossCalibratedClassifier(model, "counted_temperature", max_iter=5)
    calibrated.fit(X_cal, np.array(["a", "b", "c"])[y_cal])
    assert calibrated.calibrator_.class_counts == np.bincount(y_cal).tolist()
