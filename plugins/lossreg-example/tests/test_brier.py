"""The brier loss against an independent float64 loop, and its discovery."""

import doctest
import inspect

import numpy as np
import pytest
import torch
from lossreg_example import Brier

import lossreg


def _brier_loop(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    out = []
    for row, label in zip(logits, labels):
        exp = np.exp(row - row.max())
        probs = exp / exp.sum()
        out.append(sum((p - (1.0 if c == label else 0.0)) ** 2 for c, p in enumerate(probs)))
    return np.array(out)


@pytest.mark.reference("brier")
def test_brier_matches_a_float64_loop():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 4)) * 3
    labels = rng.integers(0, 4, size=16)
    got = Brier(reduction="none")(torch.tensor(logits), torch.tensor(labels))
    np.testing.assert_allclose(got.numpy(), _brier_loop(logits, labels), rtol=1e-12)


def test_brier_docstring_example():
    assert doctest.testmod(inspect.getmodule(Brier)).failed == 0


def test_brier_is_found_through_its_entry_point():
    registry = lossreg.Registry(builtins=False, load=None, block=())
    assert "brier" in registry.list_losses()
    (plugin,) = [p for p in registry.list_plugins() if p.name == "example"]
    assert plugin.distribution == "lossreg-example"
    assert plugin.losses == ("brier",)
