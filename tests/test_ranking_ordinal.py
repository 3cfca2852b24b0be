"""Ranking and ordinal losses against float64 loops, scipy's Wasserstein distance and torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import wasserstein_distance

import lossreg
from lossreg import InvalidReductionError, LossClassifier

K = 5


@pytest.fixture(scope="module")
def registry():
    return lossreg.Registry(entry_points=False)


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(11)
    logits = torch.randn(20, K, generator=gen, dtype=torch.float64) * 2
    labels = torch.randint(0, K, (20,), generator=gen)
    weights = torch.rand(20, generator=gen, dtype=torch.float64)
    return logits, labels, weights


def _softmax(row: list[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    return [e / sum(exps) for e in exps]


# -- bpr ------------------------------------------------------------------------------------


def _bpr_loop(scores, relevance, group, weight, sigma):
    num = den = 0.0
    for a in range(len(scores)):
        for b in range(len(scores)):
            if group[a] == group[b] and relevance[a] > relevance[b]:
                w = weight[a] * weight[b]
                num += w * math.log1p(math.exp(-sigma * (scores[a] - scores[b])))
                den += w
    return num, den


@pytest.mark.reference("bpr")
@pytest.mark.parametrize("sigma", [1.0, 0.5, 3.0])
def test_bpr_matches_pair_loop(registry, sigma):
    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(18, generator=gen, dtype=torch.float64)
    relevance = torch.randint(0, 3, (18,), generator=gen).double()
    group = torch.randint(0, 3, (18,), generator=gen)
    weight = torch.rand(18, generator=gen, dtype=torch.float64)
    num, den = _bpr_loop(
        scores.tolist(), relevance.tolist(), group.tolist(), weight.tolist(), sigma
    )
    mean = registry.create_loss("bpr", sigma=sigma)
    total = registry.create_loss("bpr", sigma=sigma, reduction="sum")
    assert mean(scores, relevance, sample_weight=weight, group=group).item() == pytest.approx(
        num / den, rel=1e-12
    )
    assert total(scores[:, None], relevance, sample_weight=weight, group=group).item() == (
        pytest.approx(num, rel=1e-12)
    )


@pytest.mark.reference("bpr")
def test_bpr_equals_bce_with_logits_on_pair_differences(registry):
    # RankNet: binary cross-entropy of "a above b" (target 1) on the score difference.
    scores = torch.tensor([0.3, -1.2, 2.0, 0.7], dtype=torch.float64)
    relevance = torch.tensor([2.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    a = torch.tensor([0, 0, 0, 1, 3])
    b = torch.tensor([1, 2, 3, 2, 2])
    ref = F.binary_cross_entropy_with_logits(scores[a] - scores[b], torch.ones(5).double())
    assert registry.create_loss("ranknet")(scores, relevance).item() == pytest.approx(ref.item())


def test_bpr_edge_cases(registry):
    loss = registry.create_loss("bpr")
    scores = torch.tensor([1e3, -1e3, 5.0], requires_grad=True)
    value = loss(scores, torch.tensor([0.0, 1.0, 1.0]), group=torch.tensor([0, 0, 1]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(scores.grad).all()
    assert value.item() == pytest.approx(2e3)
    tied = loss(torch.randn(4), torch.ones(4), group=torch.arange(4))
    assert tied.item() == 0.0
    with pytest.raises(InvalidReductionError):
        registry.create_loss("bpr", reduction="none")


# -- cosine_contrastive ---------------------------------------------------------------------


@pytest.mark.reference("cosine_contrastive")
def test_cosine_contrastive_matches_loop(registry, data):
    logits, labels, weights = data
    cos = torch.tanh(logits)
    margin, w = 0.3, 4.0
    expected = []
    for row, y in zip(cos.tolist(), labels.tolist()):
        negatives = [max(0.0, s - margin) for c, s in enumerate(row) if c != y]
        expected.append(max(0.0, 1 - row[y]) + w * sum(negatives) / len(negatives))
    loss = registry.create_loss("ccl", margin=margin, negative_weight=w, reduction="none")
    np.testing.assert_allclose(loss(cos, labels).numpy(), expected, rtol=1e-12)
    weighted = registry.create_loss("cosine_contrastive", margin=margin, negative_weight=w)
    ref = float(np.dot(expected, weights.numpy()) / weights.sum().item())
    assert weighted(cos, labels, sample_weight=weights).item() == pytest.approx(ref, rel=1e-12)


def test_cosine_contrastive_recommender_layout_is_target_zero(registry):
    # (N, 1+M) with the positive in column 0: RecBole's pos/neg split of the same matrix.
    cos = torch.tensor([[0.2, 0.9, 0.1, 0.6], [0.95, -0.3, 0.55, 0.4]], dtype=torch.float64)
    ref = (1 - cos[:, 0]).clamp_min(0) + 10 * (cos[:, 1:] - 0.5).clamp_min(0).mean(dim=1)
    ours = registry.create_loss("cosine_contrastive", reduction="none")(cos, torch.zeros(2))
    torch.testing.assert_close(ours, ref)


# -- ordinal --------------------------------------------------------------------------------


@pytest.mark.reference("ordinal_emd")
@pytest.mark.parametrize("r", [1, 2])
def test_ordinal_emd_matches_cdf_loop(registry, data, r):
    logits, labels, _ = data
    expected = []
    for row, y in zip(logits.tolist(), labels.tolist()):
        p = _softmax(row)
        total, cdf_p = 0.0, 0.0
        for k in range(K):
            cdf_p += p[k]
            cdf_q = 1.0 if k >= y else 0.0
            total += abs(cdf_q - cdf_p) ** r
        expected.append(total)
    loss = registry.create_loss("squared_emd", r=r, reduction="none")
    np.testing.assert_allclose(loss(logits, labels).numpy(), expected, rtol=1e-10)


@pytest.mark.reference("ordinal_emd")
def test_ordinal_emd_r1_is_scipy_wasserstein_with_distribution_targets(registry, data):
    logits, _, _ = data
    gen = torch.Generator().manual_seed(5)
    targets = torch.rand(logits.shape, generator=gen, dtype=torch.float64)
    targets = targets / targets.sum(dim=1, keepdim=True)
    levels = np.arange(K, dtype=float)
    probs = logits.softmax(dim=1).numpy()
    expected = [
        wasserstein_distance(levels, levels, u_weights=p, v_weights=q)
        for p, q in zip(probs, targets.numpy())
    ]
    ours = registry.create_loss("ordinal_emd", r=1, reduction="none")(logits, targets)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.reference("ntl_wasserstein")
def test_ntl_wasserstein_is_scipy_wasserstein_to_a_point_mass(registry, data):
    logits, labels, weights = data
    levels = [0.5, 1.0, 2.5, 4.0, 7.0]
    probs = logits.softmax(dim=1).numpy()
    point = [[levels[y]] for y in labels.tolist()]
    expected = np.array(
        [wasserstein_distance(levels, y, u_weights=p) for p, y in zip(probs, point)]
    )
    loss = registry.create_loss("ntl", levels=levels, reduction="none")
    np.testing.assert_allclose(loss(logits, labels).numpy(), expected, rtol=1e-9)
    # float targets: any real value, not only a level
    y_float = torch.linspace(-1.0, 8.0, logits.shape[0], dtype=torch.float64)
    expected_float = [
        wasserstein_distance(levels, [y], u_weights=p) for p, y in zip(probs, y_float.tolist())
    ]
    np.testing.assert_allclose(loss(logits, y_float).numpy(), expected_float, rtol=1e-9)
    mean = registry.create_loss("ntl_wasserstein", levels=levels)
    ref = float(np.dot(expected, weights.numpy()) / weights.sum().item())
    assert mean(logits, labels, sample_weight=weights).item() == pytest.approx(ref, rel=1e-9)


@pytest.mark.reference("ntl_mse")
def test_ntl_mse_matches_loop(registry, data):
    logits, labels, _ = data
    expected = []
    for row, y in zip(logits.tolist(), labels.tolist()):
        mean = sum(p * k for k, p in enumerate(_softmax(row)))
        expected.append((mean - y) ** 2)
    loss = registry.create_loss("ntl_mse", reduction="none")
    np.testing.assert_allclose(loss(logits, labels).numpy(), expected, rtol=1e-10)
    # a distribution with the right mean costs nothing: why the paper adds cross-entropy
    two_sided = torch.log(torch.tensor([[0.5, 1e-30, 0.5]], dtype=torch.float64))
    assert loss(two_sided, torch.tensor([1])).item() == pytest.approx(0.0, abs=1e-20)


@pytest.mark.reference("distance_smoothed_ce")
@pytest.mark.parametrize("tau", [0.5, 1.0, 3.0])
def test_distance_smoothed_ce_matches_loop(registry, data, tau):
    logits, labels, _ = data
    expected = []
    for row, y in zip(logits.tolist(), labels.tolist()):
        p = _softmax(row)
        expected.append(-sum(math.exp(-abs(c - y) / tau) * math.log(p[c]) for c in range(K)))
    loss = registry.create_loss("distance_smoothed_ce", tau=tau, reduction="none")
    np.testing.assert_allclose(loss(logits, labels).numpy(), expected, rtol=1e-10)


@pytest.mark.reference("distance_smoothed_ce")
def test_distance_smoothed_ce_normalized_is_torch_soft_target_ce(registry, data):
    logits, labels, _ = data
    rng = np.random.default_rng(0)
    centroids = rng.normal(size=(K, 2))
    distance = np.linalg.norm(centroids[:, None] - centroids[None], axis=2) + 0.2
    q = np.exp(-(distance[labels.numpy()] - distance[labels.numpy()].min(1, keepdims=True)) / 0.7)
    q = torch.from_numpy(q / q.sum(1, keepdims=True))
    ref = F.cross_entropy(logits, q, reduction="none")
    loss = registry.create_loss(
        "distance_smoothed_ce",
        tau=0.7,
        normalize=True,
        distance=distance.ravel().tolist(),
        reduction="none",
    )
    torch.testing.assert_close(loss(logits, labels), ref)


def test_distance_smoothed_ce_small_tau_is_cross_entropy(registry, data):
    logits, labels, _ = data
    loss = registry.create_loss("distance_smoothed_ce", tau=1e-3, reduction="none")
    torch.testing.assert_close(
        loss(logits, labels), F.cross_entropy(logits, labels, reduction="none")
    )


@pytest.mark.parametrize(
    "name", ["ordinal_emd", "ntl_wasserstein", "ntl_mse", "distance_smoothed_ce"]
)
def test_ordinal_losses_finite_gradients_and_dtype(registry, name):
    logits = torch.tensor([[1e3, -1e3, 0.0], [-1e3, 0.0, 1e3]], requires_grad=True)
    value = registry.create_loss(name)(logits, torch.tensor([2, 0]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    assert value.dtype == torch.float32


def test_levels_length_mismatch_is_a_clear_error(registry, data):
    logits, labels, _ = data
    with pytest.raises(ValueError, match="5 columns"):
        registry.create_loss("ntl_mse", levels=[0.0, 1.0])(logits, labels)


def test_ordinal_emd_trains_a_classifier_on_ordered_levels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = np.digitize(X[:, 0] + 0.3 * rng.normal(size=300), [-1.0, -0.3, 0.3, 1.0])
    clf = LossClassifier(loss="ordinal_emd", max_iter=30, lr=0.02, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 5)
    mae = np.abs(clf.predict(X) - y).mean()
    assert mae < 0.5


def test_expected_level_of_the_ntl_module(registry):
    loss = registry.create_loss("ntl_wasserstein", levels=[1.0, 2.0, 4.0])
    logits = torch.log(torch.tensor([[0.2, 0.3, 0.5], [1.0, 1e-30, 1e-30]], dtype=torch.float64))
    torch.testing.assert_close(
        loss.expected_level(logits), torch.tensor([2.8, 1.0], dtype=torch.float64)
    )


# -- gaussian_soft_label ----------------------------------------------------------------------


def _deqa_label(y, y_min, y_max, std, k_levels, mode, thre_std=0.2, thre_diff=0.1):
    """DeQA-Score's gen_soft_label for K levels (levels ascending), one row, plain floats."""
    from scipy.stats import norm

    mu = (k_levels - 1) * (y - y_min) / (y_max - y_min) + 1
    sd = (k_levels - 1) * std / (y_max - y_min)
    levels = list(range(1, k_levels + 1))
    if mode == "cdf":
        probs = [norm.cdf(x + 0.5, mu, sd) - norm.cdf(x - 0.5, mu, sd) for x in levels]
    else:
        probs = [norm.pdf(x, loc=mu, scale=sd) for x in levels]
    total = sum(probs)
    first = sum(x * p for x, p in zip(levels, probs))
    centre = (k_levels + 1) / 2
    alpha = (mu - centre) / (first - centre * total + 1e-9)
    beta = (1 - alpha * total) / k_levels
    fixed = [max(p * alpha + beta, 0) for p in probs]
    diff = abs(sum(x * p for x, p in zip(levels, fixed)) - mu)
    if sd < thre_std or diff > thre_diff:
        fixed = [0.0] * k_levels
        for i in range(1, k_levels):
            if i <= mu <= i + 1:
                fixed[i - 1], fixed[i] = i + 1 - mu, mu - i
                break
    return fixed


