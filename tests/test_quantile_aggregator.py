"""QuantileAggregator: per-level simplex weights from held-out rows, best member, sklearn API."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.metrics import mean_pinball_loss
from sklearn.model_selection import GridSearchCV

from lossreg import LossRegressor, QuantileAggregator
from lossreg.estimators.quantile_aggregator import simplex_pinball_weights

LEVELS = (0.1, 0.5, 0.9)


class OracleOffset(RegressorMixin, BaseEstimator):
    """The true quantiles of ``y = x0 + N(0, 1)`` plus ``offset``: a member of known quality.

    It learns nothing but counts the rows it was fitted on (``n_fit_``).
    """

    def __init__(self, offset: float = 0.0, levels: tuple[float, ...] = LEVELS) -> None:
        self.offset = offset
        self.levels = levels

    def fit(self, X, y):
        self.n_fit_ = len(y)
        return self

    def predict_quantiles(self, X):
        z = norm.ppf(np.asarray(self.levels))
        return np.asarray(X)[:, :1] + z[None, :] + self.offset

    def predict(self, X):
        return np.asarray(X)[:, 0] + self.offset


def _data(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    return X, X[:, 0] + rng.standard_normal(n)


def _mean_pinball(y, quantiles, levels=LEVELS) -> float:
    return float(
        np.mean([mean_pinball_loss(y, quantiles[:, j], alpha=a) for j, a in enumerate(levels)])
    )


def test_the_learned_weights_are_the_simplex_optimum_of_a_grid_search():
    rng = np.random.default_rng(1)
    y = rng.normal(size=60)
    predictions = y[:, None] + rng.normal(scale=[0.3, 1.0, 2.0], size=(60, 3)) + [0.5, -0.2, 0.0]
    weights = simplex_pinball_weights(y, predictions, 0.3)
    assert weights.min() >= 0 and weights.sum() == pytest.approx(1.0)
    solved = mean_pinball_loss(y, predictions @ weights, alpha=0.3)
    grid = [
        (a, b, 1 - a - b)
        for a, b in itertools.product(np.linspace(0, 1, 101), repeat=2)
        if a + b <= 1 + 1e-12
    ]
    residual = y[:, None] - predictions @ np.array(grid).T  # (rows, grid points)
    best = np.maximum(0.3 * residual, -0.7 * residual).mean(axis=0).min()
    assert solved <= best + 1e-9  # exact optimum: no grid point beats it
    assert solved >= best - 5e-3  # and the grid comes close to it


def test_weighting_two_opposite_biases_beats_the_best_single_member():
    X, y = _data()
    members = [("low", OracleOffset(-1.0)), ("high", OracleOffset(1.3))]
    weighted = QuantileAggregator(members, quantiles=LEVELS, random_state=0).fit(X[:3000], y[:3000])
    best = clone(weighted).set_params(combine="best_single").fit(X[:3000], y[:3000])
    # the exact quantiles lie at weights 1.3 / 2.3 and 1 / 2.3 of the two members
    np.testing.assert_allclose(weighted.weights_[0], 1.3 / 2.3, atol=0.1)
    assert weighted.best_member_ == best.best_member_ == "low"
    np.testing.assert_array_equal(best.weights_, [[1, 1, 1], [0, 0, 0]])
    test_w = _mean_pinball(y[3000:], weighted.predict_quantiles(X[3000:]))
    test_b = _mean_pinball(y[3000:], best.predict_quantiles(X[3000:]))
    assert test_w < 0.8 * test_b
    assert weighted.holdout_pinball_["weighted"] < weighted.holdout_pinball_["best_single"]


def test_the_best_member_is_chosen_and_mean_weighs_members_equally():
    X, y = _data(600)
    members = [
        ("off", OracleOffset(2.0)),
        ("exact", OracleOffset(0.0)),
        ("near", OracleOffset(0.4)),
    ]
    model = QuantileAggregator(members, combine="mean", random_state=0).fit(X, y)
    assert model.best_member_ == "exact" and model.best_index_ == 1
    np.testing.assert_allclose(model.weights_, 1 / 3)
    np.testing.assert_array_less(model.member_pinball_[1], model.member_pinball_[0])
    # the aggregate is sorted per row and its point prediction is the 0.5 level
    q = model.predict_quantiles(X[:50])
    assert (np.diff(q, axis=1) >= 0).all()
    np.testing.assert_allclose(model.predict(X[:50]), q[:, 1])


def test_members_are_kept_or_refitted_on_every_row():
    X, y = _data(400)
    members = [("a", OracleOffset(0.0)), ("b", OracleOffset(1.0))]
    kept = QuantileAggregator(members, holdout=0.25, random_state=0).fit(X, y)
    refitted = QuantileAggregator(members, holdout=0.25, refit=True, random_state=0).fit(X, y)
    assert [m.n_fit_ for _, m in kept.members_] == [300, 300]
    assert [m.n_fit_ for _, m in refitted.members_] == [400, 400]
    np.testing.assert_array_equal(kept.weights_, refitted.weights_)
    assert members[0][1].__dict__.get("n_fit_") is None  # the given members stay unfitted


def test_intervals_come_from_symmetric_levels_only():
    X, y = _data(300)
    levels = (0.05, 0.5, 0.95)
    members = [(n, OracleOffset(o, levels)) for n, o in (("a", 0.0), ("b", 0.5))]
    model = QuantileAggregator(members, quantiles=levels, random_state=0).fit(X, y)
    interval = model.predict_interval(X[:5], alpha=0.1)
    np.testing.assert_allclose(interval, model.predict_quantiles(X[:5])[:, [0, 2]])
    with pytest.raises(ValueError, match=r"levels 0.1 and 0.9.*alpha"):
        model.predict_interval(X[:5], alpha=0.2)


def test_bad_settings_are_named_together():
    X, y = _data(50)
    model = QuantileAggregator(
        [("a", OracleOffset()), ("a", OracleOffset())], quantiles=(0.5, 0.1), combine="median"
    )
    with pytest.raises(ValueError, match=r"^QuantileAggregator: ") as info:
        model.fit(X, y)
    message = str(info.value)
    assert "quantiles must be strictly increasing" in message and "(0.5, 0.1)" in message
    assert "combine must be one of weighted, best_single, mean. Got 'median'" in message
    assert "distinct" in message
    with pytest.raises(ValueError, match=r"holdout must be a float in \(0, 1\)"):
        QuantileAggregator([("a", OracleOffset())], holdout=1.5).fit(X, y)


def test_a_member_at_other_levels_is_refused_with_the_fix():
    X, y = _data(60)
    members = [
        ("pin", LossRegressor(loss="pinball", loss__quantiles=(0.2, 0.5, 0.8), max_iter=1)),
        ("oracle", OracleOffset()),
    ]
    with pytest.raises(ValueError, match=r"Member 'pin' predicts the levels \[0.2, 0.5, 0.8\]"):
        QuantileAggregator(members, quantiles=LEVELS, random_state=0).fit(X, y)


def test_clone_nested_params_and_grid_search_work():
    X, y = _data(400)
    model = QuantileAggregator([("a", OracleOffset(0.0)), ("b", OracleOffset(1.0))])
    params = model.get_params()
    assert params["b__offset"] == 1.0 and params["combine"] == "weighted"
    copy = clone(model).set_params(b__offset=3.0, holdout=0.3)
    assert copy.members[1][1].offset == 3.0 and model.members[1][1].offset == 1.0
    # equal weights: the member nearer the truth makes the better aggregate
    search = GridSearchCV(model.set_params(combine="mean"), {"b__offset": [4.0, 0.5]}, cv=2)
    search.fit(X, y)
    assert search.best_params_ == {"b__offset": 0.5}


def test_loss_regressor_members_fit_and_predict_end_to_end():
    X, y = _data(120)
    levels = (0.1, 0.3, 0.5, 0.7, 0.9)
    members = [
        ("pinball", LossRegressor(loss="pinball", loss__quantiles=levels, max_iter=3)),
        ("huber", LossRegressor(loss="quantile_huber", loss__n_quantiles=5, max_iter=3)),
        ("wis", LossRegressor(loss="wis", loss__alphas=(0.2, 0.6), max_iter=3)),
    ]
    model = QuantileAggregator(members, quantiles=levels, random_state=0).fit(X, y)
    assert model.predict_quantiles(X[:7]).shape == (7, 5)
    assert model.weights_.shape == (3, 5) and model.n_features_in_ == 2
    np.testing.assert_allclose(model.weights_.sum(axis=0), 1.0)


@pytest.mark.parametrize("quantiles", [("low", "high"), (0.1, None, 0.9), [[0.1], [0.5, 0.9]]])
def test_non_numeric_quantiles_are_named_with_the_other_problems(quantiles):
    X, y = _data(50)
    model = QuantileAggregator([("a", OracleOffset())], quantiles=quantiles, combine="median")
    with pytest.raises(ValueError, match=r"^QuantileAggregator: ") as info:
        model.fit(X, y)
    message = str(info.value)
    assert "quantiles must be strictly increasing levels in (0, 1)" in message
    assert f"Got {quantiles!r}" in message and "combine must be one of" in message
