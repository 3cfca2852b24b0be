"""Label-noise-robust losses against float64 loop references, libraries and identities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import jensenshannon

import lossreg

N_CLASSES = 4


@pytest.fixture(scope="module")
def registry():
    return lossreg.Registry(entry_points=False)


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(24, N_CLASSES, generator=gen, dtype=torch.float64) * 2
    labels = torch.randint(0, N_CLASSES, (24,), generator=gen)
    weights = torch.rand(24, generator=gen, dtype=torch.float64)
    return logits, labels, weights


def _softmax_row(row: list[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    total = sum(exps)
    return [e / total for e in exps]


def _rows(logits: torch.Tensor, labels: torch.Tensor):
    for row, y in zip(logits.tolist(), labels.tolist()):
        yield row, int(y), _softmax_row(row)


def _ours(registry, name, logits, labels, **params):
    return registry.create_loss(name, reduction="none", **params)(logits, labels)


def _close(ours: torch.Tensor, expected: list[float], rtol: float = 1e-10) -> None:
    np.testing.assert_allclose(ours.detach().numpy(), np.array(expected), rtol=rtol, atol=1e-12)


# -- comp-sum family ------------------------------------------------------------------------


def _comp_sum_loop(logits, labels, tau):
    out = []
    for row, y, _ in _rows(logits, labels):
        u = sum(math.exp(row[k] - row[y]) for k in range(len(row)) if k != y)
        if tau == 1:
            out.append(math.log(1 + u))
        else:
            out.append(((1 + u) ** (1 - tau) - 1) / (1 - tau))
    return out


@pytest.mark.reference("comp_sum")
@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, 1.5, 2.0, 3.0])
def test_comp_sum_matches_phi_of_u_loop(registry, data, tau):
    logits, labels, _ = data
    _close(
        _ours(registry, "comp_sum", logits, labels, tau=tau), _comp_sum_loop(logits, labels, tau)
    )


def test_comp_sum_members(registry, data):
    logits, labels, _ = data
    ce = registry.create_loss("cross_entropy", reduction="none")(logits, labels)
    assert torch.equal(_ours(registry, "comp_sum", logits, labels, tau=1.0), ce)
    near = _ours(registry, "comp_sum", logits, labels, tau=1.0 + 1e-7)
    torch.testing.assert_close(near, ce, rtol=1e-5, atol=1e-6)
    for q in (0.3, 0.7, 1.0):
        torch.testing.assert_close(
            _ours(registry, "comp_sum", logits, labels, tau=1.0 + q),
            _ours(registry, "gce", logits, labels, q=q),
            rtol=1e-12,
            atol=1e-12,
        )
    torch.testing.assert_close(
        2 * _ours(registry, "comp_sum", logits, labels, tau=2.0),
        _ours(registry, "mae_prob", logits, labels),
        rtol=1e-12,
        atol=1e-12,
    )


def test_comp_sum_tau_zero_stays_finite_when_confidently_wrong(registry):
    logits = torch.tensor([[1000.0, -1000.0], [-1000.0, 1000.0]], requires_grad=True)
    value = registry.create_loss("comp_sum", tau=0.0)(logits, torch.tensor([1, 1]))
    (grad,) = torch.autograd.grad(value, logits)
    assert math.isfinite(value.item()) and torch.isfinite(grad).all()


@pytest.mark.reference("generalized_cross_entropy")
@pytest.mark.parametrize("q", [0.05, 0.3, 0.7, 1.0])
def test_gce_matches_loop(registry, data, q):
    logits, labels, _ = data
    expected = [(1 - p[y] ** q) / q for _, y, p in _rows(logits, labels)]
    _close(_ours(registry, "generalized_cross_entropy", logits, labels, q=q), expected)
    _close(_ours(registry, "gce", logits, labels, q=q), expected)


@pytest.mark.reference("truncated_gce")
@pytest.mark.parametrize(("q", "k"), [(0.7, 0.5), (0.5, 0.1), (0.9, 0.3)])
def test_truncated_gce_matches_loop(registry, data, q, k):
    logits, labels, _ = data
    expected = []
    for _, y, p in _rows(logits, labels):
        expected.append((1 - k**q) / q if p[y] <= k else (1 - p[y] ** q) / q)
    _close(_ours(registry, "truncated_gce", logits, labels, q=q, k=k), expected)


def test_truncated_gce_at_k_zero_is_gce_and_truncated_rows_have_no_gradient(registry, data):
    logits, labels, _ = data
    torch.testing.assert_close(
        _ours(registry, "truncated_gce", logits, labels, k=0.0),
        _ours(registry, "gce", logits, labels),
    )
    x = logits.clone().requires_grad_(True)
    _ours(registry, "truncated_gce", x, labels, k=0.5).sum().backward()
    p_t = logits.softmax(dim=1).gather(1, labels.unsqueeze(1)).squeeze(1)
    assert (p_t < 0.5).any() and (x.grad[p_t < 0.5] == 0).all()
    assert (x.grad[p_t > 0.5].abs().sum(dim=1) > 0).all()


@pytest.mark.reference("mae_prob")
def test_mae_prob_matches_l1_loop(registry, data):
    logits, labels, _ = data
    expected = [
        sum(abs(p[k] - (1.0 if k == y else 0.0)) for k in range(N_CLASSES))
        for _, y, p in _rows(logits, labels)
    ]
    _close(_ours(registry, "mae_prob", logits, labels), expected)


# -- symmetric / active-passive -------------------------------------------------------------


def _reverse_ce_loop(p, y, log_zero):
    # -sum_k p_k log(onehot_k) with the one-hot clamped at exp(log_zero), as the references do.
    floor = math.exp(log_zero)
    return -sum(p[k] * math.log(max(1.0 if k == y else 0.0, floor)) for k in range(len(p)))


@pytest.mark.reference("symmetric_cross_entropy")
@pytest.mark.parametrize(("alpha", "beta", "log_zero"), [(0.1, 1.0, -4.0), (6.0, 0.1, -4.0)])
def test_sce_matches_loop(registry, data, alpha, beta, log_zero):
    logits, labels, _ = data
    expected = [
        -alpha * math.log(p[y]) + beta * _reverse_ce_loop(p, y, log_zero)
        for _, y, p in _rows(logits, labels)
    ]
    _close(
        _ours(registry, "sce", logits, labels, alpha=alpha, beta=beta, log_zero=log_zero), expected
    )


def test_sce_maps_the_ldr_and_clamped_parameterisations(registry, data):
    logits, labels, _ = data
    # Optimization-AI/ICML2023_LDR SCELoss(balance=b, A=a): (1-b) log sum e^{z-z_y} + b a (1 - p_t)
    b, a = 0.5, 4.0
    expected = []
    for row, y, _ in _rows(logits, labels):
        total = sum(math.exp(v - row[y]) for v in row)
        expected.append((1 - b) * math.log(total) + b * a * (1 - 1 / total))
    _close(_ours(registry, "sce", logits, labels, alpha=1 - b, beta=b, log_zero=-a), expected)
    # PyTorch reimplementations clamp the one-hot at 1e-4.
    expected = [
        -math.log(p[y]) + _reverse_ce_loop(p, y, math.log(1e-4))
        for _, y, p in _rows(logits, labels)
    ]
    ours = _ours(registry, "sce", logits, labels, alpha=1.0, beta=1.0, log_zero=math.log(1e-4))
    _close(ours, expected)


def _nce_loop(p, y):
    return math.log(p[y]) / sum(math.log(v) for v in p)


@pytest.mark.reference("nce_rce")
@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 1.0), (10.0, 0.1)])
def test_nce_rce_matches_loop(registry, data, alpha, beta):
    logits, labels, _ = data
    expected = [
        alpha * _nce_loop(p, y) + beta * _reverse_ce_loop(p, y, math.log(1e-4))
        for _, y, p in _rows(logits, labels)
    ]
    _close(_ours(registry, "nce_rce", logits, labels, alpha=alpha, beta=beta), expected)


@pytest.mark.reference("nce_agce")
@pytest.mark.parametrize(("a", "q"), [(6.0, 1.5), (1.8, 3.0), (3.0, 0.5)])
def test_nce_agce_matches_loop(registry, data, a, q):
    logits, labels, _ = data
    expected = [
        _nce_loop(p, y) + 0.5 * ((a + 1) ** q - (a + p[y]) ** q) / q
        for _, y, p in _rows(logits, labels)
    ]
    _close(_ours(registry, "nce_agce", logits, labels, a=a, q=q, beta=0.5), expected)


@pytest.mark.reference("nce_aul")
@pytest.mark.parametrize(("a", "q"), [(6.0, 1.5), (6.0, 3.0), (1.5, 0.9)])
def test_nce_aul_matches_loop(registry, data, a, q):
    logits, labels, _ = data
    expected = [
        2.0 * _nce_loop(p, y) + ((a - p[y]) ** q - (a - 1) ** q) / q
        for _, y, p in _rows(logits, labels)
    ]
    _close(_ours(registry, "nce_aul", logits, labels, a=a, q=q, alpha=2.0, beta=1.0), expected)


def test_asymmetric_terms_are_continuous_at_q_zero(registry, data):
    logits, labels, _ = data
    for name in ("nce_agce", "nce_aul"):
        at_zero = _ours(registry, name, logits, labels, q=0.0)
        near = _ours(registry, name, logits, labels, q=1e-5)
        torch.testing.assert_close(at_zero, near, rtol=1e-4, atol=1e-5)


# -- Jensen-Shannon -------------------------------------------------------------------------


@pytest.mark.reference("jensen_shannon")
@pytest.mark.parametrize("pi1", [0.1, 0.5, 0.7, 0.9])
def test_jensen_shannon_matches_mixture_loop(registry, data, pi1):
    logits, labels, _ = data
    expected = []
    for _, y, p in _rows(logits, labels):
        onehot = [1.0 if k == y else 0.0 for k in range(N_CLASSES)]
        m = [pi1 * e + (1 - pi1) * v for e, v in zip(onehot, p)]
        kl_label = sum(e * math.log(e / mk) for e, mk in zip(onehot, m) if e > 0)
        kl_pred = sum(v * math.log(v / mk) for v, mk in zip(p, m) if v > 0)
        scale = -(1 - pi1) * math.log(1 - pi1)
        expected.append((pi1 * kl_label + (1 - pi1) * kl_pred) / scale)
    _close(_ours(registry, "jensen_shannon", logits, labels, pi1=pi1), expected, rtol=1e-9)


@pytest.mark.reference("jensen_shannon")
def test_jensen_shannon_at_half_is_scipys_divergence(registry, data):
    logits, labels, _ = data
    probs = logits.softmax(dim=1).numpy()
    onehot = np.eye(N_CLASSES)[labels.numpy()]
    divergence = jensenshannon(onehot, probs, axis=1) ** 2  # natural log base
    ours = _ours(registry, "js", logits, labels, pi1=0.5) * (-0.5 * math.log(0.5))
    np.testing.assert_allclose(ours.numpy(), divergence, rtol=1e-8)


# -- LDR ------------------------------------------------------------------------------------


def _ldr_loop(row, y, lam, margin, normalize):
    z = list(row)
    if normalize:
        z = [math.log1p(math.exp(v)) if v < 30 else v + math.log1p(math.exp(-v)) for v in z]
        mean = sum(z) / len(z)
        z = [v / mean for v in z]
    delta = [margin * (0.0 if k == y else 1.0) + z[k] - z[y] for k in range(len(z))]
    top = max(delta)
    return lam * (math.log(sum(math.exp((d - top) / lam) for d in delta) / len(z))) + top


@pytest.mark.reference("ldr_kl")
@pytest.mark.parametrize(
    ("lam", "margin", "normalize"),
    [(1.0, 2.0, "softplus_mean"), (0.1, 1.0, "softplus_mean"), (10.0, 0.5, "none")],
)
def test_ldr_kl_matches_loop(registry, data, lam, margin, normalize):
    logits, labels, _ = data
    expected = [
        _ldr_loop(row, y, lam, margin, normalize == "softplus_mean")
        for row, y, _ in _rows(logits, labels)
    ]
    ours = _ours(registry, "ldr_kl", logits, labels, lam=lam, margin=margin, normalize=normalize)
    _close(ours, expected, rtol=1e-9)


def test_ldr_kl_special_cases(registry, data):
    logits, labels, _ = data
    ce = registry.create_loss("cross_entropy", reduction="none")(logits, labels)
    plain = _ours(registry, "ldr_kl", logits, labels, lam=1.0, margin=0.0, normalize="none")
    torch.testing.assert_close(plain, ce - math.log(N_CLASSES), rtol=1e-12, atol=1e-12)
    onehot = F.one_hot(labels, N_CLASSES).double()
    delta = 1.0 * (1 - onehot) + logits - logits.gather(1, labels.unsqueeze(1))
    hinge = _ours(registry, "ldr_kl", logits, labels, lam=1e-3, margin=1.0, normalize="none")
    torch.testing.assert_close(hinge, delta.max(dim=1).values, rtol=0, atol=2e-3)
    mean = _ours(registry, "ldr_kl", logits, labels, lam=1e4, margin=1.0, normalize="none")
    torch.testing.assert_close(mean, delta.mean(dim=1), rtol=0, atol=1e-2)


def _aldr_loop(rows, labels, ids, state, lam0, margin, alpha):
    """One ALDR step written from the paper's update, row by row; mutates ``state``."""
    out = []
    log_c = math.log(N_CLASSES)
    for row, y, i in zip(rows, labels, ids):
        norm = sum(abs(v) for v in row) / N_CLASSES
        z = [v / norm for v in row]
        old = state[i]
        q = [v + 1e-5 for v in _softmax_row([v / old for v in z])]
        total = sum(q)
        q = [v / total for v in q]
        kl = sum(v * math.log(N_CLASSES * v) for v in q)
        lam = lam0 - lam0 * kl / (alpha * log_c)
        state[i] = lam
        delta = [margin * (0.0 if k == y else 1.0) + z[k] - z[y] for k in range(N_CLASSES)]
        lme = math.log(sum(math.exp(d / lam) for d in delta) / N_CLASSES)
        out.append(lam * lme - alpha * log_c / (2 * lam0) * (lam - lam0) ** 2)
    return out


