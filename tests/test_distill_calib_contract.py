"""Contract checks of the distillation and calibration losses: reductions, weights, pickling."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

import lossreg

C = 3
N = 12


@pytest.fixture(scope="module")
def registry():
    return lossreg.Registry(entry_points=False)


def _case(name: str):
    """Return (output, target, extras, data params) fitting the loss ``name``."""
    gen = torch.Generator().manual_seed(13)
    y = torch.arange(N) % C
    data = {"n_classes": C, "n_samples": N, "class_counts": [4, 4, 4]}
    if name in ("dual_head_kd", "drw_hard_distillation"):
        output = torch.randn(N, 2 * C, generator=gen, dtype=torch.float64)
    elif name == "margin_mse":
        output = torch.randn(N, generator=gen, dtype=torch.float64)
        extras = {
            "group": torch.arange(N) // 4,
            "teacher_logits": torch.randn(N, generator=gen, dtype=torch.float64),
        }
        return output, y.double(), extras, data
    elif name == "kd_assistive_regression":
        output = torch.randn(N, 2, generator=gen, dtype=torch.float64)
        target = torch.randn(N, 2, generator=gen, dtype=torch.float64)
        teachers = torch.randn(N, 4, generator=gen, dtype=torch.float64)
        return output, target, {"teacher_logits": teachers}, data
    else:
        output = torch.randn(N, C, generator=gen, dtype=torch.float64) * 2
    # A loss that takes wider teacher_logits (two models side by side) declares it in its spec.
    spec = lossreg.get_spec(name)
    width = C
    if "teacher_logits" in spec.extra_widths:
        width = spec.extra_widths["teacher_logits"]({"width": C, "n_classes": C})
    extras = {"teacher_logits": torch.randn(N, width, generator=gen, dtype=torch.float64) * 2}
    if name == "ps_kd":
        extras = {"sample_index": torch.arange(N)}
    return output, y, extras, data


def _names(registry_: lossreg.Registry) -> list[str]:
    families = ("lossreg.plugins.distillation", "lossreg.plugins.calibration")
    # Losses on a (logits, features) pair (norm_direction) are checked by the conformance kit,
    # which builds such pairs, and by tests/test_multihead.py; these cases are single tensors.
    return sorted(
        name
        for name in registry_.list_losses()
        if registry_.get_spec(name).factory.__module__.startswith(families)
        and registry_.get_spec(name).outputs == "logits"
    )


NAMES = _names(lossreg.Registry(entry_points=False))


def _make(registry, name, **params):
    spec = registry.get_spec(name)
    _, _, _, data = _case(name)
    fitted = {k: v for k, v in data.items() if k in spec.data_params}
    loss = registry.create_loss(name, **fitted, **params).double()
    return loss.eval() if name == "ps_kd" else loss  # eval: the PS-KD table stays untouched


def test_both_families_are_covered():
    assert "knowledge_distillation" in NAMES and "temperature_scaling" in NAMES
    assert len(NAMES) >= 14


@pytest.mark.parametrize("name", NAMES)
def test_weights_reductions_pickling_and_permutation(registry, name):
    spec = registry.get_spec(name)
    output, target, extras, _ = _case(name)
    loss = _make(registry, name)
    value = loss(output, target, **extras)
    assert value.ndim == 0 and torch.isfinite(value)
    restored = pickle.loads(pickle.dumps(loss))
    torch.testing.assert_close(restored(output, target, **extras), value)
    torch.testing.assert_close(copy.deepcopy(loss)(output, target, **extras), value)
    order = torch.randperm(N, generator=torch.Generator().manual_seed(1))
    shuffled = {k: v[order] for k, v in extras.items()}
    if name == "ps_kd":
        shuffled = extras  # row ids follow the rows; unseen rows use their labels either way
    torch.testing.assert_close(loss(output[order], target[order], **shuffled), value)
    if name == "h_calibration":
        return  # no sample weights (raises, tested in test_calibration.py)
    # Integer weights count rows: weight 2 equals the row repeated (pairs and batch-level
    # statistics included), weight 0 equals the row removed.
    weight = torch.tensor([2.0, 0.0] + [1.0] * (N - 2), dtype=torch.float64)
    repeat = torch.tensor([0, 0, *list(range(2, N))])
    repeated = {k: v[repeat] for k, v in extras.items()}
    if name == "ps_kd":
        repeated = {"sample_index": repeat}
    weighted = loss(output, target, sample_weight=weight, **extras)
    if name == "margin_mse":
        return  # pair weights are w_i * w_j, not row repetition (a row never pairs with itself)
    torch.testing.assert_close(weighted, loss(output[repeat], target[repeat], **repeated))
    if spec.per_sample:
        none = _make(registry, name, reduction="none")(output, target, **extras)
        assert none.shape == (N,)
        torch.testing.assert_close(none.mean(), value)
        total = _make(registry, name, reduction="sum")(output, target, **extras)
        torch.testing.assert_close(total, none.sum())
    else:
        with pytest.raises(ValueError, match="reduction"):
            _make(registry, name, reduction="none")


@pytest.mark.parametrize("name", NAMES)
def test_float32_extreme_outputs_give_finite_gradients(registry, name):
    output, target, extras, _ = _case(name)
    loss = _make(registry, name).float()
    big = (output.sign() * 1e3).float().requires_grad_(True)
    extras32 = {k: (v * 100).float() if v.is_floating_point() else v for k, v in extras.items()}
    target32 = target.float() if target.is_floating_point() else target
    value = loss(big, target32, **extras32)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert torch.isfinite(big.grad).all()
