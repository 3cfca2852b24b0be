"""tgeo_kd: numerics against float64 loop references, its meta step, and its estimator fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lossreg import LossClassifier
from lossreg.plugins.distillation import TGeoKD


def _softmax(row: list[float]) -> list[float]:
    top = max(row)
    e = [math.exp(v - top) for v in row]
    return [v / sum(e) for v in e]


def _alpha(loss: TGeoKD, s: list[float], p: list[float], y: int, p_bar: list[float]) -> float:
    """g(r) with loops over the relation vector and the hidden units."""
    c = len(s)
    e = [1.0 if k == y else 0.0 for k in range(c)]
    r = (
        [s[k] - p[k] for k in range(c)]
        + [s[k] - e[k] for k in range(c)]
        + [p[k] - e[k] for k in range(c)]
        + [p[k] - p_bar[k] for k in range(c)]
    )
    w1, b1 = loss.phi_w1.double().tolist(), loss.phi_b1.double().tolist()
    w2, b2 = loss.phi_w2.double().tolist(), float(loss.phi_b2)
    out = b2
    for h in range(len(b1)):
        act = b1[h] + sum(w1[h][j] * r[j] for j in range(len(r)))
        out += w2[h] * max(act, 0.0)
    return 1.0 / (1.0 + math.exp(-out))


def _reference_rows(loss, z, t, y, means=None):
    """Per-row losses; ``means[c]`` the teacher's class-mean prediction (None: unseen)."""
    temp = loss.temperature
    out = []
    for zi, ti, yi in zip(z, t, y, strict=True):
        s, p = _softmax(zi), _softmax(ti)
        p_bar = p if means is None or means[yi] is None else means[yi]
        a = _alpha(loss, s, p, yi, p_bar)
        ce = -math.log(s[yi])
        ps, pt = _softmax([v / temp for v in zi]), _softmax([v / temp for v in ti])
        kl = sum(pt[k] * (math.log(pt[k]) - math.log(ps[k])) for k in range(len(zi)))
        out.append(a * temp * temp * kl + (1 - a) * ce)
    return out


def _loss(n_classes: int = 3, **params) -> TGeoKD:
    torch.manual_seed(0)
    return TGeoKD(n_classes=n_classes, reduction="none", **params)


@pytest.mark.reference("tgeo_kd")
def test_per_row_loss_matches_loop_reference():
    rng = np.random.default_rng(1)
    z, t = rng.normal(size=(6, 3)) * 2, rng.normal(size=(6, 3)) * 2
    y = [0, 1, 2, 2, 1, 0]
    loss = _loss(temperature=2.0)
    got = loss(torch.tensor(z), torch.tensor(y), teacher_logits=torch.tensor(t))
    expected = _reference_rows(loss, z.tolist(), t.tolist(), y)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_class_means_enter_the_ratio_and_held_out_rows_give_zero():
    rng = np.random.default_rng(2)
    z, t = rng.normal(size=(40, 3)), rng.normal(size=(40, 3))
    y = rng.integers(0, 3, size=40)
    loss = _loss(val_fraction=0.3)
    loss._add_class_means(torch.tensor(t[:20]), torch.tensor(y[:20]))
    means = []
    for c in range(3):
        rows = [_softmax(t[i].tolist()) for i in range(20) if y[i] == c]
        means.append([sum(col) / len(rows) for col in zip(*rows, strict=True)] if rows else None)
    index = torch.arange(100, 140)
    got = loss(torch.tensor(z), torch.tensor(y), teacher_logits=torch.tensor(t), sample_index=index)
    expected = _reference_rows(loss, z.tolist(), t.tolist(), y.tolist(), means)
    held = [((i * 2654435761) % 2**32) < 0.3 * 2**32 for i in range(100, 140)]
    assert 0 < sum(held) < 40
    expected = [0.0 if h else v for v, h in zip(expected, held, strict=True)]
    # the class-mean buffers are float32 (the loss's dtype at construction)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-7, atol=1e-9)


