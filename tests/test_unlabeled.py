"""Losses on unlabeled rows (-1 labels) against scipy, torch and float64 loop references."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import entropy as scipy_entropy

import lossreg
from lossreg import InvalidReductionError

C = 4


@pytest.fixture(scope="module")
def registry():
    return lossreg.Registry(entry_points=False)


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(21)
    logits = torch.randn(24, C, generator=gen, dtype=torch.float64) * 2
    labels = torch.randint(0, C, (24,), generator=gen)
    labels[torch.rand(24, generator=gen) < 0.5] = -1
    weights = torch.rand(24, generator=gen, dtype=torch.float64)
    return logits, labels, weights


def _softmax(row):
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    return [e / sum(exps) for e in exps]


def _mean_probs(logits, weights):
    rows = [_softmax(r) for r in logits.tolist()]
    w = weights.tolist()
    return [sum(wi * r[c] for wi, r in zip(w, rows)) / sum(w) for c in range(len(rows[0]))]


@pytest.mark.reference("entropy_min")
def test_entropy_min_is_scipy_entropy_and_ignores_labels(registry, data):
    logits, labels, weights = data
    probs = logits.softmax(dim=1).numpy()
    loss = registry.create_loss("entropy_min", reduction="none")
    np.testing.assert_allclose(loss(logits, labels).numpy(), scipy_entropy(probs, axis=1))
    torch.testing.assert_close(loss(logits, labels), loss(logits, torch.full_like(labels, -1)))
    w = [0.5, 2.0, 1.0, 0.0]
    weighted = registry.create_loss("entropy_min", class_weights=w, reduction="none")
    expected = [-sum(w[c] * p[c] * math.log(p[c]) for c in range(C)) for p in probs.tolist()]
    np.testing.assert_allclose(weighted(logits, labels).numpy(), expected, rtol=1e-10)
    mean = registry.create_loss("entropy_min")
    ref = float(np.dot(scipy_entropy(probs, axis=1), weights.numpy()) / weights.sum().item())
    assert mean(logits, labels, sample_weight=weights).item() == pytest.approx(ref, rel=1e-10)


@pytest.mark.reference("entropy_prior_kl")
def test_entropy_prior_kl_matches_loop(registry, data):
    logits, labels, weights = data
    priors = [0.1, 0.2, 0.3, 0.4]
    w = [1.0, 2.0, 0.5, 1.0]
    rows = [_softmax(r) for r in logits.tolist()]
    ent = [-sum(w[c] * p[c] * math.log(p[c]) for c in range(C)) for p in rows]
    ws = weights.tolist()
    ent_mean = sum(e * wi for e, wi in zip(ent, ws)) / sum(ws)
    pbar = _mean_probs(logits, weights)
    kl = sum(pbar[c] * (math.log(pbar[c]) - math.log(priors[c] + 1e-10)) for c in range(C))
    loss = registry.create_loss(
        "entropy_prior_kl", lambda_se=0.7, lambda_prior=2.0, class_weights=w, class_priors=priors
    )
    value = loss(logits, labels, sample_weight=weights).item()
    assert value == pytest.approx(0.7 * ent_mean + 2.0 * kl, rel=1e-10)
    total = registry.create_loss(
        "entropy_prior_kl",
        lambda_se=0.7,
        lambda_prior=2.0,
        class_weights=w,
        class_priors=priors,
        reduction="sum",
    )
    summed = total(logits, labels, sample_weight=weights).item()
    assert summed == pytest.approx(value * sum(ws), rel=1e-10)


def test_entropy_prior_kl_prior_overrides_class_priors_and_weights_are_frequencies(registry, data):
    logits, labels, _ = data
    given = registry.create_loss(
        "entropy_prior_kl", prior=[0.25] * 4, class_priors=[0.7, 0.1, 0.1, 0.1]
    )
    uniform = registry.create_loss("entropy_prior_kl", class_priors=[0.25] * 4)
    torch.testing.assert_close(given(logits, labels), uniform(logits, labels))
    weight = torch.ones(24, dtype=torch.float64)
    weight[:5] = 2.0
    doubled = torch.cat([logits, logits[:5]])
    torch.testing.assert_close(
        uniform(logits, labels, sample_weight=weight),
        uniform(doubled, torch.cat([labels, labels[:5]])),
    )
    with pytest.raises(InvalidReductionError):
        registry.create_loss("entropy_prior_kl", class_priors=[0.5, 0.5], reduction="none")


@pytest.mark.reference("marginal_entropy")
def test_marginal_entropy_is_torch_ce_on_labelled_rows_plus_marginal_term(registry, data):
    logits, labels, _ = data
    labeled = labels >= 0
    ce = F.cross_entropy(logits[labeled], labels[labeled])
    pbar = _mean_probs(logits, torch.ones(24))
    neg_h = sum(p * math.log(p) for p in pbar)
    loss = registry.create_loss("marginal_entropy")
    assert loss(logits, labels).item() == pytest.approx(ce.item() + 0.3 * neg_h, rel=1e-10)
    # a batch without labels keeps only the marginal term (no NaN from an empty CE)
    unlabeled = registry.create_loss("marginal_entropy", lam=2.0)
    value = unlabeled(logits, torch.full_like(labels, -1)).item()
    assert value == pytest.approx(2.0 * neg_h, rel=1e-10)


def test_marginal_entropy_weights_are_frequencies(registry, data):
    logits, labels, _ = data
    loss = registry.create_loss("marginal_entropy")
    weight = torch.ones(24, dtype=torch.float64)
    weight[3:9] = 3.0
    tripled = torch.cat([logits, logits[3:9], logits[3:9]])
    tripled_labels = torch.cat([labels, labels[3:9], labels[3:9]])
    torch.testing.assert_close(
        loss(logits, labels, sample_weight=weight), loss(tripled, tripled_labels)
    )


@pytest.mark.reference("self_labeled_margin")
@pytest.mark.parametrize("phi", ["logistic", "hinge"])
def test_self_labeled_margin_matches_loop(registry, phi):
    gen = torch.Generator().manual_seed(4)
    f = torch.randn(30, generator=gen, dtype=torch.float64) * 2
    y = torch.randint(-1, 2, (30,), generator=gen)

    def phi_fn(m):
        return math.log1p(math.exp(-m)) if phi == "logistic" else max(0.0, 1 - m)

    expected = [
        0.7 * phi_fn(abs(fi)) if yi == -1 else phi_fn((2 * yi - 1) * fi)
        for fi, yi in zip(f.tolist(), y.tolist())
    ]
    loss = registry.create_loss("self_labeled_margin", lam=0.7, phi=phi, reduction="none")
    np.testing.assert_allclose(loss(f[:, None], y).numpy(), expected, rtol=1e-12)


@pytest.mark.reference("self_labeled_margin")
def test_self_labeled_margin_on_labelled_rows_is_bce(registry):
    f = torch.tensor([1e3, -1e3, 0.3, -2.0], requires_grad=True)
    y = torch.tensor([1, 0, 0, 1])
    ours = registry.create_loss("self_labeled_margin")(f, y)
    ours.backward()
    torch.testing.assert_close(ours, F.binary_cross_entropy_with_logits(f, y.float()))
    assert torch.isfinite(f.grad).all()
    with pytest.raises(ValueError, match="binary labels"):
        registry.create_loss("self_labeled_margin")(f, torch.tensor([2, 0, 1, 1]))


def _depict_loop(logits, weights):
    rows = [_softmax(r) for r in logits.tolist()]
    freq = [sum(w * r[k] for w, r in zip(weights, rows)) for k in range(len(rows[0]))]
    out = []
    for p in rows:
        raw = [p[k] / math.sqrt(freq[k]) for k in range(len(p))]
        q = [v / sum(raw) for v in raw]
        out.append(sum(qk * (math.log(qk) - math.log(pk)) for qk, pk in zip(q, p)))
    return out


@pytest.mark.reference("depict_cluster_kl")
def test_depict_matches_loop_and_detaches_its_target(registry, data):
    logits, labels, weights = data
    loss = registry.create_loss("depict_cluster_kl", reduction="none")
    np.testing.assert_allclose(
        loss(logits, labels).numpy(), _depict_loop(logits, [1.0] * 24), rtol=1e-10
    )
    weighted = registry.create_loss("depict_cluster_kl")
    per_row = _depict_loop(logits, weights.tolist())
    ref = float(np.dot(per_row, weights.numpy()) / weights.sum().item())
    assert weighted(logits, labels, sample_weight=weights).item() == pytest.approx(ref, rel=1e-10)
    # q is a constant: the gradient is that of a soft-target cross-entropy against q
    z = logits.clone().requires_grad_(True)
    loss(z, labels).sum().backward()
    q = loss.auxiliary_target(logits)
    z2 = logits.clone().requires_grad_(True)
    F.cross_entropy(z2, q, reduction="sum").backward()
    torch.testing.assert_close(z.grad, z2.grad)


def _eata_loop(logits, e0, d_margin, state):
    kept, terms = [], []
    for row in logits.tolist():
        p = _softmax(row)
        h = -sum(v * math.log(v) for v in p)
        if h >= e0:
            continue
        if state is not None:
            cos = sum(a * b for a, b in zip(state, p)) / (
                math.sqrt(sum(a * a for a in state)) * math.sqrt(sum(b * b for b in p))
            )
            if abs(cos) >= d_margin:
                continue
        kept.append(p)
        terms.append(math.exp(-(h - e0)) * h)
    mean_p = [sum(p[c] for p in kept) / len(kept) for c in range(len(logits[0]))]
    new = mean_p if state is None else [0.9 * s + 0.1 * m for s, m in zip(state, mean_p)]
    return sum(terms) / len(terms), new


@pytest.mark.reference("eata_entropy")
def test_eata_matches_reference_loop_over_two_batches(registry):
    gen = torch.Generator().manual_seed(8)
    first = torch.randn(40, 6, generator=gen, dtype=torch.float64) * 4
    second = torch.randn(40, 6, generator=gen, dtype=torch.float64) * 4
    loss = registry.create_loss("eata_entropy", d_margin=0.7, n_classes=6)
    e0 = 0.4 * math.log(6)
    ref1, state = _eata_loop(first, e0, 0.7, None)
    assert loss(first, torch.full((40,), -1)).item() == pytest.approx(ref1, rel=1e-10)
    np.testing.assert_allclose(loss.model_probs_.numpy(), state, rtol=1e-6)
    ref2, state2 = _eata_loop(second, e0, 0.7, loss.model_probs_.double().tolist())
    assert loss(second, torch.full((40,), -1)).item() == pytest.approx(ref2, rel=1e-6)
    np.testing.assert_allclose(loss.model_probs_.numpy(), state2, rtol=1e-6)


def test_eata_state_eval_mode_and_round_trip(registry):
    loss = registry.create_loss("eata_entropy", n_classes=3)
    uncertain = torch.zeros(5, 3)
    assert loss(uncertain, torch.full((5,), -1)).item() == 0.0  # nothing kept: 0, not NaN
    assert not bool(loss.has_state_)
    confident = torch.tensor([[6.0, 0.0, 0.0], [0.0, 7.0, 0.0]])
    loss.eval()
    loss(confident, torch.full((2,), -1))
    assert not bool(loss.has_state_)
    loss.train()
    loss(confident, torch.full((2,), -1))
    assert bool(loss.has_state_)
    clone = pickle.loads(pickle.dumps(loss))
    torch.testing.assert_close(clone.model_probs_, loss.model_probs_)
    fresh = registry.create_loss("eata_entropy", n_classes=3)
    fresh.load_state_dict(loss.state_dict())
    assert bool(fresh.has_state_)
    loss.reset_state()
    assert not bool(loss.has_state_)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("entropy_min", {}),
        ("entropy_prior_kl", {"class_priors": [0.5, 0.3, 0.2]}),
        ("marginal_entropy", {}),
        ("depict_cluster_kl", {}),
        ("eata_entropy", {"n_classes": 3, "e_margin_factor": 2.0}),
        ("local_entropy_reg", {"n_classes": 2, "n_novel": 1}),
    ],
)
def test_finite_gradients_at_extreme_logits_and_dtype(registry, name, params):
    logits = torch.tensor([[1e3, -1e3, 0.0], [-1e3, 0.0, 1e3], [0.0, 0.0, 0.0]], requires_grad=True)
    value = registry.create_loss(name, **params)(logits, torch.tensor([0, -1, 2]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    assert value.dtype == torch.float32


@pytest.mark.reference("pbn_ce_recon")
def test_pbn_matches_torch_ce_and_mse_on_known_rows(registry):
    gen = torch.Generator().manual_seed(17)
    x = torch.randn(16, 5, generator=gen, dtype=torch.float64)
    out = torch.randn(16, 3 + 5, generator=gen, dtype=torch.float64)
    y = torch.randint(-1, 3, (16,), generator=gen)
    known = y >= 0
    ce = torch.nn.CrossEntropyLoss()(out[known, :3], y[known])
    mse = torch.nn.MSELoss(reduction="sum")(out[:, 3:], x) / 16
    loss = registry.create_loss("pbn_ce_recon", w=0.3, n_classes=3)
    assert loss(out, y, features=x).item() == pytest.approx(
        (0.3 * ce + 0.7 * mse).item(), rel=1e-12
    )
    # no known row in the batch: the reconstruction term alone, not NaN
    alone = loss(out, torch.full((16,), -1), features=x).item()
    assert alone == pytest.approx(0.7 * mse.item(), rel=1e-12)


def test_pbn_link_output_size_and_errors(registry):
    spec = registry.get_spec("pbn_ce_recon")
    assert spec.output_size({"n_classes": 3, "n_features": 7, "w": 0.5}) == 10
    with pytest.raises(KeyError, match="n_features"):
        spec.output_size({"n_classes": 3, "w": 0.5})
    loss = registry.create_loss("pbn_ce_recon", n_classes=2)
    out = torch.tensor([[0.0, math.log(3.0), 9.0, 9.0]])
    torch.testing.assert_close(spec.link(out, loss), torch.tensor([[0.25, 0.75]]))
    with pytest.raises(ValueError, match="features=X"):
        loss(out, torch.tensor([0]))
    with pytest.raises(ValueError, match="shape"):
        loss(out, torch.tensor([0]), features=torch.zeros(1, 3))


def _lego_loop(logits, labels, qhat, n_known, thr=0.7, ts=0.1, t=0.05, tau=0.4):
    out = []
    for row, y in zip(logits.tolist(), labels.tolist()):
        select = _softmax([v / ts for v in row])
        top = max(range(len(row)), key=lambda c: select[c])
        if y != -1 or select[top] < thr or top >= n_known:
            out.append(0.0)
            continue
        soft = _softmax([v / t for v in row])
        shifted = [v / t + tau * math.log(q) for v, q in zip(row, qhat)]
        log_pred = [math.log(p) for p in _softmax(shifted)]
        out.append(-sum(s * lp for s, lp in zip(soft, log_pred)))
    return out


@pytest.mark.reference("local_entropy_reg")
def test_local_entropy_reg_matches_legogcd_loop_over_two_batches(registry):
    gen = torch.Generator().manual_seed(30)
    first = torch.randn(30, 5, generator=gen, dtype=torch.float64) * 0.3
    second = torch.randn(30, 5, generator=gen, dtype=torch.float64) * 0.3
    labels = torch.randint(-1, 3, (30,), generator=gen)
    loss = registry.create_loss(
        "local_entropy_reg", n_classes=3, n_novel=2, momentum=0.9, reduction="none"
    )
    qhat = [0.2] * 5
    expected = _lego_loop(first, labels, qhat, 3)
    assert sum(v > 0 for v in expected) >= 3  # the selection is exercised
    np.testing.assert_allclose(loss(first, labels).numpy(), expected, rtol=1e-9, atol=1e-12)
    mean_p = first.softmax(dim=1).mean(dim=0).tolist()
    qhat = [0.9 * q + 0.1 * m for q, m in zip(qhat, mean_p)]
    np.testing.assert_allclose(loss.qhat_.numpy(), qhat, rtol=1e-6)
    expected2 = _lego_loop(second, labels, loss.qhat_.double().tolist(), 3)
    np.testing.assert_allclose(loss(second, labels).numpy(), expected2, rtol=1e-6, atol=1e-9)


def test_local_entropy_reg_state_and_output_size(registry):
    spec = registry.get_spec("local_entropy_reg")
    assert spec.output_size({**spec.defaults, "n_classes": 3, "n_novel": 2}) == 5
    loss = registry.create_loss("local_entropy_reg", n_classes=2)
    loss.eval()
    loss(torch.tensor([[3.0, 0.0], [0.0, 2.0]]), torch.tensor([-1, -1]))
    torch.testing.assert_close(loss.qhat_, torch.tensor([0.5, 0.5]))
    loss.train()
    loss(torch.tensor([[3.0, 0.0], [0.0, 2.0]]), torch.tensor([-1, -1]))
    assert not torch.equal(loss.qhat_, torch.tensor([0.5, 0.5]))
    fresh = registry.create_loss("local_entropy_reg", n_classes=2)
    fresh.load_state_dict(loss.state_dict())
    torch.testing.assert_close(fresh.qhat_, loss.qhat_)
    loss.reset_state()
    torch.testing.assert_close(loss.qhat_, torch.tensor([0.5, 0.5]))


_CASES = {
    "entropy_min": {},
    "entropy_prior_kl": {"class_priors": [0.25, 0.25, 0.25, 0.25]},
    "marginal_entropy": {},
    "self_labeled_margin": {},
    "depict_cluster_kl": {},
    "eata_entropy": {"n_classes": 4, "e_margin_factor": 1.0, "d_margin": 1.0},
    "pbn_ce_recon": {"n_classes": 4},
    "local_entropy_reg": {"n_classes": 4, "threshold": 0.3},
}


def test_every_registered_loss_of_the_family_is_checked():
    import lossreg.plugins.unlabeled as plugin

    # vat takes two views (clean and perturbed rows): tests/test_vat.py checks it.
    assert {spec.name for spec in plugin.register_losses()} == set(_CASES) | {"vat"}
    assert set(plugin.NOT_REGISTERED) == {"dual_view_kl", "cafa"}


@pytest.mark.parametrize("name", sorted(_CASES))
def test_family_dtype_pickle_permutation_and_weights(registry, name):
    import pickle

    gen = torch.Generator().manual_seed(0)
    if name == "self_labeled_margin":
        out = torch.randn(12, generator=gen, dtype=torch.float64)
        target = torch.randint(-1, 2, (12,), generator=gen)
    else:
        width = 4 + (3 if name == "pbn_ce_recon" else 0)
        out = torch.randn(12, width, generator=gen, dtype=torch.float64)
        target = torch.randint(-1, 4, (12,), generator=gen)
    extras = {"features": torch.randn(12, 3, generator=gen, dtype=torch.float64)}
    if name != "pbn_ce_recon":
        extras = {}

    def fresh():
        loss = registry.create_loss(name, **_CASES[name])
        return loss.eval() if name in ("eata_entropy", "local_entropy_reg") else loss

    value = fresh()(out, target, **extras)
    assert value.dtype == torch.float64 and torch.isfinite(value)
    as_float = {k: v.float() for k, v in extras.items()}
    assert fresh()(out.float(), target, **as_float).dtype == torch.float32
    loss = fresh()
    clone = pickle.loads(pickle.dumps(loss))
    assert clone(out, target, **extras).item() == pytest.approx(value.item(), rel=1e-12)
    perm = torch.randperm(12, generator=gen)
    permuted = {k: v[perm] for k, v in extras.items()}
    assert fresh()(out[perm], target[perm], **permuted).item() == pytest.approx(
        value.item(), rel=1e-10
    )
    # an integer sample weight counts as that many copies of the row
    weight = torch.ones(12, dtype=torch.float64)
    weight[:4] = 2.0
    copies = torch.cat([torch.arange(12), torch.arange(4)])
    weighted = fresh()(out, target, sample_weight=weight, **extras)
    repeated = fresh()(out[copies], target[copies], **{k: v[copies] for k, v in extras.items()})
    assert weighted.item() == pytest.approx(repeated.item(), rel=1e-10)
