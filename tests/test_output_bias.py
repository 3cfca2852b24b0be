"""LossClassifier(output_bias="prior"): the output layer starts at the class frequencies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lossreg import LossClassifier
from lossreg.estimators._bias import prior_bias, set_output_bias


def _data(n: int = 400, minority: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < minority).astype(np.int64)
    X = rng.normal(size=(n, 4)).astype(np.float32) + y[:, None]
    return X, y


def _frozen(**params: object) -> LossClassifier:
    # lr so small that one epoch leaves the initial bias in place (to float32 precision)
    return LossClassifier(max_iter=1, lr=1e-12, random_state=0, **params)


def test_softmax_bias_is_the_log_prior():
    X, y = _data()
    y3 = y + (np.arange(len(y)) % 3 == 0) * (1 - y) * 2  # three classes, unequal shares
    clf = _frozen(loss="cross_entropy", output_bias="prior").fit(X, y3)
    prior = np.bincount(y3) / len(y3)
    bias = clf.module_.layers[-1].bias.detach().numpy()
    np.testing.assert_allclose(bias, np.log(prior), rtol=1e-5)


def test_sigmoid_bias_is_the_logit_of_the_positive_rate():
    X, y = _data()
    clf = _frozen(loss="bce", output_bias="prior").fit(X, y)
    rate = y.mean()
    bias = clf.module_.layers[-1].bias.detach().numpy()
    np.testing.assert_allclose(bias, [np.log(rate / (1 - rate))], rtol=1e-5)


def test_multilabel_bias_is_finite_for_a_label_without_positives():
    X, y = _data()
    Y = np.stack([y, 1 - y, np.zeros_like(y)], axis=1)
    clf = _frozen(loss="bce", output_bias="prior").fit(X, Y)
    bias = clf.module_.layers[-1].bias.detach().numpy()
    assert np.all(np.isfinite(bias))
    np.testing.assert_allclose(bias[:2], np.log(Y[:, :2].mean(0) / (1 - Y[:, :2].mean(0))), 1e-5)
    assert bias[2] < -10  # clipped at 1e-6: strongly negative, not -inf


def test_default_keeps_pytorchs_initialisation():
    X, y = _data()
    default = _frozen(loss="cross_entropy").fit(X, y).module_.layers[-1].bias
    prior = _frozen(loss="cross_entropy", output_bias="prior").fit(X, y).module_.layers[-1].bias
    assert not torch.allclose(default, prior)


def test_prior_start_lowers_the_first_epochs_loss_on_imbalanced_rows():
    X, y = _data(n=2000, minority=0.02)
    losses = {}
    for bias in ("default", "prior"):
        clf = LossClassifier(loss="bce", output_bias=bias, max_iter=1, lr=1e-4, random_state=0).fit(
            X, y
        )
        losses[bias] = clf.history_[0, "train_loss"]
    assert losses["prior"] < 0.5 * losses["default"]


def test_a_link_without_class_frequencies_is_refused():
    X, y = _data()
    with pytest.raises(ValueError, match=r"output_bias='prior'.*'weston_watkins'.*'score'"):
        _frozen(loss="weston_watkins", output_bias="prior").fit(X, y)


def test_a_module_without_a_biased_output_layer_is_refused():
    class NoBias(nn.Module):
        def __init__(self, n_features: int, n_outputs: int) -> None:
            super().__init__()
            self.out = nn.Linear(n_features, n_outputs, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(x)

    X, y = _data()
    with pytest.raises(ValueError, match=r"last nn\.Linear.*no bias.*output_bias='default'"):
        _frozen(loss="cross_entropy", module=NoBias, output_bias="prior").fit(X, y)
    with pytest.raises(ValueError, match=r"no nn\.Linear layer"):
        set_output_bias(nn.ReLU(), np.zeros(2))


def test_unknown_value_is_refused_by_parameter_validation():
    X, y = _data()
    with pytest.raises(ValueError, match="output_bias"):
        LossClassifier(output_bias="uniform").fit(X, y)


def test_prior_bias_counts_only_the_given_rows():
    bias = prior_bias("cross_entropy", "softmax", "multiclass", np.array([0, 0, 0, 1]), 2, 2)
    np.testing.assert_allclose(bias, np.log([0.75, 0.25]))
