"""Mixed targets (a value and a class column): uncertainty_weighted_mixed against a loop over
rows written from Kendall et al.'s formula, and LossMixedEstimator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lossreg
from lossreg import LossMixedEstimator
from lossreg.estimators.mixed import encode_mixed_target


def _loop_reference(out, target, log_var, c_value, c_class, d, weights=None):
    """Per-row loss written from the paper: sum_t c_t exp(-s_t) L_t + d s_t, row by row."""
    rows = []
    for i in range(len(out)):
        squared = (out[i][0] - target[i][0]) ** 2
        logits = out[i][1:]
        top = max(logits)
        log_norm = top + math.log(sum(math.exp(z - top) for z in logits))
        cross_entropy = log_norm - logits[int(target[i][1])]
        if log_var is None:
            rows.append(squared + cross_entropy)
            continue
        s_value, s_class = log_var
        rows.append(
            c_value * math.exp(-s_value) * squared
            + d * s_value
            + c_class * math.exp(-s_class) * cross_entropy
            + d * s_class
        )
    if weights is None:
        return rows
    return sum(w * r for w, r in zip(weights, rows, strict=True)) / sum(weights)


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(5)
    out = torch.randn(9, 4, generator=gen, dtype=torch.float64) * 2
    value = torch.randn(9, generator=gen, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 2, 1, 0, 0, 2, 1], dtype=torch.float64)
    weights = torch.rand(9, generator=gen, dtype=torch.float64) + 0.1
    return out, torch.stack([value, labels], dim=1), weights


@pytest.mark.reference("uncertainty_weighted_mixed")
@pytest.mark.parametrize(
    ("form", "scales"), [("kendall", (0.5, 1.0, 0.5)), ("simplified", (1.0, 1.0, 1.0))]
)
def test_mixed_loss_matches_a_loop_over_rows(batch, form, scales):
    out, target, weights = batch
    loss = lossreg.create_loss(
        "uncertainty_weighted_mixed", form=form, n_classes=3, reduction="none"
    ).double()
    with torch.no_grad():
        loss.log_var.copy_(torch.tensor([-0.7, 0.4], dtype=torch.float64))
    ref = _loop_reference(out.tolist(), target.tolist(), [-0.7, 0.4], *scales)
    np.testing.assert_allclose(loss(out, target).detach().numpy(), ref, rtol=1e-12)
    mean = lossreg.create_loss("uncertainty_weighted_mixed", form=form, n_classes=3).double()
    with torch.no_grad():
        mean.log_var.copy_(torch.tensor([-0.7, 0.4], dtype=torch.float64))
    weighted = _loop_reference(
        out.tolist(), target.tolist(), [-0.7, 0.4], *scales, weights=weights.tolist()
    )
    assert mean(out, target, sample_weight=weights).item() == pytest.approx(weighted, rel=1e-12)


@pytest.mark.reference("uncertainty_weighted_mixed")
def test_equal_weights_are_the_plain_sum_and_learn_nothing(batch):
    out, target, _ = batch
    loss = lossreg.create_loss(
        "uncertainty_weighted_mixed", weights="equal", n_classes=3, reduction="none"
    )
    assert list(loss.parameters()) == []
    ref = _loop_reference(out.tolist(), target.tolist(), None, 1.0, 1.0, 1.0)
    np.testing.assert_allclose(loss(out, target).numpy(), ref, rtol=1e-12)


def test_log_variances_reach_their_closed_form_optimum():
    # d/ds [c e^{-s} L + s/2] = 0 at s = log(2 c L): s_value = log L_1, s_class = log(2 L_2).
    out = torch.tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    target = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    loss = lossreg.create_loss("uncertainty_weighted_mixed", n_classes=2)
    squared, cross_entropy = loss.task_losses(out, target).mean(dim=0).tolist()
    with torch.no_grad():
        loss.log_var.copy_(torch.tensor([math.log(squared), math.log(2 * cross_entropy)]))
    loss(out, target).backward()
    torch.testing.assert_close(loss.log_var.grad, torch.zeros(2), atol=1e-6, rtol=0)


def test_mixed_loss_rejects_wrong_shapes():
    loss = lossreg.create_loss("uncertainty_weighted_mixed", n_classes=3)
    with pytest.raises(ValueError, match=r"takes \(N, 4\) outputs"):
        loss(torch.zeros(5, 3), torch.zeros(5, 2))
    with pytest.raises(ValueError, match=r"takes \(N, 2\) targets"):
        loss(torch.zeros(5, 4), torch.zeros(5))


@pytest.fixture(scope="module")
def mixed_xy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 5)).astype(np.float32)
    labels = np.array(["low", "mid", "high"])[np.digitize(X[:, 2], [-0.5, 0.5])]
    y = np.empty((240, 2), dtype=object)
    y[:, 0], y[:, 1] = 3.0 * X[:, 0] - X[:, 1], labels
    return X, y


def test_estimator_predicts_a_value_and_a_label(mixed_xy):
    X, y = mixed_xy
    model = LossMixedEstimator(max_iter=25, batch_size=40, lr=3e-3, random_state=0).fit(X, y)
    pred = model.predict(X)
    assert pred.shape == (240, 2) and pred.dtype == object
    assert list(model.classes_) == ["high", "low", "mid"]
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(pred[:, 1], model.classes_[proba.argmax(axis=1)])
    np.testing.assert_allclose(pred[:, 0].astype(float), model.predict_value(X))
    # both heads learned: far better than the mean value and the majority class
    value = y[:, 0].astype(float)
    assert np.mean((model.predict_value(X) - value) ** 2) < 0.3 * value.var()
    assert np.mean(pred[:, 1] == y[:, 1]) > 0.8
    # the log-variances reached the optimizer and moved
    assert not torch.allclose(model.criterion_.log_var, torch.zeros(2))
    numeric = np.column_stack([y[:, 0].astype(float), np.searchsorted(["high", "low"], y[:, 1])])
    fitted = LossMixedEstimator(max_iter=2, random_state=0).fit(X, numeric)
    assert fitted.predict(X[:4]).dtype == np.float64


def test_estimator_names_wrong_targets(mixed_xy):
    X, y = mixed_xy
    model = LossMixedEstimator(max_iter=1)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 2\).*Got shape \(240,\)"):
        model.fit(X, y[:, 0])
    with pytest.raises(ValueError, match=r"Got shape \(240, 3\)"):
        model.fit(X, np.column_stack([y, y[:, :1]]))
    with pytest.raises(ValueError, match=r"Column 0 of y .* must hold numbers"):
        model.fit(X, y[:, ::-1])
    single = y.copy()
    single[:, 1] = "low"
    with pytest.raises(ValueError, match="single class"):
        model.fit(X, single)
    missing = y.copy()
    missing[3, 0] = np.nan
    with pytest.raises(ValueError, match="1 missing or infinite"):
        encode_mixed_target(missing)
    with pytest.raises(lossreg.UnsupportedTaskError, match="does not support task 'mixed'"):
        LossMixedEstimator(loss="mse", max_iter=1).fit(X, y)


def test_a_failed_fit_leaves_no_classes_for_warm_start(mixed_xy):
    X, y = mixed_xy
    model = LossMixedEstimator(max_iter=1, warm_start=True, loss__form="bogus")
    with pytest.raises(ValueError, match="bogus"):
        model.fit(X, y)
    assert not hasattr(model, "classes_") and not hasattr(model, "net_")
    other = np.column_stack([y[:, 0].astype(float), np.where(y[:, 1] == "low", 5, 7)])
    model.set_params(loss__form="kendall").fit(X, other)  # new classes: nothing was fitted
    assert model.classes_.tolist() == [5, 7]
    with pytest.raises(ValueError, match=r"warm_start: .*\[1\.0, 3\.0\].*\[5\.0, 7\.0\]"):
        model.fit(X, np.column_stack([other[:, 0], other[:, 1] - 4]))
    assert model.classes_.tolist() == [5, 7]  # the fitted model keeps its classes


@pytest.mark.parametrize("dtype", [np.float32, np.float64, object])
def test_nan_labels_are_missing_whatever_the_dtype(dtype):
    y = np.column_stack([np.arange(6.0), [0, 1, np.nan, 1, 0, 1]]).astype(dtype)
    with pytest.raises(ValueError, match=r"Column 1 of y .* has 1 missing labels"):
        encode_mixed_target(y)
