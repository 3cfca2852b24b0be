"""The first built-in losses against independent references.

References: torch.nn.functional (its own C++ kernels), kornia's focal losses, scikit-learn's
metrics, and float64 loops written from the papers' formulas.
"""

from __future__ import annotations

import math

import kornia.losses
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error

import lossreg

torch.set_default_dtype(torch.float32)


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 5, generator=gen, dtype=torch.float64) * 3
    labels = torch.randint(0, 5, (64,), generator=gen)
    binary_logits = torch.randn(64, 3, generator=gen, dtype=torch.float64) * 3
    binary_targets = torch.randint(0, 2, (64, 3), generator=gen).double()
    weights = torch.rand(64, generator=gen, dtype=torch.float64)
    return logits, labels, binary_logits, binary_targets, weights


@pytest.mark.reference("cross_entropy")
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.35])
def test_cross_entropy_matches_torch(data, smoothing):
    logits, labels, *_ = data
    ours = lossreg.create_loss("cross_entropy", label_smoothing=smoothing, reduction="none")
    ref = F.cross_entropy(logits, labels, label_smoothing=smoothing, reduction="none")
    torch.testing.assert_close(ours(logits, labels), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.reference("cross_entropy")
def test_cross_entropy_mean_matches_scikit_learn_log_loss(data):
    logits, labels, *_, weights = data
    probs = logits.softmax(dim=1).numpy()
    ref = log_loss(labels.numpy(), probs, sample_weight=weights.numpy(), labels=list(range(5)))
    ours = lossreg.create_loss("cross_entropy")(logits, labels, sample_weight=weights)
    assert ours.item() == pytest.approx(ref, rel=1e-9)


@pytest.mark.reference("focal")
def test_focal_matches_kornia(data):
    logits, labels, *_ = data
    for gamma in (0.0, 0.5, 2.0, 4.0):
        ours = lossreg.create_loss("focal", gamma=gamma, reduction="none")(logits, labels)
        ref = kornia.losses.focal_loss(logits, labels, alpha=None, gamma=gamma, reduction="none")
        ref = ref.sum(dim=1)  # kornia keeps the class axis, zero off the target class
        torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.reference("focal")
def test_focal_class_weights_match_kornia_weight(data):
    logits, labels, *_ = data
    alpha = [0.1, 0.2, 0.3, 0.4, 2.0]
    ours = lossreg.create_loss("focal", alpha=alpha, reduction="none")(logits, labels)
    ref = kornia.losses.focal_loss(
        logits, labels, alpha=None, gamma=2.0, weight=torch.tensor(alpha).double(), reduction="none"
    ).sum(dim=1)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)


def test_focal_at_gamma_zero_is_exactly_cross_entropy(data):
    logits, labels, *_ = data
    focal = lossreg.create_loss("focal", gamma=0.0, reduction="none")(logits, labels)
    ce = lossreg.create_loss("cross_entropy", reduction="none")(logits, labels)
    assert torch.equal(focal, ce)


def test_focal_rejects_a_wrong_number_of_class_weights(data):
    logits, labels, *_ = data
    with pytest.raises(ValueError, match="alpha has 2 values but the output has 5 classes"):
        lossreg.create_loss("focal", alpha=[1.0, 2.0])(logits, labels)


@pytest.mark.reference("bce")
def test_bce_matches_torch_and_scikit_learn(data):
    *_, x, y, _ = data
    ours = lossreg.create_loss("bce", reduction="none")(x, y)
    ref = F.binary_cross_entropy_with_logits(x, y, reduction="none").mean(dim=1)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    column = lossreg.create_loss("bce")(x[:, 0], y[:, 0])
    sk = log_loss(y[:, 0].numpy(), torch.sigmoid(x[:, 0]).numpy())
    assert column.item() == pytest.approx(sk, rel=1e-9)


@pytest.mark.reference("bce")
def test_bce_pos_weight_matches_torch(data):
    *_, x, y, _ = data
    pos_weight = [0.5, 2.0, 5.0]
    ours = lossreg.create_loss("bce", pos_weight=pos_weight)(x, y)
    ref = F.binary_cross_entropy_with_logits(x, y, pos_weight=torch.tensor(pos_weight).double())
    assert ours.item() == pytest.approx(ref.item(), rel=1e-12)


