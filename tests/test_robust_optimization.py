"""Robust-optimisation wrappers against float64 loops written from the papers and reference code.

GroupDRO follows kohpangwei/group_DRO ``loss.py``; the other references are written in the
docstring of each test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sklearn
import torch
import torch.nn.functional as F
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import lossreg
from lossreg import LossClassifier
from lossreg.plugins.robust_optimization import worst_group_accuracy


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(24, 3, generator=gen, dtype=torch.float64) * 2
    labels = torch.randint(0, 3, (24,), generator=gen)
    group = torch.randint(0, 4, (24,), generator=gen)
    weights = torch.rand(24, generator=gen, dtype=torch.float64)
    return logits, labels, group, weights


def _ce_rows(logits, labels):
    """Cross-entropy per row, one explicit loop (the base losses of the references)."""
    out = []
    for row, y in zip(logits.tolist(), labels.tolist()):
        top = max(row)
        out.append(top + math.log(sum(math.exp(v - top) for v in row)) - row[y])
    return out


def _group_dro_reference(steps, n_groups, step_size, adj=0.0, counts=None, normalize=False):
    """compute_group_avg + compute_robust_loss of the reference code, in plain Python."""
    q = [1.0 / n_groups] * n_groups
    values = []
    for losses, group in steps:
        group_loss = []
        for g in range(n_groups):
            rows = [v for v, k in zip(losses, group) if k == g]
            group_loss.append(sum(rows) / len(rows) if rows else 0.0)
        if adj > 0:
            group_loss = [v + adj / math.sqrt(c) for v, c in zip(group_loss, counts)]
        adjusted = list(group_loss)
        if normalize:
            total = sum(adjusted)
            adjusted = [v / total for v in adjusted]
        q = [p * math.exp(step_size * a) for p, a in zip(q, adjusted)]
        total = sum(q)
        q = [p / total for p in q]
        values.append(sum(v * p for v, p in zip(group_loss, q)))
    return values, q


@pytest.mark.reference("group_dro")
@pytest.mark.parametrize(
    "settings",
    [
        {"step_size": 0.01},
        {"step_size": 0.5},
        {"step_size": 0.5, "normalize_loss": True},
        {"step_size": 0.2, "adj": 2.0, "group_counts": [10, 3, 7, 30], "n_groups": 4},
    ],
)
def test_group_dro_matches_the_reference_update_over_several_steps(batch, settings):
    logits, labels, group, _ = batch
    loss = lossreg.create_loss("group_dro", **settings)
    steps = []
    ours = []
    for k in range(3):
        part = slice(8 * k, 8 * k + 8)
        ours.append(loss(logits[part], labels[part], group=group[part]).item())
        steps.append((_ce_rows(logits[part], labels[part]), group[part].tolist()))
    n_groups = settings.get("n_groups", int(max(group.max() for _ in [0])) + 1)
    expected, q = _group_dro_reference(
        steps,
        n_groups,
        settings["step_size"],
        adj=settings.get("adj", 0.0),
        counts=settings.get("group_counts"),
        normalize=settings.get("normalize_loss", False),
    )
    # The first batch already holds every group id 0..3, so growing q equals the reference.
    assert set(group[:8].tolist()) == {0, 1, 2, 3}
    assert ours == pytest.approx(expected, rel=1e-12)
    assert loss.q_.tolist() == pytest.approx(q, rel=1e-6)


def test_group_dro_gradient_is_the_q_weighted_group_means(batch):
    logits, labels, group, weights = batch
    logits = logits.clone().requires_grad_()
    loss = lossreg.create_loss("group_dro", step_size=0.3, n_groups=4)
    loss(logits, labels, group=group, sample_weight=weights).backward()
    q = loss.q_.detach().double()
    rows = F.cross_entropy(logits.detach().requires_grad_(), labels, reduction="none")
    coef = torch.stack(
        [q[g] * weights[i] / weights[group == g].sum() for i, g in enumerate(group.tolist())]
    )
    expected = torch.autograd.grad((coef * rows).sum(), [rows], retain_graph=True)[0]
    assert torch.allclose(expected, coef)
    manual = logits.detach().clone().requires_grad_()
    (coef * F.cross_entropy(manual, labels, reduction="none")).sum().backward()
    torch.testing.assert_close(logits.grad, manual.grad)


def test_group_dro_q_frozen_in_eval_mode_and_grows_on_demand(batch):
    logits, labels, group, _ = batch
    loss = lossreg.create_loss("group_dro", step_size=1.0)
    assert loss.q_.numel() == 0
    loss(logits[:4], labels[:4], group=torch.tensor([0, 0, 1, 1]))
    assert loss.q_.numel() == 2
    loss.eval()
    before = loss.q_.clone()
    loss(logits, labels, group=group)
    assert loss.q_.numel() == 4
    assert loss.q_[:2].tolist() == pytest.approx((before * 0.5).tolist())
    assert loss.q_.sum().item() == pytest.approx(1.0)


def test_group_dro_errors(batch):
    logits, labels, group, _ = batch
    with pytest.raises(ValueError, match="needs 'group'"):
        lossreg.create_loss("group_dro")(logits, labels)
    with pytest.raises(lossreg.InvalidLossParameterError, match="needs group_counts"):
        lossreg.create_loss("group_dro", adj=1.0)
    with pytest.raises(lossreg.InvalidReductionError, match="batch-level"):
        lossreg.create_loss("group_dro", reduction="none")
    with pytest.raises(ValueError, match="built for 2 groups"):
        lossreg.create_loss("group_dro", n_groups=2)(logits, labels, group=group)
    with pytest.raises(lossreg.InvalidLossParameterError, match="no per-row form"):
        lossreg.create_loss("group_dro", base="group_dro")


def test_group_dro_wraps_a_regression_base():
    pred = torch.tensor([[0.0], [1.0], [2.0], [4.0]], dtype=torch.float64)
    target = torch.tensor([0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    loss = lossreg.create_loss("group_dro", base="mse", step_size=1.0, n_groups=2)
    value = loss(pred, target, group=torch.tensor([0, 0, 1, 1]))
    q = torch.softmax(torch.tensor([0.5, 10.0], dtype=torch.float64), 0)
    assert value.item() == pytest.approx((q * torch.tensor([0.5, 10.0])).sum().item())
    assert value.dtype == torch.float64


def _spurious(n, agree, rng):
    """Label y, spurious bit s agreeing with y in ``agree`` of the rows; group = 2y + s."""
    y = rng.integers(0, 2, n)
    s = np.where(rng.random(n) < agree, y, 1 - y)
    core = (2 * y - 1) + rng.normal(0, 1.0, n)  # the real but noisy signal
    spurious = (2 * s - 1) + rng.normal(0, 0.1, n)  # nearly clean, but only correlated
    X = np.column_stack([core, spurious, rng.normal(0, 1, (n, 3))])
    return X, y, 2 * y + s


def test_group_dro_beats_cross_entropy_on_worst_group_accuracy_through_a_search():
    rng = np.random.default_rng(0)
    X, y, group = _spurious(600, 0.95, rng)
    X_test, y_test, group_test = _spurious(2000, 0.5, rng)
    worst = {}
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = make_scorer(worst_group_accuracy).set_score_request(group=True)
        for loss, grid in [
            ("cross_entropy", {"weight_decay": [0.1, 1.0]}),
            ("group_dro", {"loss__step_size": [0.1, 1.0]}),
        ]:
            clf = LossClassifier(loss=loss, max_iter=30, weight_decay=1.0, lr=0.01, random_state=0)
            clf.set_fit_request(group=True)
            grid = {f"lossclassifier__{k}": v for k, v in grid.items()}
            search = GridSearchCV(make_pipeline(StandardScaler(), clf), grid, cv=2, scoring=scorer)
            search.fit(X, y, group=group)
            pred = search.predict(X_test)
            worst[loss] = worst_group_accuracy(y_test, pred, group=group_test)
    assert worst["group_dro"] > worst["cross_entropy"] + 0.2, worst


# -- kl_dro / tilted ---------------------------------------------------------------------------


@pytest.mark.reference("kl_dro")
@pytest.mark.parametrize("tau", [0.1, 1.0, 10.0])
def test_kl_dro_matches_scipy_logsumexp(batch, tau):
    from scipy.special import logsumexp

    logits, labels, _, weights = batch
    rows = np.array(_ce_rows(logits, labels))
    s = weights.numpy()
    for name in ("kl_dro", "tilted"):
        loss = lossreg.create_loss(name, tau=tau)
        ours = loss(logits, labels).item()
        assert ours == pytest.approx(tau * (logsumexp(rows / tau) - math.log(len(rows))))
        weighted = loss(logits, labels, sample_weight=weights).item()
        assert weighted == pytest.approx(tau * logsumexp(rows / tau, b=s / s.sum()), rel=1e-10)


def test_kl_dro_limits_and_gradient(batch):
    logits, labels, _, _ = batch
    rows = torch.tensor(_ce_rows(logits, labels), dtype=torch.float64)
    small = lossreg.create_loss("kl_dro", tau=1e-3)(logits, labels).item()
    large = lossreg.create_loss("kl_dro", tau=1e4)(logits, labels).item()
    assert small == pytest.approx(rows.max().item(), abs=1e-2)
    assert large == pytest.approx(rows.mean().item(), rel=1e-3)
    z = logits.clone().requires_grad_()
    lossreg.create_loss("kl_dro", tau=0.5)(z, labels).backward()
    w = torch.softmax(rows / 0.5, 0)
    manual = logits.clone().requires_grad_()
    (w * F.cross_entropy(manual, labels, reduction="none")).sum().backward()
    torch.testing.assert_close(z.grad, manual.grad)


# -- spectral_risk -----------------------------------------------------------------------------


def _sorted_rows(logits, labels):
    return sorted(_ce_rows(logits, labels))


@pytest.mark.reference("spectral_risk")
@pytest.mark.parametrize("kept", [0.1, 0.25, 0.3, 0.5, 1.0])
def test_superquantile_is_rockafellar_uryasev_cvar(batch, kept):
    logits, labels, *_ = batch
    rows = _ce_rows(logits, labels)
    # CVaR = min over eta of eta + mean((l - eta)+) / kept; a minimiser is one of the losses.
    cvar = min(eta + sum(max(v - eta, 0.0) for v in rows) / (len(rows) * kept) for eta in rows)
    for name in ("spectral_risk", "superquantile", "cvar"):
        ours = lossreg.create_loss(name, tail_fraction=kept)(logits, labels).item()
        assert ours == pytest.approx(cvar, rel=1e-10)


@pytest.mark.reference("spectral_risk")
def test_extremile_is_the_expected_maximum_of_r_draws(batch):
    logits, labels, *_ = batch
    part = slice(0, 6)
    rows = _ce_rows(logits[part], labels[part])
    for r in (1, 2, 3):
        draws = [max(rows[i] for i in idx) for idx in np.ndindex(*([len(rows)] * r))]
        loss = lossreg.create_loss("spectral_risk", spectrum="extremile", r=float(r))
        assert loss(logits[part], labels[part]).item() == pytest.approx(np.mean(draws))


@pytest.mark.reference("spectral_risk")
def test_esrm_weights_follow_the_exponential_spectrum(batch):
    logits, labels, *_ = batch
    rows = _sorted_rows(logits, labels)
    n, rho = len(rows), 3.0
    expected = 0.0
    for j, v in enumerate(rows, start=1):
        sigma = math.exp(-rho) * (math.exp(rho * j / n) - math.exp(rho * (j - 1) / n))
        expected += v * sigma / (1 - math.exp(-rho))
    loss = lossreg.create_loss("spectral_risk", spectrum="esrm", rho=rho)
    assert loss(logits, labels).item() == pytest.approx(expected, rel=1e-10)


def _permutahedron_argmax(losses, sigma, nu, penalty):
    """Maximise <q, l> - nu * D(q) over conv(perm sigma) with scipy (all subset constraints)."""
    import itertools

    from scipy.optimize import LinearConstraint, minimize

    n = len(losses)
    top = np.cumsum(sorted(sigma, reverse=True))
    rows, bounds = [], []
    for k in range(1, n):
        for subset in itertools.combinations(range(n), k):
            row = np.zeros(n)
            row[list(subset)] = 1.0
            rows.append(row)
            bounds.append(top[k - 1])
    constraints = [
        LinearConstraint(np.array(rows), -np.inf, np.array(bounds)),
        LinearConstraint(np.ones((1, n)), 1.0, 1.0),
    ]

    def objective(q):
        if penalty == "chi2":
            div = 0.5 * np.sum((q - 1.0 / n) ** 2)
        else:
            div = np.sum(q * np.log(np.clip(n * q, 1e-300, None)))
        return -(q @ losses - nu * div)

    q0 = np.full(n, 1.0 / n)
    result = minimize(
        objective,
        q0,
        constraints=constraints,
        method="trust-constr",
        bounds=[(1e-12, 1.0)] * n,
        options={"gtol": 1e-12, "xtol": 1e-12},
    )
    return result.x


@pytest.mark.reference("spectral_risk")
@pytest.mark.filterwarnings("ignore:delta_grad == 0.0")  # scipy's note on a linear objective
@pytest.mark.parametrize("penalty", ["chi2", "kl"])
def test_shift_cost_weights_solve_the_penalised_problem(penalty):
    losses = np.array([0.3, 2.0, 0.9, 1.4, 0.1])
    nu = 1.0
    loss = lossreg.create_loss(
        "spectral_risk", spectrum="esrm", rho=2.0, penalty=penalty, shift_cost=nu
    )
    ours = loss.weights(torch.tensor(losses, dtype=torch.float64)).numpy()
    from lossreg.plugins.robust_optimization.spectral import spectrum_weights

    sigma = spectrum_weights(5, "esrm", 0.5, 2.0, 2.0)
    ref = _permutahedron_argmax(losses, sigma, nu, penalty)
    np.testing.assert_allclose(ours, ref, atol=2e-4)
    assert ours.sum() == pytest.approx(1.0)


def test_superquantile_keeps_the_highest_fraction_not_the_lowest():
    # Pins the semantics deshift documents one way and codes the other way.
    pred = torch.tensor([[0.0], [1.0], [2.0], [3.0]], dtype=torch.float64)
    target = torch.zeros(4, dtype=torch.float64)
    loss = lossreg.create_loss("spectral_risk", base="mse", tail_fraction=0.25)
    assert loss(pred, target).item() == pytest.approx(9.0)
    with pytest.raises(ValueError, match="cannot honour sample_weight"):
        loss(pred, target, sample_weight=torch.ones(4))


# -- loss_reweighting --------------------------------------------------------------------------


@pytest.mark.reference("loss_reweighting")
@pytest.mark.parametrize("strategy", ["linupper", "quadratic", "extremes", "uniform"])
def test_loss_reweighting_matches_a_loop(batch, strategy):
    logits, labels, _, weights = batch
    rows = _ce_rows(logits, labels)
    delta, r = 0.7, 0.5
    lo, hi = min(rows), max(rows)
    scores = []
    for v in rows:
        u = 2 * delta * v / (hi - lo) - delta * (hi + lo) / (hi - lo)
        f = {
            "linupper": min(u + delta, delta),
            "quadratic": 1 - u * u / delta**2,
            "extremes": abs(u),
            "uniform": u,
        }[strategy]
        scores.append(math.exp(f / r))
    for s in (None, weights.tolist()):
        s_list = s or [1.0] * len(rows)
        num = sum(w * g * v for w, g, v in zip(s_list, scores, rows))
        den = sum(w * g for w, g in zip(s_list, scores))
        loss = lossreg.create_loss("loss_reweighting", strategy=strategy, delta=delta, r=r)
        sw = None if s is None else weights
        assert loss(logits, labels, sample_weight=sw).item() == pytest.approx(num / den)


def test_loss_reweighting_equal_losses_give_the_plain_mean():
    logits = torch.zeros(3, 2, dtype=torch.float64)
    labels = torch.tensor([0, 1, 0])
    value = lossreg.create_loss("loss_reweighting")(logits, labels)
    assert value.item() == pytest.approx(math.log(2.0))


# -- irm / vrex --------------------------------------------------------------------------------


def _dscale(logits, labels):
    """d CE(w z, y) / d w at w = 1, per row: sum_c p_c z_c - z_y (closed form)."""
    out = []
    for z, y in zip(logits.tolist(), labels.tolist()):
        top = max(z)
        e = [math.exp(v - top) for v in z]
        out.append(sum(a * v for a, v in zip(e, z)) / sum(e) - z[y])
    return out


@pytest.mark.reference("irm")
@pytest.mark.parametrize("penalty", ["squared", "split_product"])
def test_irm_matches_the_closed_form_scale_gradient(batch, penalty):
    logits, labels, group, _ = batch
    rows, grads = _ce_rows(logits, labels), _dscale(logits, labels)
    risks, pens = [], []
    for g in sorted(set(group.tolist())):
        idx = [i for i, k in enumerate(group.tolist()) if k == g]
        risks.append(np.mean([rows[i] for i in idx]))
        if penalty == "squared":
            pens.append(np.mean([grads[i] for i in idx]) ** 2)
        else:
            even, odd = idx[0::2], idx[1::2]
            pens.append(np.mean([grads[i] for i in even]) * np.mean([grads[i] for i in odd]))
    for name in ("irm", "irm_v1", "irm_penalty"):
        loss = lossreg.create_loss(name, penalty_weight=50.0, anneal_iters=0, penalty=penalty)
        ours = loss(logits, labels, group=group).item()
        assert ours == pytest.approx(np.mean(risks) + 50.0 * np.mean(pens), rel=1e-9)


def test_irm_anneals_and_trains_the_penalty(batch):
    logits, labels, group, _ = batch
    loss = lossreg.create_loss("irm", penalty_weight=1e3, anneal_iters=2)
    values = [loss(logits, labels, group=group).item() for _ in range(3)]
    assert values[0] == values[1] < values[2]
    loss.eval()
    before = int(loss.step_)
    with torch.no_grad():
        loss(logits, labels, group=group)
    assert int(loss.step_) == before
    z = logits.clone().requires_grad_()
    loss.train()
    loss(z, labels, group=group).backward()
    plain = logits.clone().requires_grad_()
    lossreg.create_loss("irm", penalty_weight=0.0, anneal_iters=0)(
        plain, labels, group=group
    ).backward()
    assert not torch.allclose(z.grad, plain.grad)  # the penalty reaches the logits


@pytest.mark.reference("vrex")
def test_vrex_matches_a_loop(batch):
    logits, labels, group, weights = batch
    rows = _ce_rows(logits, labels)
    risks = []
    for g in sorted(set(group.tolist())):
        idx = [i for i, k in enumerate(group.tolist()) if k == g]
        w = [weights[i].item() for i in idx]
        risks.append(sum(wi * rows[i] for wi, i in zip(w, idx)) / sum(w))
    mean = np.mean(risks)
    expected = mean + 7.0 * np.mean([(r - mean) ** 2 for r in risks])
    for name in ("vrex", "v_rex"):
        loss = lossreg.create_loss(name, penalty_weight=7.0, anneal_iters=0)
        ours = loss(logits, labels, group=group, sample_weight=weights).item()
        assert ours == pytest.approx(expected, rel=1e-10)
    early = lossreg.create_loss("vrex", penalty_weight=7.0)(
        logits, labels, group=group, sample_weight=weights
    )
    assert early.item() == pytest.approx(mean + np.mean([(r - mean) ** 2 for r in risks]))


def test_wrappers_fit_through_the_estimator():
    rng = np.random.default_rng(1)
    X, y, group = _spurious(300, 0.8, rng)
    for loss in ("kl_dro", "spectral_risk", "loss_reweighting", "irm", "vrex"):
        clf = LossClassifier(loss=loss, max_iter=5, lr=0.01, random_state=0, batch_size=100)
        clf.fit(X, y, group=group)
        assert clf.predict_proba(X).shape == (300, 2)


# -- group_cvar --------------------------------------------------------------------------------


def _group_cvar_reference(steps, n_groups, alpha, gamma, mu, frac):
    """update_exp_avg_loss + compute_robust_loss_greedy of the reference code, plain Python."""
    ema, init = [0.0] * n_groups, [False] * n_groups
    values = []
    for losses, group in steps:
        group_loss, count = [], []
        for g in range(n_groups):
            rows = [v for v, k in zip(losses, group) if k == g]
            count.append(len(rows))
            group_loss.append(sum(rows) / len(rows) if rows else 0.0)
        for g in range(n_groups):
            prev = (1 - gamma * (count[g] > 0)) * init[g]
            ema[g] = ema[g] * prev + group_loss[g] * (1 - prev)
            init[g] = init[g] or count[g] > 0
        order = sorted(range(n_groups), key=lambda g: -ema[g])
        weights, total = {}, 0.0
        for g in order:
            total += frac[g]
            weights[g] = frac[g] / alpha if total <= alpha else 0.0
        leftover = [g for g in order if weights[g] == 0.0]
        if leftover:
            weights[leftover[0]] = 1 - sum(weights.values())
        w = [frac[g] * mu + weights[g] * (1 - mu) for g in range(n_groups)]
        values.append(sum(a * b for a, b in zip(w, group_loss)))
    return values


@pytest.mark.reference("group_cvar")
@pytest.mark.parametrize(("alpha", "mu"), [(0.2, 0.0), (0.5, 0.0), (0.3, 0.25)])
def test_group_cvar_matches_the_reference_over_several_steps(batch, alpha, mu):
    logits, labels, group, _ = batch
    counts = [int((group == g).sum()) for g in range(4)]
    loss = lossreg.create_loss(
        "group_cvar", alpha=alpha, min_var_weight=mu, gamma=0.3, group_counts=counts
    )
    ours, steps = [], []
    for k in range(3):
        part = slice(8 * k, 8 * k + 8)
        ours.append(loss(logits[part], labels[part], group=group[part]).item())
        steps.append((_ce_rows(logits[part], labels[part]), group[part].tolist()))
    frac = [c / sum(counts) for c in counts]
    expected = _group_cvar_reference(steps, 4, alpha, 0.3, mu, frac)
    assert ours == pytest.approx(expected, rel=1e-10)


def test_group_cvar_running_fractions_and_guards(batch):
    logits, labels, group, _ = batch
    counts = [int((group == g).sum()) for g in range(4)]
    running = lossreg.create_loss("group_cvar", alpha=0.3)
    fixed = lossreg.create_loss("group_cvar", alpha=0.3, group_counts=counts)
    # After one pass over every row the running shares are the training shares.
    running(logits, labels, group=group)
    fixed(logits, labels, group=group)
    running.eval()
    fixed.eval()
    a = running(logits, labels, group=group).item()
    assert a == pytest.approx(fixed(logits, labels, group=group).item())
    everything = lossreg.create_loss("group_cvar", alpha=1.0)
    value = everything(logits, labels, group=group).item()
    assert math.isfinite(value)
    with pytest.raises(lossreg.InvalidLossParameterError, match="needs group_counts"):
        lossreg.create_loss("group_cvar", adj=1.0)


# -- holistic_robust ---------------------------------------------------------------------------


def _hr_generic(losses, alpha, r):
    """The reference's convex program, solved by scipy over (p, s) with q = [P - s, sum s]."""
    from scipy.optimize import LinearConstraint, NonlinearConstraint, minimize

    n = len(losses)
    ext = np.append(losses, losses.max())

    def split(x):
        p, s = x[: n + 1], x[n + 1 :]
        return p, np.append(1.0 / n - s, s.sum())

    def kl(x):
        p, q = split(x)
        mask = q > 1e-15
        return np.sum(q[mask] * np.log(q[mask] / np.clip(p[mask], 1e-300, None)))

    sums = np.zeros((2, 2 * n + 1))
    sums[0, : n + 1] = 1.0  # p on the simplex
    sums[1, n + 1 :] = 1.0  # poisoning budget
    x0 = np.concatenate([np.full(n + 1, 1.0 / (n + 1)), np.full(n, alpha / (2 * n))])
    best = minimize(
        lambda x: -(split(x)[0] @ ext),
        x0,
        method="trust-constr",
        bounds=[(1e-12, 1.0)] * (n + 1) + [(0.0, 1.0 / n)] * n,
        constraints=[
            LinearConstraint(sums, [1.0, 0.0], [1.0, alpha]),
            NonlinearConstraint(kl, -np.inf, r),
        ],
        options={"gtol": 1e-12, "xtol": 1e-14, "maxiter": 5000},
    )
    return -best.fun