@pytest.mark.reference("aldr_kl")
def test_aldr_kl_matches_loop_over_two_steps(registry, data):
    logits, labels, _ = data
    params = {"lam0": 1.0, "margin": 1.0, "alpha": 2.0}
    loss = registry.create_loss("aldr_kl", n_samples=30, reduction="none", **params)
    state = [1.0] * 30
    first, second = torch.arange(0, 24), torch.arange(6, 30)
    for ids in (first, second):
        rows = logits[: len(ids)]
        ours = loss(rows, labels[: len(ids)], sample_index=ids)
        expected = _aldr_loop(rows.tolist(), labels.tolist(), ids.tolist(), state, **params)
        _close(ours, expected, rtol=1e-8)
    np.testing.assert_allclose(loss.lambdas_.numpy(), np.array(state), rtol=1e-6)


def test_aldr_kl_state_rules(registry, data):
    logits, labels, _ = data
    loss = registry.create_loss("aldr_kl", n_samples=24, alpha=2.0, reduction="none")
    no_index = loss(logits, labels)
    assert torch.all(loss.lambdas_ == 1.0)
    loss.eval()
    evaluated = loss(logits, labels, sample_index=torch.arange(24))
    assert torch.all(loss.lambdas_ == 1.0)
    torch.testing.assert_close(no_index, evaluated)
    loss.train()
    loss(logits, labels, sample_index=torch.arange(24))
    assert not torch.all(loss.lambdas_ == 1.0)
    with pytest.raises(IndexError, match="sample_index must lie in"):
        loss(logits, labels, sample_index=torch.arange(24) + 5)
    x = logits.clone().requires_grad_(True)
    loss(x, labels, sample_index=torch.arange(24)).sum().backward()
    assert torch.isfinite(x.grad).all()


