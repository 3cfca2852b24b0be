"""neural_collapse_reg against a float64 loop reference written from its formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lossreg import create_loss
from lossreg.plugins.imbalance.collapse import NeuralCollapseReg


def _reference_rows(logits, features, labels, priors, lam_w, lam_b, tau, stored, seen, beta):
    """One loop per quantity: class centres, then per-row CE + within + between."""
    n, c, d = len(logits), len(logits[0]), len(features[0])
    centers, available = {}, []
    for k in range(c):
        rows = [i for i in range(n) if labels[i] == k]
        if rows:
            mean = [sum(features[i][j] for i in rows) / len(rows) for j in range(d)]
            if seen[k]:
                mean = [beta * stored[k][j] + (1 - beta) * mean[j] for j in range(d)]
            centers[k] = mean
            available.append(k)
        elif seen[k]:
            centers[k] = list(stored[k])
            available.append(k)
    grand = [sum(centers[k][j] for k in available) / len(available) for j in range(d)]
    units = {}
    for k in available:
        v = [centers[k][j] - grand[j] for j in range(d)]
        length = math.sqrt(sum(x * x for x in v))
        units[k] = [x / length for x in v]
    pairs = [(a, b) for a in available for b in available if a != b]
    between = 0.0
    for a, b in pairs:
        cosine = sum(units[a][j] * units[b][j] for j in range(d))
        between += (cosine + 1.0 / (c - 1)) ** 2
    between /= len(pairs)
    out = []
    for i in range(n):
        z = [logits[i][k] + tau * math.log(priors[k]) for k in range(c)]
        top = max(z)
        lse = top + math.log(sum(math.exp(v - top) for v in z))
        ce = lse - z[labels[i]]
        within = sum((features[i][j] - centers[labels[i]][j]) ** 2 for j in range(d))
        out.append(ce + lam_w * within + lam_b * between)
    return out


@pytest.mark.reference("neural_collapse_reg")
@pytest.mark.parametrize("base", ["cross_entropy", "logit_adjusted"])
def test_matches_loop_reference_fresh_state(base):
    rng = np.random.default_rng(0)
    logits, features = rng.normal(size=(9, 4)), rng.normal(size=(9, 3))
    labels = [0, 1, 2, 0, 1, 0, 0, 1, 2]  # class 3 absent and never seen: left out
    priors = [0.5, 0.25, 0.15, 0.1]
    loss = NeuralCollapseReg(
        n_classes=4,
        class_priors=priors,
        feature_dim=3,
        within_weight=0.3,
        between_weight=0.7,
        base=base,
        tau=1.5,
        reduction="none",
    ).double()
    got = loss((torch.tensor(logits), torch.tensor(features)), torch.tensor(labels))
    tau = 1.5 if base == "logit_adjusted" else 0.0
    zeros = [[0.0] * 3] * 4
    want = _reference_rows(
        logits.tolist(), features.tolist(), labels, priors, 0.3, 0.7, tau, zeros, [False] * 4, 0
    )
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


@pytest.mark.reference("neural_collapse_reg")
def test_state_mixes_batch_means_and_keeps_absent_classes():
    rng = np.random.default_rng(1)
    priors = [0.4, 0.3, 0.2, 0.1]
    loss = NeuralCollapseReg(
        n_classes=4, class_priors=priors, feature_dim=2, momentum=0.6, reduction="none"
    ).double()
    first_f = rng.normal(size=(6, 2))
    first_y = [0, 1, 2, 3, 0, 1]
    loss((torch.tensor(rng.normal(size=(6, 4))), torch.tensor(first_f)), torch.tensor(first_y))
    stored = loss.center_.clone().tolist()
    np.testing.assert_allclose(stored[3], first_f[3])  # first sight: the batch mean
    # Second batch without class 3: its stored centre still takes part in the between term.
    logits, features, labels = rng.normal(size=(5, 4)), rng.normal(size=(5, 2)), [0, 1, 2, 0, 2]
    got = loss((torch.tensor(logits), torch.tensor(features)), torch.tensor(labels))
    want = _reference_rows(
        logits.tolist(), features.tolist(), labels, priors, 0.1, 1.0, 0.0, stored, [True] * 4, 0.6
    )
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)
    assert loss.center_[3].tolist() == stored[3]  # absent: not moved
    mixed = 0.6 * np.array(stored[0]) + 0.4 * features[[0, 3]].mean(axis=0)
    np.testing.assert_allclose(loss.center_[0].numpy(), mixed)


def test_eval_mode_reads_the_state_without_moving_it():
    loss = create_loss(
        "neural_collapse_reg", n_classes=2, class_priors=[0.5, 0.5], feature_dim=2
    ).double()
    pair = (torch.zeros(2, 2, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    loss.eval()
    loss(pair, torch.tensor([0, 1]))
    assert not loss.seen_.any() and loss.center_.abs().sum() == 0


def test_between_term_is_zero_at_a_simplex_etf_and_positive_otherwise():
    angles = [2 * math.pi * k / 3 for k in range(3)]
    etf = torch.tensor([[math.cos(a), math.sin(a)] for a in angles], dtype=torch.float64)
    kwargs = {"n_classes": 3, "class_priors": [1 / 3] * 3, "feature_dim": 2, "within_weight": 0}
    loss = NeuralCollapseReg(**kwargs).double()
    pair = (torch.zeros(3, 3, dtype=torch.float64), etf)
    ce = math.log(3)
    assert loss(pair, torch.tensor([0, 1, 2])).item() == pytest.approx(ce, abs=1e-12)
    squeezed = etf.clone()
    squeezed[2] = torch.tensor([0.9, 0.5], dtype=torch.float64)
    loss = NeuralCollapseReg(**kwargs).double()
    assert loss((pair[0], squeezed), torch.tensor([0, 1, 2])).item() > ce + 0.01


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="base must be one of"):
        NeuralCollapseReg(n_classes=2, class_priors=[0.5, 0.5], feature_dim=2, base="focal")
    loss = NeuralCollapseReg(n_classes=2, class_priors=[0.5, 0.5], feature_dim=3)
    with pytest.raises(ValueError, match=r"\(logits, features\)"):
        loss(torch.zeros(2, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="features of shape"):
        loss((torch.zeros(2, 2), torch.zeros(2, 4)), torch.tensor([0, 1]))