@pytest.mark.reference("holistic_robust")
@pytest.mark.filterwarnings("ignore:delta_grad == 0.0")  # scipy's note on a linear objective
@pytest.mark.parametrize(("alpha", "r"), [(0.1, 0.01), (0.2, 0.1), (0.05, 0.5), (0.0, 0.1)])
def test_holistic_robust_matches_a_generic_convex_solver(batch, alpha, r):
    logits, labels, *_ = batch
    part = slice(0, 7)
    losses = np.array(_ce_rows(logits[part], labels[part]))
    loss = lossreg.create_loss("holistic_robust", alpha=alpha, r=r)
    ours = loss(logits[part], labels[part]).item()
    ref = _hr_generic(losses, max(alpha, 1e-6), r)
    assert ours == pytest.approx(ref, rel=1e-6)
    assert ours >= losses.mean() - 1e-12


def test_holistic_robust_guards_and_gradient(batch):
    logits, labels, *_ = batch
    erm = lossreg.create_loss("holistic_robust", alpha=0.0, r=0.0)(logits, labels)
    rows = torch.tensor(_ce_rows(logits, labels), dtype=torch.float64)
    assert erm.item() == pytest.approx(rows.mean().item())
    loss = lossreg.create_loss("holistic_robust", alpha=0.1, r=0.0)
    same_as = lossreg.create_loss("holistic_robust", alpha=0.1, r=0.001)
    assert loss(logits, labels).item() == pytest.approx(same_as(logits, labels).item())
    z = logits.clone().requires_grad_()
    loss(z, labels).backward()
    assert torch.isfinite(z.grad).all()
    from lossreg.plugins.robust_optimization.holistic import holistic_weights

    p = holistic_weights(rows, 0.1, 0.001)
    assert p.sum().item() == pytest.approx(1.0)
    assert (p >= 0).all()


