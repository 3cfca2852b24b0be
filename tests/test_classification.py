"""Classification losses against independent references.

References: torch.nn.functional's own kernels, kornia, scikit-learn (metrics and the SGD / gradient
boosting loss objects), scipy, and float64 loops over rows and classes written from the papers'
formulas (deliberately not the vectorised code of the plugin).
"""

from __future__ import annotations

import copy
import itertools
import math

import kornia.losses
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.special import rel_entr
from sklearn._loss.loss import ExponentialLoss
from sklearn.linear_model._sgd_fast import Hinge as SGDHinge
from sklearn.linear_model._sgd_fast import SquaredHinge as SGDSquaredHinge
from sklearn.metrics import hinge_loss

import lossreg
from lossreg.links import resolve_link

N_ROWS, N_CLASSES = 24, 5


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(7)
    logits = torch.randn(N_ROWS, N_CLASSES, generator=gen, dtype=torch.float64) * 3
    labels = torch.randint(0, N_CLASSES, (N_ROWS,), generator=gen)
    scores = torch.randn(N_ROWS, generator=gen, dtype=torch.float64) * 2
    binary = torch.randint(0, 2, (N_ROWS,), generator=gen).double()
    multi_logits = torch.randn(N_ROWS, 3, generator=gen, dtype=torch.float64) * 3
    multi_targets = torch.randint(0, 2, (N_ROWS, 3), generator=gen).double()
    weights = torch.rand(N_ROWS, generator=gen, dtype=torch.float64)
    soft = torch.rand(N_ROWS, N_CLASSES, generator=gen, dtype=torch.float64) ** 3
    soft[0, 1:] = 0.0  # a one-hot row exercises 0 log 0
    soft = soft / soft.sum(dim=1, keepdim=True)
    return {
        "logits": logits,
        "labels": labels,
        "scores": scores,
        "binary": binary,
        "multi_logits": multi_logits,
        "multi_targets": multi_targets,
        "weights": weights,
        "soft": soft,
    }


def rows(name: str, input, target, **params) -> torch.Tensor:
    return lossreg.create_loss(name, reduction="none", **params)(input, target)


def probs_loop(row: list[float]) -> list[float]:
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    total = sum(exps)
    return [e / total for e in exps]


def assert_rows(ours: torch.Tensor, expected: list[float], rel: float = 1e-10) -> None:
    assert ours.shape == (len(expected),)
    for got, want in zip(ours.tolist(), expected):
        assert got == pytest.approx(want, rel=rel, abs=1e-12)


# --------------------------------------------------------------------------- poly family


def poly_loop(logits, labels, epsilons, gamma=0.0, alpha=None):
    out = []
    for row, y in zip(logits.tolist(), labels.tolist()):
        p = probs_loop(row)
        rest = sum(v for c, v in enumerate(p) if c != y)  # 1 - p_t without cancellation
        weight = 1.0 if alpha is None else alpha[y]
        value = -weight * rest**gamma * math.log(p[y])
        for j, eps in enumerate(epsilons, start=1):
            value += eps * rest ** (gamma + j)
        out.append(value)
    return out


@pytest.mark.reference("poly1")
@pytest.mark.parametrize("epsilon", [-1.0, 0.0, 1.0, 2.0])
def test_poly1_matches_loop(data, epsilon):
    ours = rows("poly1", data["logits"], data["labels"], epsilon=epsilon)
    assert_rows(ours, poly_loop(data["logits"], data["labels"], [epsilon]))


def test_poly1_at_epsilon_zero_is_exactly_cross_entropy(data):
    ours = rows("poly1", data["logits"], data["labels"], epsilon=0.0)
    assert torch.equal(ours, rows("cross_entropy", data["logits"], data["labels"]))
    torch.testing.assert_close(
        ours, F.cross_entropy(data["logits"], data["labels"], reduction="none")
    )


@pytest.mark.reference("poly_n")
@pytest.mark.parametrize("epsilons", [(1.0,), (1.0, 0.5), (-1.0, 2.0, 0.1)])
def test_poly_n_matches_loop(data, epsilons):
    ours = rows("poly_n", data["logits"], data["labels"], epsilons=epsilons)
    assert_rows(ours, poly_loop(data["logits"], data["labels"], epsilons))


def test_poly_n_with_one_coefficient_is_poly1(data):
    torch.testing.assert_close(
        rows("poly_n", data["logits"], data["labels"], epsilons=[2.0]),
        rows("poly1", data["logits"], data["labels"], epsilon=2.0),
        rtol=1e-14,
        atol=1e-14,
    )


@pytest.mark.reference("poly1_focal")
@pytest.mark.parametrize(("epsilon", "gamma"), [(1.0, 2.0), (-1.0, 2.0), (2.0, 0.5)])
def test_poly1_focal_matches_kornia_plus_polynomial_term(data, epsilon, gamma):
    logits, labels = data["logits"], data["labels"]
    ours = rows("poly1_focal", logits, labels, epsilon=epsilon, gamma=gamma)
    focal = kornia.losses.focal_loss(logits, labels, alpha=None, gamma=gamma, reduction="none")
    pt = logits.softmax(dim=1).gather(1, labels[:, None])[:, 0]
    torch.testing.assert_close(ours, focal.sum(dim=1) + epsilon * (1 - pt) ** (gamma + 1))
    assert_rows(ours, poly_loop(logits, labels, [epsilon], gamma=gamma))


