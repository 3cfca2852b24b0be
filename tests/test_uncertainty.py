"""Evidential and uncertainty-aware losses against torch.distributions, scipy and loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import digamma, gammaln
from torch.distributions import Dirichlet, kl_divergence

import lossreg
from lossreg.links import resolve_link


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(40, 4, generator=gen, dtype=torch.float64) * 3
    labels = torch.randint(0, 4, (40,), generator=gen)
    weights = torch.rand(40, generator=gen, dtype=torch.float64)
    return logits, labels, weights


def _alpha(logits, evidence):
    g = {"softplus": F.softplus, "relu": F.relu, "exp": lambda z: z.clamp(-10, 10).exp()}
    return g[evidence](logits) + 1


def _kl_term(alpha, labels):
    onehot = F.one_hot(labels, alpha.shape[1]).double()
    tilde = onehot + (1 - onehot) * alpha
    return kl_divergence(Dirichlet(tilde), Dirichlet(torch.ones_like(tilde)))


@pytest.mark.reference("edl_mse", "evidential_mse")
@pytest.mark.parametrize("evidence", ["softplus", "relu", "exp"])
def test_edl_mse_matches_dirichlet_moments_and_kl(data, evidence):
    logits, labels, _ = data
    loss = lossreg.create_loss("edl_mse", evidence=evidence, reduction="none")
    loss.set_epoch(5, 100)  # lambda = 5 / 10
    alpha = _alpha(logits, evidence)
    dist = Dirichlet(alpha)
    onehot = F.one_hot(labels, 4).double()
    risk = ((onehot - dist.mean) ** 2 + dist.variance).sum(1)
    ref = risk + 0.5 * _kl_term(alpha, labels)
    torch.testing.assert_close(loss(logits, labels), ref, rtol=1e-10, atol=1e-12)
    alias = lossreg.create_loss("evidential_mse", evidence=evidence, reduction="none")
    alias.set_epoch(5, 100)
    assert torch.equal(alias(logits, labels), loss(logits, labels))


@pytest.mark.reference("edl_digamma", "evidential_ce")
def test_edl_digamma_matches_a_scipy_loop(data):
    logits, labels, _ = data
    loss = lossreg.create_loss("edl_digamma", annealing_epochs=None, reduction="none")
    alpha = _alpha(logits, "softplus").numpy()
    ref = []
    for a, y in zip(alpha, labels.tolist()):
        risk = digamma(sum(a)) - digamma(a[y])
        tilde = [1.0 if c == y else a[c] for c in range(4)]
        s = sum(tilde)
        kl = gammaln(s) - gammaln(4) - sum(gammaln(t) for t in tilde)
        kl += sum((t - 1) * (digamma(t) - digamma(s)) for t in tilde)
        ref.append(risk + kl)
    np.testing.assert_allclose(loss(logits, labels).numpy(), ref, rtol=1e-10)
    alias = lossreg.create_loss("evidential_ce", annealing_epochs=None, reduction="none")
    assert torch.equal(alias(logits, labels), loss(logits, labels))


@pytest.mark.reference("edl_log", "dirichlet_nll")
def test_edl_log_is_the_dirichlet_categorical_nll(data):
    logits, labels, _ = data
    loss = lossreg.create_loss("edl_log", kl_weight=0.3, annealing_epochs=None, reduction="none")
    alpha = _alpha(logits, "softplus")
    mean_true = Dirichlet(alpha).mean.gather(1, labels.unsqueeze(1)).squeeze(1)
    ref = -mean_true.log() + 0.3 * _kl_term(alpha, labels)
    torch.testing.assert_close(loss(logits, labels), ref, rtol=1e-10, atol=1e-12)
    alias = lossreg.create_loss(
        "dirichlet_nll", kl_weight=0.3, annealing_epochs=None, reduction="none"
    )
    assert torch.equal(alias(logits, labels), loss(logits, labels))


@pytest.mark.parametrize("name", ["edl_mse", "edl_digamma", "edl_log"])
def test_edl_kl_annealing_follows_set_epoch(data, name):
    logits, labels, _ = data
    loss = lossreg.create_loss(name, reduction="none")
    no_kl = lossreg.create_loss(name, kl_weight=0.0, reduction="none")
    torch.testing.assert_close(loss(logits, labels), no_kl(logits, labels))  # epoch 0
    kl = _kl_term(_alpha(logits, "softplus"), labels)
    loss.set_epoch(3, 50)
    torch.testing.assert_close(loss(logits, labels), no_kl(logits, labels) + 0.3 * kl)
    loss.set_epoch(40, 50)
    torch.testing.assert_close(loss(logits, labels), no_kl(logits, labels) + kl)


def test_dirichlet_mean_link_and_vacuity(data):
    logits, *_ = data
    loss = lossreg.create_loss("edl_digamma", evidence="exp")
    link = resolve_link(lossreg.get_spec("edl_digamma").link)
    assert link.kind == "proba"
    proba = link(logits, loss)
    alpha = _alpha(logits, "exp")
    torch.testing.assert_close(proba, alpha / alpha.sum(1, keepdim=True))
    torch.testing.assert_close(loss.vacuity(logits), 4 / alpha.sum(1))
    with pytest.raises(ValueError, match="criterion"):
        link(logits, None)


@pytest.mark.parametrize("name", ["edl_mse", "edl_digamma", "edl_log"])
def test_edl_sample_weights_and_extreme_logits(data, name):
    logits, labels, w = data
    loss = lossreg.create_loss(name, annealing_epochs=None)
    per_row = lossreg.create_loss(name, annealing_epochs=None, reduction="none")(logits, labels)
    torch.testing.assert_close(loss(logits, labels, sample_weight=w), (per_row * w).sum() / w.sum())
    for evidence in ("softplus", "relu", "exp"):
        z = torch.tensor([[1e3, -1e3, 0.0], [-1e3, 1e3, 0.0]], requires_grad=True)
        lossreg.create_loss(name, evidence=evidence, annealing_epochs=None)(
            z, torch.tensor([0, 0])
        ).backward()
        assert torch.isfinite(z.grad).all()


def _avuc_loop(logits, labels, beta, threshold, weights=None):
    n = len(labels)
    weights = [1.0] * n if weights is None else weights
    ce_sum, ac, au, ic, iu = 0.0, 0.0, 0.0, 0.0, 0.0
    for i in range(n):
        row = logits[i]
        m = max(row)
        den = sum(math.exp(v - m) for v in row)
        p = [math.exp(v - m) / den for v in row]
        ce_sum += weights[i] * -math.log(p[labels[i]])
        conf = max(p)
        pred = p.index(conf)
        u = -sum(pk * math.log(pk) for pk in p)
        t = math.tanh(u)
        if pred == labels[i] and u <= threshold:
            ac += weights[i] * conf * (1 - t)
        elif pred == labels[i]:
            au += weights[i] * conf * t
        elif u <= threshold:
            ic += weights[i] * (1 - conf) * (1 - t)
        else:
            iu += weights[i] * (1 - conf) * t
    return ce_sum / sum(weights) + beta * math.log(1 + (au + ic) / (ac + iu))


@pytest.mark.reference("avuc")
def test_avuc_matches_a_loop_over_rows(data):
    logits, labels, w = data
    z, y = logits.tolist(), labels.tolist()
    loss = lossreg.create_loss("avuc", beta=2.0, threshold=0.4)
    assert loss(logits, labels).item() == pytest.approx(_avuc_loop(z, y, 2.0, 0.4), rel=1e-9)
    weighted = loss(logits, labels, sample_weight=w).item()
    assert weighted == pytest.approx(_avuc_loop(z, y, 2.0, 0.4, w.tolist()), rel=1e-9)
    # Default threshold: the batch's mean entropy.
    p = logits.softmax(1)
    mean_entropy = -(p * p.log()).sum(1).mean().item()
    default = lossreg.create_loss("avuc", beta=2.0)(logits, labels).item()
    assert default == pytest.approx(_avuc_loop(z, y, 2.0, mean_entropy), rel=1e-9)


def test_avuc_without_the_term_is_cross_entropy_and_sum_scales(data):
    logits, labels, w = data
    ce = lossreg.create_loss("avuc", beta=0.0)(logits, labels, sample_weight=w)
    ref = (F.cross_entropy(logits, labels, reduction="none") * w).sum() / w.sum()
    torch.testing.assert_close(ce, ref)
    mean = lossreg.create_loss("avuc")(logits, labels)
    total = lossreg.create_loss("avuc", reduction="sum")(logits, labels)
    torch.testing.assert_close(total, mean * len(labels))
    with pytest.raises(ValueError, match="batch-level"):
        lossreg.create_loss("avuc", reduction="none")


@pytest.mark.reference("uncertainty_weighted_multitask")
def test_multitask_kendall_form_is_the_gaussian_nll(data):
    gen = torch.Generator().manual_seed(3)
    pred = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(20, 3, generator=gen, dtype=torch.float64)
    loss = lossreg.create_loss("uncertainty_weighted_multitask", n_outputs=3, reduction="none")
    loss.double()
    with torch.no_grad():
        loss.log_var.copy_(torch.tensor([-0.5, 0.0, 1.2]))
    var = loss.log_var.detach().exp().expand_as(pred)
    ref = F.gaussian_nll_loss(pred, y, var, reduction="none").sum(1)
    torch.testing.assert_close(loss(pred, y), ref)
    simple = lossreg.create_loss(
        "uncertainty_weighted_multitask", form="simplified", n_outputs=3, reduction="none"
    ).double()
    with torch.no_grad():
        simple.log_var.copy_(torch.tensor([-0.5, 0.0, 1.2]))
    s = simple.log_var.tolist()
    loop = [
        sum(math.exp(-s[t]) * (pred[i, t].item() - y[i, t].item()) ** 2 + s[t] for t in range(3))
        for i in range(20)
    ]
    np.testing.assert_allclose(simple(pred, y).detach().numpy(), loop, rtol=1e-12)


def test_multitask_log_variances_are_learnable():
    spec = lossreg.get_spec("uncertainty_weighted_multitask")
    assert spec.learnable and spec.data_params == ("n_outputs",)
    loss = spec.factory(n_outputs=2)
    assert [name for name, _ in loss.named_parameters()] == ["log_var"]
    loss(torch.ones(5, 2), torch.zeros(5, 2)).backward()
    # d/ds [1/2 e^{-s} 1 + 1/2 s] at s=0 is 0: the optimum for a unit squared error.
    torch.testing.assert_close(loss.log_var.grad, torch.zeros(2))
    with pytest.raises(ValueError, match="n_outputs=2"):
        loss(torch.ones(5, 3), torch.zeros(5, 3))