def _outer_reference(loss, w, b, x, y, t, train, valid, phi_values):
    """Validation CE after one virtual SGD step of a linear student, all in loops."""
    saved = [p.clone() for p in loss._phi()]
    for buf, value in zip(loss._phi(), phi_values, strict=True):
        buf.copy_(value)
    c, d, temp, eta = len(b), len(x[0]), loss.temperature, loss.lookahead_lr
    counts = [0] * c
    sums = [[0.0] * c for _ in range(c)]
    for i in train:
        counts[y[i]] += 1
        for k, v in enumerate(_softmax(t[i])):
            sums[y[i]][k] += v
    means = [[v / counts[k] for v in sums[k]] if counts[k] else None for k in range(c)]
    gw = [[0.0] * d for _ in range(c)]
    gb = [0.0] * c
    for i in train:
        z = [b[k] + sum(w[k][j] * x[i][j] for j in range(d)) for k in range(c)]
        s, p = _softmax(z), _softmax(t[i])
        a = _alpha(loss, s, p, y[i], means[y[i]])
        ps, pt = _softmax([v / temp for v in z]), _softmax([v / temp for v in t[i]])
        for k in range(c):
            # d/dz_k of a T^2 KL(pt || ps) + (1 - a) CE
            dz = a * temp * (ps[k] - pt[k]) + (1 - a) * (s[k] - (1.0 if k == y[i] else 0.0))
            gb[k] += dz / len(train)
            for j in range(d):
                gw[k][j] += dz * x[i][j] / len(train)
    w2 = [[w[k][j] - eta * gw[k][j] for j in range(d)] for k in range(c)]
    b2 = [b[k] - eta * gb[k] for k in range(c)]
    total = 0.0
    for i in valid:
        z = [b2[k] + sum(w2[k][j] * x[i][j] for j in range(d)) for k in range(c)]
        total -= math.log(_softmax(z)[y[i]])
    for buf, value in zip(loss._phi(), saved, strict=True):
        buf.copy_(value)
    return total / len(valid)


@pytest.mark.reference("tgeo_kd")
def test_meta_step_moves_phi_down_the_finite_difference_gradient():
    torch.set_default_dtype(torch.float64)
    try:
        rng = np.random.default_rng(3)
        n, d, c = 30, 4, 3
        x, t = rng.normal(size=(n, d)), rng.normal(size=(n, c)) * 2
        y = rng.integers(0, c, size=n)
        loss = _loss(n_classes=c, val_fraction=0.3, lookahead_lr=1.0, hidden_units=4)
        module = nn.Linear(d, c)
        w, b = module.weight.detach().tolist(), module.bias.detach().tolist()
        index = torch.arange(n)
        held = loss.held_out(index).numpy()
        train, valid = np.flatnonzero(~held).tolist(), np.flatnonzero(held).tolist()
        before = [p.clone() for p in loss._phi()]
        args = (loss, w, b, x.tolist(), y.tolist(), t.tolist(), train, valid)
        loss.meta_step(
            module, torch.tensor(x), torch.tensor(y), teacher_logits=t, sample_index=index
        )
        assert module.weight.grad is None  # the look-ahead leaves the network untouched
        h = 1e-6
        checked = 0
        for which in range(4):
            flat_before = before[which].reshape(-1)
            step = (loss._phi()[which] - before[which]).reshape(-1)
            for j in range(min(4, flat_before.numel())):
                up = [p.clone() for p in before]
                down = [p.clone() for p in before]
                up[which].reshape(-1)[j] += h
                down[which].reshape(-1)[j] -= h
                fd = (_outer_reference(*args, up) - _outer_reference(*args, down)) / (2 * h)
                if abs(fd) < 1e-7:
                    continue
                # Adam's first step moves each weight by meta_lr against its gradient's sign
                assert step[j].item() == pytest.approx(
                    -loss.meta_lr * math.copysign(1, fd), rel=1e-2
                )
                checked += 1
        assert checked >= 4
    finally:
        torch.set_default_dtype(torch.float32)


def test_meta_step_needs_sample_index_and_validation_rows():
    loss = _loss(n_classes=2)
    before = loss.phi_w1.clone()
    x, y, t = torch.randn(8, 3), torch.tensor([0, 1] * 4), torch.randn(8, 2)
    loss.meta_step(nn.Linear(3, 2), x, y, teacher_logits=t)  # no sample_index: no split
    assert torch.equal(loss.phi_w1, before) and float(loss.meta_steps) == 0
    with pytest.raises(ValueError, match="val_fraction"):
        TGeoKD(n_classes=2, val_fraction=1.0)


def test_estimator_runs_the_meta_step_each_batch():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(np.int64)
    teacher = np.stack([np.zeros(300), 3 * X[:, 0]], axis=1)
    torch.manual_seed(0)
    clf = LossClassifier(loss="tgeo_kd", max_iter=3, batch_size=64, random_state=0)
    clf.fit(X, y, teacher_logits=teacher)
    criterion = clf.net_.criterion_
    assert float(criterion.meta_steps) == 3 * math.ceil(300 / 64)
    assert float(criterion.teacher_class_count.sum()) > 0
    assert clf.predict_proba(X).shape == (300, 2)
    assert not any(p.requires_grad for p in criterion.parameters())