@pytest.mark.reference("poly1_focal")
def test_poly1_focal_class_weights_match_loop(data):
    alpha = [0.125, 0.25, 0.5, 0.75, 2.0]  # exact in float32, the dtype of weight buffers
    ours = rows("poly1_focal", data["logits"], data["labels"], alpha=alpha)
    # alpha weights the focal term only; the epsilon term stays unweighted.
    expected = poly_loop(data["logits"], data["labels"], [], gamma=2.0, alpha=alpha)
    extra = poly_loop(data["logits"], data["labels"], [1.0], gamma=2.0)
    plain = poly_loop(data["logits"], data["labels"], [], gamma=2.0)
    assert_rows(ours, [e + x - p for e, x, p in zip(expected, extra, plain)])


def test_poly1_focal_at_epsilon_zero_is_focal(data):
    for alpha in (None, [0.5, 1.0, 1.5, 2.0, 2.5]):
        torch.testing.assert_close(
            rows("poly1_focal", data["logits"], data["labels"], epsilon=0.0, alpha=alpha),
            rows("focal", data["logits"], data["labels"], alpha=alpha),
            rtol=1e-15,
            atol=0.0,
        )


@pytest.mark.reference("poly1_bce")
@pytest.mark.parametrize("epsilon", [-1.0, 1.0, 2.0])
def test_poly1_bce_matches_torch_bce_plus_loop_term(data, epsilon):
    x, y = data["multi_logits"], data["multi_targets"]
    ours = rows("poly1_bce", x, y, epsilon=epsilon)
    bce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    expected = []
    for xs, ys, bs in zip(x.tolist(), y.tolist(), bce.tolist()):
        terms = []
        for f, t, b in zip(xs, ys, bs):
            p = 1 / (1 + math.exp(-f))
            pt = p if t == 1 else 1 - p
            terms.append(b + epsilon * (1 - pt))
        expected.append(sum(terms) / len(terms))
    assert_rows(ours, expected)


def test_poly1_bce_at_epsilon_zero_is_bce(data):
    for x, y in ((data["multi_logits"], data["multi_targets"]), (data["scores"], data["binary"])):
        torch.testing.assert_close(rows("poly1_bce", x, y, epsilon=0.0), rows("bce", x, y))


# --------------------------------------------------------------------------- binary margin losses


@pytest.mark.reference("hinge")
def test_hinge_matches_scikit_learn(data):
    f, y = data["scores"], data["binary"]
    mean = lossreg.create_loss("hinge")(f, y).item()
    assert mean == pytest.approx(hinge_loss(y.numpy(), f.numpy()), rel=1e-12)
    weighted = lossreg.create_loss("hinge")(f, y, sample_weight=data["weights"]).item()
    sk = hinge_loss(y.numpy(), f.numpy(), sample_weight=data["weights"].numpy())
    assert weighted == pytest.approx(sk, rel=1e-12)


@pytest.mark.reference("squared_hinge", "perceptron")
def test_squared_hinge_and_perceptron_match_scikit_learn_sgd_losses(data):
    f, y = data["scores"], data["binary"]
    pm = [2 * t - 1 for t in y.tolist()]
    squared = SGDSquaredHinge(1.0)
    perceptron = SGDHinge(0.0)  # sklearn's Perceptron is SGD with Hinge(threshold=0)
    assert_rows(
        rows("squared_hinge", f, y), [squared.py_loss(p, t) for p, t in zip(f.tolist(), pm)]
    )
    assert_rows(
        rows("perceptron", f, y), [perceptron.py_loss(p, t) for p, t in zip(f.tolist(), pm)]
    )


@pytest.mark.reference("exponential")
def test_exponential_matches_scikit_learn_exponential_loss(data):
    f, y = data["scores"], data["binary"]
    ref = ExponentialLoss().loss(y_true=y.numpy(), raw_prediction=f.numpy())
    assert_rows(rows("exponential", f, y), ref.tolist())


def test_binary_margin_losses_accept_n_by_1_scores_and_reject_wide_ones(data):
    f, y = data["scores"], data["binary"]
    for name in ("hinge", "squared_hinge", "exponential", "perceptron"):
        torch.testing.assert_close(rows(name, f[:, None], y[:, None]), rows(name, f, y))
        with pytest.raises(ValueError, match="one score per row"):
            rows(name, data["multi_logits"], y)


def test_binary_margin_specs_ask_for_one_output_and_the_score_link():
    from lossreg.targets import output_size

    for name in ("hinge", "squared_hinge", "exponential", "perceptron"):
        spec = lossreg.get_spec(name)
        assert output_size(spec, "binary", n_classes=2) == 1
        assert not resolve_link(spec.link).has_proba


def test_exponential_is_clamped_far_below_the_boundary():
    f = torch.tensor([-1000.0, 1000.0], requires_grad=True)
    value = lossreg.create_loss("exponential")(f, torch.tensor([1.0, 0.0]))
    (grad,) = torch.autograd.grad(value, f)
    assert value.item() == pytest.approx(math.exp(50.0), rel=1e-6)
    assert torch.isfinite(grad).all()


# --------------------------------------------------------------------------- multiclass margins


@pytest.mark.reference("weston_watkins")
@pytest.mark.parametrize("margin", [0.5, 1.0, 2.0])
def test_weston_watkins_matches_torch_multi_margin(data, margin):
    ours = rows("weston_watkins", data["logits"], data["labels"], margin=margin)
    ref = F.multi_margin_loss(data["logits"], data["labels"], margin=margin, reduction="none")
    torch.testing.assert_close(ours, ref)