@pytest.mark.reference("gaussian_soft_label")
@pytest.mark.parametrize(
    ("mode", "k_levels", "sigma"), [("pdf", 5, 1.0), ("cdf", 5, 0.7), ("pdf", 7, 0.3)]
)
def test_gaussian_soft_label_matches_deqa_score_port(registry, mode, k_levels, sigma):
    gen = torch.Generator().manual_seed(9)
    logits = torch.randn(25, k_levels, generator=gen, dtype=torch.float64)
    # avoid the exact centre, where the reference's 0/0 gives a uniform label
    y = torch.rand(25, generator=gen, dtype=torch.float64) * 10 + 2.0
    y_min, y_max = 2.0, 12.0
    step = (y_max - y_min) / (k_levels - 1)
    loss = registry.create_loss(
        "gaussian_soft_label",
        n_levels=k_levels,
        mode=mode,
        sigma=sigma,
        target_min=y_min,
        target_max=y_max,
        reduction="none",
    )
    q = torch.tensor(
        [_deqa_label(v, y_min, y_max, sigma * step, k_levels, mode) for v in y.tolist()],
        dtype=torch.float64,
    )
    # the reference adds 1e-9 to the affine fix's denominator: agreement to ~1e-6
    torch.testing.assert_close(loss.soft_labels(y, logits), q, rtol=1e-5, atol=1e-6)
    ref = F.kl_div(logits.log_softmax(dim=1), q, reduction="none").sum(dim=1)
    torch.testing.assert_close(loss(logits, y), ref, rtol=1e-5, atol=1e-6)
    # a per-row std in target units replaces sigma
    row_std = torch.full((25,), 0.05 * step, dtype=torch.float64)
    q_row = torch.tensor(
        [_deqa_label(v, y_min, y_max, 0.05 * step, k_levels, mode) for v in y.tolist()],
        dtype=torch.float64,
    )
    torch.testing.assert_close(loss.soft_labels(y, logits, row_std), q_row, rtol=1e-5, atol=1e-6)


