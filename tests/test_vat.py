"""Virtual adversarial training: the loss, the perturbation and the estimator's second view.

References are independent of the implementation: a float64 loop over rows for the loss, and
the exact Hessian of the KL divergence (``torch.autograd.functional.hessian``) for the
perturbation direction, which one power iteration with a tiny step approximates.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler
from torch import nn

import lossreg
from lossreg import InvalidReductionError, LossSpec, Param
from lossreg.estimators import LossClassifier
from lossreg.estimators._adversarial import virtual_adversarial_perturbation
from lossreg.plugins.unlabeled import VirtualAdversarialLoss
from lossreg.spec import spec_problems


@pytest.fixture(scope="module")
def registry():
    return lossreg.Registry(entry_points=False)


def _log_softmax(row):
    top = max(row)
    log_total = top + math.log(sum(math.exp(v - top) for v in row))
    return [v - log_total for v in row]


def _vat_loop(clean, moved, labels, weights, alpha, entmin):
    """The paper's objective, row by row in float64: three weighted means."""
    sums = {"ce": [0.0, 0.0], "kl": [0.0, 0.0], "ent": [0.0, 0.0]}
    for z, z_adv, label, w in zip(clean, moved, labels, weights, strict=True):
        log_p, log_q = _log_softmax(z), _log_softmax(z_adv)
        kl = sum(math.exp(a) * (a - b) for a, b in zip(log_p, log_q, strict=True))
        sums["kl"][0] += w * kl
        sums["kl"][1] += w
        if label >= 0:
            sums["ce"][0] += w * -log_p[label]
            sums["ce"][1] += w
        else:
            sums["ent"][0] += w * -sum(math.exp(a) * a for a in log_p)
            sums["ent"][1] += w
    mean = {k: (s / n if n else 0.0) for k, (s, n) in sums.items()}
    return mean["ce"] + alpha * mean["kl"] + (mean["ent"] if entmin else 0.0)


@pytest.mark.reference("vat")
@pytest.mark.parametrize("entmin", [False, True])
def test_vat_matches_the_float64_loop(registry, entmin):
    gen = torch.Generator().manual_seed(4)
    n, c = 10, 3
    clean = torch.randn(n, c, generator=gen, dtype=torch.float64) * 2
    moved = clean + 0.5 * torch.randn(n, c, generator=gen, dtype=torch.float64)
    labels = torch.tensor([0, -1, 2, -1, -1, 1, -1, 0, -1, -1])
    weights = torch.rand(n, generator=gen, dtype=torch.float64) + 0.1
    loss = registry.create_loss("vat", alpha=0.7, entmin=entmin)
    got = loss(torch.cat([clean, moved]), labels, sample_weight=weights)
    expected = _vat_loop(
        clean.tolist(), moved.tolist(), labels.tolist(), weights.tolist(), 0.7, entmin
    )
    assert got.item() == pytest.approx(expected, rel=1e-12)
    unweighted = _vat_loop(clean.tolist(), moved.tolist(), labels.tolist(), [1.0] * n, 0.7, entmin)
    assert loss(torch.cat([clean, moved]), labels).item() == pytest.approx(unweighted, rel=1e-12)
    summed = registry.create_loss("vat", alpha=0.7, entmin=entmin, reduction="sum")
    total = summed(torch.cat([clean, moved]), labels, sample_weight=weights).item()
    assert total == pytest.approx(expected * weights.sum().item(), rel=1e-12)


def test_vat_stops_the_gradient_of_the_clean_prediction_in_the_kl_term(registry):
    clean = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    moved = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    # no labelled row and no entropy term: only KL(sg(p) || q) is left
    registry.create_loss("vat")(torch.cat([clean, moved]), torch.full((6,), -1)).backward()
    assert torch.count_nonzero(clean.grad) == 0 and torch.count_nonzero(moved.grad) > 0


def test_vat_errors_name_the_fix(registry):
    loss = registry.create_loss("vat")
    with pytest.raises(ValueError, match=r"\(2N, C\).*6 rows of logits for 6 targets"):
        loss(torch.randn(6, 3), torch.zeros(6, dtype=torch.long))
    with pytest.raises(InvalidReductionError):
        registry.create_loss("vat", reduction="none")
    with pytest.raises(ValueError, match="eps"):
        registry.create_loss("vat", eps=0.0)


def _tiny_module(dtype):
    torch.manual_seed(11)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4)).to(dtype)


