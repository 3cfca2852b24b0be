"""apre, pixel_focus and phi_s_mse against loops, torch.nn and numpy; entries not registered."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lossreg
from lossreg import LossRegressor
from lossreg.links import resolve_link
from lossreg.plugins.regression import NOT_REGISTERED as REGRESSION_NOT_REGISTERED
from lossreg.plugins.regression_misc.phi_s import hadamard_width, sylvester_hadamard
from lossreg.plugins.uncertainty import NOT_REGISTERED as UNCERTAINTY_NOT_REGISTERED


@pytest.fixture
def heads():
    gen = torch.Generator().manual_seed(0)
    out = torch.randn(12, 6, generator=gen, dtype=torch.float64) * 2
    y = torch.randn(12, 3, generator=gen, dtype=torch.float64)
    w = torch.rand(12, generator=gen, dtype=torch.float64)
    return out, y, w


def _softplus(x: float) -> float:
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


# --- apre -----------------------------------------------------------------------------------


@pytest.mark.reference("apre")
def test_pre_is_twice_torch_gaussian_nll(heads):
    out, y, _ = heads
    loss = lossreg.create_loss("apre", reduction="none")
    mean, raw = out[:, :3], out[:, 3:]
    variance = F.softplus(raw) + 1e-5
    nll = torch.nn.GaussianNLLLoss(reduction="none", eps=1e-9)(mean, y, variance)
    torch.testing.assert_close(loss(out, y), 2 * nll.sum(dim=1), rtol=1e-12, atol=1e-12)


@pytest.mark.reference("apre")
def test_apre_weights_and_outlier_score_match_a_loop(heads):
    out, y, _ = heads

    def loop(alpha, beta):
        rows = []
        for row, target in zip(out.tolist(), y.tolist()):
            d = len(target)
            total = 0.0
            for j in range(d):
                v = _softplus(row[d + j]) + 1e-5
                total += alpha * (target[j] - row[j]) ** 2 / v + beta * math.log(v)
            rows.append(total)
        return rows

    loss = lossreg.create_loss("apre", alpha=0.7, beta=1.5, reduction="none")
    np.testing.assert_allclose(loss(out, y).numpy(), loop(0.7, 1.5), rtol=1e-10)
    # The score of new rows uses its own weights (reference CLI defaults 0.5, 2).
    np.testing.assert_allclose(loss.outlier_score(out, y).numpy(), loop(0.5, 2.0), rtol=1e-10)


def test_apre_sample_weights_extremes_and_std(heads):
    out, y, w = heads
    per_row = lossreg.create_loss("apre", reduction="none")(out, y)
    weighted = lossreg.create_loss("apre")(out, y, sample_weight=w)
    torch.testing.assert_close(weighted, (w * per_row).sum() / w.sum())
    loss = lossreg.create_loss("apre")
    torch.testing.assert_close(loss.predict_std(out), (F.softplus(out[:, 3:]) + 1e-5).sqrt())
    x = torch.tensor([[1e3, -1e3], [-1e3, 1e3]], requires_grad=True)
    value = loss(x, torch.zeros(2))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()


def test_apre_trains_an_autoencoder_with_y_equal_x():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    reg = LossRegressor(loss="apre", max_iter=3, batch_size=32, random_state=0).fit(X, X)
    recon, std = reg.predict(X, return_std=True)
    assert recon.shape == X.shape and std.shape == X.shape
    assert np.isfinite(recon).all() and (std > 0).all()
    scores = reg.criterion_.outlier_score(*reg._forward64(X[:5])[:1], torch.as_tensor(X[:5]))
    assert scores.shape == (5,)


# --- pixel_focus ----------------------------------------------------------------------------


@pytest.mark.reference("pixel_focus")
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_pixel_focus_matches_a_loop(heads, gamma):
    out, y, w = heads
    pred = out[:, :3]
    errors = [[abs(a - b) for a, b in zip(p, t)] for p, t in zip(pred.tolist(), y.tolist())]
    weights = w.tolist()
    scale = sum(wi * sum(row) for wi, row in zip(weights, errors)) / (3 * sum(weights))
    rows = [sum((e / scale) ** gamma * e for e in row) / 3 for row in errors]
    ref = sum(wi * r for wi, r in zip(weights, rows)) / sum(weights)
    loss = lossreg.create_loss("pixel_focus", gamma=gamma)
    assert loss(pred, y, sample_weight=w).item() == pytest.approx(ref, rel=1e-12)
    summed = lossreg.create_loss("pixel_focus", gamma=gamma, reduction="sum")
    assert summed(pred, y, sample_weight=w).item() == pytest.approx(ref * sum(weights))


def test_pixel_focus_special_cases(heads):
    out, y, _ = heads
    pred = out[:, :3]
    # gamma = 0 is the mean absolute error.
    mae = torch.nn.L1Loss()(pred, y)
    torch.testing.assert_close(lossreg.create_loss("pixel_focus", gamma=0.0)(pred, y), mae)
    # Integer weights act as repeated rows (the normaliser counts them too).
    weight = torch.tensor([2.0] + [1.0] * 11, dtype=torch.float64)
    loss = lossreg.create_loss("pixel_focus", gamma=2.0)
    repeated = loss(torch.cat([pred[:1], pred]), torch.cat([y[:1], y]))
    torch.testing.assert_close(loss(pred, y, sample_weight=weight), repeated)
    # A perfect batch has loss 0, with a finite (zero) gradient.
    x = y.clone().requires_grad_(True)
    value = loss(x, y)
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(x.grad).all()
    with pytest.raises(ValueError, match="batch-level"):
        lossreg.create_loss("pixel_focus", reduction="none")


def test_pixel_focus_gradient_is_a_fixed_weight_l1(heads):
    out, y, _ = heads
    pred = out[:, :3].clone().requires_grad_(True)
    lossreg.create_loss("pixel_focus", gamma=1.5)(pred, y).backward()
    error = (out[:, :3] - y).abs()
    weight = (error / error.mean()) ** 1.5
    expected = weight * torch.sign(out[:, :3] - y) / error.numel()
    torch.testing.assert_close(pred.grad, expected)


# --- phi_s_mse ------------------------------------------------------------------------------


def _targets(n=40, d=3, seed=1):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) * np.array([1.0, 30.0, 0.05, 3.0])[:d]
    return rng.normal(size=(n, d)) @ mix + rng.normal(size=d) * 5


def test_sylvester_hadamard_matches_the_bit_formula():
    for width in (1, 2, 4, 8):
        h = sylvester_hadamard(width).numpy()
        ref = np.empty((width, width))
        for i in range(width):
            for j in range(width):
                ref[i, j] = (-1) ** bin(i & j).count("1") / math.sqrt(width)
        np.testing.assert_allclose(h, ref)
    assert [hadamard_width(d) for d in (1, 2, 3, 4, 5, 9)] == [1, 2, 4, 4, 8, 16]
    with pytest.raises(ValueError, match="power-of-two"):
        sylvester_hadamard(3)


@pytest.mark.reference("phi_s_mse")
@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_phi_s_standardises_every_column_to_unit_variance(d):
    y = _targets(d=d)
    loss = lossreg.create_loss("phi_s_mse", target_values=y.tolist(), reduction="none")
    transformed = loss.transform(torch.as_tensor(y)).numpy()
    width = hadamard_width(d)
    assert transformed.shape == (len(y), width)
    # numpy's covariance of the transformed training targets: identity on the diagonal
    # (PHI-S: isotropic), the off-diagonal is whatever the Hadamard rotation leaves.
    cov = np.atleast_2d(np.cov(transformed.T))
    np.testing.assert_allclose(np.diag(cov), np.ones(width), atol=1e-9)
    np.testing.assert_allclose(transformed.mean(axis=0), np.zeros(width), atol=1e-9)
    # The inverse map recovers the targets.
    back = loss.inverse_transform(torch.as_tensor(transformed)).numpy()
    np.testing.assert_allclose(back, y.reshape(len(y), -1), atol=1e-8)


@pytest.mark.reference("phi_s_mse")
@pytest.mark.parametrize("d", [2, 3, 4])
def test_phi_s_mse_is_original_space_mse_over_the_isotropic_variance(d):
    y = _targets(d=d)
    z = y + np.random.default_rng(2).normal(size=y.shape)
    loss = lossreg.create_loss("phi_s_mse", target_values=y.tolist(), reduction="none")
    pred = loss.transform(torch.as_tensor(z))
    width = hadamard_width(d)
    # alpha^2 = tr(Sigma) / D' from numpy's eigenvalues, then a loop over rows.
    alpha2 = np.clip(np.linalg.eigvalsh(np.cov(y.T)), 0, None).sum() / width
    ref = [sum((a - b) ** 2 for a, b in zip(zr, yr)) / (width * alpha2) for zr, yr in zip(z, y)]
    np.testing.assert_allclose(loss(pred, torch.as_tensor(y)).numpy(), ref, rtol=1e-9)


def test_phi_s_single_target_is_standardised_mse_and_weights():
    y = _targets(d=1).ravel()
    loss = lossreg.create_loss("phi_s_mse", target_values=y.tolist(), reduction="none")
    sd = y.std(ddof=1)
    pred = torch.as_tensor(np.random.default_rng(3).normal(size=len(y)))
    # D = 1: H = [1], U = [1]; the loss is the squared error of the standardised target.
    ref = (pred.numpy() - (y - y.mean()) / sd) ** 2
    np.testing.assert_allclose(loss(pred, torch.as_tensor(y)).numpy(), ref, rtol=1e-9)
    w = torch.rand(len(y), dtype=torch.float64)
    mean = lossreg.create_loss("phi_s_mse", target_values=y.tolist())
    torch.testing.assert_close(
        mean(pred, torch.as_tensor(y), sample_weight=w), (w * torch.as_tensor(ref)).sum() / w.sum()
    )
    constant = lossreg.create_loss("phi_s_mse", target_values=[2.0, 2.0, 2.0])
    assert constant.transform(torch.tensor([[3.0]], dtype=torch.float64)).abs().item() == 1.0


def test_phi_s_signs_are_fixed_and_match_the_reference_construction():
    y = _targets(d=4)
    loss = lossreg.create_loss("phi_s_mse", target_values=y.tolist())
    # RADIO's get_phi_s_matrix: eigh of the (N-1) covariance, W = H U^T / sqrt(mean lambda);
    # here with numpy's eigh and eigenvectors flipped to U_jj >= 0 (the module's convention).
    lam, u = np.linalg.eigh(np.cov(y.T))
    u = u * np.where(np.diag(u) < 0, -1.0, 1.0)
    h = np.array([[(-1) ** bin(i & j).count("1") for j in range(4)] for i in range(4)]) / 2
    expected = h @ u.T / math.sqrt(np.clip(lam, 0, None).mean())
    np.testing.assert_allclose(loss.forward_.numpy(), expected, atol=1e-9)
    assert loss.inverse_.numpy() @ loss.forward_.numpy() == pytest.approx(np.eye(4))


def test_phi_s_link_and_estimator_predict_in_the_original_space():
    y = _targets(n=80, d=3)
    X = np.random.default_rng(4).normal(size=(80, 4))
    spec = lossreg.get_spec("phi_s_mse")
    loss = lossreg.create_loss("phi_s_mse", target_values=y.tolist())
    link = resolve_link(spec.link)
    z = loss.transform(torch.as_tensor(y))
    np.testing.assert_allclose(link(z, loss).numpy(), y, atol=1e-8)
    with pytest.raises(ValueError, match="criterion"):
        link(z, None)
    reg = LossRegressor(loss="phi_s_mse", max_iter=3, batch_size=40, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (80, 3) and np.isfinite(reg.predict(X)).all()
    with pytest.raises(ValueError, match="standardised space has 4"):
        loss(torch.zeros(5, 3, dtype=torch.float64), torch.zeros(5, 3, dtype=torch.float64))


# --- not registered -------------------------------------------------------------------------


def test_unverified_entries_are_documented_as_not_registered():
    registry = lossreg.Registry(entry_points=False)
    assert "ua_ce" in UNCERTAINTY_NOT_REGISTERED and "ua_ce" not in registry
    assert "mean_variance_mse" in REGRESSION_NOT_REGISTERED
    assert "mean_variance_mse" not in registry


def test_quantile_losses_give_intervals_from_their_own_levels():
    import numpy as np

    from lossreg import LossRegressor, create_loss

    loss = create_loss("pinball", quantiles=(0.05, 0.5, 0.95))
    output = torch.tensor([[3.0, 1.0, 2.0], [0.0, 0.5, -1.0]])  # crossing heads are sorted
    lower, upper = loss.predict_interval(output, alpha=0.1)
    torch.testing.assert_close(lower, torch.tensor([[1.0], [-1.0]]))
    torch.testing.assert_close(upper, torch.tensor([[3.0], [0.5]]))
    with pytest.raises(ValueError, match=r"needs the quantile levels 0\.1 and 0\.9"):
        loss.predict_interval(output, alpha=0.2)
    rng = np.random.default_rng(0)
    X = rng.random((120, 2))
    y = X[:, 0] + rng.normal(0, 0.1, 120)
    model = LossRegressor(loss="pinball", loss__quantiles=(0.05, 0.5, 0.95), max_iter=5)
    bounds = model.fit(X, y).predict_interval(X[:4], alpha=0.1)
    np.testing.assert_allclose(bounds, model.predict(X[:4])[:, [0, 2]])