def test_gaussian_soft_label_link_and_std(registry):
    loss = registry.create_loss("gaussian_soft_label", target_min=10.0, target_max=30.0)
    logits = torch.log(torch.tensor([[0.0, 0.5, 0.0, 0.5, 0.0], [0.2] * 5]) + 1e-30)
    link = registry.get_spec("gaussian_soft_label").link
    # levels 1..5 map to 10, 15, ..., 30
    torch.testing.assert_close(link(logits, loss), torch.tensor([20.0, 20.0]))
    torch.testing.assert_close(loss.predict_std(logits), torch.tensor([5.0, 5.0 * math.sqrt(2)]))


def test_gaussian_soft_label_trains_a_regressor():
    from lossreg import LossRegressor

    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    y = 3 * X[:, 0] + 0.3 * rng.normal(size=300)
    reg = LossRegressor(loss="gaussian_soft_label", max_iter=40, lr=0.02, random_state=0)
    reg.fit(X, y)
    assert reg.criterion_.target_min == pytest.approx(y.min())
    assert reg.score(X, y) > 0.8


# -- thurstone_fidelity -----------------------------------------------------------------------


def _phi(x):
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def _thurstone_loop(logits, y, weights, variant, sigma, y_min, y_max, k_levels):
    eps = 1e-8
    scale = (k_levels - 1) / (y_max - y_min)
    means, variances = [], []
    for row in logits.tolist():
        p = _softmax(row)
        m = sum((k + 1) * pk for k, pk in enumerate(p))
        means.append(m)
        variances.append(sum(pk * (k + 1 - m) ** 2 for k, pk in enumerate(p)))
    mu = [min(max((v - y_min) * scale + 1, 1), k_levels) for v in y.tolist()]
    num = den = 0.0
    for a in range(len(mu)):
        for b in range(len(mu)):
            if a == b:
                continue
            if variant == "binary":
                pred = _phi((means[a] - means[b]) / math.sqrt(2))
                value = (
                    1 - math.sqrt(pred + eps) if mu[a] > mu[b] else 1 - math.sqrt(1 - pred + eps)
                )
            else:
                pred = _phi((means[a] - means[b]) / math.sqrt(variances[a] + variances[b] + eps))
                gt = _phi((mu[a] - mu[b]) / math.sqrt(2 * sigma**2 + eps))
                value = 1 - math.sqrt(pred * gt + eps) - math.sqrt((1 - pred) * (1 - gt) + eps)
            w = weights[a] * weights[b]
            num += w * value
            den += w
    return num / den