# -- truncation and re-weighting ------------------------------------------------------------


def _error_norms(logits, labels):
    norms = []
    for _, y, p in _rows(logits, labels):
        norms.append(math.sqrt(sum((p[k] - (1.0 if k == y else 0.0)) ** 2 for k in range(len(p)))))
    return norms


@pytest.mark.reference("error_norm_truncation")
def test_error_norm_truncation_threshold_matches_loop(registry, data):
    logits, labels, _ = data
    norms = _error_norms(logits, labels)
    expected = [
        -math.log(p[y]) if norms[i] <= 1.0 else 0.0
        for i, (_, y, p) in enumerate(_rows(logits, labels))
    ]
    assert 0 < sum(v == 0.0 for v in expected) < len(expected)
    _close(_ours(registry, "ent", logits, labels, threshold=1.0), expected)
    mean = registry.create_loss("ent", threshold=1.0)(logits, labels)
    assert mean.item() == pytest.approx(sum(expected) / len(expected), rel=1e-12)


@pytest.mark.reference("error_norm_truncation")
def test_error_norm_truncation_fraction_matches_loop(registry, data):
    logits, labels, _ = data
    norms = _error_norms(logits, labels)
    cutoff = sorted(norms, reverse=True)[int(0.25 * len(norms))]
    expected = [
        -math.log(p[y]) if norms[i] <= cutoff else 0.0
        for i, (_, y, p) in enumerate(_rows(logits, labels))
    ]
    assert sum(v == 0.0 for v in expected) == 6
    _close(_ours(registry, "ent", logits, labels, mode="fraction", fraction=0.25), expected)


