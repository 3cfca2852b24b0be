"""Binned regression losses against float64 loops written from the papers' formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import norm

import lossreg
from lossreg.links import resolve_link
from lossreg.targets import compute_data_params, output_size

RANGE = {"target_min": -1.0, "target_max": 3.0}


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 9, generator=gen, dtype=torch.float64) * 2
    y = torch.rand(32, generator=gen, dtype=torch.float64) * 4.4 - 1.2  # a few outside range
    w = torch.rand(32, generator=gen, dtype=torch.float64)
    return logits, y, w


def _log_softmax_rows(z: np.ndarray) -> list[list[float]]:
    out = []
    for row in z:
        m = max(row)
        lse = m + math.log(sum(math.exp(v - m) for v in row))
        out.append([v - lse for v in row])
    return out


def _loop_ce(z: np.ndarray, q: list[list[float]]) -> np.ndarray:
    logp = _log_softmax_rows(z)
    return np.array([-sum(qk * lk for qk, lk in zip(qr, lr)) for qr, lr in zip(q, logp)])


@pytest.mark.reference("hl_gauss")
def test_hl_gauss_matches_scipy_gaussian_histogram(data):
    logits, y, _ = data
    k, ratio = logits.shape[1], 0.75
    loss = lossreg.create_loss("hl_gauss", n_bins=k, sigma_ratio=ratio, reduction="none", **RANGE)
    width = 4.0 / k
    edges = [-1.0 + i * width for i in range(k + 1)]
    q = []
    for yi in y.tolist():
        yi = min(max(yi, -1.0), 3.0)
        cdf = [norm.cdf(e, loc=yi, scale=ratio * width) for e in edges]
        q.append([(cdf[j + 1] - cdf[j]) / (cdf[-1] - cdf[0]) for j in range(k)])
    ref = _loop_ce(logits.numpy(), q)
    np.testing.assert_allclose(loss(logits, y).numpy(), ref, rtol=1e-10)
    # The link: expected bin centre, centres halfway between edges (not the shifted ones).
    centres = [(edges[j] + edges[j + 1]) / 2 for j in range(k)]
    probs = logits.softmax(1).numpy()
    pred = resolve_link(lossreg.get_spec("hl_gauss").link)(logits, loss)
    np.testing.assert_allclose(pred.numpy(), probs @ np.array(centres), rtol=1e-12)


def test_hl_gauss_with_a_tiny_sigma_is_histogram_ce(data):
    logits, y, _ = data
    hl = lossreg.create_loss("hl_gauss", n_bins=9, sigma_ratio=1e-6, reduction="none", **RANGE)
    hist = lossreg.create_loss("histogram_ce", n_bins=9, reduction="none", **RANGE)
    torch.testing.assert_close(hl(logits, y), hist(logits, y), rtol=1e-6, atol=1e-8)


def test_hl_gauss_histogram_is_finite_in_float32_for_narrow_sigma():
    loss = lossreg.create_loss("hl_gauss", n_bins=5, sigma_ratio=0.01, **RANGE)
    logits = torch.zeros(3, 5, requires_grad=True)
    value = loss(logits, torch.tensor([-1.0, 0.6, 3.0]))
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(logits.grad).all()


@pytest.mark.reference("two_hot", "categorical_projection")
@pytest.mark.parametrize("support", ["atoms", "centers"])
def test_two_hot_matches_a_loop_projection(data, support):
    logits, y, _ = data
    k = logits.shape[1]
    loss = lossreg.create_loss("two_hot", n_bins=k, support=support, reduction="none", **RANGE)
    if support == "atoms":
        s = [-1.0 + 4.0 * i / (k - 1) for i in range(k)]
    else:
        s = [-1.0 + 4.0 / k * (i + 0.5) for i in range(k)]
    q = []
    for yi in y.tolist():
        yi = min(max(yi, s[0]), s[-1])
        row = [0.0] * k
        for j in range(k - 1):
            if s[j] <= yi <= s[j + 1]:
                row[j] = (s[j + 1] - yi) / (s[j + 1] - s[j])
                row[j + 1] = (yi - s[j]) / (s[j + 1] - s[j])
                break
        q.append(row)
    np.testing.assert_allclose(loss(logits, y).numpy(), _loop_ce(logits.numpy(), q), rtol=1e-10)
    alias = lossreg.create_loss(
        "categorical_projection", n_bins=k, support=support, reduction="none", **RANGE
    )
    assert torch.equal(alias(logits, y), loss(logits, y))


def test_two_hot_target_keeps_the_mean_and_supports_differ(data):
    _, y, _ = data
    atoms = lossreg.create_loss("two_hot", n_bins=9, **RANGE)
    inside = y.clamp(-1.0, 3.0)
    q = atoms.target_distribution(inside)
    assert q.shape == (len(inside), 1, 9)
    torch.testing.assert_close(q.sum(-1)[:, 0], torch.ones_like(inside, dtype=torch.float64))
    torch.testing.assert_close((q[:, 0] * atoms.centers_[0]).sum(-1), inside)
    centres = lossreg.create_loss("two_hot", n_bins=9, support="centers", **RANGE)
    assert not torch.allclose(centres.centers_, atoms.centers_)
    # A target on a support point is one-hot there.
    assert atoms.target_distribution(torch.tensor([0.0]))[0].max() == 1.0


@pytest.mark.reference("histogram_ce")
def test_histogram_ce_matches_torch_cross_entropy_on_digitized_bins(data):
    logits, y, _ = data
    loss = lossreg.create_loss("histogram_ce", n_bins=9, reduction="none", **RANGE)
    edges = np.linspace(-1.0, 3.0, 10)
    bins = np.clip(np.digitize(y.numpy(), edges) - 1, 0, 8)
    ref = F.cross_entropy(logits, torch.as_tensor(bins), reduction="none")
    torch.testing.assert_close(loss(logits, y), ref, rtol=1e-12, atol=1e-12)


@pytest.mark.reference("r2ccp")
def test_r2ccp_matches_a_loop_over_bins(data):
    logits, y, _ = data
    k, q, tau = logits.shape[1], 0.5, 0.2
    loss = lossreg.create_loss("r2ccp", n_bins=k, reduction="none", **RANGE)
    mids = [-1.0 + 4.0 / k * (i + 0.5) for i in range(k)]
    ref = []
    for row, yi in zip(logits.tolist(), y.tolist()):
        m = max(row)
        den = sum(math.exp(v - m) for v in row)
        pi = [math.exp(v - m) / den for v in row]
        dist = sum(p * abs(yi - mk) ** q for p, mk in zip(pi, mids))
        ref.append(dist + tau * sum(p * math.log(p) for p in pi))
    np.testing.assert_allclose(loss(logits, y).numpy(), ref, rtol=1e-10)


def test_r2ccp_annealing_removes_the_entropy_term(data):
    logits, y, _ = data
    loss = lossreg.create_loss("r2ccp", n_bins=9, anneal_epochs=10, reduction="none", **RANGE)
    plain = lossreg.create_loss("r2ccp", n_bins=9, tau=0.0, reduction="none", **RANGE)
    before = loss(logits, y)
    loss.set_epoch(10, 100)
    torch.testing.assert_close(loss(logits, y), plain(logits, y))
    loss.set_epoch(0, 100)
    torch.testing.assert_close(loss(logits, y), before)


def test_r2ccp_conformal_intervals_cover_and_interpolate():
    loss = lossreg.create_loss("r2ccp", n_bins=4, target_min=0.0, target_max=4.0)
    # Midpoints 0.5, 1.5, 2.5, 3.5; probabilities 0.1, 0.4, 0.4, 0.1 for every row.
    logits = torch.log(torch.tensor([[0.1, 0.4, 0.4, 0.1]], dtype=torch.float64)).repeat(9, 1)
    cal_y = torch.tensor([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 1.25, 2.75], dtype=torch.float64)
    loss.calibrate(logits, cal_y)
    # Scores: 0.1, 0.25, 0.4, 0.4, 0.4, 0.25, 0.1, 0.325, 0.325; alpha=0.2 -> 2nd smallest = 0.1.
    intervals = loss.predict_intervals(logits[:1], alpha=0.2)
    assert intervals.shape == (1, 3, 2)
    torch.testing.assert_close(intervals[0, :, 0], torch.tensor([0.5, 1.5, 2.5]).double())
    # alpha=0.5 -> 5th smallest score 0.325: crossings at 1.25 and 2.75, middle segment whole.
    intervals = loss.predict_intervals(logits[:1], alpha=0.5)[0]
    torch.testing.assert_close(intervals[0], torch.tensor([1.25, 1.5]).double())
    torch.testing.assert_close(intervals[1], torch.tensor([1.5, 2.5]).double())
    torch.testing.assert_close(intervals[2], torch.tensor([2.5, 2.75]).double())


def test_r2ccp_calibration_survives_a_state_dict_round_trip():
    loss = lossreg.create_loss("r2ccp", n_bins=4, target_min=0.0, target_max=4.0)
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    loss.calibrate(logits, torch.linspace(0.0, 4.0, 6))
    fresh = lossreg.create_loss("r2ccp", n_bins=4, target_min=0.0, target_max=4.0)
    fresh.load_state_dict(loss.state_dict())
    torch.testing.assert_close(fresh.predict_intervals(logits), loss.predict_intervals(logits))


def test_r2ccp_intervals_reach_the_nominal_coverage():
    gen = torch.Generator().manual_seed(1)
    loss = lossreg.create_loss("r2ccp", n_bins=20, target_min=-4.0, target_max=4.0)
    logits = -0.5 * loss.centers_[0].unsqueeze(0).repeat(2000, 1) ** 2  # a N(0, 1)-shaped model
    y = torch.randn(2000, generator=gen, dtype=torch.float64)
    loss.calibrate(logits[:1000], y[:1000])
    sets = loss.predict_intervals(logits[1000:], alpha=0.1)
    inside = ((sets[..., 0] <= y[1000:, None]) & (y[1000:, None] <= sets[..., 1])).any(1)
    assert 0.86 <= inside.double().mean().item() <= 0.94


@pytest.mark.reference("regression_plus_bin_ce")
def test_regression_plus_bin_ce_matches_a_loop(data):
    logits, y, _ = data
    output = torch.cat([y.unsqueeze(1) + 0.3, logits[:, :5]], dim=1)
    loss = lossreg.create_loss(
        "regression_plus_bin_ce", n_bins=5, lam=0.7, reduction="none", **RANGE
    )
    logp = _log_softmax_rows(logits[:, :5].numpy())
    ref = []
    for i, yi in enumerate(y.tolist()):
        b = 0
        for j in range(5):
            if yi >= -1.0 + 0.8 * j:
                b = j
        ref.append(0.09 - 0.7 * logp[i][b])
    np.testing.assert_allclose(loss(output, y).numpy(), ref, rtol=1e-10)
    mse_only = lossreg.create_loss("regression_plus_bin_ce", n_bins=5, lam=0.0, **RANGE)
    torch.testing.assert_close(mse_only(output, y), F.mse_loss(output[:, 0], y))
    link = resolve_link(lossreg.get_spec("regression_plus_bin_ce").link)
    assert torch.equal(link(output, loss), output[:, 0])


@pytest.mark.parametrize("name", ["hl_gauss", "two_hot", "histogram_ce", "r2ccp"])
def test_sample_weights_give_the_weighted_mean(data, name):
    logits, y, w = data
    per_row = lossreg.create_loss(name, n_bins=9, reduction="none", **RANGE)(logits, y)
    weighted = lossreg.create_loss(name, n_bins=9, **RANGE)(logits, y, sample_weight=w)
    torch.testing.assert_close(weighted, (per_row * w).sum() / w.sum())


@pytest.mark.parametrize(
    ("name", "size"),
    [("hl_gauss", 51), ("two_hot", 51), ("r2ccp", 50), ("regression_plus_bin_ce", 11)],
)
def test_output_size_and_data_params_come_from_the_spec(name, size):
    spec = lossreg.get_spec(name)
    assert output_size(spec, "regression") == size
    y = np.array([2.0, -1.0, 5.0])
    params = compute_data_params(spec.data_params, y, "regression")
    assert params == {"target_min": -1.0, "target_max": 5.0}
    module = spec.factory(**params)
    out = module(torch.zeros(3, size, requires_grad=True), torch.as_tensor(y, dtype=torch.float32))
    assert out.dtype == torch.float32 and torch.isfinite(out)


@pytest.mark.parametrize("name", ["hl_gauss", "two_hot", "histogram_ce", "r2ccp"])
def test_extreme_logits_give_finite_gradients(name):
    loss = lossreg.create_loss(name, n_bins=5, **RANGE)
    logits = torch.tensor([[1e3, -1e3, 0.0, 0.0, 0.0], [-1e3, 1e3, 0.0, 0.0, 0.0]])
    logits.requires_grad_(True)
    loss(logits, torch.tensor([2.9, -0.5])).backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", ["hl_gauss", "two_hot", "histogram_ce", "r2ccp"])
def test_multi_output_targets_get_one_bin_block_per_column(data, name):
    logits, y, _ = data
    two_ranges = {"target_min": [-1.0, 0.0], "target_max": [3.0, 5.0]}
    loss = lossreg.create_loss(name, n_bins=9, reduction="none", **two_ranges)
    y2 = torch.stack([y, y.flip(0) + 1], dim=1)
    out = torch.cat([logits, logits.flip(0)], dim=1)
    first = lossreg.create_loss(name, n_bins=9, reduction="none", **RANGE)
    second = lossreg.create_loss(name, n_bins=9, reduction="none", target_min=0.0, target_max=5.0)
    ref = (first(logits, y2[:, 0]) + second(logits.flip(0), y2[:, 1])) / 2
    torch.testing.assert_close(loss(out, y2), ref)
    pred = resolve_link(lossreg.get_spec(name).link)(out, loss)
    assert pred.shape == (32, 2)
    torch.testing.assert_close(
        pred[:, 1], resolve_link(lossreg.get_spec(name).link)(out[:, 9:], second)
    )
    assert (
        output_size(lossreg.get_spec(name), "regression", n_outputs=2, params={"n_bins": 9}) == 18
    )
    with pytest.raises(ValueError, match="outputs per row"):
        loss(logits, y2)
    with pytest.raises(ValueError, match="one per target column"):
        lossreg.create_loss(name, target_min=[0.0, 1.0], target_max=[2.0])


def test_regression_plus_bin_ce_multi_output_layout(data):
    logits, y, _ = data
    y2 = torch.stack([y, -y], dim=1)
    out = torch.cat([y2 + 0.1, logits[:, :4], logits[:, 4:8]], dim=1)
    loss = lossreg.create_loss(
        "regression_plus_bin_ce", n_bins=4, target_min=[-1.0, -3.0], target_max=[3.0, 1.0]
    )
    one = lossreg.create_loss("regression_plus_bin_ce", n_bins=4, reduction="none", **RANGE)
    two = lossreg.create_loss(
        "regression_plus_bin_ce", n_bins=4, reduction="none", target_min=-3.0, target_max=1.0
    )
    ref = (one(out[:, [0, 2, 3, 4, 5]], y) + two(out[:, [1, 6, 7, 8, 9]], -y)) / 2
    torch.testing.assert_close(loss(out, y2), ref.mean())
    link = resolve_link(lossreg.get_spec("regression_plus_bin_ce").link)
    assert torch.equal(link(out, loss), out[:, :2])


def test_a_constant_training_target_still_gives_positive_bin_widths():
    loss = lossreg.create_loss("histogram_ce", n_bins=4, target_min=2.0, target_max=2.0)
    assert torch.all(loss.edges_.diff() > 0)


def test_decoding_regression_is_documented_as_not_registered():
    from lossreg.plugins.regression_binned import NOT_REGISTERED

    assert "decoding_regression" in NOT_REGISTERED
    assert "decoding_regression" not in lossreg.Registry(entry_points=False)
