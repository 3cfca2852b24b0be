"""Group-stratified training batches: every group of the fold in every batch, seeded."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

import lossreg
from lossreg import LossClassifier, LossSpec
from lossreg.estimators._batches import GroupStratifiedBatches, TensorBatches
from lossreg.spec import spec_problems

SIZES = {4: 50, 9: 7, 2: 3}  # group id -> rows: one large, one small, one tiny group


def _data() -> tuple[TensorBatches, torch.Tensor]:
    ids = torch.cat([torch.full((n,), g) for g, n in SIZES.items()])
    rows = torch.arange(len(ids), dtype=torch.float32)[:, None]
    return TensorBatches(rows, {"group": ids}), ids


def _epochs(balanced: bool, batch_size: int, n_epochs: int, seed: int = 0):
    data, _ = _data()
    sampler = GroupStratifiedBatches(
        data, data.fields["group"], batch_size, balanced=balanced,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    epochs = [list(sampler) for _ in range(n_epochs)]
    return sampler, epochs


@pytest.mark.parametrize("balanced", [True, False])
@pytest.mark.parametrize("batch_size", [1, 2, 16, 200])
def test_every_batch_holds_every_group_and_an_epoch_has_n_rows(balanced, batch_size):
    sampler, epochs = _epochs(balanced, batch_size, 3)
    n = sum(SIZES.values())
    expected_batches = max(1, min(-(-n // batch_size), n // len(SIZES)))
    # balanced: n draws per epoch; stratified: every row once, plus repeats that put a
    # group smaller than the number of batches in each batch
    rows = n if balanced else sum(max(size, expected_batches) for size in SIZES.values())
    for batches in epochs:
        assert len(batches) == len(sampler) == expected_batches
        assert sum(len(X) for X, _ in batches) == rows
        for X, fields in batches:
            assert set(fields["group"].tolist()) == set(SIZES)
            # rows and their fields stay aligned
            assert torch.equal(fields["group"], _data()[1][X[:, 0].long()])


def test_balanced_batches_give_each_group_an_equal_share():
    _, epochs = _epochs(True, 16, 2)
    for batches in epochs:
        for _, fields in batches:
            counts = Counter(fields["group"].tolist())
            assert max(counts.values()) - min(counts.values()) <= 1, counts


def test_balanced_batches_draw_a_large_group_without_replacement_across_epochs():
    # 4 batches of 15 rows, 5 per group: the 50-row group needs 10 epochs for one pass.
    _, epochs = _epochs(True, 16, 12)
    drawn = [
        int(x)
        for batches in epochs
        for X, fields in batches
        for x, g in zip(X[:, 0].tolist(), fields["group"].tolist(), strict=True)
        if g == 4
    ]
    assert len(drawn) >= 100
    assert sorted(drawn[:50]) == list(range(50))  # one full pass before any repeat
    assert sorted(drawn[50:100]) == list(range(50))
    assert drawn[:50] != drawn[50:100]  # each pass reshuffled


def test_stratified_batches_see_every_row_once_and_keep_proportions():
    _, epochs = _epochs(False, 16, 2)
    n_batches = len(epochs[0])
    for batches in epochs:
        seen = Counter(int(x) for X, _ in batches for x in X[:, 0].tolist())
        ids = _data()[1]
        for row, count in seen.items():
            group = int(ids[row])
            if SIZES[group] >= n_batches:
                assert count == 1  # every row of a group as large as the epoch: once
        assert set(seen) == set(range(len(ids)))  # every row at least once
        for _, fields in batches:
            counts = Counter(fields["group"].tolist())
            for group, size in SIZES.items():
                share = max(size, n_batches) / n_batches
                assert abs(counts[group] - share) < 1, (group, counts)
    assert [X[:, 0].tolist() for X, _ in epochs[0]] != [X[:, 0].tolist() for X, _ in epochs[1]]


@pytest.mark.parametrize("balanced", [True, False])
def test_batches_are_seeded(balanced):
    def rows(seed):
        _, epochs = _epochs(balanced, 8, 2, seed)
        return [X[:, 0].tolist() for batches in epochs for X, _ in batches]

    assert rows(3) == rows(3)
    assert rows(3) != rows(4)


def test_spec_rule_needs_the_group_extra():
    for sampler in ("group_balanced", "group_stratified"):
        spec = LossSpec(
            name="x",
            factory=lossreg.get_spec("group_dro").factory,
            tasks={"binary"},
            link="softmax",
            reference="r",
            summary="s",
            per_sample=False,
            sampler=sampler,
        )
        assert any(
            rule == "sampler" and "needs 'group' in fit_extras" in text
            for rule, text in spec_problems(spec)
        )


def test_robust_losses_declare_the_sampler_their_papers_use():
    expected = {
        "group_dro": "group_balanced",  # uniform over groups (group_DRO --reweight_groups)
        "irm": "group_balanced",  # DomainBed: one equal minibatch per environment
        "vrex": "group_balanced",
        "fishr": "group_balanced",
        "group_cvar": "group_stratified",  # its running shares pi_g must stay the fractions
        # DomainBed trains CORAL and CAD with one minibatch per domain; the Hessian
        # alignment script uses its two equal-sized environments whole
        "deep_coral": "group_balanced",
        "cad_bottleneck": "group_balanced",
        "cond_cad_bottleneck": "group_balanced",
        "hessian_alignment_hgp": "group_balanced",
        "hessian_alignment_hutchinson": "group_balanced",
    }
    assert {name: lossreg.get_spec(name).sampler for name in expected} == expected


class _BatchGroups(Callback):
    """Records the group ids of every training batch."""

    def initialize(self):
        self.batches, self.rows = [], []
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.batches.append(batch[1]["group"].tolist())
            self.rows.append(batch[0][:, 0].tolist())


def _spurious(n=240, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    group = np.zeros(n, dtype=int)
    group[:5] = 1  # a 5-row group: random batches of 32 miss it most of the time
    group[5:60] = 2
    return X, y, group


@pytest.mark.parametrize("loss", ["group_dro", "group_cvar", "vrex"])
def test_estimator_batches_hold_every_group_and_are_seeded(loss):
    X, y, group = _spurious()

    def fit(seed):
        record = _BatchGroups()
        clf = LossClassifier(
            loss=loss, max_iter=2, batch_size=32, random_state=seed, callbacks=[record]
        )
        clf.fit(X, y, group=group)
        return record

    record = fit(0)
    batches = record.batches
    assert len(batches) == 2 * 8  # 8 batches per epoch for 240 rows
    for rows in batches:
        assert set(rows) == {0, 1, 2}
    # group_cvar's stratified batches repeat rows of the 5-row group (8 batches > 5 rows)
    assert sum(len(rows) for rows in batches) == 2 * (240 if loss != "group_cvar" else 243)
    assert fit(0).rows == record.rows
    assert fit(1).rows != record.rows


def test_a_validation_split_keeps_plain_batches_for_validation():
    X, y, group = _spurious()
    record = _BatchGroups()
    clf = LossClassifier(
        loss="group_dro", max_iter=2, batch_size=32, early_stopping=True, random_state=0,
        callbacks=[record],
    )  # fmt: skip
    clf.fit(X, y, group=group)
    n_train = len(X) - int(np.ceil(0.1 * len(X)))
    assert sum(len(rows) for rows in record.batches) == 2 * n_train
    assert all(set(rows) == set(np.unique(group)) for rows in record.batches)
