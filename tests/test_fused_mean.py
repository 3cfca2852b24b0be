"""LossModule.fused_mean: the fast path for reduction="mean" equals the general path.

The conformance kit compares ``mean`` with the mean of ``none`` on its toy batch; these tests
add wider batches, gradients, both branches of weston_watkins' size switch, the losses the
kit cannot build a toy for (kl_div), and the guard that keeps a subclass from inheriting a
parent's fused mean.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import lossreg
from lossreg import LossModule
from lossreg.plugins.classification import multiclass_margin

N_ROWS = 40


def _inputs(name: str, n_rows: int = N_ROWS, n_classes: int = 5) -> tuple[Any, ...]:
    gen = torch.Generator().manual_seed(3)
    logits = 3 * torch.randn(n_rows, n_classes, generator=gen, dtype=torch.float64)
    labels = torch.arange(n_rows) % n_classes
    if name in ("mse", "mae", "huber", "poisson_nll"):
        x = torch.randn(n_rows, 2, generator=gen, dtype=torch.float64)
        y = torch.rand(n_rows, 2, generator=gen, dtype=torch.float64) * 3
        if name == "poisson_nll":
            y = y.round()  # counts, some 0, 1 and above (the Stirling term's two branches)
        return x, y
    if name == "bce":
        return logits, (torch.rand(n_rows, n_classes, generator=gen) < 0.4).double()
    if name == "kl_div":
        soft = torch.rand(n_rows, n_classes, generator=gen, dtype=torch.float64) ** 3
        soft[0, 1:] = 0.0  # a one-hot row: 0 log 0
        return logits, soft / soft.sum(dim=1, keepdim=True)
    return logits, labels


FUSED = [
    ("mse", {}),
    ("mae", {}),
    ("huber", {"delta": 0.5}),
    ("poisson_nll", {}),
    ("poisson_nll", {"full": True}),
    ("bce", {}),
    ("bce", {"pos_weight": [0.5, 1.0, 2.0, 3.0, 1.5]}),
    ("cross_entropy", {}),
    ("cross_entropy", {"label_smoothing": 0.1}),
    ("kl_div", {}),
    ("one_hot_mse", {}),
    ("one_hot_mse", {"scale": 2.0}),
    ("weston_watkins", {"margin": 0.5}),
    ("weighted_cross_entropy", {"class_weight": [1.0, 2.0, 0.5, 3.0, 0.0]}),
]


def _data_params(name: str) -> dict[str, Any]:
    return {"class_counts": [8] * 5} if name == "weighted_cross_entropy" else {}


@pytest.mark.parametrize(("name", "params"), FUSED)
def test_fused_mean_equals_the_weighted_path_in_value_and_gradient(name, params):
    x, y = _inputs(name)
    loss = lossreg.create_loss(name, **_data_params(name), **params)
    assert loss.reduction == "mean"
    fast_in = x.clone().requires_grad_()
    fast = loss(fast_in, y)
    fast.backward()
    # All-ones sample weights take the general path: per-row values, then reduce().
    slow_in = x.clone().requires_grad_()
    slow = loss(slow_in, y, sample_weight=torch.ones(x.shape[0], dtype=x.dtype))
    slow.backward()
    torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fast_in.grad, slow_in.grad, rtol=1e-12, atol=1e-12)
    assert fast.dtype == torch.float64


@pytest.mark.parametrize("name", ["mse", "cross_entropy", "bce", "one_hot_mse", "weston_watkins"])
def test_fused_mean_is_taken_only_for_the_unweighted_mean(name, monkeypatch):
    x, y = _inputs(name)
    calls = []
    loss = lossreg.create_loss(name)
    original = type(loss).fused_mean

    def spy(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(type(loss), "fused_mean", spy)
    loss(x, y)
    assert calls == [1]
    loss(x, y, sample_weight=torch.ones(x.shape[0], dtype=x.dtype))
    lossreg.create_loss(name, reduction="sum")(x, y)
    lossreg.create_loss(name, reduction="none")(x, y)
    assert calls == [1]


def test_the_fast_paths_keep_the_input_checks():
    x = torch.randn(6, 3)
    with pytest.raises(ValueError, match="does not match the output shape"):
        lossreg.create_loss("mse")(x, torch.randn(5, 3))
    with pytest.raises(ValueError, match="non-negative count"):
        lossreg.create_loss("poisson_nll")(x, -torch.ones(6, 3))
    with pytest.raises(ValueError, match="probability targets"):
        lossreg.create_loss("kl_div")(x, torch.full((6, 2), 0.5))
    with pytest.raises(ValueError, match="Class targets must have shape"):
        lossreg.create_loss("cross_entropy")(x, torch.zeros(6, 2, dtype=torch.int64))
    # F.cross_entropy would silently skip rows labelled -100 (its default ignore_index).
    for bad in (-100, -1, 3):
        labels = torch.tensor([0, 1, 2, 0, 1, bad])
        with pytest.raises(IndexError):
            lossreg.create_loss("cross_entropy")(x, labels)
        with pytest.raises((IndexError, RuntimeError)):
            lossreg.create_loss("weighted_cross_entropy", class_counts=[2, 2, 2])(x, labels)


def test_weighted_cross_entropy_fast_path_gives_zero_when_every_weight_is_zero():
    x = torch.randn(4, 3, requires_grad=True)
    loss = lossreg.create_loss("weighted_cross_entropy", class_counts=[2, 1, 1])
    loss.class_weight_.zero_()
    value = loss(x, torch.tensor([0, 1, 2, 0]))
    value.backward()
    assert value.item() == 0.0
    assert torch.isfinite(x.grad).all()


def weston_watkins_loop(scores: list[list[float]], labels: list[int], margin: float) -> list[float]:
    out = []
    for row, y in zip(scores, labels):
        total = 0.0
        for k, v in enumerate(row):
            if k != y:
                total += max(0.0, margin - row[y] + v)
        out.append(total / len(row))
    return out


@pytest.mark.reference("weston_watkins")
@pytest.mark.parametrize("fused_max", [0, 10**9])
@pytest.mark.parametrize("margin", [0.5, 1.0])
def test_weston_watkins_both_kernels_match_a_loop(monkeypatch, fused_max, margin):
    # fused_max 0: the chain of tensor ops; 10**9: torch's fused multi_margin_loss.
    monkeypatch.setattr(multiclass_margin, "FUSED_MAX_SCORES", fused_max)
    gen = torch.Generator().manual_seed(5)
    scores = torch.randn(30, 4, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 4, (30,), generator=gen)
    rows_loop = weston_watkins_loop(scores.tolist(), labels.tolist(), margin)
    expected = torch.tensor(rows_loop, dtype=torch.float64)
    rows = lossreg.create_loss("weston_watkins", margin=margin, reduction="none")(scores, labels)
    torch.testing.assert_close(rows, expected, rtol=1e-12, atol=1e-12)
    mean = lossreg.create_loss("weston_watkins", margin=margin)(scores, labels)
    assert mean.item() == pytest.approx(float(expected.mean()), rel=1e-12)


def test_weston_watkins_switches_kernel_by_size(monkeypatch):
    # Below the switch the fused kernel runs; above it the chain; both give the same values.
    monkeypatch.setattr(multiclass_margin, "FUSED_MAX_SCORES", 100)
    loss = lossreg.create_loss("weston_watkins")
    small, large = torch.randn(10, 10), torch.randn(11, 10)
    assert loss._fused(small) and not loss._fused(large)
    assert loss.fused_mean(large, torch.zeros(11, dtype=torch.int64)) is None


def test_a_subclass_with_its_own_per_sample_loss_does_not_inherit_the_fused_mean():
    mse_class = type(lossreg.create_loss("mse"))

    class Doubled(mse_class):
        def per_sample_loss(self, input, target, **extras):
            return 2 * super().per_sample_loss(input, target, **extras)

    class Renamed(mse_class):  # same formula: keeps the fast path
        pass

    assert Doubled.fused_mean is LossModule.fused_mean
    assert Renamed.fused_mean is mse_class.fused_mean
    x, y = torch.randn(8, 1), torch.randn(8, 1)
    assert Doubled()(x, y).item() == pytest.approx(2 * mse_class()(x, y).item(), rel=1e-6)