@pytest.mark.reference("thurstone_fidelity")
@pytest.mark.parametrize("variant", ["continuous", "binary"])
def test_thurstone_fidelity_matches_deqa_pair_loop(registry, variant):
    gen = torch.Generator().manual_seed(12)
    logits = torch.randn(12, 5, generator=gen, dtype=torch.float64) * 1.5
    y = torch.rand(12, generator=gen, dtype=torch.float64) * 8
    weights = torch.rand(12, generator=gen, dtype=torch.float64)
    loss = registry.create_loss(
        "thurstone_fidelity", variant=variant, sigma=0.7, target_min=0.0, target_max=8.0
    )
    expected = _thurstone_loop(logits, y, weights.tolist(), variant, 0.7, 0.0, 8.0, 5)
    value = loss(logits, y, sample_weight=weights).item()
    assert value == pytest.approx(expected, rel=1e-9)
    perm = torch.randperm(12, generator=gen)
    permuted = loss(logits[perm], y[perm], sample_weight=weights[perm]).item()
    assert permuted == pytest.approx(value, rel=1e-12)


def test_thurstone_fidelity_gradients_and_reduction(registry):
    loss = registry.create_loss("thurstone_fidelity", target_min=0.0, target_max=1.0)
    logits = torch.tensor([[1e3, 0, 0, 0, 0], [0, 0, 0, 0, 1e3], [0.0] * 5], requires_grad=True)
    value = loss(logits, torch.tensor([0.0, 1.0, 0.5]))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(logits.grad).all()
    with pytest.raises(InvalidReductionError):
        registry.create_loss("thurstone_fidelity", target_min=0.0, target_max=1.0, reduction="none")


