"""The epoch-end validation hook: ``on_validation_end`` gets the validation split's outputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

import lossreg
from lossreg import LossClassifier, LossModule, LossSpec, as_class_target


def _imbalanced(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 1.2).astype(int)  # about 12% positives
    return X, y


def _status_rule(proba, labels):
    """PromptMRG's eval_blip update, one class at a time in float64."""
    means = []
    for c in range(proba.shape[1]):
        rows = [p[c] for p, y in zip(proba.tolist(), labels.tolist(), strict=True) if y == c]
        means.append(sum(rows) / len(rows))
    top = max(means)
    return [m / top for m in means]


class _StatusRecorder(Callback):
    """After each epoch: the loss's status, and the rule recomputed from the validation split."""

    def initialize(self):
        self.status, self.expected = [], []
        return self

    def on_epoch_end(self, net, dataset_valid=None, **kwargs):
        self.status.append(net.criterion_.status_.tolist())
        module = net.module_
        training = module.training
        module.eval()
        with torch.no_grad():
            proba = module(dataset_valid.X).softmax(-1).double()
        module.train(training)
        self.expected.append(_status_rule(proba, dataset_valid.fields["target"]))


def test_adaptive_logit_adjusted_status_follows_the_validation_split_each_epoch():
    X, y = _imbalanced()
    record = _StatusRecorder()
    clf = LossClassifier(
        loss="adaptive_logit_adjusted", early_stopping=True, max_iter=4, n_iter_no_change=10,
        lr=0.003, random_state=0, callbacks=[record],
    )  # fmt: skip
    clf.fit(X, y)
    priors = np.bincount(y) / len(y)
    assert len(record.status) == clf.n_iter_ == 4
    for status, expected in zip(record.status, record.expected, strict=True):
        np.testing.assert_allclose(status, expected, rtol=1e-5)
        assert max(status) == pytest.approx(1.0)
    # The rule fires: the status leaves the priors at the first epoch and moves every epoch;
    # the rare class is the poorly learned one, so its offset is below the frequent one's.
    assert not np.allclose(record.status[0], priors / priors.max(), atol=1e-3)
    for before, after in zip(record.status, record.status[1:], strict=False):
        assert not np.allclose(before, after, atol=1e-4)
    assert record.status[-1][1] < 1.0 == record.status[-1][0]


def test_without_a_validation_split_the_status_stays_at_the_priors():
    X, y = _imbalanced()
    clf = LossClassifier(loss="adaptive_logit_adjusted", max_iter=2, random_state=0).fit(X, y)
    np.testing.assert_allclose(clf.criterion_.status_.numpy(), np.bincount(y) / len(y))


class _HookedCE(LossModule):
    """Cross-entropy on the logits of (logits, features) that records its hook's calls.

    References
    ----------
    A test fixture.
    """

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.calls: list[dict] = []

    def per_sample_loss(self, input, target, **extras):
        logits = input[0] if isinstance(input, tuple) else input
        return -logits.log_softmax(-1).gather(1, as_class_target(target)[:, None])[:, 0]

    def on_validation_end(self, input, target, **fields):
        self.calls.append(
            {
                "input": input,
                "target": target,
                "fields": fields,
                "grad": torch.is_grad_enabled(),
                "training": self.training,
            }
        )


def _hooked_spec(**changes):
    fields = dict(
        name="hooked_ce",
        factory=_HookedCE,
        tasks={"binary", "multiclass"},
        link="softmax",
        summary="Test fixture.",
        reference="A test fixture.",
    )
    fields.update(changes)
    return LossSpec(**fields)


def test_the_hook_gets_the_whole_split_its_extras_and_feature_pairs():
    X, y = _imbalanced(200)
    group = np.arange(200) % 3
    weight = np.linspace(0.5, 1.5, 200)
    spec = _hooked_spec(outputs="logits+features", fit_extras=("group",))
    clf = LossClassifier(
        loss=spec, early_stopping=True, validation_fraction=0.25, max_iter=3, batch_size=16,
        n_iter_no_change=10, module__hidden_units=(6,), random_state=0,
    )  # fmt: skip
    clf.fit(X, y, sample_weight=weight, group=group)
    calls = clf.criterion_.calls
    assert len(calls) == 3  # once per epoch
    for call in calls:
        logits, features = call["input"]
        assert logits.shape == (50, 2) and features.shape == (50, 6)  # one call, whole split
        assert not logits.requires_grad and not call["grad"] and not call["training"]
        assert call["target"].shape == (50,) and call["target"].dtype == torch.int64
        assert set(call["fields"]) == {"sample_weight", "group"}
        # rows stay aligned: each row's weight is the one given with its group id
        g = call["fields"]["group"].numpy()
        w = call["fields"]["sample_weight"].numpy()
        lookup = {(int(a), round(float(b), 5)) for a, b in zip(group, weight, strict=True)}
        assert all((int(a), round(float(b), 5)) in lookup for a, b in zip(g, w, strict=True))
    # the logits are the network's on those rows at the end of the epoch
    final = calls[-1]["input"][0]
    assert not torch.equal(calls[0]["input"][0], final)


def test_losses_without_the_hook_are_unaffected():
    X, y = _imbalanced(200)
    common = dict(early_stopping=True, max_iter=3, n_iter_no_change=10, random_state=0)
    plain_spec = dataclasses.replace(lossreg.get_spec("cross_entropy"), aliases=())
    plain = LossClassifier(loss=plain_spec, **common).fit(X, y)
    hooked = LossClassifier(loss=_hooked_spec(), **common).fit(X, y)
    assert len(hooked.criterion_.calls) == 3
    assert not hasattr(plain.criterion_, "on_validation_end")
    # Collecting and passing the outputs changes nothing in training.
    np.testing.assert_allclose(hooked.predict_proba(X), plain.predict_proba(X), rtol=1e-6)
    np.testing.assert_allclose(
        hooked.history_[:, "valid_loss"], plain.history_[:, "valid_loss"], rtol=1e-6
    )
