"""LossEmbedder's sampler option and the pseudo-label-diverse batches (G-SimCLR)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from skorch.callbacks import Callback

from lossreg.estimators import LossEmbedder, PseudoLabelDiverse
from lossreg.estimators._batches import BatchIterator, ClassBalancedBatches, TensorBatches
from lossreg.estimators._pseudo_labels import PSEUDO_LABEL_FIELD, PseudoLabelDiverseBatches

# pseudo-label -> rows: one large, several middling, one single-row pseudo-label
SIZES = {0: 40, 1: 12, 2: 9, 3: 9, 4: 7, 5: 5, 6: 3, 7: 1}


def _sampler(batch_size: int, seed: int = 0) -> tuple[PseudoLabelDiverseBatches, torch.Tensor]:
    labels = torch.cat([torch.full((n,), k) for k, n in SIZES.items()])
    rows = torch.arange(len(labels), dtype=torch.float32)[:, None]
    data = TensorBatches(rows, {PSEUDO_LABEL_FIELD: labels})
    generator = torch.Generator().manual_seed(seed)
    return PseudoLabelDiverseBatches(data, labels, batch_size, generator=generator), labels


@pytest.mark.parametrize("batch_size", [3, 8])
def test_batches_hold_distinct_pseudo_labels_when_there_are_enough(batch_size):
    sampler, labels = _sampler(batch_size)
    n = len(labels)
    for _ in range(3):
        batches = list(sampler)
        assert len(batches) == len(sampler) == -(-n // batch_size)
        assert sum(len(X) for X, _ in batches) == n  # an epoch draws n rows
        assert max(len(X) for X, _ in batches) - min(len(X) for X, _ in batches) <= 1
        for X, fields in batches:
            held = fields[PSEUDO_LABEL_FIELD].tolist()
            assert len(held) == len(set(held)), held
            # rows and their fields stay aligned
            assert torch.equal(fields[PSEUDO_LABEL_FIELD], labels[X[:, 0].long()])


def test_a_batch_larger_than_the_clusters_spreads_them_evenly():
    sampler, _ = _sampler(20)  # 8 pseudo-labels: each 2 or 3 times in a batch of 20
    for _, fields in sampler:
        counts = Counter(fields[PSEUDO_LABEL_FIELD].tolist())
        assert set(counts) == set(SIZES)
        assert set(counts.values()) <= {2, 3}, counts


def test_rows_of_a_pseudo_label_come_in_shuffled_passes():
    sampler, labels = _sampler(4)
    drawn = torch.cat([X[:, 0].long() for _ in range(6) for X, _ in sampler])
    seen = torch.bincount(drawn, minlength=len(labels))
    for k in SIZES:
        members = seen[labels == k]
        # every row of a pseudo-label is drawn before any row of it is drawn again
        assert int(members.max() - members.min()) <= 1, (k, members.tolist())


def test_batches_are_seeded():
    def draw(seed: int) -> list[list[int]]:
        sampler, _ = _sampler(5, seed)
        return [X[:, 0].long().tolist() for X, _ in sampler]

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)


def test_pseudo_labels_come_from_autoencoder_latents():
    X, blob = make_blobs(300, n_features=6, centers=3, cluster_std=0.5, random_state=0)
    settings = PseudoLabelDiverse(n_clusters=3, max_iter=10)
    labels = settings.pseudo_labels(X, batch_size=32, seed=0)
    assert labels.dtype == np.int64 and labels.shape == (300,)
    assert adjusted_rand_score(blob, labels) > 0.9  # well-separated blobs are recovered
    assert np.array_equal(labels, settings.pseudo_labels(X, batch_size=32, seed=0))
    # n_clusters=None: twice the batch size, at most one per row
    few = PseudoLabelDiverse(max_iter=2)
    assert len(np.unique(few.pseudo_labels(X[:40], batch_size=8, seed=0))) == 16
    assert len(np.unique(few.pseudo_labels(X[:20], batch_size=16, seed=0))) == 20


class _BatchLabels(Callback):
    """Records the pseudo-labels of every training batch."""

    def __init__(self) -> None:
        self.seen: list[list[int]] = []

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.seen.append(batch[1][PSEUDO_LABEL_FIELD].tolist())


def test_embedder_trains_on_pseudo_label_diverse_batches():
    X, _ = make_blobs(120, n_features=5, centers=4, random_state=0)
    recorder = _BatchLabels()
    settings = PseudoLabelDiverse(n_clusters=20, max_iter=5)
    model = LossEmbedder(
        "info_nce", sampler=settings, max_iter=2, batch_size=16, n_components=4,
        random_state=0, callbacks=[recorder],
    ).fit(X)  # fmt: skip
    assert model.pseudo_labels_.shape == (120,)
    assert len(np.unique(model.pseudo_labels_)) == 20
    assert len(recorder.seen) == 2 * 8  # 8 batches of 15 rows per epoch
    for held in recorder.seen:
        assert len(held) == len(set(held))
    # the name is the default settings; a clone keeps the settings
    assert clone(LossEmbedder("info_nce", sampler=settings)).sampler == settings
    named = LossEmbedder("info_nce", sampler="pseudo_label_diverse", max_iter=1, batch_size=8)
    assert len(np.unique(named.fit(X[:40]).pseudo_labels_)) == 16
    # a refit with another sampler forgets the pseudo-labels
    assert not hasattr(named.set_params(sampler="random").fit(X[:40]), "pseudo_labels_")


def _training_iterator(model: LossEmbedder, X: np.ndarray, y: np.ndarray) -> object:
    model.fit(X, y)
    data = TensorBatches(torch.as_tensor(X, dtype=torch.float32), {"target": torch.as_tensor(y)})
    return model.net_.get_iterator(data, training=True)


def test_named_samplers_replace_the_spec_sampler():
    X, y = make_blobs(60, n_features=3, centers=3, random_state=0)
    # triplet's spec asks for class-balanced batches; "random" overrides it
    auto = LossEmbedder("triplet", max_iter=1, n_components=2)
    assert isinstance(_training_iterator(auto, X, y), ClassBalancedBatches)
    random = LossEmbedder("triplet", sampler="random", max_iter=1, n_components=2)
    assert isinstance(_training_iterator(random, X, y), BatchIterator)
    balanced = LossEmbedder("supcon", sampler="class_balanced", max_iter=1, n_components=2)
    assert isinstance(_training_iterator(balanced, X, y), ClassBalancedBatches)


def test_clear_errors():
    X, y = make_blobs(40, n_features=3, centers=2, random_state=0)
    with pytest.raises(ValueError, match="sampler"):
        LossEmbedder("info_nce", sampler="diverse", max_iter=1).fit(X)
    with pytest.raises(ValueError, match="no labels"):
        LossEmbedder("info_nce", sampler="class_balanced", max_iter=1).fit(X)
    group = np.repeat(np.arange(10), 4)
    with pytest.raises(ValueError, match="Leave sampler='auto'"):
        LossEmbedder("multiview_contrastive", sampler="random", max_iter=1).fit(X, y, group=group)
    with pytest.raises(ValueError, match=r"n_clusters must be an integer >= 2 .* Got 1"):
        PseudoLabelDiverse(n_clusters=1)
    with pytest.raises(ValueError, match=r"latent_dim .* Got 0.*lr must be a number > 0"):
        PseudoLabelDiverse(latent_dim=0, lr=-1.0)


def test_sampler_settings_are_settable_through_the_embedder():
    model = LossEmbedder(sampler=PseudoLabelDiverse())
    assert "sampler__n_clusters" in model.get_params(deep=True)
    model.set_params(sampler__n_clusters=5, sampler__lr=0.01)
    assert model.sampler.n_clusters == 5 and model.sampler.lr == 0.01
    copy = clone(model)
    assert copy.sampler == PseudoLabelDiverse(n_clusters=5, lr=0.01)
    assert copy.sampler is not model.sampler
    with pytest.raises(ValueError, match=r"n_clusters must be an integer >= 2 or None. Got 1"):
        model.set_params(sampler__n_clusters=1)
    assert model.sampler.n_clusters == 5  # a refused change leaves the settings as they were
    with pytest.raises(ValueError, match="no setting 'n_cluster'"):
        PseudoLabelDiverse().set_params(n_cluster=3)