# -- rpo_preference ---------------------------------------------------------------------------


@pytest.mark.reference("rpo_preference")
def test_rpo_preference_matches_dpo_plus_nll_loop(registry, data):
    logits, labels, weights = data
    gen = torch.Generator().manual_seed(13)
    rejected = torch.randint(0, K, (20,), generator=gen)
    reference = torch.randn(20, K, generator=gen, dtype=torch.float64)
    beta, eta = 0.3, 0.7
    expected = []
    for row, ref_row, w, r in zip(
        logits.tolist(), reference.tolist(), labels.tolist(), rejected.tolist()
    ):
        lp = [math.log(p) for p in _softmax(row)]
        lr = [math.log(p) for p in _softmax(ref_row)]
        delta = (lp[w] - lr[w]) - (lp[r] - lr[r])
        expected.append(-math.log(1 / (1 + math.exp(-beta * delta))) - eta * lp[w])
    loss = registry.create_loss("rpo_preference", beta=beta, eta=eta, reduction="none")
    ours = loss(logits, labels, rejected_label=rejected, teacher_logits=reference)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-10)
    # eta = 0 and no reference: DPO with a uniform reference, i.e. softplus(-beta * margin)
    dpo = registry.create_loss("rpo_preference", beta=beta, eta=0.0, reduction="none")
    log_p = logits.log_softmax(dim=1)
    margin = log_p.gather(1, labels[:, None])[:, 0] - log_p.gather(1, rejected[:, None])[:, 0]
    torch.testing.assert_close(
        dpo(logits, labels, rejected_label=rejected), -F.logsigmoid(beta * margin)
    )
    mean = registry.create_loss("rpo_preference", beta=beta, eta=eta)
    ref = float(np.dot(expected, weights.numpy()) / weights.sum().item())
    value = mean(
        logits, labels, sample_weight=weights, rejected_label=rejected, teacher_logits=reference
    )
    assert value.item() == pytest.approx(ref, rel=1e-10)