# -- domain_penalised --------------------------------------------------------------------------


@pytest.mark.reference("domain_penalised")
def test_domain_penalised_matches_the_papers_epoch_update(batch):
    logits, labels, group, weights = batch
    rows = _ce_rows(logits, labels)
    loss = lossreg.create_loss("domain_penalised", reduction="none")
    first = loss(logits, labels, group=group)
    assert first.tolist() == pytest.approx(rows)  # initial weights are 1
    loss.set_epoch(1, 3)
    means = {}
    for g in sorted(set(group.tolist())):
        means[g] = np.mean([v for v, k in zip(rows, group.tolist()) if k == g])
    norm = sum(math.exp(v) for v in means.values())
    expected = [math.exp(means[g]) / norm * v for v, g in zip(rows, group.tolist())]
    assert loss(logits, labels, group=group).tolist() == pytest.approx(expected, rel=1e-10)
    mean = lossreg.create_loss("domain_penalised")
    mean.load_state_dict(loss.state_dict())
    value = mean(logits, labels, group=group, sample_weight=weights).item()
    w = weights.tolist()
    assert value == pytest.approx(sum(a * b for a, b in zip(w, expected)) / sum(w))


def test_domain_penalised_counts_training_rows_only_and_fits(batch):
    logits, labels, group, _ = batch
    loss = lossreg.create_loss("domain_penalised")
    loss.eval()
    loss(logits, labels, group=group)
    loss.set_epoch(1, 2)
    assert (loss.weights_ == 1).all()
    rng = np.random.default_rng(2)
    X, y, g = _spurious(200, 0.9, rng)
    clf = LossClassifier(loss="domain_penalised", max_iter=3, random_state=0).fit(X, y, group=g)
    assert clf.criterion_.weights_.sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["group_dro", "group_cvar", "domain_penalised", "irm"])