@pytest.mark.reference("crammer_singer")
@pytest.mark.parametrize("margin", [0.5, 1.0, 2.0])
def test_crammer_singer_matches_loop(data, margin):
    expected = []
    for row, y in zip(data["logits"].tolist(), data["labels"].tolist()):
        hardest = max(v for k, v in enumerate(row) if k != y)
        expected.append(max(0.0, margin + hardest - row[y]))
    assert_rows(rows("crammer_singer", data["logits"], data["labels"], margin=margin), expected)


# --------------------------------------------------------------------------- soft targets


@pytest.mark.reference("kl_div")
def test_kl_div_matches_torch_and_scipy(data):
    logits, soft = data["logits"], data["soft"]
    ours = rows("kl_div", logits, soft)
    torch.testing.assert_close(
        ours, F.kl_div(logits.log_softmax(dim=1), soft, reduction="none").sum(dim=1)
    )
    mean = lossreg.create_loss("kl_div")(logits, soft)
    batchmean = F.kl_div(logits.log_softmax(dim=1), soft, reduction="batchmean")
    assert mean.item() == pytest.approx(batchmean.item(), rel=1e-12)
    expected = [
        float(rel_entr(np.array(q), np.array(probs_loop(z))).sum())
        for z, q in zip(logits.tolist(), soft.tolist())
    ]
    assert_rows(ours, expected)


def test_kl_div_differs_from_soft_cross_entropy_by_the_target_entropy(data):
    logits, soft = data["logits"], data["soft"]
    soft_ce = F.cross_entropy(logits, soft, reduction="none")
    entropy = -torch.xlogy(soft, soft).sum(dim=1)
    torch.testing.assert_close(rows("kl_div", logits, soft), soft_ce - entropy)
    onehot = F.one_hot(data["labels"], N_CLASSES).double()
    torch.testing.assert_close(
        rows("kl_div", logits, onehot), rows("cross_entropy", logits, data["labels"])
    )
    assert lossreg.get_spec("soft_target_cross_entropy").name == "kl_div"


def test_kl_div_rejects_class_label_targets(data):
    with pytest.raises(ValueError, match="probability targets"):
        rows("kl_div", data["logits"], data["labels"])


# --------------------------------------------------------------------------- square losses


@pytest.mark.reference("one_hot_mse")
@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_one_hot_mse_matches_torch_mse_on_one_hot_targets(data, scale):
    logits, labels = data["logits"], data["labels"]
    onehot = scale * F.one_hot(labels, N_CLASSES).double()
    ref = 0.5 * F.mse_loss(logits, onehot, reduction="sum") / N_ROWS
    ours = lossreg.create_loss("one_hot_mse", scale=scale)(logits, labels)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-12)


@pytest.mark.reference("rescaled_square")
@pytest.mark.parametrize(("k", "m"), [(1.0, 1.0), (5.0, 15.0)])
def test_rescaled_square_matches_loop(data, k, m):
    expected = []
    for row, y in zip(data["logits"].tolist(), data["labels"].tolist()):
        total = 0.0
        for c, v in enumerate(row):
            total += k * (v - m) ** 2 if c == y else v**2
        expected.append(total / len(row))
    assert_rows(rows("rescaled_square", data["logits"], data["labels"], k=k, m=m), expected)


def test_one_hot_mse_is_c_over_2_times_rescaled_square(data):
    torch.testing.assert_close(
        rows("one_hot_mse", data["logits"], data["labels"]),
        N_CLASSES / 2 * rows("rescaled_square", data["logits"], data["labels"]),
    )


@pytest.mark.reference("squentropy")
def test_squentropy_matches_loop(data):
    expected = []
    for row, y in zip(data["logits"].tolist(), data["labels"].tolist()):
        ce = -math.log(probs_loop(row)[y])
        wrong = [v * v for c, v in enumerate(row) if c != y]
        expected.append(ce + sum(wrong) / len(wrong))
    assert_rows(rows("squentropy", data["logits"], data["labels"]), expected)


# --------------------------------------------------------------------------- stablemax


def stablemax_loop(row: list[float]) -> list[float]:
    s = [v + 1 if v >= 0 else 1 / (1 - v) for v in row]
    return [v / sum(s) for v in s]


@pytest.mark.reference("stablemax_cross_entropy")
def test_stablemax_cross_entropy_matches_loop(data):
    logits, labels = data["logits"], data["labels"]
    expected = [-math.log(stablemax_loop(r)[y]) for r, y in zip(logits.tolist(), labels.tolist())]
    assert_rows(rows("stablemax_cross_entropy", logits, labels), expected)
    assert_rows(rows("stablemax_ce", logits, labels), expected)


def test_stablemax_link_gives_stablemax_probabilities(data):
    link = resolve_link(lossreg.get_spec("stablemax_cross_entropy").link)
    assert link.has_proba
    proba = link(data["logits"])
    for got, row in zip(proba.tolist(), data["logits"].tolist()):
        assert got == pytest.approx(stablemax_loop(row), rel=1e-12)


