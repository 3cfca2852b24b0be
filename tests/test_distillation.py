"""Distillation losses against torch / float64 loop references, identities and an end-to-end fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

import lossreg
from lossreg import LossClassifier
from lossreg.estimators.distill import DistilledClassifier, teacher_logits

N_CLASSES = 4


@pytest.fixture(scope="module", autouse=True)
def _one_native_thread():
    # scikit-learn's BLAS / OpenMP threads crawl on a busy 2-core machine; tiny fits need one.
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def registry():
    return lossreg.Registry(entry_points=False)


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(5)
    z = torch.randn(16, N_CLASSES, generator=gen, dtype=torch.float64) * 2
    t = torch.randn(16, N_CLASSES, generator=gen, dtype=torch.float64) * 3
    y = torch.randint(0, N_CLASSES, (16,), generator=gen)
    w = torch.rand(16, generator=gen, dtype=torch.float64)
    return z, t, y, w


def _softmax(row):
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    return [e / sum(exps) for e in exps]


def _kl(p, q):
    return sum(pc * (math.log(pc) - math.log(qc)) for pc, qc in zip(p, q) if pc > 0)


def _ours(registry, name, z, y, t, **params):
    return registry.create_loss(name, reduction="none", **params)(z, y, teacher_logits=t)


def _close(ours, expected, rtol=1e-10):
    np.testing.assert_allclose(ours.detach().numpy(), np.asarray(expected), rtol=rtol, atol=1e-12)


# -- knowledge distillation -----------------------------------------------------------------


@pytest.mark.reference("knowledge_distillation", "kd")
@pytest.mark.parametrize(("temperature", "alpha"), [(4.0, 0.9), (1.0, 0.5), (8.0, 0.3)])
def test_kd_matches_torch_kl_div_batchmean(registry, data, temperature, alpha):
    z, t, y, _ = data
    loss = registry.create_loss("kd", temperature=temperature, alpha=alpha)
    kl = torch.nn.KLDivLoss(reduction="batchmean")(
        F.log_softmax(z / temperature, dim=1), F.softmax(t / temperature, dim=1)
    )
    expected = (1 - alpha) * F.cross_entropy(z, y) + alpha * temperature**2 * kl
    torch.testing.assert_close(loss(z, y, teacher_logits=t), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.reference("knowledge_distillation")
def test_kd_matches_loop(registry, data):
    z, t, y, _ = data
    expected = []
    for zr, tr, yi in zip(z.tolist(), t.tolist(), y.tolist()):
        ce = -math.log(_softmax(zr)[yi])
        soft = _kl(_softmax([v / 4 for v in tr]), _softmax([v / 4 for v in zr]))
        expected.append(0.1 * ce + 0.9 * 16 * soft)
    _close(_ours(registry, "knowledge_distillation", z, y, t), expected)


def test_kd_identities(registry, data):
    z, t, y, _ = data
    ce = F.cross_entropy(z, y, reduction="none")
    torch.testing.assert_close(_ours(registry, "kd", z, y, t, alpha=0.0), ce)
    # Student equal to the teacher: only the label term remains.
    torch.testing.assert_close(_ours(registry, "kd", z, y, z.clone(), alpha=0.9), 0.1 * ce)


def test_kd_sample_weights(registry, data):
    z, t, y, w = data
    loss = registry.create_loss("kd")
    per_row = _ours(registry, "kd", z, y, t)
    expected = (per_row * w).sum() / w.sum()
    torch.testing.assert_close(loss(z, y, sample_weight=w, teacher_logits=t), expected)


def test_binary_teacher_with_one_logit_is_expanded(registry):
    z = torch.tensor([[0.0, 1.5], [0.3, -0.2]], dtype=torch.float64)
    y = torch.tensor([1, 0])
    d = torch.tensor([2.0, -1.0], dtype=torch.float64)
    two = torch.stack([torch.zeros_like(d), d], dim=1)
    for shape in [(2,), (2, 1)]:
        torch.testing.assert_close(
            _ours(registry, "kd", z, y, d.reshape(shape)), _ours(registry, "kd", z, y, two)
        )


def test_missing_or_misshaped_teacher_raises(registry, data):
    z, t, y, _ = data
    loss = registry.create_loss("kd")
    with pytest.raises(ValueError, match="teacher_logits"):
        loss(z, y)
    with pytest.raises(ValueError, match="shape"):
        loss(z, y, teacher_logits=t[:, :3])


@pytest.mark.parametrize(
    "name",
    [
        "knowledge_distillation",
        "defensive_distillation",
        "generalized_jsd_kd",
        "soft_symmetric_ce",
        "binary_kl_kd",
        "sinkhorn_kd",
    ],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_logits_give_finite_gradients_and_keep_dtype(registry, name, dtype):
    z = torch.tensor([[1e3, -1e3, 0.0], [-1e3, 1e3, 5.0]], dtype=dtype, requires_grad=True)
    t = torch.tensor([[-1e3, 1e3, 0.0], [1e3, 0.0, -1e3]], dtype=dtype)
    out = registry.create_loss(name)(z, torch.tensor([0, 2]), teacher_logits=t)
    out.backward()
    assert out.dtype == dtype and torch.isfinite(out)
    assert torch.isfinite(z.grad).all()


# -- defensive distillation -----------------------------------------------------------------


@pytest.mark.reference("defensive_distillation")
@pytest.mark.parametrize("temperature", [20.0, 2.0])
def test_defensive_distillation_matches_loop(registry, data, temperature):
    z, t, y, _ = data
    expected = []
    for zr, tr in zip(z.tolist(), t.tolist()):
        p = _softmax([v / temperature for v in tr])
        q = _softmax([v / temperature for v in zr])
        expected.append(-sum(pc * math.log(qc) for pc, qc in zip(p, q)))
    _close(_ours(registry, "defensive_distillation", z, y, t, temperature=temperature), expected)


def test_defensive_distillation_is_soft_ce_torch(registry, data):
    z, t, y, _ = data
    expected = F.cross_entropy(z / 20, F.softmax(t / 20, dim=1), reduction="none")
    torch.testing.assert_close(_ours(registry, "defensive_distillation", z, y, t), expected)


# -- generalized JSD ------------------------------------------------------------------------


def _gjsd_loop(z, t, beta, temperature):
    out = []
    for zr, tr in zip(z.tolist(), t.tolist()):
        ps = _softmax([v / temperature for v in zr])
        pt = _softmax([v / temperature for v in tr])
        if beta == 0:
            out.append(_kl(pt, ps))
        elif beta == 1:
            out.append(_kl(ps, pt))
        else:
            m = [beta * a + (1 - beta) * b for a, b in zip(pt, ps)]
            out.append(beta * _kl(pt, m) + (1 - beta) * _kl(ps, m))
    return out


@pytest.mark.reference("generalized_jsd_kd", "gkd")
@pytest.mark.parametrize(("beta", "temperature"), [(0.5, 1.0), (0.0, 1.0), (1.0, 2.0), (0.9, 3.0)])
def test_generalized_jsd_matches_loop(registry, data, beta, temperature):
    z, t, y, _ = data
    ours = _ours(registry, "gkd", z, y, t, beta=beta, temperature=temperature)
    _close(ours, _gjsd_loop(z, t, beta, temperature), rtol=1e-9)


def test_generalized_jsd_half_is_scipy_jensen_shannon(registry, data):
    from scipy.spatial.distance import jensenshannon

    z, t, y, _ = data
    ps, pt = F.softmax(z, dim=1).numpy(), F.softmax(t, dim=1).numpy()
    expected = jensenshannon(pt, ps, axis=1) ** 2
    _close(_ours(registry, "generalized_jsd_kd", z, y, t), expected, rtol=1e-8)


def test_generalized_jsd_end_points_and_ce(registry, data):
    z, t, y, _ = data
    forward = _ours(registry, "kd", z, y, t, temperature=1.0, alpha=1.0)
    torch.testing.assert_close(_ours(registry, "gkd", z, y, t, beta=0.0), forward)
    near = _ours(registry, "gkd", z, y, t, ce_weight=0.5)
    ce = F.cross_entropy(z, y, reduction="none")
    torch.testing.assert_close(near, _ours(registry, "gkd", z, y, t) + 0.5 * ce)


# -- PS-KD ----------------------------------------------------------------------------------


@pytest.mark.reference("ps_kd")
def test_ps_kd_matches_loop_over_two_epochs(registry, data):
    z, _, y, _ = data
    n = z.shape[0]
    loss = registry.create_loss("ps_kd", n_samples=n, n_classes=N_CLASSES, reduction="none")
    index = torch.arange(n).flip(0)  # row ids need not follow batch order
    loss.set_epoch(0, 4)
    first = loss(z, y, sample_index=index)
    _close(first, [-math.log(_softmax(r)[yi]) for r, yi in zip(z.tolist(), y.tolist())])
    loss.set_epoch(1, 4)
    z2 = z * 0.5 + 0.3
    second = loss(z2, y, sample_index=index)
    alpha = 0.8 * 2 / 4
    expected = []
    for r_prev, r, yi in zip(z.tolist(), z2.tolist(), y.tolist()):
        prev, q = _softmax(r_prev), _softmax(r)
        soft = [(1 - alpha) * (c == yi) + alpha * prev[c] for c in range(N_CLASSES)]
        expected.append(-sum(s * math.log(qc) for s, qc in zip(soft, q)))
    _close(second, expected, rtol=1e-6)  # the table stores float32 predictions


def test_ps_kd_alpha_schedule_is_capped(registry):
    loss = registry.create_loss("ps_kd", n_samples=4, n_classes=2)
    assert loss.alpha_t_ == pytest.approx(0.8)  # usable without set_epoch
    loss.set_epoch(0, 10)
    assert loss.alpha_t_ == pytest.approx(0.08)
    loss.set_epoch(30, 10)
    assert loss.alpha_t_ == pytest.approx(0.8)


def test_ps_kd_eval_mode_leaves_table_and_checks_index(registry, data):
    z, _, y, _ = data
    loss = registry.create_loss("ps_kd", n_samples=16, n_classes=N_CLASSES).eval()
    loss(z, y, sample_index=torch.arange(16))
    assert not loss.seen_.any()
    with pytest.raises(ValueError, match="sample_index"):
        loss(z, y)
    with pytest.raises(ValueError, match="n_samples"):
        loss(z, y, sample_index=torch.arange(16) + 1)


# -- soft symmetric CE, binary KL -----------------------------------------------------------


@pytest.mark.reference("soft_symmetric_ce")
def test_soft_symmetric_ce_matches_loop(registry, data):
    z, t, y, _ = data
    expected = []
    for zr, tr in zip(z.tolist(), t.tolist()):
        p, q = _softmax(tr), _softmax(zr)
        expected.append(
            0.5 * (-sum(a * math.log(b) for a, b in zip(p, q)))
            + 0.5 * (-sum(b * math.log(a) for a, b in zip(p, q)))
        )
    _close(_ours(registry, "soft_symmetric_ce", z, y, t), expected)


def test_soft_symmetric_ce_gradient_flows_through_both_terms(registry, data):
    z, t, y, _ = data
    z = z.clone().requires_grad_(True)
    registry.create_loss("soft_symmetric_ce")(z, y, teacher_logits=t).backward()
    ref = z.detach().clone().requires_grad_(True)
    q = F.log_softmax(ref, dim=1)
    p = F.log_softmax(t, dim=1)
    (0.5 * (-(p.exp() * q).sum(1) - (q.exp() * p).sum(1))).mean().backward()
    torch.testing.assert_close(z.grad, ref.grad)


@pytest.mark.reference("binary_kl_kd")
@pytest.mark.parametrize(("temperature", "normalize"), [(2.0, False), (1.0, True), (4.0, False)])
def test_binary_kl_matches_loop_and_bce_identity(registry, data, temperature, normalize):
    z, t, y, _ = data
    zs, ts = z, t
    if normalize:
        zs = (z - z.mean(1, keepdim=True)) / (z.std(1, keepdim=True) + 1e-8)
        ts = (t - t.mean(1, keepdim=True)) / (t.std(1, keepdim=True) + 1e-8)
    expected = []
    for zr, tr in zip(zs.tolist(), ts.tolist()):
        total = 0.0
        for a, b in zip(zr, tr):
            p, q = 1 / (1 + math.exp(-b / temperature)), 1 / (1 + math.exp(-a / temperature))
            total += p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
        expected.append(temperature**2 * total)
    ours = _ours(registry, "binary_kl_kd", z, y, t, temperature=temperature, normalize=normalize)
    _close(ours, expected, rtol=1e-8)
    # KL of Bernoullis = BCE(student, p) - BCE(teacher, p), per class.
    p = torch.sigmoid(ts / temperature)
    bce = F.binary_cross_entropy_with_logits
    lib = bce(zs / temperature, p, reduction="none") - bce(ts / temperature, p, reduction="none")
    torch.testing.assert_close(ours, temperature**2 * lib.sum(1))


# -- end to end -----------------------------------------------------------------------------


def test_distil_hist_gradient_boosting_into_loss_classifier():
    """Issue 12 done-when: a GBDT teacher's out-of-fold logits train a KD student."""
    from sklearn.datasets import make_classification
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split

    X, y = make_classification(
        400, 8, n_informative=5, n_classes=3, n_clusters_per_class=1, random_state=0
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    teacher = HistGradientBoostingClassifier(max_iter=40, random_state=0)
    logits = teacher_logits(teacher, X_train, y_train, cv=3)
    assert logits.shape == (len(y_train), 3) and np.isfinite(logits).all()
    np.testing.assert_allclose(np.exp(logits).sum(1), 1.0, atol=1e-5)
    student = LossClassifier(
        loss="knowledge_distillation", loss__temperature=2.0, max_iter=40, random_state=0
    )
    student.fit(X_train, y_train, teacher_logits=logits)
    assert student.criterion_.temperature == 2.0
    assert student.score(X_test, y_test) > 0.7
    proba = student.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    with pytest.raises(lossreg.MissingFitExtraError, match="teacher_logits"):
        LossClassifier(loss="kd", max_iter=1).fit(X_train, y_train)


def test_distilled_classifier_cross_validates_teacher_and_student_together():
    from sklearn.base import clone
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    X, y = make_classification(160, 6, n_informative=4, n_classes=3, random_state=9)
    model = DistilledClassifier(
        LogisticRegression(max_iter=500),
        LossClassifier(loss="kd", max_iter=10, random_state=0),
        cv=3,
    )
    assert clone(model).get_params()["cv"] == 3
    scores = cross_val_score(model, X, y, cv=2)
    assert scores.shape == (2,) and (scores > 0.5).all()
    fitted = model.fit(X[:100], y[:100])
    assert fitted.teacher_logits_.shape == (100, 3)
    assert fitted.predict_proba(X[100:]).shape == (60, 3)
    assert set(fitted.predict(X)) <= set(fitted.classes_)


def test_teacher_logits_in_sample_and_decision_function():
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(60, 4, random_state=1)
    model = LogisticRegression().fit(X, y)
    logits = teacher_logits(model, X, method="decision_function")
    np.testing.assert_allclose(
        torch.softmax(torch.as_tensor(logits), 1).numpy(), model.predict_proba(X), rtol=1e-6
    )
    np.testing.assert_allclose(
        np.exp(teacher_logits(model, X)), model.predict_proba(X), rtol=1e-6, atol=1e-7
    )
    with pytest.raises(ValueError, match="needs y"):
        teacher_logits(LogisticRegression(), X, cv=3)


def test_ps_kd_trains_through_the_estimator():
    from sklearn.datasets import make_classification

    X, y = make_classification(120, 5, n_informative=3, n_classes=3, random_state=2)
    clf = LossClassifier(loss="ps_kd", max_iter=5, batch_size=32, random_state=0).fit(X, y)
    assert clf.criterion_.seen_.all()
    assert clf.criterion_.alpha_t_ == pytest.approx(0.8)


# -- Sinkhorn KD ----------------------------------------------------------------------------


def _sinkhorn_loop(z, t, temperature, epsilon, n_iters):
    ps = [_softmax([v / temperature for v in r]) for r in z]
    pt = [_softmax([v / temperature for v in r]) for r in t]
    n = len(ps)
    cost = [[sum(abs(a - b) for a, b in zip(ps[i], pt[j])) for j in range(n)] for i in range(n)]
    plan = [[math.exp(-cost[i][j] / epsilon) for j in range(n)] for i in range(n)]
    for _ in range(n_iters):  # the reference's plain division by row, then column, sums
        plan = [[v / sum(row) for v in row] for row in plan]
        cols = [sum(plan[i][j] for i in range(n)) for j in range(n)]
        plan = [[plan[i][j] / cols[j] for j in range(n)] for i in range(n)]
    return sum(plan[i][j] * cost[i][j] for i in range(n) for j in range(n))


@pytest.mark.reference("sinkhorn_kd")
@pytest.mark.parametrize(("temperature", "epsilon", "n_iters"), [(2.0, 0.1, 20), (1.0, 0.5, 5)])
def test_sinkhorn_kd_matches_loop(registry, data, temperature, epsilon, n_iters):
    z, t, y, _ = data
    params = dict(temperature=temperature, epsilon=epsilon, n_iters=n_iters)
    loss = registry.create_loss("sinkhorn_kd", **params)
    expected = 0.002 * _sinkhorn_loop(z.tolist(), t.tolist(), temperature, epsilon, n_iters)
    expected += F.cross_entropy(z, y).item()
    assert loss(z, y, teacher_logits=t).item() == pytest.approx(expected, rel=1e-9)
    total = registry.create_loss("sinkhorn_kd", reduction="sum", **params)
    assert total(z, y, teacher_logits=t).item() == pytest.approx(16 * expected, rel=1e-9)


def test_sinkhorn_kd_weights_count_rows(registry, data):
    z, t, y, _ = data
    loss = registry.create_loss("sinkhorn_kd", weight=1.0, ce_weight=0.5)
    assert loss(z, y, teacher_logits=z.clone()).item() < loss(z, y, teacher_logits=t).item()
    weight = torch.tensor([3.0, 0.0] + [1.0] * 14, dtype=torch.float64)
    rows = torch.tensor([0, 0, 0, *list(range(2, 16))])
    torch.testing.assert_close(
        loss(z, y, sample_weight=weight, teacher_logits=t),
        loss(z[rows], y[rows], teacher_logits=t[rows]),
    )
    with pytest.raises(ValueError, match="batch-level"):
        registry.create_loss("sinkhorn_kd", reduction="none")


# -- Margin-MSE -----------------------------------------------------------------------------


@pytest.mark.reference("margin_mse")
def test_margin_mse_matches_pair_loop(registry):
    gen = torch.Generator().manual_seed(2)
    s = torch.randn(12, generator=gen, dtype=torch.float64)
    t = torch.randn(12, 1, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (12,), generator=gen).double()
    group = torch.tensor([0] * 5 + [1] * 4 + [2] * 3)
    w = torch.rand(12, generator=gen, dtype=torch.float64)
    num = den = plain = count = 0.0
    for i in range(12):
        for j in range(12):
            if group[i] == group[j] and y[i] > y[j]:
                gap = ((s[i] - s[j]) - (t[i, 0] - t[j, 0])).item() ** 2
                num += w[i].item() * w[j].item() * gap
                den += w[i].item() * w[j].item()
                plain += gap
                count += 1
    loss = registry.create_loss("margin_mse")
    assert loss(s, y, group=group, teacher_logits=t).item() == pytest.approx(plain / count)
    weighted = loss(s, y, sample_weight=w, group=group, teacher_logits=t)
    assert weighted.item() == pytest.approx(num / den)


def test_margin_mse_single_triple_is_torch_mse_of_margins(registry):
    s = torch.tensor([1.2, -0.3], dtype=torch.float64, requires_grad=True)
    t = torch.tensor([2.0, 0.5], dtype=torch.float64)
    out = registry.create_loss("margin_mse")(
        s, torch.tensor([1.0, 0.0]), group=torch.tensor([7, 7]), teacher_logits=t
    )
    torch.testing.assert_close(out, F.mse_loss(s[0] - s[1], t[0] - t[1]))
    out.backward()
    none = registry.create_loss("margin_mse")(
        s, torch.tensor([1.0, 1.0]), group=torch.tensor([7, 7]), teacher_logits=t
    )
    assert none.item() == 0.0  # no pair of different relevance


# -- dual-head KD ---------------------------------------------------------------------------


@pytest.mark.reference("dual_head_kd")
@pytest.mark.parametrize("kd_weight", [0.0, 0.5])
def test_dual_head_kd_matches_loop(registry, data, kd_weight):
    z, t, y, _ = data
    heads = torch.cat([z, z.flip(0) * 0.7], dim=1)
    ours = _ours(registry, "dual_head_kd", heads, y, t, kd_weight=kd_weight)
    expected = []
    for row, tr, yi in zip(heads.tolist(), t.tolist(), y.tolist()):
        h1, h2 = row[:N_CLASSES], row[N_CLASSES:]
        value = -math.log(_softmax(h1)[yi])
        value += kd_weight * 16 * _kl(_softmax([v / 4 for v in tr]), _softmax([v / 4 for v in h1]))
        zs = (np.array(h2) - np.mean(h2)) / (np.std(h2, ddof=1) + 1e-8)
        ts = (np.array(tr) - np.mean(tr)) / (np.std(tr, ddof=1) + 1e-8)
        for a, b in zip(zs, ts):
            p, q = 1 / (1 + math.exp(-b)), 1 / (1 + math.exp(-a))
            value += p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
        expected.append(value)
    _close(ours, expected, rtol=1e-8)


def test_dual_head_kd_through_the_estimator():
    from sklearn.datasets import make_classification

    X, y = make_classification(150, 6, n_informative=4, n_classes=3, random_state=4)
    teacher = np.eye(3)[y] * 3.0
    clf = LossClassifier(loss="dual_head_kd", max_iter=5, random_state=0)
    clf.fit(X, y, teacher_logits=teacher)
    assert clf.module_(torch.zeros(1, 6)).shape == (1, 6)
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(1), 1.0)