def _hessian_directions(module, x, eps):
    """eps * (H d) / |H d| per row, H the exact Hessian of the batch's KL sum at r = 0.

    The whole batch at once: with batch normalisation in training mode, moving one row
    changes the others' outputs, and the power iteration differentiates the batch's sum.
    """
    module = copy.deepcopy(module).double()
    x = x.double()
    p = module(x).detach().softmax(dim=1)

    def kl(flat):
        log_q = module(x + flat.reshape(x.shape)).log_softmax(dim=1)
        return (p * (p.log() - log_q)).sum()

    def directions(d):
        # unit rows first: with batch statistics the rows' blocks of H are coupled
        unit = d.double() / d.double().norm(dim=1, keepdim=True)
        hessian = torch.autograd.functional.hessian(kl, torch.zeros(x.numel(), dtype=x.dtype))
        hd = (hessian @ unit.reshape(-1)).reshape(x.shape)
        return eps * hd / hd.norm(dim=1, keepdim=True)

    return directions


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_perturbation_is_the_hessian_power_iteration_direction(dtype):
    module = _tiny_module(dtype)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(8, 3, generator=gen).to(dtype)
    d = torch.randn(8, 3, generator=gen).to(dtype)
    before = [p.detach().clone() for p in module.parameters()]
    r = virtual_adversarial_perturbation(module, x, eps=0.8, xi=1e-6, direction=d)
    assert r.dtype == dtype and not r.requires_grad
    expected = _hessian_directions(module, x, 0.8)(d)
    # float32 too: the iteration runs in float64, where x + 1e-6 d is resolved
    torch.testing.assert_close(r.double(), expected, rtol=1e-5, atol=1e-6)
    assert all(p.grad is None for p in module.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


def _semi_data(n_classes=3, n=60):
    X, y = make_classification(
        n_samples=n,
        n_features=4,
        n_informative=3,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=0,
    )
    X = StandardScaler().fit_transform(X).astype(np.float32)
    y_semi = y.copy()
    y_semi[np.arange(n) % 3 != 0] = -1  # a third of the rows keep their label
    return X, y, y_semi


def test_estimator_second_view_is_the_virtual_adversarial_batch():
    X, _, y_semi = _semi_data()
    clf = LossClassifier(
        loss="vat",
        loss__eps=0.7,
        loss__entmin=True,
        module__hidden_units=(6,),
        module__batch_norm=True,
        max_iter=2,
        random_state=0,
    ).fit(X, y_semi)
    net, module = clf.net_, clf.net_.module_.train()
    x, target = torch.from_numpy(X[:12]), torch.from_numpy(y_semi[:12])
    untouched = copy.deepcopy(module)
    clean_only = copy.deepcopy(module)
    clean_only(x)  # what one clean training pass does to the batch-norm statistics
    module.zero_grad(set_to_none=True)
    net.__dict__["_loss_pass"] = True
    try:
        torch.manual_seed(3)
        out = net.infer(x)
    finally:
        net.__dict__["_loss_pass"] = False
    torch.manual_seed(3)
    d = torch.randn_like(x)  # the view maker's start direction: torch's global generator
    r_ref = _hessian_directions(untouched, x, 0.7)(d).float()
    reference = copy.deepcopy(untouched)
    expected = torch.cat([reference(x), copy.deepcopy(untouched)(x + r_ref)])
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    # the power iteration leaves no gradient; only the clean pass moves the statistics
    assert all(p.grad is None for p in module.parameters())
    for (name, got), want in zip(module.named_buffers(), clean_only.buffers(), strict=True):
        torch.testing.assert_close(got, want, msg=name)
    # the loss the estimator trains on, against the loop on the reference logits
    value = net.criterion_(out, target).item()
    ref = expected.double().tolist()
    assert value == pytest.approx(
        _vat_loop(ref[:12], ref[12:], target.tolist(), [1.0] * 12, 1.0, True), rel=1e-4
    )


@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_fits_vat_on_unlabeled_rows(n_classes):
    X, _, y_semi = _semi_data(n_classes)
    clf = LossClassifier(loss="vat", loss__entmin=True, max_iter=5, random_state=0)
    clf.fit(X, y_semi)
    assert list(clf.classes_) == list(range(n_classes))
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), n_classes) and np.allclose(proba.sum(axis=1), 1)
    # a validation pass (no gradient there) still makes the adversarial view
    early = LossClassifier(loss="vat", early_stopping=True, max_iter=3, random_state=0)
    assert np.isfinite(early.fit(X, y_semi).history_[:, "valid_loss"]).all()


def _spec(**fields):
    base = {
        "name": "vat_like",
        "factory": VirtualAdversarialLoss,
        "tasks": {"multiclass"},
        "link": "softmax",
        "reference": "a paper",
        "summary": "a loss",
        "params": (
            Param("eps", "float", 1.0),
            Param("xi", "float", 1e-6),
            Param("alpha", "float", 1.0),
            Param("entmin", "bool", False),
        ),
        "views": 2,
        "view_maker": "virtual_adversarial",
    }
    return LossSpec(**{**base, **fields})


def test_view_maker_rules():
    assert spec_problems(_spec()) == []
    assert lossreg.get_spec("vat").view_maker == "virtual_adversarial"
    rules = {rule: text for rule, text in spec_problems(_spec(view_maker="mixup"))}
    assert "is not one of" in rules["view-maker"]
    texts = [text for rule, text in spec_problems(_spec(views=1)) if rule == "view-maker"]
    assert texts == ["view_maker 'virtual_adversarial' makes a second view; declare views=2"]

    def no_eps(*, reduction="mean", **kwargs):
        return VirtualAdversarialLoss(reduction=reduction)

    texts = [t for r, t in spec_problems(_spec(factory=no_eps, params=())) if r == "view-maker"]
    assert len(texts) == 1 and "declare 'eps', 'xi' in params" in texts[0]