def test_stablemax_float64_option_returns_the_input_dtype(data):
    x = data["logits"].float()
    ours = rows("stablemax_cross_entropy", x, data["labels"], dtype="float64")
    assert ours.dtype == torch.float32
    ref = rows("stablemax_cross_entropy", data["logits"], data["labels"])
    torch.testing.assert_close(ours, ref.float(), rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- z-losses


@pytest.mark.reference("z_loss_spherical")
@pytest.mark.parametrize(("a", "b"), [(1.0, 1.0), (0.1, 2.0), (5.0, 0.5)])
def test_z_loss_spherical_matches_loop(data, a, b):
    expected = []
    for row, y in zip(data["logits"].tolist(), data["labels"].tolist()):
        mu = sum(row) / len(row)
        sigma = math.sqrt(sum(v * v for v in row) / len(row) - mu * mu)
        z = (row[y] - mu) / sigma
        expected.append(math.log1p(math.exp(a * (b - z))) / a)
    ours = rows("z_loss_spherical", data["logits"], data["labels"], a=a, b=b)
    assert_rows(ours, expected, rel=1e-9)


def test_z_loss_spherical_is_shift_and_scale_invariant_and_needs_three_classes(data):
    logits, labels = data["logits"], data["labels"]
    base = rows("z_loss_spherical", logits, labels)
    torch.testing.assert_close(rows("z_loss_spherical", 3.5 * logits - 7.0, labels), base)
    with pytest.raises(ValueError, match="C >= 3"):
        rows("z_loss_spherical", logits[:, :2], labels % 2)
    assert not resolve_link(lossreg.get_spec("spherical_z").link).has_proba


@pytest.mark.reference("z_loss_penalty")
def test_z_loss_penalty_matches_loop(data):
    expected = [math.log(sum(math.exp(v) for v in row)) ** 2 for row in data["logits"].tolist()]
    assert_rows(rows("z_loss_penalty", data["logits"], data["labels"]), expected)


@pytest.mark.reference("softmax_norm_penalty")
def test_softmax_norm_penalty_matches_loop(data):
    logits, labels = data["logits"], data["labels"]
    squares = [sum(p * p for p in probs_loop(row)) for row in logits.tolist()]
    batch = lossreg.create_loss("softmax_norm_penalty")(logits, labels)
    assert batch.item() == pytest.approx(math.log1p(sum(squares)), rel=1e-12)
    per_row = rows("softmax_norm_penalty", logits, labels, per_sample=True)
    assert_rows(per_row, [math.log1p(s) for s in squares])


def test_softmax_norm_penalty_batch_form_refuses_none_and_sample_weights(data):
    with pytest.raises(ValueError, match="per_sample=True"):
        lossreg.create_loss("softmax_norm_penalty", reduction="none")
    loss = lossreg.create_loss("softmax_norm_penalty")
    with pytest.raises(ValueError, match="sample weights"):
        loss(data["logits"], data["labels"], sample_weight=data["weights"])
    assert lossreg.get_spec("marginal_log").per_sample is False


# --------------------------------------------------------------------------- confidence


@pytest.mark.reference("entropy_regularized_ce")
@pytest.mark.parametrize("beta", [-0.5, 0.1, 1.0])
def test_entropy_regularized_ce_matches_loop(data, beta):
    expected = []
    for row, y in zip(data["logits"].tolist(), data["labels"].tolist()):
        p = probs_loop(row)
        entropy = -sum(v * math.log(v) for v in p if v > 0)
        expected.append(-math.log(p[y]) - beta * entropy)
    assert_rows(rows("entropy_regularized_ce", data["logits"], data["labels"], beta=beta), expected)


def test_entropy_regularized_ce_at_beta_zero_is_cross_entropy(data):
    torch.testing.assert_close(
        rows("entropy_regularized_ce", data["logits"], data["labels"], beta=0.0),
        rows("cross_entropy", data["logits"], data["labels"]),
    )


@pytest.mark.reference("dco")
@pytest.mark.parametrize("n", [1.0, 2.5, 4.0, 64.0])
def test_dco_matches_loop(data, n):
    expected = []
    for row, y in zip(data["logits"].tolist(), data["labels"].tolist()):
        p = probs_loop(row)
        rest = sum(v for c, v in enumerate(p) if c != y)  # 1 - p_t without cancellation
        expected.append(-math.log(1 - rest**n))
    assert_rows(rows("dco", data["logits"], data["labels"], n=n), expected, rel=1e-8)


def test_dco_at_n_one_is_cross_entropy_and_stays_finite_far_out():
    logits = torch.tensor(
        [[0.0, 2000.0], [2000.0, 0.0], [30.0, 0.0], [0.0, 50.0]], dtype=torch.float64
    )
    labels = torch.tensor([0, 0, 1, 0])
    ce = rows("cross_entropy", logits, labels)
    torch.testing.assert_close(rows("dco", logits, labels, n=1.0), ce, rtol=1e-12, atol=1e-300)
    # With p_t tiny, 1 - (1 - p_t)^N ~ N p_t, so the loss is CE - log N.
    far = rows("dco", logits, labels, n=8.0)
    assert far[0].item() == pytest.approx(ce[0].item() - math.log(8.0), rel=1e-12)
    assert far[3].item() == pytest.approx(ce[3].item() - math.log(8.0), rel=1e-12)
    assert far[1].item() == 0.0


# --------------------------------------------------------------------------- shared properties

MULTICLASS = [
    "poly1",
    "poly_n",
    "poly1_focal",
    "weston_watkins",
    "crammer_singer",
    "one_hot_mse",
    "rescaled_square",
    "squentropy",
    "stablemax_cross_entropy",
    "z_loss_spherical",
    "z_loss_penalty",
    "entropy_regularized_ce",
    "dco",
]
BINARY = ["hinge", "squared_hinge", "exponential", "perceptron", "poly1_bce"]


def cases(data):
    for name in MULTICLASS:
        yield name, data["logits"], data["labels"], {"n": 4.0} if name == "dco" else {}
    for name in BINARY:
        yield name, data["scores"], data["binary"], {}
    yield "kl_div", data["logits"], data["soft"], {}
    yield "softmax_norm_penalty", data["logits"], data["labels"], {"per_sample": True}


def test_sample_weights_give_the_weighted_mean(data):
    w = data["weights"]
    for name, x, y, params in cases(data):
        per_row = rows(name, x, y, **params).tolist()
        expected = sum(a * b for a, b in zip(per_row, w.tolist())) / float(w.sum())
        weighted = lossreg.create_loss(name, **params)(x, y, sample_weight=w)
        assert weighted.item() == pytest.approx(expected, rel=1e-12), name


def test_float32_is_preserved_and_extreme_inputs_have_finite_gradients(data):
    for name, x, y, params in cases(data):
        big = (x.sign() * 1e3).float().requires_grad_()
        value = lossreg.create_loss(name, **params)(big, y.float() if y.is_floating_point() else y)
        assert value.dtype == torch.float32, name
        (grad,) = torch.autograd.grad(value, big)
        assert math.isfinite(value.item()) and torch.isfinite(grad).all(), name


def test_new_specs_declare_the_catalogue_names_and_aliases():
    expected_aliases = {
        "kl_div": ("soft_target_cross_entropy",),
        "stablemax_cross_entropy": ("stablemax_ce",),
        "z_loss_spherical": ("spherical_z",),
        "z_loss_penalty": ("logsumexp_sq_penalty",),
        "softmax_norm_penalty": ("marginal_log",),
        "dco": ("pass_at_n",),
    }
    for name, aliases in expected_aliases.items():
        assert lossreg.get_spec(name).aliases == aliases
    for name in ("weston_watkins", "crammer_singer", "one_hot_mse", "rescaled_square"):
        assert not resolve_link(lossreg.get_spec(name).link).has_proba, name


# --------------------------------------------------------------------------- ensloss


def ensloss_derivatives_loop(margins: list[float], seed: int, lam: float) -> list[float]:
    n = len(margins)
    noise = torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    draws = []
    for e in noise.tolist():
        g = math.exp(e) if lam == 0 else max(1 + lam * e, 0.0) ** (1 / lam)
        draws.append(max(-g, -1.0))
    draws.sort()  # most negative first
    by_margin = sorted(range(n), key=lambda i: margins[i])
    d = [0.0] * n
    for rank, i in enumerate(by_margin):
        d[i] = draws[rank]
    return [(v / m if m > 1 else v) - 1e-6 for v, m in zip(d, margins)]


@pytest.mark.reference("ensloss")
@pytest.mark.parametrize("lam", [0.0, 0.5])
def test_ensloss_matches_the_reference_algorithm(data, lam):
    f = data["scores"].clone().requires_grad_()
    y = data["binary"]
    margins = [(2 * t - 1) * v for t, v in zip(y.tolist(), f.tolist())]
    d = ensloss_derivatives_loop(margins, seed=3, lam=lam)
    value = lossreg.create_loss("ensloss", lam=lam, seed=3)(f, y)
    assert value.item() == pytest.approx(sum(a * b for a, b in zip(d, margins)) / N_ROWS, rel=1e-12)
    (grad,) = torch.autograd.grad(value, f)
    expected = [di * (2 * t - 1) / N_ROWS for di, t in zip(d, y.tolist())]
    assert_rows(grad, expected)


def test_ensloss_derivatives_are_calibrated_and_seeded(data):
    loss = lossreg.create_loss("ensloss", seed=5)
    margins = data["scores"]
    d = loss.derivatives(margins)
    order = torch.argsort(margins)
    assert (d < 0).all() and (d >= -1 - 1e-6).all()
    # Non-decreasing in the margin among rows at or below 1 (no tail division there).
    low = [i for i in order.tolist() if margins[i] <= 1]
    assert all(d[a] <= d[b] for a, b in itertools.pairwise(low))
    again = lossreg.create_loss("ensloss", seed=5).derivatives(margins)
    assert torch.equal(d, again)
    assert not torch.equal(d, loss.derivatives(margins))  # the next call draws anew
    with pytest.raises(ValueError, match="batch-level"):
        lossreg.create_loss("ensloss", reduction="none")
    spec = lossreg.get_spec("ensloss")
    assert spec.stochastic and not spec.per_sample


# --------------------------------------------------------------------------- ebv


@pytest.mark.reference("ebv")
def test_ebv_matches_loop(data):
    loss = lossreg.create_loss("ebv", n_classes=N_CLASSES, dim=8, tau=0.1, reduction="none")
    basis = loss.basis_.tolist()
    gen = torch.Generator().manual_seed(11)
    emb = torch.randn(N_ROWS, 8, generator=gen, dtype=torch.float64)
    expected = []
    for row, y in zip(emb.tolist(), data["labels"].tolist()):
        norm = math.sqrt(sum(v * v for v in row))
        cos = [sum(a * b for a, b in zip(row, b_c)) / norm for b_c in basis]
        expected.append(-math.log(probs_loop([c / 0.1 for c in cos])[y]))
    assert_rows(loss(emb, data["labels"]), expected)


def test_ebv_basis_is_orthonormal_seeded_and_needs_enough_dimensions():
    from lossreg.targets import output_size

    loss = lossreg.create_loss("ebv", n_classes=4, dim=6)
    gram = loss.basis_ @ loss.basis_.T
    torch.testing.assert_close(gram, torch.eye(4, dtype=torch.float64))
    assert torch.equal(loss.basis_, lossreg.create_loss("ebv", n_classes=4, dim=6).basis_)
    assert not torch.equal(
        loss.basis_, lossreg.create_loss("ebv", n_classes=4, dim=6, seed=1).basis_
    )
    with pytest.raises(ValueError, match="dim >= n_classes"):
        lossreg.create_loss("ebv", n_classes=7, dim=6)
    spec = lossreg.get_spec("ebv")
    assert output_size(spec, "multiclass", n_classes=4, params={"dim": 6}) == 6
    emb = torch.randn(3, 6, dtype=torch.float64)
    proba = resolve_link(spec.link)(emb, loss)
    torch.testing.assert_close(proba, loss.scores(emb).softmax(dim=1))


def test_ensloss_and_ebv_keep_float32_and_finite_gradients_at_extreme_inputs(data):
    big = (data["scores"].sign() * 1e3).float().requires_grad_()
    value = lossreg.create_loss("ensloss", seed=0)(big, data["binary"].float())
    weighted = lossreg.create_loss("ensloss", seed=0)(
        big, data["binary"].float(), sample_weight=data["weights"].float()
    )
    assert value.dtype == torch.float32 and torch.isfinite(weighted)
    (grad,) = torch.autograd.grad(value, big)
    assert torch.isfinite(grad).all()
    emb = (torch.randn(N_ROWS, 8) * 1e3).requires_grad_()
    value = lossreg.create_loss("ebv", n_classes=N_CLASSES, dim=8)(emb, data["labels"])
    (grad,) = torch.autograd.grad(value, emb)
    assert value.dtype == torch.float32 and torch.isfinite(grad).all()


# --------------------------------------------------------------------------- legendretron


def legendretron_loop(loss, v: torch.Tensor, labels: torch.Tensor, h: float = 1e-5):
    """Gradient maps by central finite differences of each potential, then a log-softmax loop."""
    out = []
    for row, y in zip(v.tolist(), labels.tolist()):
        u = list(row)
        for potential in loss.potentials:
            potential = copy.deepcopy(potential).double()  # leave the module untouched
            grad = []
            for k in range(len(u)):
                up, down = list(u), list(u)
                up[k] += h
                down[k] -= h
                with torch.no_grad():
                    both = potential(torch.tensor([up, down], dtype=torch.float64)).tolist()
                grad.append((both[0] - both[1]) / (2 * h))
            u = grad
        out.append(-math.log(probs_loop([*u, 0.0])[y]))
    return out


@pytest.mark.reference("legendretron")
@pytest.mark.parametrize(("n_blocks", "hidden", "depth"), [(2, 4, 4), (1, 2, 2), (3, 4, 1)])
def test_legendretron_matches_finite_difference_loop(data, n_blocks, hidden, depth):
    params = {"n_blocks": n_blocks, "hidden": hidden, "depth": depth}
    loss = lossreg.create_loss("legendretron", n_classes=N_CLASSES, reduction="none", **params)
    v = data["logits"][:8, : N_CLASSES - 1]
    expected = legendretron_loop(loss, v, data["labels"][:8])
    assert_rows(loss(v, data["labels"][:8]), expected, rel=1e-6)


def test_legendretron_without_the_icnn_term_is_cross_entropy_on_scaled_scores(data):
    loss = lossreg.create_loss("legendretron", n_classes=N_CLASSES, reduction="none")
    with torch.no_grad():
        for potential in loss.potentials:
            potential.w1.fill_(-1e4)  # softplus(w1) = 0: psi(x) = softplus(w0) |x|^2 / 2
    v = data["logits"][:, : N_CLASSES - 1]
    scale = F.softplus(torch.zeros(1, dtype=torch.float64)).item() ** 2
    logits = torch.cat([scale * v, torch.zeros(N_ROWS, 1, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(
        loss(v, data["labels"]), F.cross_entropy(logits, data["labels"], reduction="none")
    )


def test_legendretron_link_is_monotone_learnable_and_gives_probabilities(data):
    loss = lossreg.create_loss("legendretron", n_classes=N_CLASSES)
    a, b = data["logits"][:12, :4], data["logits"][12:, :4]
    du = loss.link_map(a) - loss.link_map(b)
    assert ((du * (a - b)).sum(dim=1) >= -1e-12).all()  # gradients of convex maps are monotone
    value = loss(a.float(), data["labels"][:12])
    assert value.dtype == torch.float32
    value.backward()
    grads = [p.grad for p in loss.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    spec = lossreg.get_spec("legendretron")
    assert spec.learnable
    with torch.no_grad():
        proba = resolve_link(spec.link)(a, loss)
    torch.testing.assert_close(proba.sum(dim=1), torch.ones(12, dtype=torch.float64))
    again = lossreg.create_loss("legendretron", n_classes=N_CLASSES)
    assert all(
        torch.equal(p, q) for p, q in zip(loss.state_dict().values(), again.state_dict().values())
    )


# --------------------------------------------------------------------------- hrr_code


def circular_convolution(a: list[float], b: list[float]) -> list[float]:
    n = len(a)
    return [sum(a[j] * b[(i - j) % n] for j in range(n)) for i in range(n)]


def circular_correlation(s: list[float], k: list[float]) -> list[float]:
    n = len(s)
    return [sum(k[j] * s[(i + j) % n] for j in range(n)) for i in range(n)]


@pytest.mark.reference("hrr_code")
def test_hrr_code_matches_loop(data):
    loss = lossreg.create_loss("hrr_code", n_classes=N_CLASSES, dim=16, reduction="none")
    keys, values = loss.keys_.tolist(), loss.values_.tolist()
    codes = [circular_convolution(k, v) for k, v in zip(keys, values)]
    for got, want in zip(loss.codes_.tolist(), codes):
        assert got == pytest.approx(want, abs=1e-12)
    # Keys and values are projected: every Fourier coefficient has magnitude 1.
    assert np.allclose(np.abs(np.fft.fft(np.array(keys), axis=1)), 1.0)
    gen = torch.Generator().manual_seed(3)
    out = torch.randn(N_ROWS, 16, generator=gen, dtype=torch.float64) * 0.3
    expected = [
        math.sqrt(sum((c - o) ** 2 for c, o in zip(codes[y], row)))
        for row, y in zip(out.tolist(), data["labels"].tolist())
    ]
    assert_rows(loss(out, data["labels"]), expected)
    scores = loss.decode(out).tolist()
    for row, got in zip(out.tolist(), scores):
        for k, v, score in zip(keys, values, got):
            unbound = circular_correlation(row, k)
            cos = sum(a * b for a, b in zip(unbound, v)) / math.sqrt(
                sum(a * a for a in unbound) * sum(b * b for b in v)
            )
            assert score == pytest.approx(cos, abs=1e-10)


def test_hrr_code_decodes_exact_codes_and_is_score_only(data):
    loss = lossreg.create_loss("hrr_code", n_classes=N_CLASSES, dim=64)
    codes = loss.codes_[data["labels"]]
    assert loss.decode(codes).argmax(dim=1).tolist() == data["labels"].tolist()
    exact = codes.float().requires_grad_()
    value = loss(exact, data["labels"])
    (grad,) = torch.autograd.grad(value, exact)
    assert value.item() < 1e-6
    assert torch.equal(grad, torch.zeros_like(grad))  # zero residual: subgradient 0, not NaN
    spec = lossreg.get_spec("hrr_code")
    assert not resolve_link(spec.link).has_proba
    from lossreg.targets import output_size

    assert output_size(spec, "multiclass", n_classes=5, params={"dim": 128}) == 128


# --------------------------------------------------------------------------- bias_ce


def bias_ce_loop(logits, features, labels, alpha, beta, minimum=None):
    variances = []
    for row in features.reshape(features.shape[0], -1).tolist():
        mean = sum(row) / len(row)
        variances.append(sum((v - mean) ** 2 for v in row) / (len(row) - 1))
    low = min(variances) if minimum is None else minimum
    spread = max(variances) - min(variances)
    out = []
    for z, y, v in zip(logits.tolist(), labels.tolist(), variances):
        weight = math.exp(beta * (v - low) / spread) - 1 + alpha
        out.append(-weight * math.log(probs_loop(z)[y]))
    return out, min(variances)


@pytest.mark.reference("bias_ce")
@pytest.mark.parametrize(("alpha", "beta"), [(0.3, 0.3), (0.1, 1.0)])
def test_bias_ce_matches_loop_in_local_and_global_mode(data, alpha, beta):
    logits, labels = data["logits"], data["labels"]
    gen = torch.Generator().manual_seed(5)
    feats = torch.randn(N_ROWS, 3, 4, generator=gen, dtype=torch.float64)
    local = rows("bias_ce", (logits, feats), labels, alpha=alpha, beta=beta, mode="local")
    expected, first_min = bias_ce_loop(logits, feats, labels, alpha, beta)
    assert_rows(local, expected)
    loss = lossreg.create_loss("bias_ce", alpha=alpha, beta=beta, reduction="none")
    assert_rows(loss({"logits": logits, "features": feats}, labels), expected)
    # A later batch with larger variances is normalised by the running (smaller) minimum.
    wider = 3 * feats[:12]
    expected, _ = bias_ce_loop(logits[:12], wider, labels[:12], alpha, beta, minimum=first_min)
    assert_rows(loss((logits[:12], wider), labels[:12]), expected)
    # Eval mode reads the running minimum but does not update it.
    loss.eval()
    loss((logits, feats / 10), labels)
    assert loss.global_min_.item() == pytest.approx(first_min, rel=1e-12)


def test_bias_ce_needs_features_and_predicts_from_the_logits_head(data):
    with pytest.raises(ValueError, match="hidden features"):
        rows("bias_ce", data["logits"], data["labels"])
    feats = torch.ones(N_ROWS, 4, dtype=torch.float64)  # equal variances: weight alpha + 0
    torch.testing.assert_close(
        rows("bias_ce", (data["logits"], feats), data["labels"]),
        0.3 * rows("cross_entropy", data["logits"], data["labels"]),
    )
    # outputs="logits+features": estimators hand the link the logits part only.
    assert lossreg.get_spec("bias_ce").outputs == "logits+features"
    link = resolve_link(lossreg.get_spec("bias_ce").link)
    torch.testing.assert_close(link(data["logits"]), data["logits"].softmax(dim=1))
    w = data["weights"]
    per_row = rows(
        "bias_ce", (data["logits"], feats * torch.arange(N_ROWS)[:, None]), data["labels"]
    )
    weighted = lossreg.create_loss("bias_ce")(
        (data["logits"], feats * torch.arange(N_ROWS)[:, None]), data["labels"], sample_weight=w
    )
    assert weighted.item() == pytest.approx(float((per_row * w).sum() / w.sum()), rel=1e-12)


# --------------------------------------------------------------------------- round trips


def module_cases(data):
    yield from ((n, {**p}, x, y) for n, x, y, p in cases(data))
    emb = data["logits"].repeat(1, 2)[:, :8]
    yield "ebv", {"n_classes": N_CLASSES, "dim": 8}, emb, data["labels"]
    yield "hrr_code", {"n_classes": N_CLASSES, "dim": 8}, emb, data["labels"]
    yield "legendretron", {"n_classes": N_CLASSES}, data["logits"][:, :4], data["labels"]
    feats = data["logits"] * 2
    yield "bias_ce", {"mode": "local"}, (data["logits"], feats), data["labels"]
    yield "ensloss", {"seed": 4}, data["scores"], data["binary"]


def test_modules_survive_pickle_and_deepcopy_and_are_permutation_equivariant(data):
    import pickle

    perm = torch.randperm(N_ROWS, generator=torch.Generator().manual_seed(0))
    for name, params, x, y in module_cases(data):
        loss = lossreg.create_loss(name, **params)
        for clone in (copy.deepcopy(loss), pickle.loads(pickle.dumps(loss))):
            torch.testing.assert_close(clone(x, y), loss(x, y), msg=name)
            if name == "ensloss":
                loss.calls_ -= 1  # the clone's draw must match the original's next draw
        if lossreg.get_spec(name).per_sample:
            each = lossreg.create_loss(name, reduction="none", **params)
            xp = tuple(t[perm] for t in x) if isinstance(x, tuple) else x[perm]
            torch.testing.assert_close(each(xp, y[perm]), each(x, y)[perm], msg=name)


def test_smooth_losses_pass_gradcheck_in_float64(data):
    smooth = {"poly1", "poly_n", "poly1_focal", "poly1_bce", "squentropy", "kl_div", "dco"}
    smooth |= {"stablemax_cross_entropy", "z_loss_spherical", "z_loss_penalty", "exponential"}
    smooth |= {"entropy_regularized_ce", "one_hot_mse", "rescaled_square", "softmax_norm_penalty"}
    for name, x, y, params in cases(data):
        if name not in smooth:
            continue
        loss = lossreg.create_loss(name, **params)
        inp = x[:4].clone().requires_grad_()
        assert torch.autograd.gradcheck(lambda t, f=loss, t4=y[:4]: f(t, t4), (inp,)), name


@pytest.mark.reference("poly1")
@pytest.mark.parametrize(("epsilon", "smoothing"), [(1.0, 0.1), (2.0, 0.3), (0.0, 0.2)])
def test_poly1_with_label_smoothing_matches_loop_and_torch(data, epsilon, smoothing):
    logits, labels = data["logits"], data["labels"]
    expected = []
    for row, y in zip(logits.tolist(), labels.tolist()):
        p = probs_loop(row)
        q = [(1 - smoothing) * (c == y) + smoothing / len(row) for c in range(len(row))]
        ce = -sum(qc * math.log(pc) for qc, pc in zip(q, p))
        pt = sum(qc * pc for qc, pc in zip(q, p))
        expected.append(ce + epsilon * (1 - pt))
    ours = rows("poly1", logits, labels, epsilon=epsilon, label_smoothing=smoothing)
    assert_rows(ours, expected)
    if epsilon == 0.0:
        ref = F.cross_entropy(logits, labels, label_smoothing=smoothing, reduction="none")
        torch.testing.assert_close(ours, ref)


def test_fitted_parameter_losses_are_finite_at_extreme_inputs_and_pass_gradcheck(data):
    labels = data["labels"]
    shaped = [
        ("legendretron", {"n_classes": N_CLASSES}, 4),
        ("hrr_code", {"n_classes": N_CLASSES, "dim": 8}, 8),
        ("ebv", {"n_classes": N_CLASSES, "dim": 8}, 8),
    ]
    for name, params, width in shaped:
        loss = lossreg.create_loss(name, **params)
        big = (data["logits"].repeat(1, 2)[:, :width].sign() * 1e3).float().requires_grad_()
        value = loss(big, labels)
        (grad,) = torch.autograd.grad(value, big)
        assert value.dtype == torch.float32 and torch.isfinite(grad).all(), name
        small = data["logits"].repeat(1, 2)[:4, :width].clone().requires_grad_()
        assert torch.autograd.gradcheck(lambda t, f=loss: f(t, labels[:4]), (small,)), name
    loss = lossreg.create_loss("bias_ce")
    big = (data["logits"].sign() * 1e3).float().requires_grad_()
    value = loss((big, big.detach() * 2), labels)
    (grad,) = torch.autograd.grad(value, big)
    assert torch.isfinite(grad).all()
