"""weighted_sum with a semi-supervised member: supervised members see the labelled rows only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lossreg
from lossreg.compare._unlabeled import learns_from_unlabeled
from lossreg.estimators import LossClassifier
from lossreg.testing import check_loss

SEMI = {"losses": ("cross_entropy", "entropy_prior_kl"), "weights": (1.0, 0.5)}


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(12, 3, generator=gen, dtype=torch.float64) * 2
    labels = torch.tensor([0, -1, 1, 2, -1, -1, 0, 1, -1, 2, -1, 0])
    weights = torch.rand(12, generator=gen, dtype=torch.float64) + 0.1
    return logits, labels, weights


def _entropy_prior_kl_by_hand(logits, prior, weight):
    p = logits.softmax(dim=1)
    w = weight / weight.sum()
    entropy = -(w * (p * p.log()).sum(dim=1)).sum()
    mean_p = (w[:, None] * p).sum(dim=0)
    return entropy + (mean_p * (mean_p.log() - torch.log(prior + 1e-10))).sum()


@pytest.mark.reference("weighted_sum")
def test_supervised_member_is_averaged_over_the_labelled_rows_only(batch):
    logits, labels, weights = batch
    prior = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    loss = lossreg.create_loss("weighted_sum", **SEMI, class_priors=prior.tolist())
    labelled = labels >= 0
    for sw in (None, weights):
        w = torch.ones(12, dtype=torch.float64) if sw is None else sw
        nll = F.cross_entropy(logits[labelled], labels[labelled], reduction="none")
        ce = (nll * w[labelled]).sum() / w[labelled].sum()
        expected = ce + 0.5 * _entropy_prior_kl_by_hand(logits, prior, w)
        torch.testing.assert_close(loss(logits, labels, sample_weight=sw), expected)
        summed = lossreg.create_loss(
            "weighted_sum", **SEMI, class_priors=prior.tolist(), reduction="sum"
        )
        torch.testing.assert_close(summed(logits, labels, sample_weight=sw), expected * w.sum())


def test_a_batch_without_labels_has_only_the_unlabeled_term(batch):
    logits, _, _ = batch
    loss = lossreg.create_loss("weighted_sum", losses=("cross_entropy", "entropy_min"))
    unlabeled = torch.full((12,), -1)
    p = logits.softmax(dim=1)
    torch.testing.assert_close(loss(logits, unlabeled), -(p * p.log()).sum(dim=1).mean())
    logits = logits.clone().requires_grad_()
    loss(logits, unlabeled).backward()
    assert torch.isfinite(logits.grad).all()


def test_flags_follow_the_members_and_per_row_reduction_is_refused():
    spec = lossreg.get_spec("weighted_sum")
    assert spec.factory.effective_flags(SEMI) == {"semi_supervised": True, "per_sample": False}
    plain = {"losses": ("cross_entropy", "mae_prob")}
    assert spec.factory.effective_flags(plain) == {"semi_supervised": False, "per_sample": True}
    with pytest.raises(lossreg.InvalidReductionError, match="semi-supervised member"):
        lossreg.create_loss("weighted_sum", **SEMI, class_priors=[0.5, 0.5], reduction="none")
    with pytest.raises(ValueError, match="-1 for unlabeled rows"):
        lossreg.create_loss("weighted_sum", losses=("cross_entropy", "entropy_min"))(
            torch.zeros(2, 3), torch.tensor([0, -2])
        )


def test_the_semi_supervised_composite_passes_the_conformance_kit():
    results = check_loss("weighted_sum", SEMI)
    ran = {r.check for r in results if r.status == "passed"}
    assert {"check_gradcheck", "check_estimator_smoke_fit", "check_reduction_consistency"} <= ran


def test_estimators_and_compare_keep_the_unlabeled_rows_for_the_composite():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((90, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 1).astype(int)
    y[30:] = -1
    semi = LossClassifier(
        loss="weighted_sum", loss__losses=("cross_entropy", "entropy_prior_kl"), max_iter=2
    )
    semi.fit(X, y)
    assert list(semi.classes_) == [0, 1, 2]
    # class_priors from the 30 labelled rows only
    labelled = np.bincount(y[:30], minlength=3) / 30
    np.testing.assert_allclose(semi.data_params_["class_priors"], labelled)
    assert learns_from_unlabeled(semi)
    plain = LossClassifier(loss="weighted_sum", loss__losses=("cross_entropy", "mae_prob"))
    assert not learns_from_unlabeled(plain)
    # for a supervised composite -1 is an ordinary class label
    assert list(plain.set_params(max_iter=1).fit(X, y).classes_) == [-1, 0, 1, 2]