def test_bce_accepts_n_by_1_and_flat_binary_targets(data):
    *_, x, y, _ = data
    loss = lossreg.create_loss("bce", reduction="none")
    torch.testing.assert_close(loss(x[:, :1], y[:, 0]), loss(x[:, 0], y[:, 0]))


@pytest.mark.reference("binary_focal")
@pytest.mark.parametrize(("gamma", "alpha"), [(2.0, 0.25), (0.0, 0.25), (1.5, 0.9), (3.0, None)])
def test_binary_focal_matches_kornia(data, gamma, alpha):
    *_, x, y, _ = data
    ours = lossreg.create_loss("binary_focal", gamma=gamma, alpha=alpha, reduction="none")(x, y)
    ref = kornia.losses.binary_focal_loss_with_logits(
        x, y, alpha=alpha, gamma=gamma, reduction="none"
    ).mean(dim=1)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)


def test_binary_focal_without_alpha_at_gamma_zero_is_bce(data):
    *_, x, y, _ = data
    focal = lossreg.create_loss("binary_focal", gamma=0.0, alpha=None, reduction="none")(x, y)
    bce = lossreg.create_loss("bce", reduction="none")(x, y)
    torch.testing.assert_close(focal, bce, rtol=1e-12, atol=1e-12)


def _huber_loop(pred: np.ndarray, target: np.ndarray, delta: float) -> float:
    total = 0.0
    for p, t in zip(pred.ravel(), target.ravel()):
        e = abs(t - p)
        total += 0.5 * e * e if e <= delta else delta * (e - 0.5 * delta)
    return total / pred.size


@pytest.mark.reference("mse", "mae", "huber")
def test_regression_losses_match_scikit_learn_and_torch():
    rng = np.random.default_rng(1)
    pred = rng.normal(size=(50, 2)) * 3
    target = rng.normal(size=(50, 2)) * 3
    p, t = torch.tensor(pred), torch.tensor(target)
    assert lossreg.create_loss("mse")(p, t).item() == pytest.approx(
        mean_squared_error(target, pred), rel=1e-12
    )
    assert lossreg.create_loss("mae")(p, t).item() == pytest.approx(
        mean_absolute_error(target, pred), rel=1e-12
    )
    for delta in (0.3, 1.0, 4.0):
        ours = lossreg.create_loss("huber", delta=delta)(p, t).item()
        assert ours == pytest.approx(_huber_loop(pred, target, delta), rel=1e-12)
        assert ours == pytest.approx(F.huber_loss(p, t, delta=delta).item(), rel=1e-12)


def test_regression_per_row_value_is_the_mean_over_outputs():
    pred = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    target = torch.zeros(2, 2)
    assert lossreg.create_loss("mse", reduction="none")(pred, target).tolist() == [5.0, 0.0]


def test_sample_weights_reach_reduce_for_every_builtin(data):
    logits, labels, x, y, weights = data
    cases = {
        "cross_entropy": (logits, labels),
        "focal": (logits, labels),
        "bce": (x, y),
        "binary_focal": (x, y),
        "mse": (x, y),
        "mae": (x, y),
        "huber": (x, y),
    }
    for name, (inp, tgt) in cases.items():
        rows = lossreg.create_loss(name, reduction="none")(inp, tgt)
        weighted = lossreg.create_loss(name)(inp, tgt, sample_weight=weights)
        expected = (rows * weights).sum() / weights.sum()
        assert weighted.item() == pytest.approx(expected.item(), rel=1e-12), name


def test_large_logits_stay_finite():
    big = torch.tensor([[1000.0, -1000.0], [-1000.0, 1000.0]], requires_grad=True)
    labels = torch.tensor([1, 1])
    for name in ("cross_entropy", "focal"):
        value = lossreg.create_loss(name)(big, labels)
        (grad,) = torch.autograd.grad(value, big)
        assert math.isfinite(value.item()) and torch.isfinite(grad).all(), name
    for name in ("bce", "binary_focal"):
        value = lossreg.create_loss(name)(big, torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        (grad,) = torch.autograd.grad(value, big)
        assert math.isfinite(value.item()) and torch.isfinite(grad).all(), name
