"""``synthetic:clicks`` (CTR-like data), and a bilevel distillation loss in ``lossreg compare``."""

from __future__ import annotations

import numpy as np
import pytest

from lossreg.compare import compare
from lossreg.compare._synthetic import make_synthetic
from lossreg.compare._synthetic_clicks import clicks


def test_clicks_are_rare_one_hot_fields_and_dense_columns():
    frame = clicks(n_samples=4000, n_fields=3, n_levels=4, n_dense=2, n_crosses=2)
    X = frame.drop(columns="target").to_numpy()
    assert X.shape == (4000, 3 * 4 + 2)
    # one level per field and row
    fields = X[:, :12].reshape(4000, 3, 4)
    assert set(np.unique(fields)) == {0.0, 1.0}
    assert (fields.sum(axis=2) == 1).all()
    # the intercept sets the mean click probability: the drawn rate is close to it
    assert 0.035 < frame["target"].mean() < 0.065
    # a long tail: the fields' most frequent level is far above a uniform share
    assert fields.mean(axis=0).max() > 1.5 / 4


def _cell_rates(cross_scale: float) -> np.ndarray:
    """Click rate of each (level of field 0, level of field 1) cell; no main effects."""
    frame = clicks(
        n_samples=30000,
        n_fields=2,
        n_levels=3,
        n_dense=0,
        n_crosses=1,
        effect_scale=0.0,
        cross_scale=cross_scale,
    )
    X, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()
    cells = X[:, :3].argmax(axis=1) * 3 + X[:, 3:6].argmax(axis=1)
    return np.array([y[cells == k].mean() for k in range(9) if (cells == k).sum() > 300])


def test_clicks_come_from_the_field_crosses():
    # the only effect is the cross of the two fields: its cells' click rates differ widely
    assert np.ptp(_cell_rates(1.5)) > 0.05
    # without it every impression has the same click probability
    assert np.ptp(_cell_rates(0.0)) < 0.03


def test_clicks_concept_and_draws():
    a = make_synthetic("synthetic:clicks(n_samples=500, random_state=1)")[1]
    b = make_synthetic("synthetic:clicks(n_samples=500, random_state=1)")[1]
    c = make_synthetic("synthetic:clicks(n_samples=500, random_state=2)")[1]
    assert a.equals(b) and not a.equals(c)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"positive_rate": 0.7}, "positive_rate"),
        ({"n_fields": 1}, "n_fields"),
        ({"n_fields": 3, "n_crosses": 4}, r"n_crosses must be in \[0, 3\]"),
    ],
)
def test_clicks_refuse_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        clicks(**params)


def test_compare_runs_tgeo_kd_with_a_teacher_on_clicks():
    results = compare(
        "synthetic:clicks(n_samples=400, positive_rate=0.1)",
        losses="knowledge_distillation,tgeo_kd(val_fraction=0.2)",
        teacher="logistic_regression",
        cv=2,
        estimator_params={"max_iter": 2, "module__hidden_units": [8]},
        torch_threads=1,
        report=False,
    )
    assert (results["status"] == "ok").all(), results["error"].dropna().tolist()
    assert results["roc_auc"].between(0, 1).all() and results["log_loss"].gt(0).all()