def test_error_norm_truncation_warm_up_counts_training_calls(registry, data):
    logits, labels, _ = data
    loss = registry.create_loss("ent", threshold=1.0, start_iteration=2, reduction="none")
    ce = registry.create_loss("cross_entropy", reduction="none")(logits, labels)
    assert torch.equal(loss(logits, labels), ce)
    assert torch.equal(loss(logits, labels), ce)
    assert not torch.equal(loss(logits, labels), ce)
    assert int(loss.step_) == 3


class _LossDropperLoop:
    """The origin paper's LossDropper bookkeeping, row by row, in plain Python."""

    def __init__(self, dropc, min_count, recompute):
        self.keep = 1 - dropc
        self.min_count, self.recompute = min_count, recompute
        self.vals = [0.0] * recompute
        self.count = self.last = self.cur = 0
        self.cutoff = 1e8

    def __call__(self, losses):
        self.last += len(losses)
        self.count += len(losses)
        for value in losses:
            self.vals[self.cur] = value
            self.cur = (self.cur + 1) % self.recompute
        if self.count < self.recompute or self.count < self.min_count:
            return [1.0] * len(losses)
        if self.last > self.recompute:
            self.cutoff = float(np.percentile(self.vals, self.keep * 100))
            self.last = 0
        return [1.0 if v < self.cutoff else 0.0 for v in losses]


