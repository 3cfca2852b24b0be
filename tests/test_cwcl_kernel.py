"""cwcl's target-kernel mode: numerics from the formula, its mode, and LossEmbedder feeding it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import lossreg
from lossreg import LossEmbedder
from lossreg.estimators._mode import loss_mode


def _unit(v):
    return v / math.sqrt(sum(c * c for c in v))


def _kernel_cwcl_loop(x, y, tau, sigma):
    """Float64 loops over the catalogue formula; x holds the views p (first N) and q (last N)."""
    x = x.tolist()
    y = [float(v) for v in y]
    n = len(y)
    p = [_unit(np.array(r)) for r in x[:n]]
    q = [_unit(np.array(r)) for r in x[n:]] if len(x) == 2 * n else p
    out = []
    for i in range(n):
        w = [math.exp(-abs(y[i] - y[j]) / sigma) for j in range(n)]
        total = 0.0
        for a, b in ((p, q), (q, p)):
            row = [float(np.dot(a[i], b[j])) / tau for j in range(n)]
            top = max(row)
            lse = top + math.log(sum(math.exp(r - top) for r in row))
            total -= sum(w[j] * (row[j] - lse) for j in range(n)) / sum(w)
        out.append(total)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize(("tau", "sigma", "views"), [(0.07, 1.0, 2), (0.5, 0.3, 2), (0.2, 2.0, 1)])
def test_the_kernel_mode_matches_the_formula(tau, sigma, views):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(views * 9, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(9, generator=gen, dtype=torch.float64) * 2
    loss = lossreg.create_loss(
        "cwcl", temperature=tau, kernel="laplace", sigma=sigma, reduction="none"
    )
    torch.testing.assert_close(loss(x, y), _kernel_cwcl_loop(x, y, tau, sigma), rtol=1e-9, atol=0)


def test_both_views_get_gradients_and_teacher_logits_are_ignored():
    x = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    loss = lossreg.create_loss("cwcl", kernel="laplace")
    value = loss(x, y, teacher_logits=torch.zeros(4, 3, dtype=torch.float64))
    value.backward()
    assert (x.grad[:4].abs().sum() > 0) and (x.grad[4:].abs().sum() > 0)
    assert torch.equal(value, loss(x, y))


def test_equal_targets_weigh_every_pair_alike_and_distant_ones_reduce_to_clip():
    x = torch.randn(12, 4, dtype=torch.float64)
    far = torch.arange(6, dtype=torch.float64) * 1e3  # w -> identity: twice the CLIP loss
    p, q = torch.nn.functional.normalize(x[:6], dim=1), torch.nn.functional.normalize(x[6:], dim=1)
    logits = p @ q.T / 0.1
    target = torch.arange(6)
    clip = torch.nn.functional.cross_entropy(logits, target, reduction="none")
    clip = clip + torch.nn.functional.cross_entropy(logits.T, target, reduction="none")
    loss = lossreg.create_loss("cwcl", temperature=0.1, kernel="laplace", reduction="none")
    torch.testing.assert_close(loss(x, far), clip)


def test_the_mode_follows_the_kernel():
    spec = lossreg.get_spec("cwcl")
    assert loss_mode(spec, {}).fit_extras == ("teacher_logits",)
    assert loss_mode(spec, {}).views == 1 and loss_mode(spec, {}).target == "labels"
    mode = loss_mode(spec, {"kernel": "laplace"})
    assert (mode.views, mode.fit_extras, mode.target) == (2, (), "continuous")
    assert lossreg.create_loss("cwcl", kernel="laplace").fit_extras_ == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kernel": "gaussian"}, "kernel must be one of 'none', 'laplace'. Got 'gaussian'"),
    ],
)
def test_bad_kernels_are_refused(kwargs, message):
    from lossreg.plugins.metric.cwcl import CWCL

    with pytest.raises(ValueError, match=message):
        CWCL(**kwargs)


def test_kernel_mode_refuses_wrong_shapes():
    loss = lossreg.create_loss("cwcl", kernel="laplace")
    with pytest.raises(ValueError, match="one real target per row"):
        loss(torch.randn(8, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"two views \(2N, D\) for N targets; got \(7, 3\)"):
        loss(torch.randn(7, 3), torch.randn(4))
    with pytest.raises(ValueError, match="pass one real target per row"):
        loss(torch.randn(8, 3), None)


def test_the_embedder_feeds_continuous_targets_and_two_views():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    y = X[:, 0] + 0.1 * rng.normal(size=80)  # 80 distinct floats: no label encoding
    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, input, target, **extras):
            seen.update(rows=input.shape[0], dtype=target.dtype, target=target.clone())
            return lossreg.create_loss("cwcl", kernel="laplace")(input, target)

    emb = LossEmbedder(
        "cwcl", loss__kernel="laplace", max_iter=2, batch_size=80, n_components=3, random_state=0
    ).fit(X, y)
    assert emb.classes_ is None and emb.net_.views == 2 and emb.transform(X).shape == (80, 3)
    emb.net_.criterion_ = Spy()
    batch = emb.net_.get_dataset(X.astype(np.float32), y.astype(np.float32))
    emb.net_.train_step_single((batch.X, dict(batch.fields)))
    assert seen["rows"] == 160 and seen["dtype"] == torch.float32
    np.testing.assert_allclose(seen["target"].numpy(), y, rtol=1e-6)
    with pytest.raises(ValueError, match="requires y"):
        LossEmbedder("cwcl", loss__kernel="laplace", max_iter=1).fit(X)
    with pytest.raises(ValueError, match="must be numeric"):
        LossEmbedder("cwcl", loss__kernel="laplace", max_iter=1).fit(X, np.array(["a"] * 80))


@pytest.mark.parametrize("labels", ["floats", "strings"])
def test_the_embedder_names_an_unknown_kernel(labels):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4))
    y = X[:, 0] if labels == "floats" else np.where(X[:, 0] > 0, "up", "down")
    emb = LossEmbedder("cwcl", loss__kernel="gaussian", max_iter=1, random_state=0)
    with pytest.raises(ValueError, match=r"kernel' parameter .* one of 'none', 'laplace'"):
        emb.fit(X, y)
    mode = loss_mode(lossreg.get_spec("cwcl"), {"kernel": "gaussian"})
    assert (mode.views, mode.target) == (1, "labels")  # not the laplace mode
