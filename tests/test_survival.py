"""Survival losses against scipy's distributions, numerical quadrature and float64 loops."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import integrate, stats

import lossreg
from lossreg import LossRegressor


@pytest.fixture(scope="module")
def registry():
    return lossreg.Registry(entry_points=False)


@pytest.fixture
def survival_data():
    gen = torch.Generator().manual_seed(7)
    n = 16
    out = torch.randn(n, 3, generator=gen, dtype=torch.float64) * 0.6
    times = torch.rand(n, generator=gen, dtype=torch.float64) * 3 + 0.05
    event = torch.randint(0, 2, (n,), generator=gen)
    weights = torch.rand(n, generator=gen, dtype=torch.float64)
    return out, times, event, weights


def _censored_nll(dist, t, delta):
    return -(delta * dist.logpdf(t) + (1 - delta) * dist.logsf(t))


@pytest.mark.reference("weibull_survival_nll")
def test_weibull_matches_scipy_weibull_min(registry, survival_data):
    out, times, event, weights = survival_data
    out = out[:, :2]
    expected = []
    for (log_rho, log_gamma), t, d in zip(out.tolist(), times.tolist(), event.tolist()):
        gamma = math.exp(log_gamma)
        dist = stats.weibull_min(c=gamma, scale=math.exp(-log_rho / gamma))
        expected.append(_censored_nll(dist, t, d))
    loss = registry.create_loss("weibull_survival_nll", reduction="none")
    np.testing.assert_allclose(loss(out, times, event=event).numpy(), expected, rtol=1e-10)
    mean = registry.create_loss("weibull_survival_nll")
    ref = float(np.dot(expected, weights.numpy()) / weights.sum().item())
    value = mean(out, times, sample_weight=weights, event=event).item()
    assert value == pytest.approx(ref, rel=1e-10)
    median = registry.get_spec("weibull_survival_nll").link(out)
    for (log_rho, log_gamma), m in zip(out.tolist(), median.tolist()):
        gamma = math.exp(log_gamma)
        ref_median = stats.weibull_min(c=gamma, scale=math.exp(-log_rho / gamma)).median()
        assert m == pytest.approx(ref_median, rel=1e-10)


@pytest.mark.reference("loglogistic_survival_nll")
def test_loglogistic_matches_scipy_burr12_and_fisk(registry, survival_data):
    out, times, event, _ = survival_data
    expected = []
    for (log_lam, log_phi, log_gamma), t, d in zip(out.tolist(), times.tolist(), event.tolist()):
        dist = stats.burr12(c=math.exp(log_gamma), d=math.exp(log_lam), scale=math.exp(-log_phi))
        expected.append(_censored_nll(dist, t, d))
    loss = registry.create_loss("loglogistic_survival_nll", reduction="none")
    np.testing.assert_allclose(loss(out, times, event=event).numpy(), expected, rtol=1e-9)
    standard = registry.create_loss("loglogistic_survival_nll", fix_lambda=True, reduction="none")
    fisk = [
        _censored_nll(stats.fisk(c=math.exp(g), scale=math.exp(-p)), t, d)
        for (_, p, g), t, d in zip(out.tolist(), times.tolist(), event.tolist())
    ]
    np.testing.assert_allclose(standard(out[:, 1:], times, event=event).numpy(), fisk, rtol=1e-9)
    medians = loss.median_time(out).tolist()
    for (log_lam, log_phi, log_gamma), m in zip(out.tolist(), medians):
        dist = stats.burr12(c=math.exp(log_gamma), d=math.exp(log_lam), scale=math.exp(-log_phi))
        assert m == pytest.approx(dist.median(), rel=1e-9)


def _apgw_hazard(t, lam, phi, gamma, kappa):
    u = (phi * t) ** gamma / (kappa + 1)
    return lam * gamma * phi**gamma * t ** (gamma - 1) * (1 + u) ** (kappa - 1)


@pytest.mark.reference("apgw_survival_nll")
@pytest.mark.parametrize("kappa", [-0.5, 0.3, 2.0])
def test_apgw_cumulative_hazard_is_the_integral_of_its_hazard(registry, survival_data, kappa):
    out, times, event, _ = survival_data
    expected = []
    for (log_lam, log_phi, log_gamma), t, d in zip(out.tolist(), times.tolist(), event.tolist()):
        lam, phi, gamma = math.exp(log_lam), math.exp(log_phi), math.exp(log_gamma)
        cum, _ = integrate.quad(_apgw_hazard, 0, t, args=(lam, phi, gamma, kappa), epsabs=1e-13)
        expected.append(cum - d * math.log(_apgw_hazard(t, lam, phi, gamma, kappa)))
    loss = registry.create_loss(
        "apgw_survival_nll", kappa=kappa, learn_kappa=False, reduction="none"
    )
    np.testing.assert_allclose(loss(out, times, event=event).numpy(), expected, rtol=1e-7)
    medians = loss.median_time(out).tolist()
    for (log_lam, log_phi, log_gamma), m in zip(out.tolist(), medians):
        args = (math.exp(log_lam), math.exp(log_phi), math.exp(log_gamma), kappa)
        # kappa < 0 is a cure model: H(t) rises only to lam (kappa + 1) / -kappa
        cured = kappa < 0 and math.exp(log_lam) * (kappa + 1) / -kappa <= math.log(2)
        assert math.isnan(m) == cured
        if not cured:
            cum, _ = integrate.quad(_apgw_hazard, 0, m, args=args, epsabs=1e-13)
            assert cum == pytest.approx(math.log(2), rel=1e-7)


@pytest.mark.reference("apgw_survival_nll")
def test_apgw_special_members_weibull_and_loglogistic(registry, survival_data):
    out, times, event, _ = survival_data
    log_lam, log_phi, log_gamma = out.unbind(dim=1)
    weibull = registry.create_loss("weibull_survival_nll", reduction="none")
    at_one = registry.create_loss(
        "apgw_survival_nll", kappa=1.0, learn_kappa=False, reduction="none"
    )
    rho_gamma = torch.stack([log_lam + log_gamma.exp() * log_phi, log_gamma], dim=1)
    torch.testing.assert_close(
        at_one(out, times, event=event), weibull(rho_gamma, times, event=event)
    )
    loglogistic = registry.create_loss("loglogistic_survival_nll", reduction="none")
    for kappa in (0.0, 1e-9):
        at_zero = registry.create_loss(
            "apgw_survival_nll", kappa=kappa, learn_kappa=False, reduction="none"
        )
        torch.testing.assert_close(
            at_zero(out, times, event=event), loglogistic(out, times, event=event)
        )


def test_apgw_learns_kappa(registry, survival_data):
    out, times, event, _ = survival_data
    loss = registry.create_loss("apgw_survival_nll")
    assert loss.current_kappa().item() == pytest.approx(0.5, rel=1e-6)
    params = list(loss.parameters())
    assert len(params) == 1
    loss(out, times, event=event).backward()
    assert params[0].grad is not None and torch.isfinite(params[0].grad).all()
    fixed = registry.create_loss("apgw_survival_nll", learn_kappa=False)
    assert list(fixed.parameters()) == []


def _logistic_hazard_loop(logits, tau, delta):
    rows = []
    for row, k, d in zip(logits, tau, delta):
        hazards = [1 / (1 + math.exp(-z)) for z in row]
        value = sum(math.log(1 - hazards[j]) for j in range(k))
        value += math.log(hazards[k]) if d else math.log(1 - hazards[k])
        rows.append(-value)
    return rows


@pytest.mark.reference("logistic_hazard")
def test_logistic_hazard_matches_loop_and_pycox_bce_form(registry):
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(20, 6, generator=gen, dtype=torch.float64) * 2
    times = torch.rand(20, generator=gen, dtype=torch.float64) * 3.5
    event = torch.randint(0, 2, (20,), generator=gen)
    loss = registry.create_loss("logistic_hazard", n_bins=6, target_max=3.0, reduction="none")
    # bins (0, .5], (.5, 1], ..., (2.5, 3]; times past 3 go in the last bin
    tau = [min(max(math.ceil(t / 0.5) - 1, 0), 5) for t in times.tolist()]
    expected = _logistic_hazard_loop(logits.tolist(), tau, event.tolist())
    np.testing.assert_allclose(loss(logits, times, event=event).numpy(), expected, rtol=1e-10)
    # pycox nll_logistic_hazard: cumulative BCE (target 1 at an event bin) read at tau
    y = torch.zeros_like(logits)
    y[torch.arange(20), torch.tensor(tau)] = event.double()
    bce = F.binary_cross_entropy_with_logits(logits, y, reduction="none").cumsum(dim=1)
    torch.testing.assert_close(
        loss(logits, times, event=event), bce.gather(1, torch.tensor(tau)[:, None])[:, 0]
    )


def test_logistic_hazard_cuts_median_and_curve(registry):
    loss = registry.create_loss("logistic_hazard", cuts=[1.0, 2.0, 4.0], target_max=9.0)
    assert loss.edges_.tolist() == [1.0, 2.0, 4.0]
    logits = torch.logit(torch.tensor([[0.1, 0.2, 0.5], [0.6, 0.1, 0.1], [0.1, 0.1, 0.1]]))
    curve = loss.survival_curve(logits)
    torch.testing.assert_close(curve[0], torch.tensor([0.9, 0.72, 0.36]))
    link = registry.get_spec("logistic_hazard").link
    assert link(logits, loss).tolist() == [4.0, 1.0, 4.0]
    torch.testing.assert_close(loss.risk_score(logits), 1 - curve[:, -1])


@pytest.mark.parametrize(
    ("name", "width"),
    [("weibull_survival_nll", 2), ("loglogistic_survival_nll", 3), ("apgw_survival_nll", 3)],
)
def test_parametric_losses_finite_at_extreme_outputs(registry, name, width):
    out = torch.tensor([[1e3] * width, [-1e3] * width, [1e3, -1e3, 1e3][:width]])
    out.requires_grad_(True)
    value = registry.create_loss(name)(
        out, torch.tensor([0.5, 2.0, 0.0]), event=torch.tensor([1, 0, 1])
    )
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(out.grad).all()
    assert value.dtype == torch.float32


def test_survival_losses_preserve_float64_and_need_positive_times(registry, survival_data):
    out, times, event, _ = survival_data
    value = registry.create_loss("loglogistic_survival_nll")(out, times, event=event)
    assert value.dtype == torch.float64
    with pytest.raises(ValueError, match="non-negative"):
        registry.create_loss("weibull_survival_nll")(out[:, :2], -times, event=event)
    with pytest.raises(ValueError, match="1 \\(event"):
        registry.create_loss("weibull_survival_nll")(out[:, :2], times, event=event + 1)


def test_weibull_trains_through_a_regressor_once_a_survival_task_exists():
    # LossRegressor has no survival task yet; a copy of the spec declaring "regression"
    # shows the loss, its event extra, its output size and its median link working end to end.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    scale = np.exp(0.8 * X[:, 0])
    t_event = scale * rng.weibull(1.5, size=300)
    t_censor = rng.exponential(2.0, size=300)
    times, event = np.minimum(t_event, t_censor), (t_event <= t_censor).astype(int)
    spec = dataclasses.replace(
        lossreg.get_spec("weibull_survival_nll"), tasks=frozenset({"regression"})
    )
    reg = LossRegressor(loss=spec, max_iter=40, lr=0.02, random_state=0)
    reg.fit(X, times, event=event)
    median = reg.predict(X)
    assert median.shape == (300,) and (median > 0).all()
    # the predicted median follows the true scale: positive rank correlation
    assert stats.spearmanr(median, scale).statistic > 0.7


_CASES = {
    "weibull_survival_nll": ({}, 2),
    "loglogistic_survival_nll": ({}, 3),
    "apgw_survival_nll": ({}, 3),
    "logistic_hazard": ({"n_bins": 4, "target_max": 3.0}, 4),
}


def test_every_registered_loss_of_the_family_is_checked():
    import lossreg.plugins.survival as plugin

    assert {spec.name for spec in plugin.register_losses()} == set(_CASES)


@pytest.mark.parametrize("name", sorted(_CASES))
def test_family_dtype_pickle_sample_weights_and_gradcheck(registry, name):
    import pickle

    data_params, width = _CASES[name]
    gen = torch.Generator().manual_seed(0)
    out = torch.randn(10, width, generator=gen, dtype=torch.float64) * 0.5
    times = torch.rand(10, generator=gen, dtype=torch.float64) * 3 + 0.1
    event = torch.randint(0, 2, (10,), generator=gen)
    loss = registry.create_loss(name, **data_params)
    value = loss(out, times, event=event)
    assert value.dtype == torch.float64
    assert loss(out.float(), times.float(), event=event).dtype == torch.float32
    clone = pickle.loads(pickle.dumps(loss))
    assert clone(out, times, event=event).item() == pytest.approx(value.item(), rel=1e-12)
    # an integer sample weight counts as that many copies of the row
    weight = torch.ones(10, dtype=torch.float64)
    weight[:3] = 2.0
    copies = torch.cat([torch.arange(10), torch.arange(3)])
    weighted = loss(out, times, sample_weight=weight, event=event)
    repeated = loss(out[copies], times[copies], event=event[copies])
    assert weighted.item() == pytest.approx(repeated.item(), rel=1e-12)
    none = registry.create_loss(name, reduction="none", **data_params)
    assert torch.autograd.gradcheck(
        lambda o: none(o, times, event=event), (out.clone().requires_grad_(True),)
    )
