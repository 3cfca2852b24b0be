"""lossreg compare: the recommendation task, its generator, folds, estimator and top-k metrics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from lossreg.compare import compare, load_data
from lossreg.compare._recommend import recommendation_splits
from lossreg.compare._synthetic import make_synthetic
from lossreg.errors import InvalidLossParameterError, UnsupportedTaskError
from lossreg.estimators import LossRecommender
from lossreg.estimators.recommender import top_k_metrics

SMALL = "synthetic:interactions(n_samples=180, per_user=6, n_items=60, strength=4.0)"
FAST = {"max_iter": 2, "n_negatives": 5, "embedding_dim": 8, "batch_size": 64}


def _loop_top_k(recommended, relevant, k):
    # an independent reference: one user at a time, rank by rank
    recalls, ndcgs = [], []
    for top, items in zip(recommended, relevant, strict=True):
        if len(items) == 0:
            continue
        items = set(int(i) for i in items)
        hits, dcg = 0, 0.0
        for rank in range(k):
            if int(top[rank]) in items:
                hits += 1
                dcg += 1.0 / math.log2(rank + 2)
        ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(k, len(items))))
        recalls.append(hits / len(items))
        ndcgs.append(dcg / ideal)
    return sum(recalls) / len(recalls), sum(ndcgs) / len(ndcgs)


def test_top_k_metrics_match_a_loop_reference():
    rng = np.random.default_rng(0)
    recommended = np.stack([rng.permutation(30)[:10] for _ in range(25)])
    relevant = [rng.choice(30, size=rng.integers(0, 6), replace=False) for _ in range(25)]
    out = top_k_metrics(recommended, relevant, k=10)
    recall, ndcg = _loop_top_k(recommended, relevant, 10)
    assert out["recall_at_10"] == pytest.approx(recall)
    assert out["ndcg_at_10"] == pytest.approx(ndcg)
    perfect = top_k_metrics(np.array([[4, 2, 0]]), [np.array([2, 4])], k=3)
    assert perfect == {"recall_at_3": 1.0, "ndcg_at_3": 1.0}
    with pytest.raises(ValueError, match="at least one user"):
        top_k_metrics(np.array([[1, 2]]), [np.array([], dtype=int)], k=2)


def test_interactions_generator_gives_distinct_items_per_user_and_the_task():
    _, frame = make_synthetic("synthetic:interactions(n_samples=40, per_user=7, n_items=80)")
    assert list(frame.columns) == ["user", "target"] and len(frame) == 40
    assert frame.groupby("user")["target"].nunique().tolist() == [7] * 5 + [5]
    assert frame["target"].between(0, 79).all()
    assert frame.attrs["task"] == "recommendation"
    # popularity skews the item counts; without it they are flatter
    _, skewed = make_synthetic("synthetic:interactions(popularity=1.5, strength=0)")
    _, flat = make_synthetic("synthetic:interactions(popularity=0, strength=0)")
    assert skewed["target"].value_counts().max() > 2 * flat["target"].value_counts().max()
    with pytest.raises(ValueError, match="per_user must be in"):
        make_synthetic("synthetic:interactions(n_items=10, per_user=10)")


def test_load_data_encodes_users_and_items_and_names_the_fix():
    data = load_data(SMALL)
    assert data.task == "recommendation"
    assert list(data.X.columns) == ["user"] and data.y.name == "target"
    frame = pd.DataFrame(
        {"who": ["b", "a", "b", "c", "a"], "what": ["x", "y", "z", "x", "x"], "n": range(5)}
    )
    coded = load_data(frame[["who", "what"]], target="what", task="recommendation")
    assert coded.X["user"].tolist() == [1, 0, 1, 2, 0]
    assert coded.y.tolist() == [0, 1, 2, 0, 0]
    with pytest.raises(ValueError, match="one feature column of user ids"):
        load_data(frame, target="what", task="recommendation")


def test_folds_hold_out_part_of_every_users_interactions():
    users = load_data(SMALL).X["user"]
    for train, test in recommendation_splits(users, 3, seed=0):  # 30 users, 6 items each
        assert set(users.iloc[test]) == set(users) == set(users.iloc[train])
    with pytest.raises(ValueError, match="at least 7 per user"):
        list(recommendation_splits(users, 7, seed=0))


@pytest.mark.parametrize("loss", ["cosine_contrastive", "bpr", "bce", "cross_entropy"])
def test_recommender_trains_every_layout_and_never_recommends_training_items(loss):
    data = load_data(SMALL)
    users, items = data.X.to_numpy(), data.y.to_numpy()
    model = LossRecommender(loss, random_state=0, **FAST).fit(users, items)
    assert len(model.history_) == 2 and np.isfinite(model.history_).all()
    top = model.recommend(np.arange(30), k=5)
    assert top.shape == (30, 5)
    for user, row in enumerate(top):
        assert not set(row) & set(items[users[:, 0] == user])
    assert model.predict(users[:3]).shape == (3,)


def test_recommender_learns_the_affinity_beyond_chance():
    data = load_data(
        "synthetic:interactions(n_samples=1500, per_user=10, n_items=60, popularity=0, "
        "strength=4.0)"
    )
    users, items = data.X["user"].to_numpy(), data.y.to_numpy()
    train = np.arange(len(users)) % 5 != 0
    model = LossRecommender("bpr", n_negatives=20, max_iter=30, lr=0.02, random_state=0).fit(
        users[train, None], items[train]
    )
    tested = np.unique(users)
    held = [items[~train][users[~train] == u] for u in tested]
    recall = top_k_metrics(model.recommend(tested, k=10), held, k=10)["recall_at_10"]
    assert recall > 2 * 10 / 52  # a random list of 10 of the 52 unseen items: 10 / 52


def test_recommender_parameters_and_errors():
    model = LossRecommender("cosine_contrastive", loss__margin=0.8, n_negatives=3)
    copy = clone(model)
    assert copy.get_params()["loss__margin"] == 0.8 and copy.n_negatives == 3
    users, items = np.array([[0], [0], [1], [1]]), np.array([0, 1, 1, 2])
    with pytest.raises(UnsupportedTaskError, match="cannot train on sampled negatives"):
        LossRecommender("mse").fit(users, items)
    with pytest.raises(InvalidLossParameterError):
        LossRecommender("cosine_contrastive", loss__margni=0.3).fit(users, items)
    with pytest.raises(ValueError, match="integers >= 0"):
        LossRecommender().fit(users, np.array([0.5, 1, 1, 2]))
    with pytest.raises(ValueError, match="raise n_items"):
        LossRecommender(n_items=2).fit(users, items)


def test_compare_runs_a_recommendation_comparison_and_checks_its_losses():
    results = compare(
        SMALL,
        losses=["bpr", "cosine_contrastive(margin=0.7)", "bce"],
        cv=2,
        estimator_params=FAST,
        torch_threads=1,
    )
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert results.attrs["primary"] == "ndcg_at_20"
    assert results[["ndcg_at_20", "recall_at_20"]].stack().between(0, 1).all()
    with pytest.raises(UnsupportedTaskError, match="does not support task 'recommendation'"):
        compare(SMALL, losses=["bpr", "mse"], cv=2, estimator_params=FAST)
    with pytest.raises(ValueError, match="does not apply to recommendation"):
        compare(SMALL, losses=["bpr"], scenarios=["symmetric_noise:0.2"], cv=2)


@pytest.mark.parametrize("loss", ["group_dro", "irm", "vrex", "fishr", "deep_coral", "vat"])
def test_recommender_refuses_losses_needing_groups_features_or_two_views(loss):
    from lossreg.estimators.recommender import sampled_layout
    from lossreg.registry import default_registry

    assert sampled_layout(default_registry().get_spec(loss)) is None
    users, items = np.array([[0], [0], [1], [1]]), np.array([0, 1, 1, 2])
    with pytest.raises(UnsupportedTaskError, match="cannot train on sampled negatives"):
        LossRecommender(loss, **FAST).fit(users, items)


def test_recommender_still_takes_row_group_ranking_losses():
    from lossreg.estimators.recommender import sampled_layout
    from lossreg.registry import default_registry

    assert sampled_layout(default_registry().get_spec("bpr")) == "ranking"


def test_recommender_random_state_none_draws_a_seed_and_an_int_reproduces():
    users, items = np.array([[0], [0], [1], [1]]), np.array([0, 1, 1, 2])

    def weights(random_state):
        model = LossRecommender(random_state=random_state, **FAST).fit(users, items)
        return model.module_.users.weight.detach().clone()

    assert not torch.equal(weights(None), weights(None))
    assert torch.equal(weights(3), weights(3))


def test_recommender_refuses_module_and_optimizer_parameters_naming_them():
    users, items = np.array([[0], [0], [1], [1]]), np.array([0, 1, 1, 2])
    model = LossRecommender(module__hidden=8, optimizer__momentum=0.9, **FAST)
    with pytest.raises(TypeError, match="'module__hidden', 'optimizer__momentum'"):
        model.fit(users, items)
    LossRecommender(loss__margin=0.5, **FAST).fit(users, items)  # loss__ is used


def test_recommender_seen_items_match_a_per_user_mask():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 12, size=200)
    users[users == 5] = 4  # user 5 has no rows
    items = rng.integers(0, 30, size=200)
    model = LossRecommender(n_users=14, random_state=0, **FAST).fit(users[:, None], items)
    expected = [np.unique(items[users == u]) for u in range(14)]
    assert len(model.seen_) == 14
    for got, want in zip(model.seen_, expected, strict=True):
        assert got.dtype == want.dtype and np.array_equal(got, want)