def test_grown_state_survives_a_state_dict_round_trip(batch, name):
    import copy
    import pickle

    logits, labels, group, _ = batch
    loss = lossreg.create_loss(name)
    loss(logits, labels, group=group)
    if hasattr(loss, "set_epoch"):
        loss.set_epoch(1, 2)
    fresh = lossreg.create_loss(name)
    fresh.load_state_dict(loss.state_dict())
    loss.eval()
    fresh.eval()
    for other in (fresh, copy.deepcopy(loss), pickle.loads(pickle.dumps(loss))):
        other.eval()
        torch.testing.assert_close(
            other(logits, labels, group=group), loss(logits, labels, group=group)
        )


_WRAPPERS = [
    "group_dro",
    "group_cvar",
    "kl_dro",
    "spectral_risk",
    "holistic_robust",
    "loss_reweighting",
    "domain_penalised",
    "irm",
    "vrex",
]


@pytest.mark.parametrize("name", _WRAPPERS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_wrappers_keep_dtype_and_finite_gradients_at_extreme_logits(name, dtype):
    gen = torch.Generator().manual_seed(3)
    logits = (torch.randn(12, 3, generator=gen) * 1e3).to(dtype).requires_grad_()
    labels = torch.randint(0, 3, (12,), generator=gen)
    group = torch.arange(12) % 3
    loss = lossreg.create_loss(name, **({"anneal_iters": 0} if name in ("irm", "vrex") else {}))
    value = loss(logits, labels, group=group)
    assert value.dtype == dtype
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name", _WRAPPERS)
def test_wrapper_sum_is_mean_times_total_weight(batch, name):
    logits, labels, group, _ = batch
    mean = lossreg.create_loss(name)(logits, labels, group=group)
    total = lossreg.create_loss(name, reduction="sum")(logits, labels, group=group)
    assert total.item() == pytest.approx(mean.item() * len(labels))