@pytest.mark.reference("loss_truncation")
def test_loss_truncation_matches_loss_dropper_loop(registry):
    gen = torch.Generator().manual_seed(5)
    loss = registry.create_loss("loss_truncation", min_count=20, window=16, reduction="none")
    loss = loss.double()  # float64 history: cut-offs land exactly on stored losses
    dropper = _LossDropperLoop(0.4, 20, 16)
    dropped = 0
    for _ in range(8):
        logits = torch.randn(6, 3, generator=gen, dtype=torch.float64) * 2
        labels = torch.randint(0, 3, (6,), generator=gen)
        nll = [-math.log(p[y]) for _, y, p in _rows(logits, labels)]
        mask = dropper(nll)
        dropped += mask.count(0.0)
        _close(loss(logits, labels), [m * v for m, v in zip(mask, nll)])
    assert dropped > 0
    assert float(loss.cutoff_) == pytest.approx(dropper.cutoff, rel=1e-6)


@pytest.mark.reference("tailr")
@pytest.mark.parametrize(("gamma", "min_weight"), [(0.1, 0.3), (1.0, 0.0), (0.5, 0.2)])
def test_tailr_matches_loop(registry, data, gamma, min_weight):
    logits, labels, _ = data
    expected = []
    for _, y, p in _rows(logits, labels):
        weight = min(max(p[y] / (gamma + (1 - gamma) * p[y]), min_weight), 1.0)
        expected.append(-weight * math.log(p[y]))
    _close(_ours(registry, "tailr", logits, labels, gamma=gamma, min_weight=min_weight), expected)


