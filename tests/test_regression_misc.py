"""Further regression losses against float64 loops, numpy/scipy and torch.nn.functional."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import gaussian_kde
from sklearn.linear_model import LinearRegression

import lossreg
from lossreg.links import resolve_link
from lossreg.plugins.regression_misc import NOT_REGISTERED, madl_score, make_madl_scorer
from lossreg.plugins.regression_misc.dist_regression import (
    expected_labels_kde,
    gaussian_kde_density,
)
from lossreg.targets import compute_data_params, output_size


@pytest.fixture
def returns():
    gen = torch.Generator().manual_seed(0)
    pred = torch.randn(50, generator=gen, dtype=torch.float64)
    y = torch.randn(50, generator=gen, dtype=torch.float64)
    w = torch.rand(50, generator=gen, dtype=torch.float64)
    return pred, y, w


def _sign(v: float) -> float:
    return (v > 0) - (v < 0)


def test_madl_score_matches_a_loop_and_the_scorer_negates_it(returns):
    pred, y, w = returns
    loop = sum(-_sign(a * b) * abs(a) for a, b in zip(y.tolist(), pred.tolist())) / 50
    assert madl_score(y.numpy(), pred.numpy()) == pytest.approx(loop, rel=1e-12)
    weighted = sum(
        wi * -_sign(a * b) * abs(a) for a, b, wi in zip(y.tolist(), pred.tolist(), w.tolist())
    )
    got = madl_score(y.numpy(), pred.numpy(), sample_weight=w.numpy())
    assert got == pytest.approx(weighted / w.sum().item(), rel=1e-12)
    X = np.random.default_rng(0).normal(size=(50, 3))
    model = LinearRegression().fit(X, y.numpy())
    assert make_madl_scorer()(model, X, y.numpy()) == pytest.approx(
        -madl_score(y.numpy(), model.predict(X))
    )
    assert "madl" in NOT_REGISTERED and "madl" not in lossreg.Registry(entry_points=False)


@pytest.mark.reference("soft_madl")
def test_soft_madl_matches_a_loop_and_tends_to_madl(returns):
    pred, y, _ = returns
    out = lossreg.create_loss("soft_madl", k=3.0, reduction="none")(pred, y)
    loop = [-math.tanh(3.0 * a * b) * abs(a) for a, b in zip(y.tolist(), pred.tolist())]
    np.testing.assert_allclose(out.numpy(), loop, rtol=1e-12)
    sharp = lossreg.create_loss("soft_madl", k=1e6)(pred, y).item()
    assert sharp == pytest.approx(madl_score(y.numpy(), pred.numpy()), abs=1e-6)


@pytest.mark.reference("gmadl")
def test_gmadl_matches_a_loop_and_halves_madl_for_a_steep_sigmoid(returns):
    pred, y, _ = returns
    out = lossreg.create_loss("gmadl", a=7.0, b=2.5, reduction="none")(pred, y)
    loop = [
        -(1 / (1 + math.exp(-7.0 * a * b)) - 0.5) * abs(a) ** 2.5
        for a, b in zip(y.tolist(), pred.tolist())
    ]
    np.testing.assert_allclose(out.numpy(), loop, rtol=1e-12)
    steep = lossreg.create_loss("gmadl", a=1e7, b=1.0)(pred, y).item()
    assert 2 * steep == pytest.approx(madl_score(y.numpy(), pred.numpy()), abs=1e-6)


@pytest.mark.parametrize("name", ["soft_madl", "gmadl", "signal_decay_mae"])
def test_directional_and_decay_losses_weight_rows(returns, name):
    pred, y, w = returns
    per_row = lossreg.create_loss(name, reduction="none")(pred, y)
    torch.testing.assert_close(
        lossreg.create_loss(name)(pred, y, sample_weight=w), (per_row * w).sum() / w.sum()
    )


@pytest.mark.reference("signal_decay_mae")
def test_signal_decay_mae_is_card_scaled_l1():
    gen = torch.Generator().manual_seed(1)
    pred = torch.randn(8, 6, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(8, 6, 3, generator=gen, dtype=torch.float64)
    ratio = torch.tensor([max(1 / math.sqrt(i + 1), 0.0) for i in range(6)]).double()
    ratio = ratio.unsqueeze(-1)
    ref = F.l1_loss(pred * ratio, y * ratio)
    torch.testing.assert_close(lossreg.create_loss("signal_decay_mae")(pred, y), ref)
    plain = lossreg.create_loss("signal_decay_mae", power=0.0)(pred[:, :, 0], y[:, :, 0])
    torch.testing.assert_close(plain, F.l1_loss(pred[:, :, 0], y[:, :, 0]))


@pytest.mark.reference("multi_hypothesis_min_mse", "winner_takes_all")
def test_multi_hypothesis_matches_a_loop():
    gen = torch.Generator().manual_seed(2)
    out = torch.randn(10, 3 * 2, generator=gen, dtype=torch.float64)
    y = torch.randn(10, 2, generator=gen, dtype=torch.float64)
    for eps in (0.0, 0.1):
        loss = lossreg.create_loss(
            "multi_hypothesis_min_mse", n_heads=3, epsilon=eps, n_outputs=2, reduction="none"
        )
        ref = []
        for i in range(10):
            m = [
                sum((out[i, 2 * h + k].item() - y[i, k].item()) ** 2 for k in range(2)) / 2
                for h in range(3)
            ]
            best = min(m)
            ref.append((1 - eps) * best + eps * (sum(m) - best) / 2)
        np.testing.assert_allclose(loss(out, y).numpy(), ref, rtol=1e-12)
    alias = lossreg.create_loss("winner_takes_all", n_heads=3, n_outputs=2, reduction="none")
    psnr = lossreg.create_loss(
        "multi_hypothesis_min_mse", n_heads=3, log=True, n_outputs=2, reduction="none"
    )
    best = alias(out, y)
    torch.testing.assert_close(psnr(out, y), 10 / math.log(10) * torch.log(best + 1e-8))
    single = lossreg.create_loss("multi_hypothesis_min_mse", n_heads=1, n_outputs=2)
    torch.testing.assert_close(single(out[:, :2], y), F.mse_loss(out[:, :2], y))


def test_multi_hypothesis_head_selection_drives_the_link():
    spec = lossreg.get_spec("multi_hypothesis_min_mse")
    assert output_size(spec, "regression", n_outputs=1) == 4
    loss = spec.factory(n_heads=3, n_outputs=1)
    y = torch.tensor([1.0, 2.0, 3.0])
    out = torch.stack([y + 1.0, y + 0.1, y - 2.0], dim=1)
    link = resolve_link(spec.link)
    torch.testing.assert_close(link(out, loss), y + 1.0)  # head 0 until selected
    assert loss.select_head(out, y) == 1
    torch.testing.assert_close(link(out, loss), y + 0.1)
    assert int(loss.state_dict()["head_"]) == 1


def test_target_values_data_param():
    assert compute_data_params(["target_values"], np.array([3.0, 1.0]), "regression") == {
        "target_values": [3.0, 1.0]
    }
    multi = compute_data_params(["target_values"], np.array([[1.0, 2.0]]), "regression")
    assert multi == {"target_values": [[1.0, 2.0]]}
    with pytest.raises(ValueError, match="not defined"):
        compute_data_params(["target_values"], np.array([0, 1]), "binary")


@pytest.mark.reference("frequency_weighted_mae", "fmae")
@pytest.mark.parametrize("weighting", ["log", "effective_number"])
@pytest.mark.parametrize("bin_by", ["target", "prediction"])
def test_frequency_weighted_mae_matches_numpy_histogram_weights(weighting, bin_by):
    rng = np.random.default_rng(3)
    train = np.concatenate([rng.normal(0, 1, 200), rng.normal(6, 0.5, 3)])
    y = rng.normal(0, 2, 30)
    pred = y + rng.normal(0, 1, 30)
    loss = lossreg.create_loss(
        "fmae",
        n_bins=8,
        weighting=weighting,
        bin_by=bin_by,
        fmae_weight=0.4,
        reduction="none",
        target_values=train.tolist(),
    )
    counts, edges = np.histogram(train, bins=8)
    ref = []
    for yi, pi in zip(y, pred):
        source = yi if bin_by == "target" else pi
        b = min(max(int(np.digitize(source, edges[1:-1])), 0), 7)
        n = counts[b]
        if n == 0:
            w = 0.0
        elif weighting == "log":
            w = 1 / math.log(1.2) if n == 1 else 1 / math.log(n)
        else:
            w = (1 - 0.8) / (1 - 0.8**n)
        ref.append((0.6 + 0.4 * w) * abs(pi - yi))
    out = loss(torch.as_tensor(pred), torch.as_tensor(y))
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10)


def test_frequency_weighted_mae_multi_output_uses_a_histogram_per_column():
    train = [[0.0, 10.0], [0.1, 10.0], [1.0, 20.0]]
    loss = lossreg.create_loss(
        "frequency_weighted_mae", n_bins=2, fmae_weight=1.0, reduction="none", target_values=train
    )
    out = loss(torch.tensor([[1.0, 11.0]]), torch.tensor([[0.0, 20.0]]))
    # Column 0: y=0 in a bin of 2 -> 1/log 2; column 1: y=20 in a bin of 1 -> 1/log 1.2.
    expected = (1 / math.log(2) * 1.0 + 1 / math.log(1.2) * 9.0) / 2
    assert out.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.reference("dist_regression")
def test_dist_regression_quantile_form_matches_numpy():
    rng = np.random.default_rng(4)
    train = rng.exponential(2.0, 300)
    pred = torch.as_tensor(rng.normal(2, 1, 16))
    y = torch.as_tensor(rng.exponential(2.0, 16))
    for base, lam in (("l1", 1.0), ("l2", 0.3)):
        loss = lossreg.create_loss("dist_regression", base=base, lam=lam, target_values=train)
        expected = np.quantile(train, (np.arange(16) + 0.5) / 16)
        err = (lambda a, b: abs(a - b)) if base == "l1" else (lambda a, b: (a - b) ** 2)
        sorted_pred = sorted(pred.tolist())
        plain = sum(err(p, t) for p, t in zip(pred.tolist(), y.tolist())) / 16
        dist = sum(err(p, e) for p, e in zip(sorted_pred, expected)) / 16
        assert loss(pred, y).item() == pytest.approx(plain + lam * dist, rel=1e-10)
    total = lossreg.create_loss("dist_regression", reduction="sum", target_values=train)
    assert total(pred, y).item() == pytest.approx(
        16 * loss.__class__(target_values=train)(pred, y).item()
    )


def test_dist_regression_kde_matches_scipy_and_the_papers_example():
    rng = np.random.default_rng(5)
    ages = rng.integers(20, 80, 200).astype(float)
    grid = np.arange(20.0, 80.0)
    np.testing.assert_allclose(
        gaussian_kde_density(ages, grid, 0.5), gaussian_kde(ages, bw_method=0.5)(grid), rtol=1e-10
    )
    # The paper's illustration: labels 1, 3, 4, 6 expected 1, 2, 3, 1 times in a batch of 7.
    grid = np.arange(1.0, 7.0)
    mass = np.array([1, 0, 2, 3, 0, 1]) / 7
    labels = expected_labels_kde(mass, grid, 7)
    np.testing.assert_array_equal(labels, [1, 3, 3, 4, 4, 4, 6])
    loss = lossreg.create_loss("dist_regression", expected="kde", target_values=ages.tolist())
    batch = loss.expected_labels(64)[:, 0]
    assert batch.shape == (64,) and torch.all(batch.diff() >= 0)
    assert batch.min().item() >= 20 and batch.max().item() <= 79


def test_dist_regression_multi_output_matches_columns_separately():
    rng = np.random.default_rng(7)
    train = rng.normal(size=(40, 2))
    pred, y = torch.as_tensor(rng.normal(size=(8, 2))), torch.as_tensor(rng.normal(size=(8, 2)))
    both = lossreg.create_loss("dist_regression", target_values=train.tolist())(pred, y)
    cols = [
        lossreg.create_loss("dist_regression", target_values=train[:, k].tolist())(
            pred[:, k], y[:, k]
        )
        for k in range(2)
    ]
    torch.testing.assert_close(both, (cols[0] + cols[1]) / 2)
    with pytest.raises(ValueError, match="one target column"):
        lossreg.create_loss("dist_regression", expected="kde", target_values=train.tolist())


def test_dist_regression_rejects_weights_and_none_reduction():
    loss = lossreg.create_loss("dist_regression", target_values=[0.0, 1.0])
    with pytest.raises(ValueError, match="sample weights"):
        loss(torch.zeros(2), torch.zeros(2), sample_weight=torch.ones(2))
    with pytest.raises(ValueError, match="batch-level"):
        lossreg.create_loss("dist_regression", reduction="none", target_values=[0.0, 1.0])


def _cs_loop(x, y, p, sigma):
    n = len(x)

    def g(a, b):
        return math.exp(-sum((ai - bi) ** 2 for ai, bi in zip(a, b)) / (2 * sigma**2))

    def s(first, second):
        total = 0.0
        for j in range(n):
            num = sum(g(x[j], x[i]) * g(first[j], second[i]) for i in range(n))
            den = sum(g(x[j], x[i]) ** 2 for i in range(n))
            total += num / den
        return total

    return -2 * math.log2(s(p, y)) + math.log2(s(y, y)) + math.log2(s(p, p))


@pytest.mark.reference("cs_divergence_regression")
def test_cs_divergence_matches_a_loop_and_vanishes_at_the_target():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(12, 3))
    y = rng.normal(size=12)
    p = y + rng.normal(0, 0.5, 12)
    loss = lossreg.create_loss("cs_divergence_regression", sigma=0.8)
    got = loss(torch.as_tensor(p), torch.as_tensor(y), features=torch.as_tensor(x)).item()
    ref = _cs_loop(x.tolist(), [[v] for v in y], [[v] for v in p], 0.8)
    assert got == pytest.approx(ref, rel=1e-10)
    same = loss(torch.as_tensor(y), torch.as_tensor(y), features=torch.as_tensor(x)).item()
    assert same == pytest.approx(0.0, abs=1e-12)
    # The reference demo's 1-D bug collapses to a scaled squared error; (N, 1) shapes do not.
    sse = ((p - y) ** 2).sum() / (0.8**2 * math.log(2))
    assert got != pytest.approx(sse, rel=1e-3)


def test_cs_divergence_needs_features_and_gives_finite_gradients():
    loss = lossreg.create_loss("cs_divergence_regression")
    with pytest.raises(lossreg.MissingFitExtraError, match="features"):
        loss(torch.zeros(3), torch.zeros(3))
    pred = torch.tensor([0.0, 1e3, -1e3], requires_grad=True)
    loss(pred, torch.tensor([0.0, 1.0, 2.0]), features=torch.randn(3, 2)).backward()
    assert torch.isfinite(pred.grad).all()


def _srl_loop(module, out, y):
    """One call of srl_geometric from a zero bank, written with numpy loops."""
    d, n_levels = module.feature_dim, module.n_levels
    w1, b1 = (
        module.g[0].weight.detach().double().numpy(),
        module.g[0].bias.detach().double().numpy(),
    )
    w2, b2 = (
        module.g[2].weight.detach().double().numpy(),
        module.g[2].bias.detach().double().numpy(),
    )
    edges = np.linspace(module.target_min, module.target_max, n_levels + 1)
    rows = []
    for i in range(len(y)):
        z = out[i, :d]
        rows.append(
            (
                z / np.linalg.norm(z),
                out[i, d],
                y[i],
                min(int(np.sum(y[i] >= edges[1:-1])), n_levels - 1),
            )
        )
    bank = np.zeros((n_levels, d))
    for lvl in range(n_levels):
        members = [r[0] for r in rows if r[3] == lvl]
        if members:
            bank[lvl] = np.mean(members, axis=0)
    s = np.array([w2 @ np.maximum(w1 @ b + b1, 0) + b2 for b in bank])
    s_unit = s / np.linalg.norm(s, axis=1, keepdims=True)
    env = module.envelope_.double().numpy()
    envelope = 1 - np.mean([max(s_unit[lvl] @ r for lvl in range(n_levels)) for r in env])
    steps = [np.linalg.norm(s[lvl + 1] - s[lvl]) for lvl in range(n_levels - 1)]
    smooth = module.alpha * sum(steps) + module.beta * np.var(steps, ddof=1)
    losses = []
    for z, pred, target, lvl in rows:
        logits = [z @ s_unit[k] / module.temperature for k in range(n_levels)]
        top = max(logits)
        log_norm = top + math.log(sum(math.exp(v - top) for v in logits))
        contrastive = log_norm - logits[lvl]
        losses.append(
            abs(pred - target)
            + module.w_con * contrastive
            + module.w_env * envelope
            + module.w_hom * smooth
        )
    return np.array(losses), s


@pytest.mark.reference("srl_geometric")
def test_srl_geometric_matches_a_loop_and_updates_its_bank():
    rng = np.random.default_rng(8)
    out = rng.normal(size=(16, 5))
    y = rng.uniform(0, 4, 16)
    loss = lossreg.create_loss(
        "srl_geometric", feature_dim=4, n_levels=6, reduction="none", target_min=0.0, target_max=4.0
    ).double()
    ref, s = _srl_loop(loss, out, y)
    got = loss(torch.as_tensor(out), torch.as_tensor(y))
    np.testing.assert_allclose(got.detach().numpy(), ref, rtol=1e-9)
    np.testing.assert_allclose(loss.bank_.numpy(), 0.1 * s, rtol=1e-9)  # 0.9 * 0 + 0.1 * s
    # Weights 2 and 0 equal repeating and dropping rows (rows and centroids alike).
    w = torch.tensor([2.0, 0.0] + [1.0] * 14, dtype=torch.float64)
    fresh = lossreg.create_loss(
        "srl_geometric", feature_dim=4, n_levels=6, target_min=0.0, target_max=4.0
    ).double()
    twin = lossreg.create_loss(
        "srl_geometric", feature_dim=4, n_levels=6, target_min=0.0, target_max=4.0
    ).double()
    index = [0, 0, *range(2, 16)]
    weighted = fresh(torch.as_tensor(out), torch.as_tensor(y), sample_weight=w)
    repeated = twin(torch.as_tensor(out[index]), torch.as_tensor(y[index]))
    torch.testing.assert_close(weighted, repeated)


def test_srl_geometric_warmup_learnable_map_and_link():
    spec = lossreg.get_spec("srl_geometric")
    assert spec.learnable and output_size(spec, "regression") == 11
    loss = spec.factory(warmup_epochs=2, target_min=0.0, target_max=1.0)
    out = torch.randn(8, 11, generator=torch.Generator().manual_seed(0))
    y = torch.rand(8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(loss(out, y), F.l1_loss(out[:, 10], y))
    loss.set_epoch(2, 10)
    value = loss(out, y)
    assert value > F.l1_loss(out[:, 10], y)
    value.backward()
    assert loss.g[0].weight.grad is not None and torch.isfinite(loss.g[0].weight.grad).all()
    torch.testing.assert_close(resolve_link(spec.link)(out, loss), out[:, 10])
    # The map starts from the same weights on every build (a private generator).
    again = spec.factory(target_min=0.0, target_max=1.0)
    assert torch.equal(again.g[0].weight, loss.g[0].weight)


def _qmi_loop(a, b, sigma):
    n = len(a)

    def g(u, v):
        return math.exp(-sum((ui - vi) ** 2 for ui, vi in zip(u, v)) / (2 * sigma**2))

    ka = [[g(a[i], a[j]) for j in range(n)] for i in range(n)]
    kb = [[g(b[i], b[j]) for j in range(n)] for i in range(n)]
    cross = sum(ka[i][j] * kb[j][k] for i in range(n) for j in range(n) for k in range(n))
    trace = sum(ka[i][j] * kb[i][j] for i in range(n) for j in range(n))
    totals = sum(map(sum, ka)) * sum(map(sum, kb))
    return -2 * math.log2(cross / n**3) + math.log2(trace / n**2) + math.log2(totals / n**4)


@pytest.mark.reference("cs_ib")
def test_cs_ib_matches_loops_for_divergence_and_normalised_qmi():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(7, 2))
    y = rng.normal(size=7)
    out = rng.normal(size=(7, 4))
    loss = lossreg.create_loss("cs_ib", beta=0.3, latent_dim=3, qmi_sigma=1.5)
    got = loss(torch.as_tensor(out), torch.as_tensor(y), features=torch.as_tensor(x)).item()
    xs, ts = x.tolist(), out[:, 1:].tolist()
    qmi = _qmi_loop(xs, ts, 1.5) / math.sqrt(_qmi_loop(xs, xs, 1.5) * _qmi_loop(ts, ts, 1.5))
    div = _cs_loop(xs, [[v] for v in y], [[v] for v in out[:, 0]], 1.0)
    assert got == pytest.approx(div + 0.3 * qmi, rel=1e-9)
    plain = lossreg.create_loss("cs_ib", beta=0.0, latent_dim=3)
    reference = lossreg.create_loss("cs_divergence_regression")
    args = (torch.as_tensor(y),)
    torch.testing.assert_close(
        plain(torch.as_tensor(out), *args, features=torch.as_tensor(x)),
        reference(torch.as_tensor(out[:, 0]), *args, features=torch.as_tensor(x)),
    )
    heuristic = lossreg.create_loss("cs_ib", latent_dim=3, qmi_sigma=None)
    value = heuristic(torch.as_tensor(out), torch.as_tensor(y), features=torch.as_tensor(x))
    assert torch.isfinite(value)
    assert resolve_link(lossreg.get_spec("cs_ib").link)(torch.as_tensor(out), loss).shape == (7,)


def _ssim_loop(a, b, k, stride):
    """Mean SSIM of (C, H, W) arrays, Gaussian window centred at k // 2, zero padding."""
    g = np.array([math.exp(-((x - k // 2) ** 2) / (2 * 1.5**2)) for x in range(k)])
    g = g / g.sum()
    pad = (k - 1) // 2
    channels, height, width = a.shape
    values = []
    for c in range(channels):
        pa = np.pad(a[c], pad)
        pb = np.pad(b[c], pad)
        for top in range(0, height + 2 * pad - k + 1, stride):
            for left in range(0, width + 2 * pad - k + 1, stride):
                wa, wb = pa[top : top + k, left : left + k], pb[top : top + k, left : left + k]
                w = np.outer(g, g)
                ma, mb = (w * wa).sum(), (w * wb).sum()
                va, vb = (w * wa * wa).sum() - ma**2, (w * wb * wb).sum() - mb**2
                cov = (w * wa * wb).sum() - ma * mb
                num = (2 * ma * mb + 1e-4) * (2 * cov + 9e-4)
                den = (ma**2 + mb**2 + 1e-4) * (va + vb + 9e-4)
                values.append(num / den)
    return float(np.mean(values))


@pytest.mark.reference("s3im")
def test_s3im_matches_a_loop_ssim_on_the_tiled_batch():
    rng = np.random.default_rng(10)
    pred, y = rng.uniform(size=(32, 3)), rng.uniform(size=(32, 3))
    loss = lossreg.create_loss("s3im", repeat=3, patch_height=4, kernel_size=2, stride=2)
    torch.manual_seed(5)
    got = loss(torch.as_tensor(pred), torch.as_tensor(y)).item()
    torch.manual_seed(5)
    index = np.concatenate([np.arange(32)] + [torch.randperm(32).numpy() for _ in range(2)])
    tiles = [arr[index].T.reshape(3, 4, 8 * 3) for arr in (pred, y)]
    mse = float(((pred - y) ** 2).mean())
    assert got == pytest.approx(mse + 1 - _ssim_loop(*tiles, 2, 2), rel=1e-9)
    # Same seed, same permutations; lam = 0 is plain MSE.
    torch.manual_seed(5)
    assert loss(torch.as_tensor(pred), torch.as_tensor(y)).item() == got
    plain = lossreg.create_loss("s3im", lam=0.0)(torch.as_tensor(pred), torch.as_tensor(y))
    assert plain.item() == pytest.approx(mse)
    with pytest.raises(ValueError, match="multiple"):
        lossreg.create_loss("s3im", patch_height=5)(torch.zeros(32, 3), torch.zeros(32, 3))


@pytest.mark.reference("acr")
@pytest.mark.parametrize("level", [0.8, 0.95])
def test_acr_matches_sklearn_pca_and_a_loop(level):
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(11)
    basis = rng.normal(size=(2, 6))
    train = rng.normal(size=(80, 2)) @ basis + 0.1 * rng.normal(size=(80, 6))
    y = rng.normal(size=(10, 2)) @ basis + 0.3 * rng.normal(size=(10, 6))
    pred = y + rng.normal(0, 0.8, size=(10, 6))
    loss = lossreg.create_loss(
        "acr", lam=0.7, pca_variance=level, reduction="none", target_values=train.tolist()
    )
    pca = PCA(n_components=level).fit(train)
    mean, vecs, vals = pca.mean_, pca.components_.T, pca.explained_variance_
    ref = []
    for yi, pi in zip(y, pred):
        b = np.clip(vecs.T @ (yi - mean), -3 * np.sqrt(vals), 3 * np.sqrt(vals))
        gap = np.abs(yi - (mean + vecs @ b))
        phi = gap / gap.max()
        terms = []
        for e, f in zip(np.abs(pi - yi), phi):
            terms.append(0.7 * math.log(1 + e ** (2 - f)) if e <= 1 else e**2 + f * math.log(2) - 1)
        ref.append(np.mean(terms))
    got = loss(torch.as_tensor(pred), torch.as_tensor(y))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-8)


def test_acr_schedule_and_finite_gradients():
    train = np.random.default_rng(12).normal(size=(30, 4)).tolist()
    loss = lossreg.create_loss("acr", target_values=train)
    levels = []
    for epoch in (0, 20, 50, 90):
        loss.set_epoch(epoch, 100)
        levels.append(float(loss.level_))
    assert levels == [0.8, 0.85, 0.9, 0.95]
    pred = torch.tensor([[0.0, 1e3, -1e3, 0.5]], requires_grad=True)
    loss(pred, torch.zeros(1, 4)).backward()
    assert torch.isfinite(pred.grad).all()


def _dm_count_loop(out, counts, lam_ot=0.1, lam_tv=0.01, eps=10.0, n_iter=100):
    """DM-Count per row with numpy: Sinkhorn-Knopp one row at a time, as the reference."""
    rows = []
    for o, z in zip(out, counts):
        d = np.maximum(o, 0.0)
        k = len(d)
        c, c_hat = z.sum(), d.sum()
        dn, zn = d / (c_hat + 1e-6), z / (c + 1e-6)
        value = abs(c_hat - c) + lam_tv * c * np.abs(dn - zn).sum()
        if c > 0:
            cost = np.array([[(i - j) ** 2 for j in range(k)] for i in range(k)], dtype=float)
            kern = np.exp(-cost / eps)
            u, v = np.full(k, 1.0 / k), np.full(k, 1.0 / k)
            for it in range(1, n_iter + 1):
                v = dn / (u @ kern + 1e-16)
                u = zn / (kern @ v + 1e-16)
                if it % 10 == 0 and (((u @ kern) * v - dn) ** 2).sum() < 1e-9:
                    break
            plan = u[:, None] * kern * v[None, :]
            value += lam_ot * (plan * cost).sum()
        rows.append(value)
    return np.array(rows)


@pytest.mark.reference("dm_count")
def test_dm_count_matches_a_numpy_sinkhorn_and_the_reference_gradient():
    rng = np.random.default_rng(13)
    out = rng.normal(1.0, 1.0, size=(6, 5))
    counts = rng.poisson(2.0, size=(6, 5)).astype(float)
    counts[2] = 0.0
    loss = lossreg.create_loss("dm_count", reduction="none")
    x = torch.as_tensor(out).requires_grad_(True)
    got = loss(x, torch.as_tensor(counts))
    np.testing.assert_allclose(got.detach().numpy(), _dm_count_loop(out, counts), rtol=1e-7)
    # The OT term's gradient is the reference's beta / c - <beta, z> / c^2 (through relu).
    ot_only = lossreg.create_loss("dm_count", lam_tv=0.0, reduction="none")
    x = torch.as_tensor(out).requires_grad_(True)
    ot_only(x, torch.as_tensor(counts))[0].backward()
    d = torch.relu(torch.as_tensor(out[0]))
    c_hat = d.sum()
    beta, _ = ot_only.sinkhorn(
        torch.as_tensor(counts[:1] / (counts[0].sum() + 1e-6)), (d / (c_hat + 1e-6))[None]
    )
    grad_ot = beta[0] / (c_hat + 1e-6) - (beta[0] * d).sum() / (c_hat + 1e-6) ** 2
    grad_count = torch.sign(c_hat - counts[0].sum()) * torch.ones(5, dtype=torch.float64)
    expected = (0.1 * grad_ot + grad_count) * (torch.as_tensor(out[0]) > 0)
    torch.testing.assert_close(x.grad[0], expected, rtol=1e-6, atol=1e-9)
    link = resolve_link(lossreg.get_spec("dm_count").link)
    torch.testing.assert_close(link(torch.as_tensor(out), loss), torch.relu(torch.as_tensor(out)))


def test_multi_hypothesis_head_is_chosen_on_the_validation_split():
    from lossreg import LossRegressor

    loss = lossreg.create_loss("multi_hypothesis_min_mse", n_heads=3, n_outputs=1)
    y = torch.tensor([1.0, 2.0, 3.0])
    loss.on_validation_end(torch.stack([y + 1.0, y - 2.0, y + 0.1], dim=1), y)
    assert int(loss.head_) == 2
    # the estimators call the hook after each epoch's validation pass
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    target = X[:, 0] + 0.1 * rng.normal(size=200)
    calls = []
    fitted = LossRegressor(
        "multi_hypothesis_min_mse", loss__n_heads=3, early_stopping=True, max_iter=3
    )
    original = type(loss).select_head

    def spy(self, output, target):
        calls.append(output.shape)
        return original(self, output, target)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(loss), "select_head", spy)
        fitted.fit(X, target)
    assert len(calls) == fitted.n_iter_ and calls[0] == (20, 3)
