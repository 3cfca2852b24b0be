"""More label-noise-robust losses: robust log loss and the prune mode of truncated GCE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lossreg
from lossreg.testing import parametrize_with_loss_checks

N_CLASSES = 4


@pytest.fixture(scope="module")
def registry():
    return lossreg.Registry(entry_points=False)


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(7)
    logits = torch.randn(20, N_CLASSES, generator=gen, dtype=torch.float64) * 2
    labels = torch.randint(0, N_CLASSES, (20,), generator=gen)
    weights = torch.rand(20, generator=gen, dtype=torch.float64)
    return logits, labels, weights


def _softmax_row(row: list[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    total = sum(exps)
    return [e / total for e in exps]


def _close(ours: torch.Tensor, expected: list[float], rtol: float = 1e-10) -> None:
    np.testing.assert_allclose(ours.detach().numpy(), np.array(expected), rtol=rtol, atol=1e-12)


# -- robust log loss ------------------------------------------------------------------------


def _rll_loop(logits: torch.Tensor, labels: torch.Tensor, alpha: float) -> list[float]:
    out = []
    for row, y in zip(logits.tolist(), labels.tolist()):
        p = _softmax_row(row)
        c = len(p)
        value = math.log((alpha + 1) / alpha) - math.log(alpha + p[y])
        for k in range(c):
            if k != y:
                value += math.log(alpha + p[k]) / (c - 1)
        out.append(value)
    return out


@pytest.mark.reference("rll")
@pytest.mark.parametrize("alpha", [0.01, 0.1, 1.0, 10.0])
def test_rll_matches_loop(registry, data, alpha):
    logits, labels, _ = data
    ours = registry.create_loss("rll", alpha=alpha, reduction="none")(logits, labels)
    _close(ours, _rll_loop(logits, labels, alpha))


@pytest.mark.parametrize("alpha", [0.1, 1.0])
def test_rll_is_symmetric_zero_at_a_perfect_prediction_and_bounded(registry, data, alpha):
    logits, _, _ = data
    loss = registry.create_loss("rll", alpha=alpha, reduction="none")
    per_label = torch.stack(
        [loss(logits, torch.full((logits.shape[0],), k)) for k in range(N_CLASSES)], dim=1
    )
    const = math.log((alpha + 1) / alpha)
    # Symmetry: the sum over all labels does not depend on the prediction.
    torch.testing.assert_close(
        per_label.sum(dim=1), torch.full_like(per_label[:, 0], N_CLASSES * const)
    )
    assert bool((per_label >= -1e-12).all()) and bool((per_label <= 2 * const + 1e-12).all())
    confident = torch.tensor([[60.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    assert abs(float(loss(confident, torch.tensor([0])))) < 1e-12
    # A function of the probabilities: adding a constant to every logit changes nothing.
    labels = torch.arange(logits.shape[0]) % N_CLASSES
    torch.testing.assert_close(loss(logits + 5.0, labels), loss(logits, labels))


def test_rll_sample_weights_give_a_weighted_mean(registry, data):
    logits, labels, weights = data
    rows = registry.create_loss("rll", reduction="none")(logits, labels)
    mean = registry.create_loss("rll")(logits, labels, sample_weight=weights)
    torch.testing.assert_close(mean, (rows * weights).sum() / weights.sum())


# -- truncated GCE, prune mode --------------------------------------------------------------


def _lq(p: float, q: float) -> float:
    return (1 - p**q) / q


def _tgce_prune_loop(batches, q, k, prune_start, prune_every):
    """Replay TGCELoss: a mask of ones, refreshed to 1[p_t > k] in refresh epochs."""
    mask: dict[int, float] = {}
    out = []
    for epoch, logits, labels, index in batches:
        refresh = epoch + 1 >= prune_start and (epoch + 1) % prune_every == 0
        rows = []
        for row, y, i in zip(logits.tolist(), labels.tolist(), index.tolist()):
            p_t = _softmax_row(row)[y]
            if refresh:
                mask[i] = 1.0 if p_t > k else 0.0
            rows.append(mask.get(i, 1.0) * _lq(p_t, q))
        out.append(rows)
    return out


@pytest.mark.reference("truncated_gce")
def test_truncated_gce_prune_matches_a_mask_replay_over_epochs(registry):
    gen = torch.Generator().manual_seed(11)
    q, k, start, every = 0.7, 0.3, 3, 2
    loss = registry.create_loss(
        "truncated_gce",
        q=q,
        k=k,
        mode="prune",
        prune_start=start,
        prune_every=every,
        reduction="none",
    )
    batches = []
    for epoch in range(7):
        for half in (torch.arange(0, 6), torch.arange(6, 12)):
            logits = torch.randn(6, N_CLASSES, generator=gen, dtype=torch.float64) * 2
            labels = torch.randint(0, N_CLASSES, (6,), generator=gen)
            batches.append((epoch, logits, labels, half))
    ours = []
    for epoch, logits, labels, index in batches:
        loss.set_epoch(epoch, 7)
        ours.append(loss(logits, labels, sample_index=index))
    expected = _tgce_prune_loop(batches, q, k, start, every)
    for got, want in zip(ours, expected):
        _close(got, want)
    # Refreshes happened (epochs 4 and 6, counted from 1) and pruned some rows.
    assert loss.keep_.shape == (12,) and not bool(loss.keep_.all())


def test_truncated_gce_prune_before_start_is_gce_and_fresh_mask_has_clamp_gradients(registry, data):
    logits, labels, _ = data
    index = torch.arange(logits.shape[0])
    gce = registry.create_loss("generalized_cross_entropy", reduction="none")(logits, labels)
    prune = registry.create_loss("truncated_gce", mode="prune", reduction="none")
    prune.set_epoch(10, 100)  # epoch 11 < prune_start=40: every row kept
    torch.testing.assert_close(prune(logits, labels, sample_index=index), gce)
    assert prune.keep_.numel() == 0

    x1 = logits.clone().requires_grad_(True)
    x2 = logits.clone().requires_grad_(True)
    prune.set_epoch(39, 100)  # epoch 40: refresh
    pruned = prune(x1, labels, sample_index=index)
    clamp = registry.create_loss("truncated_gce", reduction="none")(x2, labels)
    p_t = logits.softmax(dim=1).gather(1, labels[:, None])[:, 0]
    dropped = p_t <= 0.5
    assert bool(dropped.any()) and bool((~dropped).any())
    lq_k = (1 - 0.5**0.7) / 0.7
    torch.testing.assert_close(pruned, torch.where(dropped, torch.zeros_like(clamp), clamp))
    torch.testing.assert_close(clamp[dropped], torch.full_like(clamp[dropped], lq_k))
    pruned.sum().backward()
    clamp.sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_truncated_gce_prune_mask_is_held_between_refreshes_and_only_in_training(registry):
    loss = registry.create_loss(
        "truncated_gce", k=0.5, mode="prune", prune_start=2, prune_every=2, reduction="none"
    )
    wrong = torch.tensor([[0.0, 3.0], [3.0, 0.0]], dtype=torch.float64)
    right = torch.tensor([[3.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    labels, index = torch.tensor([0, 1]), torch.tensor([4, 1])
    loss.set_epoch(1, 6)  # epoch 2: refresh, both rows pruned
    assert loss(wrong, labels, sample_index=index).tolist() == [0.0, 0.0]
    assert loss.keep_.tolist() == [True, False, True, True, False]
    loss.set_epoch(2, 6)  # epoch 3: no refresh, the rows stay pruned though now well fit
    assert loss(right, labels, sample_index=index).tolist() == [0.0, 0.0]
    loss.eval()
    loss.set_epoch(3, 6)  # epoch 4 refreshes, but not in eval mode
    assert loss(right, labels, sample_index=index).tolist() == [0.0, 0.0]
    loss.train()
    again = loss(right, labels, sample_index=index)
    assert bool((again > 0).all())
    # A row id never seen in a refresh is kept (epoch 5 does not refresh).
    loss.set_epoch(4, 6)
    assert float(loss(wrong[:1], labels[:1], sample_index=torch.tensor([40]))) > 0


def test_truncated_gce_prune_needs_sample_index_and_honours_sample_weight(registry, data):
    logits, labels, weights = data
    loss = registry.create_loss("truncated_gce", mode="prune", prune_start=1, prune_every=1)
    with pytest.raises(ValueError, match="sample_index"):
        loss(logits, labels)
    index = torch.arange(logits.shape[0])
    rows = registry.create_loss(
        "truncated_gce", mode="prune", prune_start=1, prune_every=1, reduction="none"
    )(logits, labels, sample_index=index)
    mean = loss(logits, labels, sample_weight=weights, sample_index=index)
    torch.testing.assert_close(mean, (rows * weights).sum() / weights.sum())


def test_truncated_gce_prune_state_reloads_into_a_fresh_loss(registry, data):
    logits, labels, _ = data
    params = {"mode": "prune", "prune_start": 1, "prune_every": 1, "reduction": "none"}
    loss = registry.create_loss("truncated_gce", **params)
    loss(logits, labels, sample_index=torch.arange(logits.shape[0]))
    fresh = registry.create_loss("truncated_gce", **params)
    fresh.load_state_dict(loss.state_dict())
    assert torch.equal(fresh.keep_, loss.keep_)
    fresh.eval()
    loss.eval()
    index = torch.arange(logits.shape[0])
    torch.testing.assert_close(
        fresh(logits + 1.0, labels, sample_index=index),
        loss(logits + 1.0, labels, sample_index=index),
    )


def test_classifier_trains_with_truncated_gce_prune_mode():
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=60, n_features=6, n_classes=3, n_informative=4, random_state=0
    )
    clf = lossreg.LossClassifier(
        loss="truncated_gce",
        loss__mode="prune",
        loss__k=0.2,
        loss__prune_start=2,
        loss__prune_every=2,
        max_iter=4,
        random_state=0,
    ).fit(X, y)
    keep = clf.criterion_.keep_
    assert keep.shape == (60,)  # the mask covers this fit's training rows
    assert clf.predict_proba(X).shape == (60, 3)


_PRUNE_CASE = ("truncated_gce", {"mode": "prune", "k": 0.2, "prune_start": 1, "prune_every": 1})


@parametrize_with_loss_checks([_PRUNE_CASE], registry=lossreg.Registry(entry_points=False))
def test_truncated_gce_prune_mode_conformance(loss, check):
    check(loss)


# -- dynamic loss gate ----------------------------------------------------------------------


def _bimodal_losses(n_clean=150, n_noisy=50, seed=0):
    rng = np.random.default_rng(seed)
    clean = np.abs(rng.normal(0.3, 0.15, size=n_clean))
    noisy = rng.normal(2.5, 0.5, size=n_noisy)
    return np.concatenate([clean, noisy])


def _sklearn_gate_threshold(losses: np.ndarray) -> float:
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(2, tol=1e-12, max_iter=2000, reg_covar=1e-12, random_state=0)
    gmm.fit(losses.reshape(-1, 1))
    low = int(np.argmin(gmm.means_[:, 0]))
    grid = np.linspace(gmm.means_[:, 0].min(), gmm.means_[:, 0].max(), 20001)
    clean = gmm.predict_proba(grid.reshape(-1, 1))[:, low]
    return float(grid[np.argmax(clean < 0.5)])  # first grid point where "clean" loses


def test_gate_mixture_and_threshold_match_scikit_learn():
    from sklearn.mixture import GaussianMixture

    from lossreg.plugins.robust.gate import fit_two_gaussians, gmm_threshold

    losses = _bimodal_losses()
    weight, mean, std = fit_two_gaussians(torch.as_tensor(losses))
    gmm = GaussianMixture(2, tol=1e-12, max_iter=2000, reg_covar=1e-12, random_state=0)
    gmm.fit(losses.reshape(-1, 1))
    order = np.argsort(gmm.means_[:, 0])
    np.testing.assert_allclose(weight.numpy(), gmm.weights_[order], rtol=1e-4)
    np.testing.assert_allclose(mean.numpy(), gmm.means_[order, 0], rtol=1e-4)
    np.testing.assert_allclose(std.numpy(), np.sqrt(gmm.covariances_[order, 0, 0]), rtol=1e-4)
    tau = gmm_threshold(weight, mean, std)
    assert abs(tau - _sklearn_gate_threshold(losses)) < 1e-3


def _gate_loop(logits, labels, tau, confidence):
    out = []
    for row, y in zip(logits.tolist(), labels.tolist()):
        p = _softmax_row(row)
        ce = -math.log(p[y])
        if ce <= tau:
            out.append(ce)
            continue
        top = max(range(len(p)), key=lambda k: p[k])
        out.append(-math.log(p[top]) if p[top] >= confidence else 0.0)
    return out


@pytest.mark.reference("dynamic_loss_gate")
def test_dynamic_loss_gate_matches_sklearn_gmm_and_a_row_loop(registry):
    gen = torch.Generator().manual_seed(5)
    gate = registry.create_loss(
        "dynamic_loss_gate", confidence=0.6, warmup_epochs=1, reduction="none"
    )
    gate.set_epoch(0, 3)
    # Epoch 0 (warm-up): plain CE on every row, and the losses fill the pool.
    pools = []
    for _ in range(4):
        logits = torch.randn(50, N_CLASSES, generator=gen, dtype=torch.float64) * 3
        labels = torch.randint(0, N_CLASSES, (50,), generator=gen)
        ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
        torch.testing.assert_close(gate(logits, labels), ce)
        pools.append(ce.numpy())
    gate.set_epoch(1, 3)  # fits the mixture on epoch 0's 200 losses
    tau = _sklearn_gate_threshold(np.concatenate(pools).astype(np.float32))
    assert abs(float(gate.tau_) - tau) < 1e-3
    logits = torch.randn(40, N_CLASSES, generator=gen, dtype=torch.float64) * 3
    labels = torch.randint(0, N_CLASSES, (40,), generator=gen)
    ours = gate(logits, labels)
    _close(ours, _gate_loop(logits, labels, float(gate.tau_), 0.6))
    assert int(gate.n_relabelled_) > 0 and int(gate.n_dropped_) > 0


def test_dynamic_loss_gate_schedule_pool_and_eval_mode(registry, data):
    logits, labels, _ = data
    gate = registry.create_loss("dynamic_loss_gate", warmup_epochs=2, refit_every=2)
    gate.set_epoch(0, 10)
    gate(logits, labels)
    assert gate.pool_.shape == (logits.shape[0],)
    gate.eval()
    gate(logits, labels)  # evaluation losses do not enter the pool
    assert gate.pool_.shape == (logits.shape[0],)
    gate.train()
    gate.set_epoch(1, 10)  # still warming up: no fit, the pool restarts
    assert math.isinf(float(gate.tau_)) and gate.pool_.numel() == 0
    gate(logits, labels)
    gate.set_epoch(2, 10)  # first fit
    first = float(gate.tau_)
    assert math.isfinite(first) and gate.gmm_.shape == (2, 3)
    gate(logits * 3, labels)
    gate.set_epoch(3, 10)  # refit_every=2: epoch 3 keeps the old mixture
    assert float(gate.tau_) == first
    gate(logits * 3, labels)
    gate.set_epoch(4, 10)
    assert float(gate.tau_) != first
    fresh = registry.create_loss("dynamic_loss_gate", warmup_epochs=2, refit_every=2)
    fresh.load_state_dict(gate.state_dict())
    assert float(fresh.tau_) == float(gate.tau_) and torch.equal(fresh.gmm_, gate.gmm_)


def test_dynamic_loss_gate_base_choice_and_sample_weight(registry, data):
    logits, labels, weights = data
    focal = registry.create_loss("dynamic_loss_gate", base="focal", reduction="none")
    ref = registry.create_loss("focal", reduction="none")(logits, labels)
    torch.testing.assert_close(focal(logits, labels), ref)  # warm-up: the base itself
    for bad in ("no_such_loss", "knowledge_distillation", "mse"):
        with pytest.raises(lossreg.InvalidLossParameterError, match="base"):
            registry.create_loss("dynamic_loss_gate", base=bad)
    gate = registry.create_loss("dynamic_loss_gate", reduction="none")
    gate.tau_.fill_(1.0)
    rows = gate(logits, labels)
    gate_mean = registry.create_loss("dynamic_loss_gate")
    gate_mean.tau_.fill_(1.0)
    mean = gate_mean(logits, labels, sample_weight=weights)
    torch.testing.assert_close(mean, (rows * weights).sum() / weights.sum())


def test_dynamic_loss_gate_base_with_class_counts(registry, data):
    logits, labels, _ = data
    counts = [9, 5, 4, 2]
    spec = registry.get_spec("dynamic_loss_gate")
    assert spec.data_params_of({**spec.defaults, "base": "ldam"}) == ("class_counts",)
    assert spec.data_params_of(spec.defaults) == ()
    with pytest.raises(lossreg.InvalidLossParameterError, match="needs the data parameter"):
        registry.create_loss("dynamic_loss_gate", base="ldam")
    with pytest.raises(lossreg.InvalidLossParameterError, match="no parameter 'class_counts'"):
        registry.create_loss("dynamic_loss_gate", class_counts=counts)  # cross_entropy needs none
    gate = registry.create_loss(
        "dynamic_loss_gate", base="ldam", class_counts=counts, confidence=0.5, reduction="none"
    )
    assert list(gate.base_loss.class_counts) == counts and gate.data_params_ == ("class_counts",)
    ldam = registry.create_loss("ldam", class_counts=counts, reduction="none")
    base = ldam(logits, labels)
    torch.testing.assert_close(gate(logits, labels), base)  # warm-up: the base itself
    tau = float(base.median())
    gate.tau_.fill_(tau)
    probs = logits.softmax(dim=1)
    expected = []
    for i in range(logits.shape[0]):
        if float(base[i]) <= tau:
            expected.append(float(base[i]))
        elif float(probs[i].max()) >= 0.5:
            predicted = torch.tensor([int(probs[i].argmax())])
            expected.append(float(ldam(logits[i : i + 1], predicted)[0]))
        else:
            expected.append(0.0)
    _close(gate(logits, labels), expected)
    assert int(gate.n_relabelled_) + int(gate.n_dropped_) > 0


def test_classifier_gives_dynamic_loss_gate_base_the_folds_class_counts():
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=60,
        n_features=6,
        n_classes=3,
        n_informative=4,
        weights=[0.6, 0.3, 0.1],
        random_state=0,
    )
    clf = lossreg.LossClassifier(
        loss="dynamic_loss_gate",
        loss__base="ldam",
        loss__warmup_epochs=1,
        max_iter=3,
        random_state=0,
    ).fit(X, y)
    expected = np.bincount(y).tolist()
    assert list(clf.criterion_.base_loss.class_counts) == expected
    assert clf.data_params_ == {"class_counts": expected}
    assert math.isfinite(float(clf.criterion_.tau_))


def test_classifier_trains_with_dynamic_loss_gate():
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=60, n_features=6, n_classes=3, n_informative=4, random_state=0
    )
    clf = lossreg.LossClassifier(
        loss="dynamic_loss_gate", loss__warmup_epochs=1, max_iter=3, random_state=0
    ).fit(X, y)
    assert math.isfinite(float(clf.criterion_.tau_))
    assert clf.predict_proba(X).shape == (60, 3)
