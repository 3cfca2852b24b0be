"""LossEmbedder: a transformer trained with an embedding loss; samplers and two views."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from estimator_losses import neighbours_spec, two_view_spec
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lossreg import LossEmbedder
from lossreg.estimators import FeatureCorruption
from lossreg.estimators._batches import ClassBalancedBatches, TensorBatches


def test_class_balanced_batches_hold_several_rows_per_class():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 3 + [3] * 17)
    data = TensorBatches(torch.randn(100, 2), {"target": labels})
    batches = list(
        ClassBalancedBatches(data, labels, 16, generator=torch.Generator().manual_seed(0))
    )
    assert len(batches) == 100 // 16
    for _, fields in batches:
        counts = torch.bincount(fields["target"], minlength=4)
        assert counts.sum() == 16
        assert set(counts[counts > 0].tolist()) == {4}  # 4 classes × 4 rows, small class resampled


def test_feature_corruption_keeps_marginals_and_is_seeded():
    x = torch.arange(40.0).reshape(10, 4)
    torch.manual_seed(0)
    a = FeatureCorruption(rate=0.5)(x)
    torch.manual_seed(0)
    b = FeatureCorruption(rate=0.5)(x)
    assert torch.equal(a, b) and not torch.equal(a, x)
    for j in range(4):  # every value of column j comes from column j
        assert set(a[:, j].tolist()) <= set(x[:, j].tolist())
    with pytest.raises(ValueError, match="rate must be in"):
        FeatureCorruption(rate=1.5)


def test_embedder_trains_with_class_balanced_batches_and_transforms():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X[:400])
    y = y[:400]
    emb = LossEmbedder(
        loss=neighbours_spec(), n_components=8, max_iter=5, batch_size=40, random_state=0
    )
    Z = emb.fit(X, y).transform(X)
    assert Z.shape == (400, 8) and Z.dtype == np.float64
    first = emb.criterion_.batches[0]
    assert len(first) == 40 and set(torch.bincount(first)[torch.bincount(first) > 0].tolist()) == {
        4
    }
    assert emb.history_[-1, "train_loss"] < emb.history_[0, "train_loss"]
    with pytest.raises(NotFittedError):
        clone(emb).transform(X)


def test_two_view_loss_trains_without_labels():
    X, _ = load_digits(return_X_y=True)
    emb = LossEmbedder(
        loss=two_view_spec(), n_components=4, max_iter=2, batch_size=50, random_state=0
    )
    emb.fit(X[:200])
    assert emb.classes_ is None
    (out_shape, target_shape) = emb.criterion_.shapes[0]
    assert out_shape == (100, 4) and target_shape == (50,)  # two stacked views of 50 rows
    assert emb.transform(X[:10]).shape == (10, 4)  # no augmentation at transform time
    with pytest.raises(ValueError, match="requires y to be passed"):
        LossEmbedder(loss=neighbours_spec()).fit(X[:50])


@pytest.mark.slow
def test_embedder_in_a_pipeline_with_knn_and_a_grid_search():
    X, y = load_digits(return_X_y=True)
    pipe = make_pipeline(
        StandardScaler(),
        LossEmbedder(
            loss=neighbours_spec(), n_components=16, max_iter=15, batch_size=64, random_state=0
        ),
        KNeighborsClassifier(5),
    )
    search = GridSearchCV(pipe, {"lossembedder__loss__temperature": [0.1, 0.3]}, cv=3).fit(X, y)
    assert search.best_score_ > 0.9
    baseline = cross_val_score(make_pipeline(StandardScaler(), KNeighborsClassifier(5)), X, y, cv=3)
    assert search.best_score_ > baseline.mean()


@pytest.mark.slow
def test_triplet_embedding_beats_knn_on_raw_scaled_digits():
    """kNN on a triplet embedding beats kNN on the scaled pixels of scikit-learn's digits.

    Measured (3-fold CV, seed 0, torch 2.13 CPU): 0.9494 against 0.9421, +0.7 points. kNN on
    scaled digits is a strong baseline; the assert keeps a margin of half a point.
    """
    X, y = load_digits(return_X_y=True)
    knn = make_pipeline(StandardScaler(), KNeighborsClassifier(5))
    embedder = LossEmbedder(
        loss="triplet",
        n_components=32,
        module__hidden_units=(256,),
        weight_decay=0.05,
        lr=2e-3,
        max_iter=40,
        batch_size=128,
        random_state=0,
    )
    embedded = make_pipeline(StandardScaler(), embedder, KNeighborsClassifier(5))
    raw = cross_val_score(knn, X, y, cv=3).mean()
    learned = cross_val_score(embedded, X, y, cv=3).mean()
    assert learned > raw + 0.005, (learned, raw)


def test_proxy_losses_classify_through_their_proxies():
    from lossreg import LossClassifier

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = LossClassifier(loss="arcface", max_iter=10, lr=0.01, random_state=0).fit(X, y)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert clf.score(X, y) > 0.8
    assert clf.data_params_["embedding_dim"] == clf.module_.layers[-1].out_features


def test_self_supervised_info_nce_trains_without_labels():
    X, _ = load_digits(return_X_y=True)
    emb = LossEmbedder(loss="info_nce", n_components=8, max_iter=3, batch_size=64, random_state=0)
    Z = emb.fit(StandardScaler().fit_transform(X[:300])).transform(X[:5])
    assert Z.shape == (5, 8)


def test_a_spec_can_adjust_the_embedding_width():
    X, _ = load_digits(return_X_y=True)
    emb = LossEmbedder(loss="amcl_info_nce", n_components=32, max_iter=1, batch_size=64)
    emb.fit(StandardScaler().fit_transform(X[:128]))
    assert emb.transform(X[:2]).shape[1] == 33  # rounded up to a multiple of its 3 heads
