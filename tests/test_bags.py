"""Bag-level losses against float64 loops over bags and rows, scipy's KL, and their identities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy

import lossreg
from lossreg import LossClassifier, LossRegressor


@pytest.fixture
def bags():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(20, 3, generator=gen, dtype=torch.float64) * 2
    bag = torch.tensor([7, 7, 7, 2, 2, 9, 9, 9, 9, 9, 4, 4, 4, 4, 1, 1, 1, 1, 1, 1])
    ids = sorted(set(bag.tolist()))
    props = torch.rand(len(ids), 3, generator=gen, dtype=torch.float64)
    props[1, 2] = 0.0  # a class absent from a bag
    props = props / props.sum(1, keepdim=True)
    per_row = torch.stack([props[ids.index(b)] for b in bag.tolist()])
    weights = torch.stack([torch.tensor(float(1 + ids.index(b))) for b in bag.tolist()]).double()
    return logits, bag, per_row, weights


def _bag_rows(bag):
    rows = {}
    for i, b in enumerate(bag.tolist()):
        rows.setdefault(b, []).append(i)
    return rows


def _mean_proba(logits, rows):
    """Mean softmax probability of the rows, computed one row at a time."""
    c = len(logits[0])
    total = [0.0] * c
    for i in rows:
        z = logits[i]
        norm = sum(math.exp(v) for v in z)
        for k in range(c):
            total[k] += math.exp(z[k]) / norm
    return [t / len(rows) for t in total]


def _reference(kind, logits, bag, per_row, bag_weight="uniform", weights=None):
    logits, per_row = logits.tolist(), per_row.tolist()
    num = den = 0.0
    for rows in _bag_rows(bag).values():
        mean = _mean_proba(logits, rows)
        alpha = per_row[rows[0]]
        if kind == "dllp":
            value = -sum(a * math.log(m) for a, m in zip(alpha, mean) if a > 0)
        elif kind == "mse":
            value = sum((m - a) ** 2 for a, m in zip(alpha, mean))
        elif kind == "kl_pred":
            value = sum(m * (math.log(m) - math.log(a + 1e-10)) for a, m in zip(alpha, mean))
        w = len(rows) if bag_weight == "size" else 1.0
        if weights is not None:
            w *= float(np.mean([weights[i].item() for i in rows]))
        num += w * value
        den += w
    return num / den


@pytest.mark.reference("dllp")
@pytest.mark.parametrize("bag_weight", ["uniform", "size"])
def test_dllp_matches_a_loop_over_bags(bags, bag_weight):
    logits, bag, per_row, weights = bags
    loss = lossreg.create_loss("dllp", bag_weight=bag_weight)
    for w in (None, weights):
        ours = loss(logits, None, bag=bag, bag_target=per_row, sample_weight=w).item()
        ref = _reference("dllp", logits, bag, per_row, bag_weight, w)
        assert ours == pytest.approx(ref, rel=1e-10)


def test_dllp_is_kl_plus_entropy_and_alias_is_identical(bags):
    logits, bag, per_row, _ = bags
    dllp = lossreg.create_loss("dllp")(logits, None, bag=bag, bag_target=per_row)
    alias = lossreg.create_loss("bag_proportion_ce")(logits, None, bag=bag, bag_target=per_row)
    kl = lossreg.create_loss("proportion_kl", direction="target_first")
    h = np.mean([entropy(per_row[r[0]].numpy()) for r in _bag_rows(bag).values()])
    value = kl(logits, None, bag=bag, bag_target=per_row).item() + h
    assert dllp.item() == pytest.approx(value, rel=1e-10)
    assert torch.equal(dllp, alias)


def test_dllp_binary_single_logit_equals_two_class_softmax():
    z = torch.tensor([3.0, -1.0, 0.5, 800.0, -900.0, 2.0], dtype=torch.float64)
    bag = torch.tensor([0, 0, 1, 1, 2, 2])
    share = torch.tensor([0.25, 0.25, 1.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    loss = lossreg.create_loss("dllp")
    one = loss(z, None, bag=bag, bag_target=share)
    two = loss(torch.stack([torch.zeros_like(z), z], 1), None, bag=bag, bag_target=share)
    torch.testing.assert_close(one, two)
    z = z.clone().requires_grad_()
    loss(z, None, bag=bag, bag_target=share).backward()
    assert torch.isfinite(z.grad).all()


@pytest.mark.reference("bag_proportion_mse")
def test_bag_proportion_mse_matches_a_loop_over_bags(bags):
    logits, bag, per_row, weights = bags
    loss = lossreg.create_loss("bag_proportion_mse", bag_weight="size")
    ours = loss(logits, None, bag=bag, bag_target=per_row, sample_weight=weights).item()
    ref = _reference("mse", logits, bag, per_row, "size", weights)
    assert ours == pytest.approx(ref, rel=1e-10)
    z = torch.tensor([1.0, -2.0, 0.0, 3.0], dtype=torch.float64)
    single = loss(z, None, bag=torch.tensor([0, 0, 1, 1]), bag_target=torch.tensor([0.5] * 4))
    p = torch.sigmoid(z)
    expected = ((p[:2].mean() - 0.5) ** 2 * 2 + (p[2:].mean() - 0.5) ** 2 * 2) / 4
    assert single.item() == pytest.approx(expected.item(), rel=1e-12)


@pytest.mark.reference("proportion_kl")
def test_proportion_kl_matches_scipy_entropy(bags):
    logits, bag, per_row, _ = bags
    per_row = per_row.clamp_min(0.05)
    per_row = per_row / per_row.sum(1, keepdim=True)
    for direction in ("pred_first", "target_first"):
        loss = lossreg.create_loss("proportion_kl", direction=direction)
        ours = loss(logits, None, bag=bag, bag_target=per_row).item()
        values = []
        for rows in _bag_rows(bag).values():
            mean = np.array(_mean_proba(logits.tolist(), rows))
            tau = per_row[rows[0]].numpy()
            values.append(entropy(mean, tau) if direction == "pred_first" else entropy(tau, mean))
        assert ours == pytest.approx(np.mean(values), rel=1e-8)


@pytest.mark.reference("proportion_kl")
def test_proportion_kl_guards_zero_proportions_like_the_reference(bags):
    logits, bag, per_row, _ = bags
    ours = lossreg.create_loss("proportion_kl")(logits, None, bag=bag, bag_target=per_row)
    assert ours.item() == pytest.approx(_reference("kl_pred", logits, bag, per_row), rel=1e-10)


def test_target_first_kl_has_the_gradient_of_dllp(bags):
    logits, bag, per_row, _ = bags
    grads = []
    for name, params in (("dllp", {}), ("proportion_kl", {"direction": "target_first"})):
        z = logits.clone().requires_grad_()
        lossreg.create_loss(name, **params)(z, None, bag=bag, bag_target=per_row).backward()
        grads.append(z.grad)
    torch.testing.assert_close(grads[0], grads[1])


@pytest.fixture
def aggregate():
    gen = torch.Generator().manual_seed(1)
    pred = torch.randn(15, generator=gen, dtype=torch.float64)
    bag = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3])
    means = torch.randn(4, generator=gen, dtype=torch.float64)
    return pred, bag, means[bag]


def _aggregate_reference(pred, bag, bag_target, rho):
    pred, bag_target = pred.tolist(), bag_target.tolist()
    total = 0.0
    for rows in _bag_rows(bag).values():
        fbar = sum(pred[i] for i in rows) / len(rows)
        total += len(rows) * (bag_target[rows[0]] - fbar) ** 2
        total += rho * sum((pred[i] - fbar) ** 2 for i in rows)
    return total / len(pred)


@pytest.mark.reference("bag_mse")
def test_bag_mse_matches_the_formula(aggregate):
    pred, bag, target = aggregate
    ours = lossreg.create_loss("bag_mse")(pred[:, None], None, bag=bag, bag_target=target)
    assert ours.item() == pytest.approx(_aggregate_reference(pred, bag, target, 0.0), rel=1e-12)
    uniform = lossreg.create_loss("bag_mse", bag_weight="uniform")
    value = uniform(pred, None, bag=bag, bag_target=target).item()
    rows = _bag_rows(bag).values()
    ref = np.mean([(target[r[0]] - pred[r].mean()).item() ** 2 for r in rows])
    assert value == pytest.approx(ref, rel=1e-12)


@pytest.mark.reference("aggregate_interpolating")
@pytest.mark.parametrize("rho", [0.0, 0.3, 1.0])
def test_aggregate_interpolating_matches_the_formula(aggregate, rho):
    pred, bag, target = aggregate
    loss = lossreg.create_loss("aggregate_interpolating", rho=rho)
    ours = loss(pred, None, bag=bag, bag_target=target).item()
    assert ours == pytest.approx(_aggregate_reference(pred, bag, target, rho), rel=1e-12)


@pytest.mark.reference("instance_aggregate_mse")
def test_instance_loss_is_bag_loss_plus_within_bag_variance(aggregate):
    pred, bag, target = aggregate
    instance = lossreg.create_loss("instance_aggregate_mse")(pred, None, bag_target=target)
    expected = np.mean([(t - p) ** 2 for t, p in zip(target.tolist(), pred.tolist())])
    assert instance.item() == pytest.approx(expected, rel=1e-12)
    assert instance.item() == pytest.approx(_aggregate_reference(pred, bag, target, 1.0))
    one = lossreg.create_loss("aggregate_interpolating", rho=1.0)
    assert one(pred, None, bag=bag, bag_target=target).item() == pytest.approx(instance.item())
    zero = lossreg.create_loss("aggregate_interpolating", rho=0.0)
    bag_level = lossreg.create_loss("bag_mse")(pred, None, bag=bag, bag_target=target)
    assert zero(pred, None, bag=bag, bag_target=target).item() == pytest.approx(bag_level.item())
    weights = torch.linspace(0.1, 2.0, 15, dtype=torch.float64)
    loss = lossreg.create_loss("instance_aggregate_mse")
    weighted = loss(pred, None, bag_target=target, sample_weight=weights)
    rows = (target - pred) ** 2
    assert weighted.item() == pytest.approx(((weights * rows).sum() / weights.sum()).item())


def test_bag_losses_reject_bad_input(bags):
    logits, bag, per_row, _ = bags
    loss = lossreg.create_loss("dllp")
    with pytest.raises(ValueError, match="needs 'bag'"):
        loss(logits, None, bag_target=per_row)
    with pytest.raises(ValueError, match="needs 'bag_target'"):
        loss(logits, None, bag=bag)
    bad = per_row.clone()
    bad[0] = torch.tensor([1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="same on every row of a bag"):
        loss(logits, None, bag=bag, bag_target=bad)
    with pytest.raises(ValueError, match="binary outputs only"):
        loss(logits, None, bag=bag, bag_target=per_row[:, 0])
    with pytest.raises(lossreg.InvalidReductionError, match="bag-level"):
        lossreg.create_loss("dllp", reduction="none")


def _llp_data(rng, n=320, size=8):
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    # Sorted-ish bags so proportions vary between bags and carry information.
    order = np.argsort(X[:, 0] + rng.normal(0, 1.0, n))
    bag = np.empty(n, dtype=int)
    bag[order] = np.arange(n) // size
    share = np.array([y[bag == b].mean() for b in range(n // size)])[bag]
    return X, y, bag, share


def test_dllp_learns_instance_labels_from_bag_proportions_with_the_estimator():
    rng = np.random.default_rng(0)
    X, y, bag, share = _llp_data(rng)
    X_test, y_test, *_ = _llp_data(rng)
    # One batch holds every bag whole (the estimator has no bag-aware sampler yet).
    clf = LossClassifier(loss="dllp", max_iter=60, lr=0.02, batch_size=len(y), random_state=0)
    clf.fit(X, np.zeros_like(y) + (np.arange(len(y)) == 0), bag=bag, bag_target=share)
    assert clf.score(X_test, y_test) > 0.8


def test_bag_mse_fits_a_regressor_from_bag_means():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    bag = np.arange(240) // 6
    means = np.array([y[bag == b].mean() for b in range(40)])[bag]
    reg = LossRegressor(loss="aggregate_interpolating", loss__rho=0.2, max_iter=80, lr=0.02)
    reg.set_params(batch_size=240, random_state=0).fit(X, means, bag=bag, bag_target=means)
    assert np.corrcoef(reg.predict(X), y)[0, 1] > 0.9


@pytest.mark.parametrize(
    "name", ["dllp", "bag_proportion_mse", "proportion_kl", "bag_mse", "aggregate_interpolating"]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bag_losses_keep_dtype_and_finite_gradients_at_extremes(name, dtype):
    gen = torch.Generator().manual_seed(3)
    regression = name in ("bag_mse", "aggregate_interpolating")
    shape = (12,) if regression else (12, 3)
    output = (torch.randn(*shape, generator=gen) * 1e3).to(dtype).requires_grad_()
    bag = torch.arange(12) // 4
    if regression:
        bag_target = torch.randn(3, generator=gen)[bag] * 1e3
    else:
        props = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5], [0.0, 0.5, 0.5]])
        bag_target = props[bag]
    value = lossreg.create_loss(name)(output, None, bag=bag, bag_target=bag_target)
    assert value.dtype == dtype
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(output.grad).all()
