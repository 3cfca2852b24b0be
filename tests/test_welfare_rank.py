"""welfare_rank against a float64 loop over the pairs of each auction, and its fit extras."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lossreg import LossClassifier, create_loss, get_spec


def _reference(logits, clicks, auctions, bids, weights, weighting, scale, bce_weight):
    """Loop over ordered pairs of rows of one auction, straight from the formula."""
    numerator = denominator = 0.0
    n = len(logits)
    for i in range(n):
        for j in range(n):
            if auctions[i] != auctions[j]:
                continue
            if weighting == "welfare":
                gap = max(bids[i] * clicks[i] - bids[j] * clicks[j], 0.0)
            else:
                gap = 1.0 if clicks[i] > clicks[j] else 0.0
            ecpm_i = bids[i] / (1.0 + math.exp(-logits[i]))
            ecpm_j = bids[j] / (1.0 + math.exp(-logits[j]))
            pair = math.log1p(math.exp(-scale * (ecpm_i - ecpm_j)))
            numerator += weights[i] * weights[j] * gap * pair
            denominator += weights[i] * weights[j] * gap
    ranked = numerator / denominator if denominator > 0 else 0.0
    bce = 0.0
    for z, y, w in zip(logits, clicks, weights, strict=True):
        p = 1.0 / (1.0 + math.exp(-z))
        bce += w * -(y * math.log(p) + (1 - y) * math.log(1 - p))
    return ranked + bce_weight * bce / sum(weights)


@pytest.mark.reference("welfare_rank")
@pytest.mark.parametrize(
    ("weighting", "scale", "bce_weight", "weighted"),
    [
        ("welfare", 1.0, 0.0, False),
        ("welfare", 3.0, 0.5, True),
        ("none", 1.0, 0.0, False),
        ("none", 2.0, 1.0, True),
    ],
)
def test_matches_the_pair_loop(weighting, scale, bce_weight, weighted):
    rng = np.random.default_rng(3)
    n = 12
    logits = rng.normal(size=n)
    clicks = rng.integers(0, 2, size=n).astype(float)
    auctions = np.repeat(np.arange(3), 4)
    bids = rng.uniform(0.2, 4.0, size=n)
    weights = rng.uniform(0.5, 2.0, size=n) if weighted else np.ones(n)
    loss = create_loss("welfare_rank", weighting=weighting, scale=scale, bce_weight=bce_weight)
    got = loss(
        torch.tensor(logits),
        torch.tensor(clicks),
        sample_weight=torch.tensor(weights) if weighted else None,
        group=torch.tensor(auctions),
        bid=torch.tensor(bids),
    )
    expected = _reference(logits, clicks, auctions, bids, weights, weighting, scale, bce_weight)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_no_weighted_pair_gives_zero_with_a_gradient():
    logits = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    loss = create_loss("welfare_rank")
    value = loss(logits, torch.zeros(4), group=torch.arange(4), bid=torch.ones(4))
    value.backward()
    assert value.item() == 0.0
    assert torch.equal(logits.grad, torch.zeros(4, dtype=torch.float64))


def test_the_welfare_gap_orders_the_ecpms():
    # one auction: a clicked ad with a high bid, a clicked ad with a low bid, an unclicked one
    clicks, bids = torch.tensor([1.0, 1.0, 0.0]), torch.tensor([4.0, 1.0, 1.0])
    grads = {}
    for weighting in ("welfare", "none"):
        logits = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        loss = create_loss("welfare_rank", weighting=weighting)
        loss(logits, clicks, group=torch.zeros(3), bid=bids).backward()
        grads[weighting] = logits.grad
    # welfare weights: the low-bid click loses its pair against the high-bid click (gap 3)
    # more than it wins against the unclicked ad (gap 1), so its CTR is pushed down
    assert grads["welfare"][0] < 0 < grads["welfare"][1] < grads["welfare"][2]
    # unweighted: both clicks are pushed up, the unclicked ad down
    assert max(grads["none"][0], grads["none"][1]) < 0 < grads["none"][2]


def test_missing_bid_and_bad_weighting_are_explained():
    loss = create_loss("welfare_rank")
    with pytest.raises(ValueError, match=r"bid=\.\.\."):
        loss(torch.zeros(2), torch.tensor([1.0, 0.0]), group=torch.zeros(2))
    with pytest.raises(ValueError, match="weighting"):
        create_loss("welfare_rank", weighting="gap")


def test_classifier_routes_group_and_bid():
    spec = get_spec("welfare_rank")
    assert set(spec.fit_extras) == {"group", "bid"}
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] > 0).astype(int)
    clf = LossClassifier(loss="welfare_rank", max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="bid"):
        clf.fit(X, y, group=np.arange(80) // 4)
    clf.fit(X, y, group=np.arange(80) // 4, bid=rng.uniform(0.5, 2.0, size=80))
    assert clf.predict_proba(X).shape == (80, 2)


@pytest.mark.parametrize("bce_weight", [0.0, 0.5])
def test_a_batch_of_zero_weights_gives_zero_not_nan(bce_weight):
    logits = torch.tensor([0.3, -0.2, 1.0, 0.5], dtype=torch.float64, requires_grad=True)
    clicks = torch.tensor([1.0, 0.0, 1.0, 0.0])
    zero = torch.zeros(4)
    loss = create_loss("welfare_rank", bce_weight=bce_weight)
    value = loss(logits, clicks, sample_weight=zero, group=torch.zeros(4), bid=torch.ones(4))
    value.backward()
    assert value.item() == 0.0
    assert torch.equal(logits.grad, torch.zeros(4, dtype=torch.float64))
    # as bpr does on the same input
    bpr = create_loss("bpr")(logits.detach(), clicks, sample_weight=zero, group=torch.zeros(4))
    assert bpr.item() == 0.0


def test_negative_bids_are_refused_naming_the_smallest():
    loss = create_loss("welfare_rank")
    bids = torch.tensor([1.0, -0.5, -2.5, 3.0])
    with pytest.raises(ValueError, match=r"bids >= 0.*smallest bid is -2\.5"):
        loss(torch.zeros(4), torch.tensor([1.0, 0.0, 1.0, 0.0]), group=torch.zeros(4), bid=bids)


def test_a_bid_of_several_columns_is_refused_by_name():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.arange(40) % 2
    clf = LossClassifier(loss="welfare_rank", max_iter=1, random_state=0)
    with pytest.raises(ValueError, match=r"bid holds one number per row.*\(40, 3\)"):
        clf.fit(X, y, group=np.arange(40) // 4, bid=rng.uniform(0.5, 2.0, size=(40, 3)))
    clf.fit(X, y, group=np.arange(40) // 4, bid=rng.uniform(0.5, 2.0, size=(40, 1)))


def test_the_loss_names_a_bid_of_the_wrong_shape():
    loss = create_loss("welfare_rank")
    clicks = torch.tensor([1.0, 0.0, 1.0, 0.0])
    with pytest.raises(ValueError, match=r"one bid per row.*\(4, 2\)"):
        loss(torch.zeros(4), clicks, group=torch.zeros(4), bid=torch.ones(4, 2))
    assert loss(torch.zeros(4), clicks, group=torch.zeros(4), bid=torch.ones(4, 1)).item() > 0