def test_sinkhorn_kd_through_the_estimator():
    from sklearn.datasets import make_classification

    X, y = make_classification(90, 5, n_informative=3, n_classes=3, random_state=6)
    clf = LossClassifier(loss="sinkhorn_kd", max_iter=3, batch_size=32, random_state=0)
    clf.fit(X, y, teacher_logits=np.eye(3)[y] * 2.0)
    assert clf.predict_proba(X).shape == (90, 3)


# -- DeiT-LT hard distillation with DRW -----------------------------------------------------


def _drw_loop(heads, t, y, counts, alpha, beta, drw_on, rows):
    c = len(counts)
    raw = [(1 - beta) / (1 - beta**n) for n in counts]
    weights = [v / sum(raw) * c for v in raw] if drw_on else [1.0] * c
    base_num = base_den = dist_num = dist_den = 0.0
    for row, tr, yi, s in zip(heads, t, y, rows):
        cls, dist = row[:c], row[c:]
        hard = max(range(c), key=lambda k: tr[k])
        base_num += s * -math.log(_softmax(cls)[yi])
        base_den += s
        dist_num += s * weights[hard] * -math.log(_softmax(dist)[hard])
        dist_den += s * weights[hard]
    return (1 - alpha) * base_num / base_den + alpha * dist_num / dist_den