def test_rpo_preference_needs_the_rejected_label(registry, data):
    logits, labels, _ = data
    with pytest.raises(ValueError, match="rejected_label"):
        registry.create_loss("rpo_preference")(logits, labels)


# -- family-wide checks -----------------------------------------------------------------------

_CASES = {
    "bpr": (
        {},
        lambda g: (
            torch.randn(8, 1, generator=g),
            torch.randint(0, 3, (8,)).float(),
            {"group": torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])},
        ),
    ),
    "cosine_contrastive": (
        {},
        lambda g: (
            torch.rand(8, 4, generator=g) * 2 - 1,
            torch.randint(0, 4, (8,), generator=g),
            {},
        ),
    ),
    "ordinal_emd": (
        {},
        lambda g: (torch.randn(8, 4, generator=g), torch.randint(0, 4, (8,), generator=g), {}),
    ),
    "ntl_wasserstein": (
        {},
        lambda g: (torch.randn(8, 4, generator=g), torch.randint(0, 4, (8,), generator=g), {}),
    ),
    "ntl_mse": (
        {},
        lambda g: (torch.randn(8, 4, generator=g), torch.randint(0, 4, (8,), generator=g), {}),
    ),
    "distance_smoothed_ce": (
        {},
        lambda g: (torch.randn(8, 4, generator=g), torch.randint(0, 4, (8,), generator=g), {}),
    ),
    "gaussian_soft_label": (
        {"target_min": 0.0, "target_max": 4.0},
        lambda g: (torch.randn(8, 5, generator=g), torch.rand(8, generator=g) * 4, {}),
    ),
    "thurstone_fidelity": (
        {"target_min": 0.0, "target_max": 4.0},
        lambda g: (torch.randn(8, 5, generator=g), torch.rand(8, generator=g) * 4, {}),
    ),
    "pairwise_logit_regression": (
        {},
        lambda g: (
            torch.randn(8, generator=g),
            torch.rand(8, generator=g),
            {"group": torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])},
        ),
    ),
    "rpo_preference": (
        {},
        lambda g: (
            torch.randn(8, 4, generator=g),
            torch.randint(0, 4, (8,), generator=g),
            {"rejected_label": torch.randint(0, 4, (8,), generator=g)},
        ),
    ),
    "welfare_rank": (
        {"bce_weight": 0.5},
        lambda g: (
            torch.randn(8, generator=g),
            torch.randint(0, 2, (8,), generator=g).float(),
            {
                "group": torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]),
                "bid": torch.rand(8, generator=g) + 0.5,
            },
        ),
    ),
}