def test_tailr_weight_is_detached_and_gamma_zero_is_cross_entropy(registry, data):
    logits, labels, _ = data
    ce = registry.create_loss("cross_entropy", reduction="none")
    torch.testing.assert_close(
        _ours(registry, "tailr", logits, labels, gamma=0.0, min_weight=0.0), ce(logits, labels)
    )
    x = logits.clone().requires_grad_(True)
    values = _ours(registry, "tailr", x, labels)
    values.sum().backward()
    weight = (values / ce(logits, labels)).detach()
    y = logits.clone().requires_grad_(True)
    (ce(y, labels) * weight).sum().backward()
    torch.testing.assert_close(x.grad, y.grad)


# -- flip-rate losses -----------------------------------------------------------------------


@pytest.fixture
def binary():
    gen = torch.Generator().manual_seed(7)
    h = torch.randn(32, generator=gen, dtype=torch.float64) * 3
    y = torch.randint(0, 2, (32,), generator=gen).double()
    return h, y


@pytest.mark.reference("robust_dpo")
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3, 0.45])
def test_robust_dpo_matches_loop(registry, binary, eps):
    h, y = binary
    expected = []
    for hi, yi in zip(h.tolist(), y.tolist()):
        m = hi * (2 * yi - 1)
        phi = math.log1p(math.exp(-m))
        phi_neg = math.log1p(math.exp(m))
        expected.append(((1 - eps) * phi - eps * phi_neg) / (1 - 2 * eps))
    _close(_ours(registry, "robust_dpo", h, y, epsilon=eps), expected, rtol=1e-9)
    _close(_ours(registry, "unbiased_flip_bce", h, y, epsilon=eps), expected, rtol=1e-9)


def test_robust_dpo_is_unbiased_under_flips(registry, binary):
    h, y = binary
    for eps in (0.1, 0.3):
        loss = registry.create_loss("robust_dpo", epsilon=eps, reduction="none")
        expected_over_flips = (1 - eps) * loss(h, y) + eps * loss(h, 1 - y)
        clean = F.binary_cross_entropy_with_logits(h, y, reduction="none")
        torch.testing.assert_close(expected_over_flips, clean, rtol=1e-10, atol=1e-12)
    bce = registry.create_loss("bce", reduction="none")(h, y)
    torch.testing.assert_close(_ours(registry, "robust_dpo", h, y, epsilon=0.0), bce)


@pytest.mark.reference("conservative_bce")
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.25])
def test_conservative_bce_is_bce_with_smoothed_targets(registry, binary, eps):
    h, y = binary
    ref = F.binary_cross_entropy_with_logits(h, (1 - eps) * y + eps * (1 - y), reduction="none")
    torch.testing.assert_close(_ours(registry, "cdpo", h, y, epsilon=eps), ref)
    torch.testing.assert_close(_ours(registry, "conservative_bce", h[:, None], y, epsilon=eps), ref)


