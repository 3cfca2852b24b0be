"""Class-imbalance losses against torch.nn.functional, scikit-learn, scipy and float64 loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import log_ndtr, logsumexp
from sklearn.utils.class_weight import compute_class_weight

import lossreg

COUNTS = [40, 12, 5, 1]


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(24, 4, generator=gen, dtype=torch.float64) * 2
    labels = torch.randint(0, 4, (24,), generator=gen)
    multi = torch.randn(24, 3, generator=gen, dtype=torch.float64) * 2
    multi_y = torch.randint(0, 2, (24, 3), generator=gen).double()
    weights = torch.rand(24, generator=gen, dtype=torch.float64)
    return logits, labels, multi, multi_y, weights


def _loop_ce(z: np.ndarray, y: int) -> float:
    return float(logsumexp(z) - z[y])


def _effective_weights(counts, beta):
    w = [(1 - beta) / (1 - beta**n) for n in counts]
    total = sum(w)
    return [v * len(counts) / total for v in w]


# -- weighted_cross_entropy -------------------------------------------------------------------


@pytest.mark.reference("weighted_cross_entropy")
def test_weighted_cross_entropy_matches_torch_weight_and_sklearn_balanced(data):
    logits, labels, *_ = data
    y_train = np.repeat(np.arange(4), COUNTS)
    balanced = compute_class_weight("balanced", classes=np.arange(4), y=y_train)
    weight = torch.tensor(balanced)
    for reduction in ("mean", "sum", "none"):
        loss = lossreg.create_loss(
            "weighted_cross_entropy", class_counts=COUNTS, reduction=reduction
        )
        ref = F.cross_entropy(logits, labels, weight=weight, reduction=reduction)
        torch.testing.assert_close(loss(logits, labels), ref, rtol=1e-6, atol=1e-12)


@pytest.mark.reference("weighted_cross_entropy")
def test_weighted_cross_entropy_sample_weights_follow_the_torch_convention(data):
    logits, labels, *_, weights = data
    vector = [0.5, 1.0, 2.0, 4.0]
    loss = lossreg.create_loss("weighted_cross_entropy", class_weight=vector, class_counts=COUNTS)
    num = den = 0.0
    for i in range(len(labels)):
        w = weights[i].item() * vector[labels[i].item()]
        num += w * _loop_ce(logits[i].numpy(), labels[i].item())
        den += w
    assert loss(logits, labels, sample_weight=weights).item() == pytest.approx(num / den)
    # The plain mean over rows differs: the convention is pinned.
    plain = (loss.class_weight_[labels] * F.cross_entropy(logits, labels, reduction="none")).mean()
    assert not math.isclose(loss(logits, labels).item(), plain.item(), rel_tol=1e-3)


def test_weighted_cross_entropy_rejects_an_empty_class():
    with pytest.raises(ValueError, match="zero rows for classes \\[2\\]"):
        lossreg.create_loss("weighted_cross_entropy", class_counts=[3, 2, 0])


# -- class_balanced ---------------------------------------------------------------------------


@pytest.mark.reference("class_balanced")
@pytest.mark.parametrize("beta", [0.9, 0.999, 0.9999])
def test_class_balanced_softmax_focal_matches_a_loop(data, beta):
    logits, labels, *_ = data
    loss = lossreg.create_loss("cb", beta=beta, class_counts=COUNTS, reduction="none")
    w = _effective_weights(COUNTS, beta)
    ref = []
    for i in range(len(labels)):
        z, y = logits[i].numpy(), labels[i].item()
        ce = _loop_ce(z, y)
        p = math.exp(-ce)
        ref.append(w[y] * (1 - p) ** 2 * ce)
    np.testing.assert_allclose(loss(logits, labels).numpy(), ref, rtol=1e-9)


@pytest.mark.reference("class_balanced")
def test_class_balanced_sigmoid_focal_weights_each_label(data):
    *_, multi, multi_y, _ = data
    counts = [30, 4, 1]
    loss = lossreg.create_loss(
        "class_balanced", base="binary_focal", gamma=1.0, class_counts=counts, reduction="none"
    )
    w = _effective_weights(counts, 0.9999)
    ref = []
    for i in range(multi.shape[0]):
        row = 0.0
        for c in range(3):
            z, y = multi[i, c].item(), multi_y[i, c].item()
            p = 1 / (1 + math.exp(-z))
            pt = p if y == 1 else 1 - p
            row += w[c] * (1 - pt) * -math.log(pt)
        ref.append(row / 3)
    np.testing.assert_allclose(loss(multi, multi_y).numpy(), ref, rtol=1e-9)


def test_class_balanced_binary_sigmoid_base_weights_rows_by_class(data):
    *_, multi, multi_y, _ = data
    z, y = multi[:, 0], multi_y[:, 0]
    loss = lossreg.create_loss("cb", base="bce", beta=0.99, class_counts=[20, 3], reduction="none")
    w = torch.tensor(_effective_weights([20, 3], 0.99), dtype=torch.float64)
    ref = w[y.long()] * F.binary_cross_entropy_with_logits(z, y, reduction="none")
    torch.testing.assert_close(loss(z, y), ref)


def test_class_balanced_softmax_base_rejects_multilabel_targets(data):
    *_, multi, multi_y, _ = data
    loss = lossreg.create_loss("class_balanced", class_counts=[3, 2, 1])
    with pytest.raises(ValueError, match="base='binary_focal'"):
        loss(multi, multi_y)


def test_class_balanced_at_beta_zero_is_the_base(data):
    logits, labels, *_ = data
    cb = lossreg.create_loss("cb", base="cross_entropy", beta=0.0, class_counts=COUNTS)
    ce = lossreg.create_loss("cross_entropy")
    torch.testing.assert_close(cb(logits, labels), ce(logits, labels))


# -- ldam, ldam_drw ---------------------------------------------------------------------------


def _loop_ldam(logits, labels, counts, max_m, s):
    inv = [n ** (-0.25) for n in counts]
    m = [v * max_m / max(inv) for v in inv]
    out = []
    for i in range(len(labels)):
        z = logits[i].numpy().copy()
        y = labels[i].item()
        z[y] -= m[y]
        out.append(_loop_ce(s * z, y))
    return np.array(out)


@pytest.mark.reference("ldam")
@pytest.mark.parametrize("s", [1.0, 30.0])
def test_ldam_matches_a_loop_of_the_official_formula(data, s):
    logits, labels, *_ = data
    logits = logits / 10 if s == 30.0 else logits  # cosine-like logits for s=30
    loss = lossreg.create_loss("ldam", s=s, class_counts=COUNTS, reduction="none")
    ref = _loop_ldam(logits, labels, COUNTS, 0.5, s)
    np.testing.assert_allclose(loss(logits, labels).numpy(), ref, rtol=1e-9)


@pytest.mark.reference("ldam_drw")
def test_ldam_drw_switches_to_torch_weighted_ce_at_the_drw_epoch(data):
    logits, labels, *_, weights = data
    loss = lossreg.create_loss("ldam_drw", s=1.0, class_counts=COUNTS)
    plain = lossreg.create_loss("ldam", s=1.0, class_counts=COUNTS)
    torch.testing.assert_close(loss(logits, labels), plain(logits, labels))
    loss.set_epoch(159, 200)
    torch.testing.assert_close(loss(logits, labels), plain(logits, labels))
    loss.set_epoch(160, 200)
    w = torch.tensor(_effective_weights(COUNTS, 0.9999), dtype=torch.float64)
    margined = torch.tensor(_loop_ldam(logits, labels, COUNTS, 0.5, 1.0))
    expected = (w[labels] * margined).sum() / w[labels].sum()
    torch.testing.assert_close(loss(logits, labels), expected)
    with_sw = (weights * w[labels] * margined).sum() / (weights * w[labels]).sum()
    torch.testing.assert_close(loss(logits, labels, sample_weight=weights), with_sw)


# -- vector_scaling, logit_adjusted, adaptive_logit_adjusted ----------------------------------


@pytest.mark.reference("vector_scaling")
def test_vector_scaling_matches_a_loop_of_the_reference(data):
    logits, labels, *_ = data
    gamma, tau = 0.3, 1.0
    loss = lossreg.create_loss("vs", class_counts=COUNTS, reduction="none")
    n_max, total = max(COUNTS), sum(COUNTS)
    ref = []
    for i in range(len(labels)):
        z = [
            logits[i, c].item() / (n_max / COUNTS[c]) ** gamma + tau * math.log(COUNTS[c] / total)
            for c in range(4)
        ]
        ref.append(_loop_ce(np.array(z), labels[i].item()))
    np.testing.assert_allclose(loss(logits, labels).numpy(), ref, rtol=1e-9)


def test_vector_scaling_at_gamma_zero_is_logit_adjusted(data):
    logits, labels, *_ = data
    priors = [n / sum(COUNTS) for n in COUNTS]
    vs = lossreg.create_loss("vector_scaling", gamma=0.0, tau=0.7, class_counts=COUNTS)
    la = lossreg.create_loss("logit_adjusted", tau=0.7, class_priors=priors)
    torch.testing.assert_close(vs(logits, labels), la(logits, labels))


@pytest.mark.reference("logit_adjusted")
def test_logit_adjusted_is_balanced_softmax_on_log_counts(data):
    logits, labels, *_ = data
    priors = [n / sum(COUNTS) for n in COUNTS]
    loss = lossreg.create_loss("balanced_softmax", class_priors=priors, reduction="none")
    shifted = logits + torch.log(torch.tensor(COUNTS, dtype=torch.float64))
    ref = F.cross_entropy(shifted, labels, reduction="none")
    torch.testing.assert_close(loss(logits, labels), ref)
    at_zero = lossreg.create_loss("la", tau=0.0, class_priors=priors, reduction="none")
    torch.testing.assert_close(
        at_zero(logits, labels), F.cross_entropy(logits, labels, reduction="none")
    )


@pytest.mark.reference("adaptive_logit_adjusted")
def test_adaptive_logit_adjusted_follows_the_validation_status(data):
    logits, labels, *_ = data
    priors = [n / sum(COUNTS) for n in COUNTS]
    loss = lossreg.create_loss("adaptive_logit_adjusted", class_priors=priors, reduction="none")
    la = lossreg.create_loss("logit_adjusted", class_priors=priors, reduction="none")
    torch.testing.assert_close(loss(logits, labels), la(logits, labels))
    proba = logits.softmax(dim=1)[:12]
    val_labels = labels[:12]
    loss.update_status(proba, val_labels)
    status = []
    for c in range(4):
        rows = [proba[i, c].item() for i in range(12) if val_labels[i].item() == c]
        status.append(sum(rows) / len(rows) if rows else priors[c])
    status = [max(v / max(status), 1e-6) for v in status]
    ref = [
        _loop_ce(logits[i].numpy() + np.log(status), labels[i].item()) for i in range(len(labels))
    ]
    np.testing.assert_allclose(loss(logits, labels).numpy(), ref, rtol=1e-9)


# -- ldam_multilabel --------------------------------------------------------------------------


@pytest.mark.reference("ldam_multilabel")
def test_ldam_multilabel_matches_bce_with_logits_on_margined_logits(data):
    *_, multi, multi_y, _ = data
    counts = [16, 0, 81]
    loss = lossreg.create_loss("ldam_multilabel", class_counts=counts, reduction="none")
    margin = torch.tensor([3.0 / 2.0, 3.0, 3.0 / 3.0], dtype=torch.float64)
    ref = F.binary_cross_entropy_with_logits(multi - multi_y * margin, multi_y, reduction="none")
    torch.testing.assert_close(loss(multi, multi_y), ref.mean(dim=1))


# -- gumbel_bce, probit_bce -------------------------------------------------------------------


@pytest.mark.reference("gumbel_bce")
def test_gumbel_bce_matches_probability_space_bce(data):
    *_, multi, multi_y, _ = data
    loss = lossreg.create_loss("gol", reduction="none")
    ref = []
    for i in range(multi.shape[0]):
        row = 0.0
        for c in range(3):
            p = math.exp(-math.exp(-multi[i, c].item()))
            y = multi_y[i, c].item()
            row -= y * math.log(p) + (1 - y) * math.log(1 - p)
        ref.append(row)
    np.testing.assert_allclose(loss(multi, multi_y).numpy(), ref, rtol=1e-9)


def test_gumbel_bce_is_stable_in_both_tails():
    z = torch.tensor([-1e3, -40.0, 17.9, 18.1, 40.0, 1e3], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    loss = lossreg.create_loss("gumbel_bce", reduction="none")
    values = loss(z, y)
    values.sum().backward()
    assert torch.isfinite(values).all() and torch.isfinite(z.grad).all()
    # Far right tail: -log(1 - p) ~ z (continuous across the switch at 18).
    assert values[4].item() == pytest.approx(40.0, rel=1e-12)
    assert values[2].item() == pytest.approx(values[3].item(), rel=0.02)
    link = lossreg.get_spec("gumbel_bce").link
    assert link(torch.tensor([0.0])).item() == pytest.approx(math.exp(-1))


@pytest.mark.reference("probit_bce")
def test_probit_bce_matches_scipy_log_ndtr(data):
    *_, multi, multi_y, _ = data
    loss = lossreg.create_loss("probit_bce", reduction="none")
    z, y = multi.numpy(), multi_y.numpy()
    ref = [
        -sum(y[i, c] * log_ndtr(z[i, c]) + (1 - y[i, c]) * log_ndtr(-z[i, c]) for c in range(3))
        for i in range(len(z))
    ]
    np.testing.assert_allclose(loss(multi, multi_y).numpy(), ref, rtol=1e-9)
    far = torch.tensor([-1e3, 1e3], dtype=torch.float64, requires_grad=True)
    loss(far, torch.tensor([1.0, 0.0], dtype=torch.float64)).sum().backward()
    assert torch.isfinite(far.grad).all()


# -- density_normalized_ce --------------------------------------------------------------------


def _loop_dnorm(logits, labels, mode, alpha=1.0, beta=1.0, gamma=1.0):
    fg = [i for i in range(len(labels)) if labels[i] != 0]
    bg = [i for i in range(len(labels)) if labels[i] == 0]
    total = 0.0
    for i in range(len(labels)):
        w = 1.0
        if i in fg and fg:
            w = alpha / len(fg)
        if i in bg:
            if mode == "dnorm" and fg:
                w = beta / len(fg)
            elif mode == "dnorm_fgbg":
                w = beta / len(bg)
        total += gamma * w * _loop_ce(logits[i].numpy(), int(labels[i]))
    return total


@pytest.mark.reference("density_normalized_ce")
@pytest.mark.parametrize("mode", ["dnorm", "dnorm_fgbg"])
def test_density_normalized_ce_matches_the_reference_weights(data, mode):
    logits, labels, *_ = data
    loss = lossreg.create_loss("dnorm", mode=mode, beta=0.5)
    ref = _loop_dnorm(logits, labels.tolist(), mode, beta=0.5)
    assert loss(logits, labels).item() == pytest.approx(ref, rel=1e-9)
    background_only = torch.zeros_like(labels)
    ref_bg = _loop_dnorm(logits, background_only.tolist(), mode, beta=0.5)
    assert loss(logits, background_only).item() == pytest.approx(ref_bg, rel=1e-9)


def test_density_normalized_ce_sample_weights_equal_row_repetition(data):
    logits, labels, *_ = data
    loss = lossreg.create_loss("density_normalized_ce")
    repeats = torch.tensor([1, 2] * 12)
    weighted = loss(logits, labels, sample_weight=repeats.double())
    repeated = loss(logits.repeat_interleave(repeats, 0), labels.repeat_interleave(repeats))
    torch.testing.assert_close(weighted, repeated)
    with pytest.raises(ValueError, match="batch-level"):
        lossreg.create_loss("density_normalized_ce", reduction="none")


# -- ride -------------------------------------------------------------------------------------


def _loop_ride(experts, labels, counts, s, div, drw):
    n, e_count, c_count = experts.shape
    inv = [v ** (-0.25) for v in counts]
    m = [v * 0.5 / max(inv) for v in inv]
    pri = [v / sum(counts) for v in counts]
    spread = [c_count * p * 0.05 + 1 - 0.05 for p in pri]
    temps = [v / max(spread) for v in spread] if drw else [1.0] * c_count
    w = _effective_weights(counts, 0.9999) if drw else [1.0] * c_count
    t_mean = sum(temps) / c_count
    mean_logits = experts.mean(axis=1)
    total = 0.0
    for e in range(e_count):
        num = den = kl = 0.0
        for i in range(n):
            y = int(labels[i])
            z = experts[i, e].copy()
            z[y] -= s * m[y]
            num += w[y] * _loop_ce(z, y)
            den += w[y]
            q = np.exp(mean_logits[i] / temps - logsumexp(mean_logits[i] / temps))
            log_p = experts[i, e] / temps - logsumexp(experts[i, e] / temps)
            kl += sum(q[c] * (math.log(q[c]) - log_p[c]) for c in range(c_count))
        total += num / den + div * t_mean**2 * kl / n
    return total


@pytest.mark.reference("ride")
@pytest.mark.parametrize("drw", [False, True])
def test_ride_matches_a_loop_of_the_reference(data, drw):
    _, labels, *_ = data
    gen = torch.Generator().manual_seed(3)
    experts = torch.randn(24, 3, 4, generator=gen, dtype=torch.float64)
    loss = lossreg.create_loss("ride", s=1.0, class_counts=COUNTS)
    if drw:
        loss.set_epoch(9, 10)
    ref = _loop_ride(experts.numpy(), labels.numpy(), COUNTS, 1.0, -0.2, drw)
    assert loss(experts.reshape(24, 12), labels).item() == pytest.approx(ref, rel=1e-9)
    assert loss(experts, labels).item() == pytest.approx(ref, rel=1e-9)


def test_ride_link_and_output_size():
    spec = lossreg.get_spec("ride")
    from lossreg.targets import output_size

    assert output_size(spec, "multiclass", n_classes=4, params={"num_experts": 2}) == 8
    loss = lossreg.create_loss("ride", num_experts=2, class_counts=COUNTS)
    out = torch.tensor([[1.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0]])
    proba = spec.link(out, loss)
    torch.testing.assert_close(proba, torch.tensor([[2.0, 0.0, 0.0, 0.0]]).softmax(dim=1))


# -- shared behaviour -------------------------------------------------------------------------

PER_SAMPLE = {
    "weighted_cross_entropy": {"class_counts": COUNTS},
    "class_balanced": {"class_counts": COUNTS},
    "ldam": {"class_counts": COUNTS, "s": 1.0},
    "ldam_drw": {"class_counts": COUNTS, "s": 1.0},
    "vector_scaling": {"class_counts": COUNTS},
    "logit_adjusted": {"class_priors": [n / sum(COUNTS) for n in COUNTS]},
    "adaptive_logit_adjusted": {"class_priors": [n / sum(COUNTS) for n in COUNTS]},
}


@pytest.mark.parametrize("name", sorted(PER_SAMPLE))
def test_multiclass_losses_keep_dtype_and_finite_gradients(name, data):
    logits, labels, *_, weights = data
    for dtype in (torch.float32, torch.float64):
        z = (logits.to(dtype) * 500).requires_grad_()
        loss = lossreg.create_loss(name, **PER_SAMPLE[name])
        value = loss(z, labels, sample_weight=weights.to(dtype))
        value.backward()
        assert value.dtype == dtype and torch.isfinite(value)
        assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name", sorted(PER_SAMPLE))
def test_sample_weights_are_honoured(name, data):
    logits, labels, *_, weights = data
    loss = lossreg.create_loss(name, reduction="none", **PER_SAMPLE[name])
    mean = lossreg.create_loss(name, **PER_SAMPLE[name])
    unweighted = loss(logits, labels)
    torch.testing.assert_close(loss(logits, labels, sample_weight=weights), weights * unweighted)
    doubled = mean(logits, labels, sample_weight=torch.ones(24, dtype=torch.float64) * 2)
    torch.testing.assert_close(doubled, mean(logits, labels))


def test_margin_losses_predict_with_the_raw_logits():
    for name in ("ldam", "ldam_drw", "vector_scaling", "logit_adjusted"):
        assert lossreg.get_spec(name).link == "softmax"
    assert lossreg.get_spec("ldam_multilabel").link == "sigmoid"
