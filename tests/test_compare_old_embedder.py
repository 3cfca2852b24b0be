"""compare's earlier embedder (``teacher="old_embedder(...)"``) and its cross-model scores."""

from __future__ import annotations

import numpy as np
import pytest

from lossreg.compare import compare, load_data, plan_fits
from lossreg.compare._old_embedder import OldEmbedder, cosine_knn_accuracy, old_rows

FAST = {"max_iter": 3, "n_components": 4, "module__hidden_units": (8,)}


def test_the_old_rows_are_a_seeded_share_of_the_classes_then_of_their_rows():
    y = np.repeat([0, 1, 2, 3], [40, 40, 20, 10])
    rows = old_rows(y, classes=0.5, rows=0.5, seed=3)
    kept = np.unique(y[rows])
    assert len(kept) == 2 and np.array_equal(rows, np.sort(rows))
    for label in kept:  # half of each kept class's rows
        assert np.sum(y[rows] == label) == np.sum(y == label) // 2
    assert np.array_equal(rows, old_rows(y, 0.5, 0.5, seed=3))
    assert np.array_equal(old_rows(y, 1.0, 1.0, seed=0), np.arange(len(y)))
    # a tiny share still keeps two classes, and one row of each
    few = old_rows(y, classes=0.1, rows=0.01, seed=0)
    assert len(few) == 2 and len(np.unique(y[few])) == 2


def test_cross_model_knn_compares_directions_not_scales():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 30)
    directions = np.eye(3)[y] + 0.1 * rng.normal(size=(90, 3))
    gallery = directions * rng.uniform(0.5, 2.0, size=(90, 1))
    queries = 100.0 * directions  # another scale: Euclidean neighbours would all be far
    assert cosine_knn_accuracy(gallery, y, queries, y) == 1.0
    assert cosine_knn_accuracy(gallery, y, -queries, y) < 0.1  # opposite directions


def test_the_old_gallery_reaches_only_the_losses_that_take_it():
    data = load_data("iris", task="embedding")
    X, y = data.X, data.y.to_numpy()
    bct = OldEmbedder("old_embedder(classes=0.5)", 7, "backward_compatible", {}, FAST)
    plain = OldEmbedder("old_embedder(classes=0.5)", 7, "triplet", {}, FAST)
    given = bct.fit_params(X, y)["model__teacher_logits"]
    assert plain.fit_params(X, y) == {}
    assert given.shape == (150, 4) and given.dtype == np.float32
    np.testing.assert_allclose(given, bct.fitted_.transform(X), rtol=1e-5)
    assert plain.fitted_ is bct.fitted_  # one old model per fold and seed
    assert (bct.n_old_rows_, bct.n_old_classes_) == (100, 2)
    # the old model queried against its own gallery: no gain, whatever its accuracy
    same = bct.compatibility(X, y, bct.fitted_.transform(X))
    assert same["cross_model_gain"] == 0.0
    assert same["cross_model_knn_accuracy"] == same["old_knn_accuracy"] > 0.5


def test_compare_scores_every_loss_against_the_same_old_gallery():
    results = compare(
        "iris",
        task="embedding",
        losses=["backward_compatible", "backward_compatible(lam=0.0)", "supcon"],
        baseline="backward_compatible(lam=0.0)",
        teacher="old_embedder(classes=0.5, rows=0.5, max_iter=2)",
        scoring="cross_model_knn_accuracy",
        cv=2,
        estimator_params=FAST,
        report=False,
    )
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert results["cross_model_knn_accuracy"].between(0, 1).all()
    gain = results["cross_model_knn_accuracy"] - results["old_knn_accuracy"]
    np.testing.assert_allclose(results["cross_model_gain"], gain)
    per_fold = results.groupby("fold")["old_knn_accuracy"].nunique()
    assert (per_fold == 1).all()  # one old model per fold, shared by every loss
    # 2 of the 3 classes, 12 of the 25 training rows of each (round(12.5) is 12)
    assert (results["n_old_classes"] == 2).all() and (results["n_old_rows"] == 24).all()


@pytest.mark.parametrize(
    ("losses", "teacher", "message"),
    [
        ("backward_compatible", None, "teacher='old_embedder"),
        ("harmonic_triplet", "random_forest", "one earlier embedder.*Got 'random_forest'"),
        ("triplet", "old_embedder(classes=0.0)", r"in \(0, 1\].*Got 0.0"),
        ("triplet", "old_embedder(rows=2)", r"rows.*Got 2"),
        ("triplet", "old_embedder(width=3)", "Unknown parameter.s. 'width'"),
        ("triplet", "old_embedder(max_iter=0)", "positive int.*Got 0"),
        ("triplet", "old_embedder(loss='backward_compatible')", "learns from the labels alone"),
        ("triplet", "old_embedder(loss='focal')", "must be an embedding loss"),
        ("triplet", "old_embedder(loss=3)", "as text.*Got 3"),
    ],
)
def test_unusable_old_embedders_are_refused_with_the_fix(losses, teacher, message):
    data = load_data("iris", task="embedding")
    with pytest.raises(ValueError, match=message):
        plan_fits(data, losses=losses, cv=2, teacher=teacher)