@pytest.mark.reference("drw_hard_distillation")
@pytest.mark.parametrize(("epoch", "alpha"), [(0, 0.5), (9, 0.5), (9, 0.3)])
def test_drw_hard_distillation_matches_loop(registry, data, epoch, alpha):
    z, t, y, w = data
    heads = torch.cat([z, z.flip(0) * 0.5], dim=1)
    counts = [40, 20, 8, 3]
    loss = registry.create_loss("drw_hard_distillation", alpha=alpha, class_counts=counts)
    loss = loss.double()
    loss.set_epoch(epoch, 10)
    args = (heads.tolist(), t.tolist(), y.tolist(), counts, alpha, 0.9999, epoch >= 8)
    # The class-weight buffer is built in the default dtype (float32): ~1e-8 relative.
    assert loss(heads, y, teacher_logits=t).item() == pytest.approx(
        _drw_loop(*args, [1.0] * 16), rel=1e-6
    )
    weighted = loss(heads, y, sample_weight=w, teacher_logits=t).item()
    assert weighted == pytest.approx(_drw_loop(*args, w.tolist()), rel=1e-6)


def test_drw_hard_distillation_matches_torch_weighted_ce(registry, data):
    z, t, y, _ = data
    heads = torch.cat([z, -z], dim=1)
    loss = registry.create_loss("drw_hard_distillation", class_counts=[40, 20, 8, 3]).double()
    loss.set_epoch(8, 10)
    weight = loss.drw_weight_
    expected = 0.5 * F.cross_entropy(z, y) + 0.5 * F.cross_entropy(-z, t.argmax(1), weight=weight)
    torch.testing.assert_close(loss(heads, y, teacher_logits=t), expected)
    assert weight.sum().item() == pytest.approx(4.0)