# -- shared behaviour -----------------------------------------------------------------------

_CLASS_LOSSES = [
    "comp_sum",
    "generalized_cross_entropy",
    "truncated_gce",
    "mae_prob",
    "symmetric_cross_entropy",
    "nce_rce",
    "nce_agce",
    "nce_aul",
    "jensen_shannon",
    "ldr_kl",
    "error_norm_truncation",
    "tailr",
]


def _make(registry, name, **params):
    extra = {"aldr_kl": {"n_samples": 24}, "tempnet_dro_ce": {"n_classes": N_CLASSES}}
    torch.manual_seed(0)  # the same TempNet weights for every construction
    return registry.create_loss(name, **{**extra.get(name, {}), **params})


_STATEFUL = ["aldr_kl", "loss_truncation", "tempnet_dro_ce"]


@pytest.mark.parametrize("name", [*_CLASS_LOSSES, *_STATEFUL])
def test_sample_weights_give_the_weighted_mean(registry, data, name):
    logits, labels, weights = data
    rows = _make(registry, name, reduction="none").eval()(logits, labels)
    weighted = _make(registry, name).eval()(logits, labels, sample_weight=weights)
    assert weighted.item() == pytest.approx(((rows * weights).sum() / weights.sum()).item())


@pytest.mark.parametrize("name", [*_CLASS_LOSSES, *_STATEFUL])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_is_preserved_and_extreme_logits_stay_finite(registry, name, dtype):
    logits = torch.tensor(
        [[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 3.0], [0.0, 0.0, 0.0]], dtype=dtype
    ).requires_grad_(True)
    labels = torch.tensor([1, 1, 2])
    params = {"n_classes": 3} if name == "tempnet_dro_ce" else {}
    value = _make(registry, name, **params)(logits, labels)
    (grad,) = torch.autograd.grad(value, logits)
    assert value.dtype == dtype
    assert math.isfinite(value.item()) and torch.isfinite(grad).all()


@pytest.mark.parametrize("name", ["robust_dpo", "conservative_bce"])
def test_binary_losses_weights_and_extremes(registry, binary, name):
    h, y = binary
    weights = torch.linspace(0.1, 1.0, 32, dtype=torch.float64)
    rows = registry.create_loss(name, reduction="none")(h, y)
    weighted = registry.create_loss(name)(h, y, sample_weight=weights)
    assert weighted.item() == pytest.approx(((rows * weights).sum() / weights.sum()).item())
    big = torch.tensor([1000.0, -1000.0], requires_grad=True)
    value = registry.create_loss(name)(big, torch.tensor([0.0, 1.0]))
    (grad,) = torch.autograd.grad(value, big)
    assert math.isfinite(value.item()) and torch.isfinite(grad).all()


# -- TempNet --------------------------------------------------------------------------------


def _tempnet_loop(loss, row):
    """The TempNet forward of one row, written from the authors' description in numpy."""
    net = loss.tempnet
    w1, b1 = (
        net.proj[0].weight.detach().double().numpy(),
        net.proj[0].bias.detach().double().numpy(),
    )
    w2, b2 = (
        net.proj[3].weight.detach().double().numpy(),
        net.proj[3].bias.detach().double().numpy(),
    )
    w3, b3 = net.last.weight.detach().double().numpy()[0], float(net.last.bias.detach())
    z = np.array(row) / math.sqrt(sum(v * v for v in row))
    hidden = 1 / (1 + np.exp(-(w1 @ z + b1)))
    x = w2 @ hidden + b2
    scaled = x / math.exp(float(net.log_scale.detach()))
    weights = np.exp(scaled - scaled.max())
    weights /= weights.sum()
    score = float(w3 @ ((weights - 1 / len(x)) * x) + b3)
    return loss.tau_min + (loss.tau_max - loss.tau_min) / (1 + math.exp(-score))


