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
