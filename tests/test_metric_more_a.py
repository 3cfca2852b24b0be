"""Metric losses of issue 8 part A against float64 loops written from the papers' formulas.

References are explicit Python loops over rows (and pairs / triplets) in float64, written
independently of the vectorised modules; PML's ContrastiveLoss checks Metrix's clean term and
scipy's linear_sum_assignment checks the sorted matching of the sliced Wasserstein distance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pytorch_metric_learning import distances, losses, reducers
from scipy.optimize import linear_sum_assignment

import lossreg
from lossreg.plugins.metric.cwcl import cwcl_directions
from lossreg.plugins.metric.sliced import sliced_wasserstein

DIM = 6


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread avoids thread overhead on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _randn(*shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / math.sqrt(sum(float(c) * float(c) for c in v))


def _cos(a, b):
    return float(np.dot(_unit(a), _unit(b)))


def _logsumexp(values):
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


# --- hard_info_nce --------------------------------------------------------------------------


def _hard_nce_loop(x, alpha, tau):
    x = x.numpy()
    two_n = x.shape[0]
    n = two_n // 2
    per_anchor = []
    for i in range(two_n):
        partner = (i + n) % two_n
        negs = sorted(
            (_cos(x[i], x[k]) for k in range(two_n) if k not in (i, partner)), reverse=True
        )
        kept = negs[: min(len(negs), max(1, math.ceil(alpha * len(negs))))]
        pos = _cos(x[i], x[partner]) / tau
        per_anchor.append(_logsumexp([pos] + [s / tau for s in kept]) - pos)
    return torch.tensor(
        [(per_anchor[i] + per_anchor[i + n]) / 2 for i in range(n)], dtype=torch.float64
    )


@pytest.mark.reference("hard_info_nce")
@pytest.mark.parametrize(("alpha", "tau"), [(0.0819, 0.5), (0.3, 0.2), (1.0, 1.0)])
def test_hard_info_nce_matches_loop(alpha, tau):
    x = _randn(20, DIM)
    loss = lossreg.create_loss("hard_info_nce", alpha=alpha, temperature=tau, reduction="none")
    torch.testing.assert_close(loss(x, None), _hard_nce_loop(x, alpha, tau), rtol=1e-9, atol=1e-10)


def test_hard_info_nce_alpha_one_is_info_nce():
    x = _randn(16, DIM, seed=1)
    hard = lossreg.create_loss("hard_info_nce", alpha=1.0, temperature=0.3, reduction="none")
    plain = lossreg.create_loss("info_nce", temperature=0.3, reduction="none")
    torch.testing.assert_close(hard(x, None), plain(x, None), rtol=1e-12, atol=1e-12)


def test_hard_info_nce_keeps_fewer_negatives_so_loss_is_lower():
    x = _randn(16, DIM, seed=2)
    hard = lossreg.create_loss("hard_info_nce", alpha=0.1, reduction="none")(x, None)
    plain = lossreg.create_loss("info_nce", reduction="none")(x, None)
    assert bool((hard < plain).all())


def test_hard_info_nce_weighted_mean():
    x = _randn(12, DIM, seed=3)
    w = torch.tensor([1.0, 0.0, 2.0, 3.0, 0.5, 1.0], dtype=torch.float64)
    per_row = lossreg.create_loss("hard_info_nce", reduction="none")(x, None)
    mean = lossreg.create_loss("hard_info_nce")(x, None, sample_weight=w)
    assert mean.item() == pytest.approx(float((per_row * w).sum() / w.sum()), rel=1e-12)


# --- hardness_weighted_info_nce -------------------------------------------------------------


def _hardness_loop(x, alpha, tau):
    x = x.numpy()
    n = x.shape[0] // 2
    q, k = x[:n], x[n:]
    out = []
    for i in range(n):
        terms = []
        for a, b in ((q, k), (k, q)):
            pos = _cos(a[i], b[i]) / tau
            denominator = math.exp(pos)
            for j in range(n):
                if j != i:
                    c = _cos(a[i], b[j])
                    denominator += math.exp(alpha * c) * math.exp(c / tau)
            terms.append(-(pos - math.log(denominator)))
        out.append(sum(terms) / 2)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.reference("hardness_weighted_info_nce")
@pytest.mark.parametrize(("alpha", "tau"), [(0.5, 0.5), (9.0, 0.3), (0.0, 1.0)])
def test_hardness_weighted_matches_loop(alpha, tau):
    x = _randn(16, DIM, seed=4)
    loss = lossreg.create_loss(
        "hardness_weighted_info_nce", alpha=alpha, temperature=tau, reduction="none"
    )
    torch.testing.assert_close(loss(x, None), _hardness_loop(x, alpha, tau), rtol=1e-9, atol=0)


def test_hardness_weighted_alpha_zero_is_clip_with_fixed_temperature():
    x = _randn(16, DIM, seed=5)
    ours = lossreg.create_loss(
        "hardness_weighted_info_nce", alpha=0.0, temperature=0.1, reduction="none"
    )
    clip = lossreg.create_loss(
        "clip_info_nce", temperature=0.1, learn_temperature=False, reduction="none"
    )
    # clip_info_nce keeps its logit scale log(1/tau) in a float32 buffer: float32 precision.
    torch.testing.assert_close(ours(x, None), clip(x, None).detach(), rtol=1e-6, atol=0)


def test_hardness_weights_carry_no_gradient():
    # The weights exp(alpha * sg(cos)) are detached, so the autograd gradient leaves out their
    # derivative and differs from the finite-difference derivative of the loss value.
    x = _randn(8, DIM, seed=6).requires_grad_()
    loss = lossreg.create_loss("hardness_weighted_info_nce", alpha=3.0, temperature=0.5)
    value = loss(x, None)
    (grad,) = torch.autograd.grad(value, x)
    eps = 1e-6
    direction = _randn(8, DIM, seed=7)
    x0 = x.detach()
    numeric = (loss(x0 + eps * direction, None) - loss(x0 - eps * direction, None)) / (2 * eps)
    assert abs(float((grad * direction).sum()) - float(numeric)) > 1e-6


# --- cwcl -----------------------------------------------------------------------------------


def _cwcl_loop(p, q, tau):
    p, q = p.numpy(), q.numpy()
    n = p.shape[0]
    out = []
    for i in range(n):
        w = [(_cos(q[i], q[j]) + 1) / 2 for j in range(n)]
        total = 0.0
        for logits_fn in (lambda a, b: _cos(p[a], q[b]), lambda a, b: _cos(q[a], p[b])):
            row = [logits_fn(i, j) / tau for j in range(n)]
            lse = _logsumexp(row)
            total += -sum(w[j] * (row[j] - lse) for j in range(n)) / sum(w)
        out.append(total)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.reference("cwcl")
@pytest.mark.parametrize("tau", [0.07, 0.5])
def test_cwcl_matches_loop(tau):
    p, q = _randn(10, DIM, seed=8), _randn(10, DIM, seed=9)
    loss = lossreg.create_loss("cwcl", temperature=tau, reduction="none")
    torch.testing.assert_close(
        loss(p, None, teacher_logits=q), _cwcl_loop(p, q, tau), rtol=1e-9, atol=1e-10
    )


def test_cwcl_identity_weights_are_twice_clip():
    p, q = _randn(10, DIM, seed=10), _randn(10, DIM, seed=11)
    pn, qn = torch.nn.functional.normalize(p, dim=1), torch.nn.functional.normalize(q, dim=1)
    a, b = cwcl_directions(pn, qn, torch.eye(10, dtype=torch.float64), 0.2)
    clip = lossreg.create_loss(
        "clip_info_nce", temperature=0.2, learn_temperature=False, reduction="none"
    )
    torch.testing.assert_close(a + b, 2 * clip(torch.cat([p, q]), None).detach())


def test_cwcl_teacher_gets_no_gradient_and_weighted_mean():
    p = _randn(6, DIM, seed=12).requires_grad_()
    q = _randn(6, DIM, seed=13).requires_grad_()
    w = torch.tensor([1.0, 2.0, 0.0, 1.0, 1.0, 3.0], dtype=torch.float64)
    loss = lossreg.create_loss("cwcl")
    per_row = lossreg.create_loss("cwcl", reduction="none")(p, None, teacher_logits=q).detach()
    value = loss(p, None, teacher_logits=q, sample_weight=w)
    assert value.detach().item() == pytest.approx(float((per_row * w).sum() / w.sum()), rel=1e-12)
    value.backward()
    assert q.grad is None and p.grad is not None


def test_cwcl_rejects_teacher_of_other_width():
    with pytest.raises(ValueError, match="n_components"):
        lossreg.create_loss("cwcl")(_randn(4, DIM), None, teacher_logits=_randn(4, 3))


def test_cwcl_trains_an_embedder_with_frozen_teacher_embeddings():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5)).astype(np.float32)
    teacher = X @ rng.normal(size=(5, 4))  # a frozen "other view" of width 4
    est = lossreg.LossEmbedder(
        loss="cwcl", n_components=4, max_iter=3, batch_size=32, random_state=0
    )
    est.fit(X, rng.integers(0, 2, size=64), teacher_logits=teacher.astype(np.float32))
    assert est.transform(X).shape == (64, 4)


# --- loo_knn --------------------------------------------------------------------------------


def _look_loop(x, y, k, tau):
    x, y = x.numpy(), y.numpy()
    n = x.shape[0]
    out = []
    for i in range(n):
        sims = sorted(((_cos(x[i], x[j]), j) for j in range(n) if j != i), reverse=True)
        neigh = sims[: min(k, n - 1)]
        same = [s / tau for s, j in neigh if y[j] == y[i]]
        if not same:
            out.append(0.0)
            continue
        out.append(_logsumexp([s / tau for s, _ in neigh]) - _logsumexp(same))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.reference("loo_knn", "look")
@pytest.mark.parametrize(("k", "tau"), [(10, 0.07), (3, 0.5), (50, 0.2)])
def test_loo_knn_matches_loop(k, tau):
    x = _randn(18, DIM, seed=14)
    y = torch.arange(18) % 3
    for name in ("loo_knn", "look"):
        loss = lossreg.create_loss(name, k=k, temperature=tau, reduction="none")
        torch.testing.assert_close(loss(x, y), _look_loop(x, y, k, tau), rtol=1e-9, atol=1e-10)


def test_loo_knn_row_without_same_label_neighbour_is_zero_with_finite_gradient():
    x = _randn(9, DIM, seed=15).requires_grad_()
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 5])  # row 8 has no same-label row
    per_row = lossreg.create_loss("loo_knn", k=2, reduction="none")(x, y)
    assert per_row[8].item() == 0.0
    per_row.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_loo_knn_weighted_mean_and_all_neighbours_supcon_like():
    x = _randn(12, DIM, seed=16)
    y = torch.arange(12) % 4
    w = torch.rand(12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    per_row = lossreg.create_loss("loo_knn", reduction="none")(x, y)
    value = lossreg.create_loss("loo_knn")(x, y, sample_weight=w)
    assert value.item() == pytest.approx(float((per_row * w).sum() / w.sum()), rel=1e-12)


# --- csd_contrastive ------------------------------------------------------------------------


def _softplus(v):
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


def _csd_loop(x, y, a, b, beta, normalize, w=None):
    x, y = x.numpy(), y.numpy()
    n, two_d = x.shape
    d = two_d // 2
    w = np.ones(n) if w is None else w.numpy()
    mus = [(_unit(x[i, :d]) if normalize else x[i, :d]) for i in range(n)]
    variances = [np.exp(x[i, d:]) for i in range(n)]
    total, weight = 0.0, 0.0
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            dist = sum((mus[i][c] - mus[j][c]) ** 2 for c in range(d))
            dist += sum(variances[i][c] + variances[j][c] for c in range(d))
            logit = -a * dist + b
            match = 1.0 if y[i] == y[j] else 0.0
            bce = match * _softplus(-logit) + (1 - match) * _softplus(logit)
            total += w[i] * bce
            weight += w[i]
    kl, kl_weight = 0.0, 0.0
    for i in range(n):
        row = [-0.5 * (1 + x[i, d + c] - mus[i][c] ** 2 - math.exp(x[i, d + c])) for c in range(d)]
        kl += w[i] * sum(row) / d
        kl_weight += w[i]
    return total / weight + beta * kl / kl_weight


@pytest.mark.reference("csd_contrastive")
@pytest.mark.parametrize(("beta", "normalize"), [(0.0001, True), (0.5, False)])
def test_csd_matches_loop(beta, normalize):
    x = _randn(10, 2 * 3, seed=17) * 0.5
    y = torch.arange(10) % 3
    loss = lossreg.create_loss("csd_contrastive", vib_beta=beta, normalize=normalize)
    ref = _csd_loop(x, y, 5.0, 5.0, beta, normalize)
    assert loss(x, y).item() == pytest.approx(ref, rel=1e-9)
    w = torch.rand(10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref_w = _csd_loop(x, y, 5.0, 5.0, beta, normalize, w)
    assert loss(x, y, sample_weight=w).item() == pytest.approx(ref_w, rel=1e-9)


def test_csd_distance_is_expected_squared_distance_of_samples():
    # E||z1 - z2||^2 for independent Gaussians: the closed form the loss uses.
    gen = torch.Generator().manual_seed(3)
    mu1, mu2 = torch.tensor([0.3, -0.2]), torch.tensor([-0.1, 0.4])
    var1, var2 = torch.tensor([0.2, 0.05]), torch.tensor([0.1, 0.3])
    z1 = mu1 + var1.sqrt() * torch.randn(200000, 2, generator=gen)
    z2 = mu2 + var2.sqrt() * torch.randn(200000, 2, generator=gen)
    sampled = (z1 - z2).square().sum(1).mean().item()
    closed = ((mu1 - mu2).square().sum() + (var1 + var2).sum()).item()
    assert sampled == pytest.approx(closed, rel=1e-2)
    loss = lossreg.create_loss("csd_contrastive", vib_beta=0.0, normalize=False)
    x = torch.stack([torch.cat([mu1, var1.log()]), torch.cat([mu2, var2.log()])])
    # Two rows of different labels: BCE = softplus(-a d + b) for both ordered pairs.
    value = loss(x.double(), torch.tensor([0, 1])).item()
    assert value == pytest.approx(_softplus(-5.0 * closed + 5.0), rel=1e-6)


def test_csd_width_is_even_and_parameters_learn():
    spec = lossreg.get_spec("csd_contrastive")
    assert spec.output_size({"n_outputs": 5}) == 6
    assert spec.output_size({"n_outputs": 6}) == 6
    loss = lossreg.create_loss("csd_contrastive")
    loss(_randn(8, 4, seed=18).float(), torch.arange(8) % 2).backward()
    assert loss.negative_scale.grad is not None and loss.shift.grad is not None


# --- metrix_contrastive ---------------------------------------------------------------------


def _d(u, v):
    return float(np.linalg.norm(_unit(u) - _unit(v)))


def _avg_nonzero(pairs):
    active = [(t, w) for t, w in pairs if t > 0]
    return sum(t * w for t, w in active) / sum(w for _, w in active) if active else 0.0


def _metrix_loop(x, y, mode, lam, w=None, margin=0.5, weights=(0.4, 0.3)):
    x, y = x.numpy(), y.numpy()
    n = x.shape[0]
    w = np.ones(n) if w is None else w.numpy()
    pos_terms, neg_terms = [], []
    for a in range(n):
        for b in range(n):
            if a == b:
                continue
            if y[a] == y[b]:
                pos_terms.append((_d(x[a], x[b]), w[a]))
            else:
                neg_terms.append((max(margin - _d(x[a], x[b]), 0.0), w[a]))
    clean = _avg_nonzero(pos_terms) + _avg_nonzero(neg_terms)
    mp, mn = [], []
    for a in range(n):
        positives = [p for p in range(n) if p != a and y[p] == y[a]]
        negatives = [m for m in range(n) if y[m] != y[a]]
        if mode == "pos_neg":
            sources = [(p, m) for p in positives for m in negatives]
            mixes = [lam * x[p] + (1 - lam) * x[m] for p, m in sources]
        elif not positives:
            mixes = [lam * x[a] + (1 - lam) * x[m] for m in negatives]
        else:
            mixes = []
        for mix in mixes:
            dist = _d(x[a], mix)
            mp.append((lam * dist, w[a]))
            mn.append(((1 - lam) * max(margin - dist, 0.0), w[a]))
    factor = weights[0] if mode == "pos_neg" else weights[1]
    return clean + factor * (_avg_nonzero(mp) + _avg_nonzero(mn))


@pytest.mark.reference("metrix_contrastive")
@pytest.mark.parametrize("mode", ["pos_neg", "anchor_neg"])
@pytest.mark.parametrize("lam", [0.3, 0.8])
def test_metrix_terms_match_loop(mode, lam):
    x = _randn(10, DIM, seed=19) * 0.3
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 3, 4])  # rows 8, 9 have no positive
    loss = lossreg.create_loss("metrix_contrastive")
    w = torch.rand(10, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    value = loss.terms(x, y, mode=mode, lam=lam, sample_weight=w).item()
    assert value == pytest.approx(_metrix_loop(x, y, mode, lam, w), rel=1e-9)


@pytest.mark.reference("metrix_contrastive")
def test_metrix_clean_term_is_pml_contrastive_loss():
    x = _randn(12, DIM, seed=20)
    y = torch.arange(12) % 3
    pml = losses.ContrastiveLoss(
        pos_margin=0.0,
        neg_margin=0.5,
        distance=distances.LpDistance(normalize_embeddings=True),
        reducer=reducers.AvgNonZeroReducer(),
    )
    loss = lossreg.create_loss("metrix_contrastive", pos_neg_weight=0.0, anchor_neg_weight=0.0)
    torch.manual_seed(0)
    assert loss(x, y).item() == pytest.approx(pml(x, y).item(), rel=1e-9)


def test_metrix_forward_uses_the_drawn_mode_and_lambda():
    x = _randn(10, DIM, seed=21)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 4, 0, 1])
    loss = lossreg.create_loss("metrix_contrastive")
    seen = set()
    for seed in range(8):
        torch.manual_seed(seed)
        mode, lam = loss.draw(x)
        assert 0 < lam < 1
        seen.add(mode)
        torch.manual_seed(seed)
        assert loss(x, y).item() == pytest.approx(loss.terms(x, y, mode=mode, lam=lam).item())
    assert seen == {"pos_neg", "anchor_neg"}


# --- sliced_wasserstein ---------------------------------------------------------------------


@pytest.mark.reference("sliced_wasserstein")
def test_sliced_wasserstein_matches_optimal_assignment_per_direction():
    z, prior = _randn(9, DIM, seed=22), _randn(9, DIM, seed=23)
    directions = torch.nn.functional.normalize(_randn(5, DIM, seed=24), dim=1)
    total = 0.0
    for theta in directions.numpy():
        a, b = z.numpy() @ theta, prior.numpy() @ theta
        cost = np.array([[(ai - bj) ** 2 for bj in b] for ai in a])
        rows, cols = linear_sum_assignment(cost)
        total += cost[rows, cols].sum() / len(a)
    expected = total / len(directions)
    assert sliced_wasserstein(z, prior, directions).item() == pytest.approx(expected, rel=1e-10)


def test_sliced_wasserstein_forward_draws_from_torch_and_prior_ranges():
    z = _randn(64, 3, seed=25)
    loss = lossreg.create_loss("sliced_wasserstein", n_projections=7)
    torch.manual_seed(4)
    value = loss(z, None)
    torch.manual_seed(4)
    theta = torch.randn(7, 3, dtype=torch.float64)
    theta = theta / theta.norm(dim=1, keepdim=True)
    prior = 2 * torch.rand(64, 3, dtype=torch.float64) - 1
    assert value.item() == pytest.approx(sliced_wasserstein(z, prior, theta).item(), rel=1e-12)
    samples = loss.sample_prior(1000, z)
    assert samples.abs().max() <= 1
    normal = lossreg.create_loss("sliced_wasserstein", prior="normal").sample_prior(4000, z)
    assert normal.std().item() == pytest.approx(1.0, abs=0.05)


def test_sliced_wasserstein_is_zero_on_the_prior_samples_themselves():
    z = _randn(20, 4, seed=26)
    directions = torch.nn.functional.normalize(_randn(10, 4, seed=27), dim=1)
    assert sliced_wasserstein(z, z[torch.randperm(20)], directions).item() == 0.0
    with pytest.raises(ValueError, match="sample_weight"):
        lossreg.create_loss("sliced_wasserstein")(z, None, sample_weight=torch.ones(20))


# --- multiview_contrastive ------------------------------------------------------------------

_WIDTHS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 100.0)


def _mmd_loop(a, b):
    def mean_k(u, v):
        total = 0.0
        for r in u:
            for c in v:
                sq = float(((r - c) ** 2).sum())
                total += sum(math.exp(-sq / (2 * s)) for s in _WIDTHS)
        return total / (len(u) * len(v))

    return max(mean_k(a, a) + mean_k(b, b) - 2 * mean_k(a, b), 1e-4)


def _multiview_loop(x, device, time, feats, picks, tau, weighted):
    x, device, time, feats, picks = (t.numpy() for t in (x, device, time, feats, picks))
    ids = sorted(set(device.tolist()))
    mmd = {}
    for a in ids:
        for b in ids:
            if a != b:
                mmd[a, b] = _mmd_loop(feats[device == a], feats[device == b])
    out = []
    for i in range(len(x)):
        a = device[i]
        others = [b for b in ids if b != a]
        closest = min(others, key=lambda b: mmd[a, b])
        inv = {b: 1 / mmd[a, b] for b in others} if weighted else {b: 1.0 for b in others}
        top = max([1.0, *inv.values()]) if weighted else 1.0
        pos = [
            math.exp(_cos(x[i], x[j]) / tau) / top
            for j in range(len(x))
            if time[j] == time[i] and device[j] == closest
        ]
        if not pos:
            out.append(0.0)
            continue
        neg = [inv[b] / top * math.exp(_cos(x[i], x[picks[i, ids.index(b)]]) / tau) for b in others]
        out.append(-math.log(sum(pos) / (sum(pos) + sum(neg))))
    return torch.tensor(out, dtype=torch.float64)


def _multiview_batch(seed=28):
    gen = torch.Generator().manual_seed(seed)
    n_times, n_devices = 5, 3
    time = torch.arange(n_times).repeat_interleave(n_devices)
    device = torch.arange(n_devices).repeat(n_times)
    feats = torch.randn(15, 4, generator=gen, dtype=torch.float64) + device.unsqueeze(1) * 0.5
    x = torch.randn(15, DIM, generator=gen, dtype=torch.float64)
    keep = torch.ones(15, dtype=torch.bool)
    keep[4] = False  # time 1 lacks device 1: anchors there may lose their positive
    return x[keep], device[keep], time[keep], feats[keep]


@pytest.mark.reference("multiview_contrastive")
@pytest.mark.parametrize(("tau", "weighted"), [(0.05, True), (0.5, False), (0.2, True)])
def test_multiview_matches_loop(tau, weighted):
    x, device, time, feats = _multiview_batch()
    loss = lossreg.create_loss(
        "multiview_contrastive", temperature=tau, weighted=weighted, reduction="none"
    )
    torch.manual_seed(0)
    picks = loss.draw_negatives(device)
    ours = loss.given_negatives(x, device, time, feats, picks)
    ref = _multiview_loop(x, device, time, feats, picks, tau, weighted)
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)
    assert (ours == 0).any() and (ours > 0).any()


def test_multiview_forward_draws_negatives_of_each_device_from_torch():
    x, device, time, feats = _multiview_batch(seed=29)
    loss = lossreg.create_loss("multiview_contrastive", reduction="none")
    torch.manual_seed(3)
    picks = loss.draw_negatives(device)
    ids = device.unique()
    for column, device_id in enumerate(ids):
        assert bool((device[picks[:, column]] == device_id).all())
    torch.manual_seed(3)
    value = loss(x, device, group=time, features=feats)
    torch.testing.assert_close(value, loss.given_negatives(x, device, time, feats, picks))
    w = torch.rand(len(x), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.manual_seed(3)
    mean = lossreg.create_loss("multiview_contrastive")(
        x, device, group=time, features=feats, sample_weight=w
    )
    assert mean.item() == pytest.approx(float((value * w).sum() / w.sum()), rel=1e-12)


def test_multiview_single_device_and_missing_extras():
    x = _randn(4, DIM, seed=30)
    loss = lossreg.create_loss("multiview_contrastive", reduction="none")
    out = loss(x, torch.zeros(4), group=torch.arange(4), features=x)
    assert out.tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="group"):
        loss(x, torch.arange(4) % 2)


def test_multiview_mmd_matches_loop():
    from lossreg.plugins.metric.multiview import device_mmd

    a, b = _randn(5, 3, seed=31), _randn(4, 3, seed=32) + 1
    assert device_mmd(a, b).item() == pytest.approx(_mmd_loop(a.numpy(), b.numpy()), rel=1e-10)


def test_multiview_embedder_pulls_time_aligned_devices_together():
    rng = np.random.default_rng(0)
    n_times, n_devices = 40, 3
    latent = rng.normal(size=(n_times, 4))
    # Each device sees the same latent activity through its own linear map, plus noise.
    X = np.concatenate(
        [
            latent @ rng.normal(size=(4, 6)) + 0.1 * rng.normal(size=(n_times, 6))
            for _ in range(n_devices)
        ]
    ).astype(np.float32)
    device = np.repeat(np.arange(n_devices), n_times)
    time = np.tile(np.arange(n_times), n_devices)

    def aligned_gap(est):
        emb = est.transform(X)
        emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        sim = emb @ emb.T
        same_time = time[:, None] == time[None, :]
        other_device = device[:, None] != device[None, :]
        return sim[same_time & other_device].mean() - sim[~same_time & other_device].mean()

    def fit(max_iter, lr):
        return lossreg.LossEmbedder(
            loss="multiview_contrastive",
            loss__temperature=0.2,
            n_components=8,
            max_iter=max_iter,
            batch_size=30,
            lr=lr,
            random_state=0,
        ).fit(X, device, group=time)

    assert aligned_gap(fit(10, 1e-2)) > aligned_gap(fit(1, 1e-12)) + 0.15