@pytest.mark.reference("tempnet_dro_ce")
@pytest.mark.parametrize("rho", [0.0, 0.5])
def test_tempnet_dro_ce_matches_loop_and_torch_cross_entropy(registry, data, rho):
    logits, labels, _ = data
    torch.manual_seed(0)
    loss = registry.create_loss(
        "tempnet_dro_ce", n_classes=N_CLASSES, hidden=16, rho=rho, reduction="none"
    ).eval()
    ours = loss(logits, labels)
    taus = [_tempnet_loop(loss, row) for row in logits.tolist()]
    expected = []
    for (row, y, _), tau in zip(_rows(logits, labels), taus):
        lse = math.log(sum(math.exp((v - row[y]) / tau) for v in row))
        expected.append(tau * lse + (rho - math.log(N_CLASSES)) * tau)
    _close(ours, expected, rtol=1e-5)
    tau = torch.tensor(taus, dtype=torch.float64)
    official = tau * F.cross_entropy(logits / tau[:, None], labels, reduction="none")
    torch.testing.assert_close(
        ours, official + (rho - math.log(N_CLASSES)) * tau, rtol=1e-5, atol=0
    )


def test_tempnet_is_learnable_stochastic_in_training_and_drives_the_link(registry, data):
    logits, labels, _ = data
    spec = registry.get_spec("tempnet_dro_ce")
    assert spec.learnable and spec.stochastic and spec.data_params == ("n_classes",)
    loss = registry.create_loss("tempnet_dro_ce", n_classes=N_CLASSES, hidden=16)
    x = logits.clone().requires_grad_(True)
    loss(x, labels).backward()
    grads = [p.grad for p in loss.parameters()]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    ce_grad = torch.autograd.grad(loss.eval()(x, labels), x)[0]
    assert torch.isfinite(ce_grad).all()
    loss.train()
    probs = spec.link(logits.float(), loss)
    assert loss.training  # the link restores the mode
    tau = loss.eval().temperature(logits.float())
    torch.testing.assert_close(probs, (logits.float() / tau[:, None]).softmax(dim=1))
    torch.testing.assert_close(spec.link(logits, None), logits.softmax(dim=1))
    with pytest.raises(ValueError, match="tau_min < tau_max"):
        registry.create_loss("tempnet_dro_ce", n_classes=3, tau_min=2.0)


_SMOOTH = [
    "comp_sum",
    "generalized_cross_entropy",
    "mae_prob",
    "symmetric_cross_entropy",
    "nce_rce",
    "nce_agce",
    "nce_aul",
    "jensen_shannon",
    "ldr_kl",
]


@pytest.mark.parametrize("name", _SMOOTH)
def test_gradcheck_in_float64(registry, name):
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 1, 0])
    loss = registry.create_loss(name, reduction="none")
    assert torch.autograd.gradcheck(lambda x: loss(x, labels), (logits,))


@pytest.mark.parametrize("name", ["robust_dpo", "conservative_bce"])
def test_binary_gradcheck_in_float64(registry, binary, name):
    h, y = binary
    x = h[:6].clone().requires_grad_(True)
    loss = registry.create_loss(name, reduction="none")
    assert torch.autograd.gradcheck(lambda v: loss(v, y[:6]), (x,))


@pytest.mark.parametrize(
    "name", [*_CLASS_LOSSES, "aldr_kl", "tempnet_dro_ce", "error_norm_truncation"]
)
def test_rows_permute_with_the_batch(registry, data, name):
    logits, labels, _ = data
    order = torch.randperm(logits.shape[0], generator=torch.Generator().manual_seed(4))
    params = {"mode": "fraction", "fraction": 0.25} if name == "error_norm_truncation" else {}
    loss = _make(registry, name, reduction="none", **params).eval()
    torch.testing.assert_close(loss(logits, labels)[order], loss(logits[order], labels[order]))
