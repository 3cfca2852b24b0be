"""lossreg compare: whole-group training batches, the scenes generator and foreground recall."""

from __future__ import annotations

import numpy as np
import pytest
from skorch.callbacks import Callback

from lossreg.compare import compare
from lossreg.compare._foreground import background_class, foreground_recall
from lossreg.compare._group_batches import (
    GroupBatchedClassifier,
    GroupBatchedRegressor,
    group_batched,
)
from lossreg.compare._synthetic import make_synthetic
from lossreg.estimators import LossClassifier, LossEmbedder, LossRegressor


class _BatchGroups(Callback):
    """Records the group ids of every training batch."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.seen.append(batch[1]["_batch_group"].numpy().copy())


def _data(n_groups: int = 6, size: int = 10):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_groups * size, 3))
    y = np.tile([0, 0, 1, 0, 2], n_groups * size // 5)
    return X, y, np.repeat(np.arange(n_groups) * 7, size)  # ids need not be 0..G-1


@pytest.mark.parametrize(("batch_size", "per_batch"), [(1, 1), (20, 2)])
def test_batches_are_whole_groups(batch_size, per_batch):
    X, y, group = _data()
    spy = _BatchGroups()
    clf = GroupBatchedClassifier(
        max_iter=2, batch_size=batch_size, random_state=0, callbacks=[spy]
    ).fit(X, y, group=group)  # cross_entropy takes no group: the ids must not reach it
    assert len(spy.seen) == 2 * 6 // per_batch
    for ids in spy.seen:
        assert len(np.unique(ids)) == per_batch
        assert len(ids) == 10 * per_batch
    # every row of every group once per epoch
    epoch = np.concatenate(spy.seen[: len(spy.seen) // 2])
    np.testing.assert_array_equal(np.bincount(epoch), np.full(6, 10))
    assert clf.predict(X).shape == (60,)


def test_regressor_and_group_extra_of_the_loss():
    X, y, group = _data()
    reg = GroupBatchedRegressor(max_iter=1, batch_size=1, random_state=0)
    assert reg.fit(X, y.astype(float), group=group).predict(X).shape == (60,)
    # a loss that takes groups itself still receives them
    clf = GroupBatchedClassifier(loss="density_normalized_ce", max_iter=1, batch_size=1)
    assert clf.fit(X, y, group=group).n_iter_ == 1


def test_clear_errors():
    X, y, group = _data()
    with pytest.raises(ValueError, match="got no group"):
        GroupBatchedClassifier(max_iter=1).fit(X, y)
    with pytest.raises(ValueError, match="draws its own batches"):
        GroupBatchedClassifier(loss="group_dro", max_iter=1).fit(X, y, group=group)
    assert group_batched(LossClassifier) is GroupBatchedClassifier
    assert group_batched(LossRegressor) is GroupBatchedRegressor
    with pytest.raises(ValueError, match="LossEmbedder"):
        group_batched(LossEmbedder)


def test_foreground_recall():
    assert background_class([2, 1, 1, 0, 1]) == 1
    assert foreground_recall([0, 0, 1, 1, 2], [0, 1, 1, 0, 2], 0) == {"foreground_recall": 0.75}
    # the background's own recall does not count
    assert foreground_recall([0, 0, 1], [1, 1, 1], 0)["foreground_recall"] == 1.0
    assert np.isnan(foreground_recall([0, 0], [0, 1], 0)["foreground_recall"])


def test_scenes_generator():
    _, frame = make_synthetic(
        "synthetic:scenes(n_samples=4000, rows_per_group=20, background_min=0.5, "
        "background_max=0.95, tail=10.0)"
    )
    assert len(frame) == 4000 and frame["group"].nunique() == 200
    share = frame.groupby("group")["target"].apply(lambda t: (t == 0).mean())
    assert 0.65 < share.mean() < 0.8 and share.min() < 0.6 and share.max() > 0.9
    counts = frame.loc[frame["target"] > 0, "target"].value_counts()
    assert counts.index[0] == 1 and counts[1] > 5 * counts[6]  # geometric tail
    with pytest.raises(ValueError, match="background_max"):
        make_synthetic("synthetic:scenes(background_min=0.9, background_max=0.5)")
    _, cut = make_synthetic("synthetic:scenes(n_samples=55, rows_per_group=10)")
    assert len(cut) == 55 and cut["group"].value_counts().min() == 5
    with pytest.raises(ValueError, match="two scenes"):
        make_synthetic("synthetic:scenes(n_samples=15, rows_per_group=10)")
    with pytest.raises(ValueError, match="tail"):
        make_synthetic("synthetic:scenes(tail=0.5)")


def test_compare_whole_group_batches(tmp_path):
    results = compare(
        "synthetic:scenes(n_samples=200, rows_per_group=10, n_classes=2, tail=1.0)",
        losses=["cross_entropy", "density_normalized_ce"],
        cv=2,
        split="group",
        estimator_params={"max_iter": 2, "batch_size": 1, "whole_group_batches": True},
        out=tmp_path,
        report=False,
    )
    assert (results["status"] == "ok").all()
    assert results["foreground_recall"].between(0, 1).all()
    assert (results["n_epochs"] == 2).all()