def test_drw_hard_distillation_through_the_estimator():
    from sklearn.datasets import make_classification

    X, y = make_classification(
        160, 6, n_informative=4, n_classes=3, weights=[0.6, 0.3, 0.1], random_state=8
    )
    clf = LossClassifier(loss="drw_hard_distillation", max_iter=5, random_state=0)
    clf.fit(X, y, teacher_logits=np.eye(3)[y] * 2.0)
    assert clf.criterion_.class_weight_[2] > clf.criterion_.class_weight_[0]  # DRW switched on
    assert clf.predict_proba(X).shape == (160, 3)


# -- KD-Loss with two regression teachers ---------------------------------------------------


def _sign(v):
    return (v > 0) - (v < 0)


def _assist_loop(p, g, t, outer, inner):
    reflected = g + _sign(p - g) * abs(t - g)
    bound = g + _sign(p - g) * abs(t - g) * 0.15
    weight = 0.0
    if _sign(p - reflected) * _sign(reflected - g) > 0:
        weight += outer
    if _sign(reflected - p) * _sign(p - bound) >= 0:
        weight += inner
    return weight * abs(reflected - p)


@pytest.mark.reference("kd_assistive_regression")
def test_kd_assistive_regression_matches_loop(registry):
    gen = torch.Generator().manual_seed(4)
    pred = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    target = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    teachers = target.repeat(1, 2) + 0.5 * torch.randn(10, 6, generator=gen, dtype=torch.float64)
    pred[0, 0] = target[0, 0]  # on the target: every sign is 0
    expected = []
    for i in range(10):
        total = 0.0
        for k in range(3):
            p, g = pred[i, k].item(), target[i, k].item()
            tough, tol = teachers[i, k].item(), teachers[i, 3 + k].item()
            d = abs(g - tol)
            main = 3 * abs(g - p) if abs(g - p) <= d else (g - p) ** 2 + 3 * d - d**2
            total += 2.0 * main + _assist_loop(p, g, tough, 1.9, -0.45)
            total += _assist_loop(p, g, tol, 1.8, -0.4)
        expected.append(total / 3)
    loss = registry.create_loss("kd_assistive_regression", reduction="none")
    _close(loss(pred, target, teacher_logits=teachers), expected)


def test_kd_assistive_regression_shapes_and_estimator(registry):
    from lossreg import LossRegressor

    loss = registry.create_loss("kd_assistive_regression")
    with pytest.raises(ValueError, match=r"\(N, 2K\)"):
        loss(torch.zeros(4, 2), torch.zeros(4, 2), teacher_logits=torch.zeros(4, 2))
    gen = np.random.default_rng(0)
    X = gen.normal(size=(120, 4))
    y = X[:, 0] - 0.5 * X[:, 1] + 0.1 * gen.normal(size=120)
    teachers = np.column_stack([y + 0.05 * gen.normal(size=120), y + 0.3 * gen.normal(size=120)])
    reg = LossRegressor(loss="kd_assistive_regression", max_iter=20, random_state=0)
    reg.fit(X, y, teacher_logits=teachers)
    assert reg.predict(X).shape == (120,)
    assert np.isfinite(reg.predict(X)).all()