def test_every_registered_loss_of_the_family_is_checked(registry):
    import lossreg.plugins.ranking_ordinal as plugin

    names = {spec.name for spec in plugin.register_losses()}
    assert names == set(_CASES)


@pytest.mark.parametrize("name", sorted(_CASES))
def test_family_dtype_pickle_and_permutation(registry, name):
    import pickle

    data_params, make = _CASES[name]
    gen = torch.Generator().manual_seed(0)
    out, target, extras = make(gen)
    loss = registry.create_loss(name, **data_params)
    value = loss(out, target, **extras)
    assert value.dtype == torch.float32 and torch.isfinite(value)
    double = loss(out.double(), target.double() if target.is_floating_point() else target, **extras)
    assert double.dtype == torch.float64
    assert double.item() == pytest.approx(value.item(), rel=1e-5)
    clone = pickle.loads(pickle.dumps(loss))
    assert clone(out, target, **extras).item() == pytest.approx(value.item(), rel=1e-6)
    perm = torch.randperm(8, generator=gen)
    permuted = {k: v[perm] for k, v in extras.items()}
    assert loss(out[perm], target[perm], **permuted).item() == pytest.approx(value.item(), rel=1e-5)


def test_bpr_trains_through_a_regressor_with_groups_once_a_ranking_task_exists():
    import dataclasses

    from scipy.stats import spearmanr

    from lossreg import LossRegressor

    rng = np.random.default_rng(3)
    X = rng.normal(size=(240, 4))
    relevance = np.digitize(X[:, 0] + 0.2 * rng.normal(size=240), [-0.5, 0.5]).astype(float)
    groups = np.repeat(np.arange(12), 20)
    spec = dataclasses.replace(lossreg.get_spec("bpr"), tasks=frozenset({"regression"}))
    reg = LossRegressor(loss=spec, max_iter=25, lr=0.02, batch_size=240, random_state=0)
    reg.fit(X, relevance, group=groups)
    scores = reg.predict(X)
    assert spearmanr(scores, relevance).statistic > 0.7


# -- pairwise_logit_regression ----------------------------------------------------------------


@pytest.mark.reference("pairwise_logit_regression")
def test_pairwise_logit_regression_matches_pair_loop(registry):
    gen = torch.Generator().manual_seed(5)
    scores = torch.randn(10, generator=gen, dtype=torch.float64)
    ref = torch.randn(10, generator=gen, dtype=torch.float64)
    p_hat = torch.rand(10, generator=gen, dtype=torch.float64)
    p_hat[0], p_hat[1] = 0.0, 1.0  # clipped
    group = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 9])  # the last two rows have no partner
    weights = torch.rand(10, generator=gen, dtype=torch.float64)
    beta, clip = 0.7, 0.01
    num = den = 0.0
    for a in range(10):
        for b in range(10):
            if a == b or group[a] != group[b]:
                continue
            p = min(max(p_hat[a].item(), clip), 1 - clip)
            delta = (scores[a] - ref[a]) - (scores[b] - ref[b])
            w = (weights[a] * weights[b]).item()
            num += w * (beta * delta.item() - math.log(p / (1 - p))) ** 2
            den += w
    loss = registry.create_loss("irepo", beta=beta, clip=clip)
    value = loss(scores, p_hat, sample_weight=weights, group=group, teacher_logits=ref)
    assert value.item() == pytest.approx(num / den, rel=1e-12)


def test_pairwise_logit_regression_rejects_groups_of_three(registry):
    loss = registry.create_loss("pairwise_logit_regression")
    with pytest.raises(ValueError, match="at most two rows"):
        loss(torch.zeros(3), torch.full((3,), 0.5), group=torch.zeros(3, dtype=torch.long))
