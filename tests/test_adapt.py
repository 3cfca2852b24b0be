"""LossClassifier.adapt: continue training a fitted network on unlabeled rows alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lossreg.estimators import LossClassifier
from lossreg.estimators._adapt import norm_parameters


@pytest.fixture(scope="module")
def shifted():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    shifted = 1.5 * X + 1.0 + 0.3 * rng.standard_normal(X.shape)
    return X, y, shifted


def fitted(X, y, **params):
    params = {"max_iter": 15, "module__batch_norm": True, "random_state": 0, **params}
    return LossClassifier(loss="cross_entropy", **params).fit(X, y)


def test_norm_adaptation_changes_only_the_normalisation_layers(shifted):
    X, y, X_target = shifted
    model = fitted(X, y)
    norms = {id(p) for p in norm_parameters(model.module_)}
    before = {name: p.detach().clone() for name, p in model.module_.named_parameters()}
    model.adapt(X_target, "entropy_min", max_iter=3, random_state=0)
    moved = {
        name
        for name, p in model.module_.named_parameters()
        if not torch.equal(p.detach(), before[name])
    }
    assert moved and moved <= {n for n, p in model.module_.named_parameters() if id(p) in norms}
    assert len(model.adapt_history_) == 3 and np.isfinite(model.adapt_history_).all()
    assert model.adapted_with_ == "entropy_min"
    # every parameter can still be trained afterwards
    assert all(p.requires_grad for p in model.module_.parameters())
    # batch norm's momentum is restored and the network left in evaluation mode
    bn = next(m for m in model.module_.modules() if isinstance(m, torch.nn.BatchNorm1d))
    assert bn.momentum == 0.1 and not model.module_.training


def test_batch_norm_statistics_are_re_estimated_on_the_adapted_rows(shifted):
    X, y, X_target = shifted
    model = fitted(X, y)
    # one batch of every row and a vanishing step: the statistics are the target rows' own
    model.adapt(X_target, "entropy_min", max_iter=1, lr=1e-12, batch_size=300)
    linear = next(m for m in model.module_.modules() if isinstance(m, torch.nn.Linear))
    bn = next(m for m in model.module_.modules() if isinstance(m, torch.nn.BatchNorm1d))
    with torch.no_grad():
        hidden = linear(torch.as_tensor(X_target, dtype=torch.float32))
    torch.testing.assert_close(bn.running_mean, hidden.mean(dim=0), rtol=1e-4, atol=1e-4)


def test_adaptation_is_seeded_and_uses_the_fit_class_prior(shifted):
    X, y, X_target = shifted
    a = fitted(X, y).adapt(X_target, "entropy_prior_kl", parameters="all", random_state=1)
    b = fitted(X, y).adapt(X_target, "entropy_prior_kl", parameters="all", random_state=1)
    np.testing.assert_array_equal(a.predict_proba(X_target), b.predict_proba(X_target))
    model = fitted(X, y)
    np.testing.assert_array_equal(model.class_counts_, np.bincount(y))
    criterion = model._adapt_criterion(model._adapt_spec("entropy_prior_kl", None), None)
    np.testing.assert_allclose(criterion.prior_.numpy(), np.bincount(y) / len(y))


def test_entropy_minimisation_makes_target_predictions_more_confident(shifted):
    X, y, X_target = shifted
    model = fitted(X, y)
    entropy = lambda p: float(-(p * np.log(p + 1e-12)).sum(axis=1).mean())  # noqa: E731
    before = entropy(model.predict_proba(X_target))
    model.adapt(X_target, "entropy_min", parameters="all", max_iter=20, lr=1e-2)
    assert entropy(model.predict_proba(X_target)) < before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"loss": "cross_entropy"}, "must learn from unlabeled rows"),
        ({"parameters": "head"}, "parameters must be one of"),
        ({"max_iter": 0}, "max_iter must be an int >= 1"),
        ({"lr": 0.0}, "lr must be > 0"),
    ],
)
def test_bad_settings_name_the_fix(shifted, kwargs, message):
    X, y, X_target = shifted
    model = fitted(X, y, max_iter=1)
    with pytest.raises(ValueError, match=message):
        model.adapt(X_target, **kwargs)


def test_a_network_without_normalisation_layers_needs_parameters_all(shifted):
    X, y, X_target = shifted
    model = fitted(X, y, max_iter=1, module__batch_norm=False)
    with pytest.raises(ValueError, match="module__batch_norm=True"):
        model.adapt(X_target)
    model.adapt(X_target, parameters="all", max_iter=1)
    with pytest.raises(ValueError, match="supports"):
        fitted(X, (y > 0).astype(int), max_iter=1).adapt(X_target)
