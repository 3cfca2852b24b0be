"""compare's ``aggregate`` option (quantile losses as aggregator members) and the WIS metric."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mean_pinball_loss

from lossreg.compare import compare, load_data, plan_fits
from lossreg.compare._config import load_config
from lossreg.compare._interval_score import interval_levels, weighted_interval_score
from lossreg.compare._metrics import GREATER_IS_BETTER, regression_metrics

FIVE = [0.1, 0.3, 0.5, 0.7, 0.9]
MEMBERS = [
    f"pinball(quantiles={FIVE})",
    "quantile_huber(n_quantiles=5)",
    "weighted_interval_score(alphas=[0.2, 0.6])",
]
FAST = {"max_iter": 2, "module__hidden_units": (8,)}
DATA = "synthetic:heteroscedastic(n_samples=160)"


def test_wis_from_intervals_is_twice_the_mean_pinball_even_when_crossing():
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    levels = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    values = rng.normal(size=(50, 5))  # unsorted: the quantiles cross
    pinball = np.mean([mean_pinball_loss(y, values[:, j], alpha=a) for j, a in enumerate(levels)])
    assert weighted_interval_score(y, levels, values) == pytest.approx(2 * pinball)
    assert interval_levels(levels) == [(0, 4), (1, 3)]
    assert interval_levels([0.1, 0.5, 0.8]) is None  # not symmetric about the median
    assert interval_levels([0.25, 0.75]) is None  # no median
    assert GREATER_IS_BETTER["wis"] is False


def test_regression_metrics_report_wis_for_symmetric_levels_only():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    values = np.column_stack([y - 1, y, y + 1])
    scored = regression_metrics(y, y, (np.array([0.1, 0.5, 0.9]), values))
    assert scored["wis"] == pytest.approx(2 * scored["pinball"])
    assert "wis" not in regression_metrics(y, y, (np.array([0.2, 0.5, 0.9]), values))


def test_aggregate_fits_pair_every_rule_on_the_same_members():
    results = compare(
        DATA,
        losses=MEMBERS,
        aggregate=["weighted", "best_single", "mean"],
        cv=2,
        estimator_params=FAST,
        report=False,
    )
    a = results.attrs
    assert a["losses"] == ["aggregate:weighted", "aggregate:best_single", "aggregate:mean"]
    assert a["baseline"] == "aggregate:best_single"  # the members are not fitted alone
    assert (results["status"] == "ok").all(), results.get("error")
    assert results[["pinball", "wis", "rmse"]].notna().all().all()
    for _, fold in results.groupby("fold"):
        rows = fold.set_index("loss_label")
        # one set of fitted members per fold: every rule agrees on the best member
        assert rows["best_member"].nunique() == 1
        assert rows.loc["aggregate:best_single", "best_member"] in [
            f"pinball(quantiles={FIVE!r})",
            "quantile_huber(n_quantiles=5)",
            "weighted_interval_score(alphas=[0.2, 0.6])",
        ]
        weights = np.asarray(rows.loc["aggregate:weighted", "aggregate_weights"])
        assert weights.shape == (3, 5) and np.allclose(weights.sum(axis=0), 1.0)
        best = np.asarray(rows.loc["aggregate:best_single", "aggregate_weights"])
        assert sorted(best.sum(axis=1).tolist()) == [0.0, 0.0, 5.0]
        np.testing.assert_allclose(
            rows.loc["aggregate:mean", "aggregate_weights"], 1 / 3, atol=1e-6
        )


def test_aggregate_keys_follow_the_members_not_the_rules_listed():
    data = load_data(DATA)

    def keys(**kwargs):
        plan = plan_fits(data, cv=2, estimator_params=FAST, **kwargs)
        return {(f["loss"], f["fold"]): f["key"] for f in plan["fits"]}

    both = keys(losses=MEMBERS, aggregate="weighted,best_single")
    one = keys(losses=MEMBERS, aggregate=["weighted"], baseline="weighted")
    assert set(one) < set(both) and all(both[k] == v for k, v in one.items())
    fewer = keys(losses=MEMBERS[:2], aggregate="weighted,best_single")
    assert not set(fewer.values()) & set(both.values())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"losses": [MEMBERS[0], "mse"]}, r"'mse' does not \(use pinball"),
        ({"losses": [MEMBERS[0], "quantile_huber"]}, r"the same quantile levels"),
        ({"losses": MEMBERS, "aggregate": "weighted,median"}, r"combine rules among weighted"),
        ({"losses": MEMBERS, "baseline": "pinball"}, r"baseline is one of the aggregator fits"),
        ({"losses": MEMBERS, "curves": True}, r"cannot be combined with curves"),
        ({"losses": MEMBERS, "aggregate": ["weighted", 1]}, r"combine rules among weighted"),
        ({"losses": MEMBERS, "aggregate": 3}, r"combine rules among weighted"),
        (
            {"losses": MEMBERS, "estimator_params": {"whole_group_batches": True}},
            r"cannot be combined with whole_group_batches",
        ),
        ({"losses": MEMBERS[:1]}, r"at least two member losses"),
    ],
)
def test_unusable_aggregate_settings_are_named(kwargs, message):
    data = load_data(DATA)
    settings = {"aggregate": ["weighted", "best_single"], **kwargs}
    with pytest.raises(ValueError, match=message):
        plan_fits(data, cv=2, **settings)


def test_aggregate_needs_a_numeric_target():
    with pytest.raises(ValueError, match=r"one numeric target; the task is 'multiclass'"):
        plan_fits(load_data("iris"), losses=["cross_entropy", "focal"], aggregate="weighted")


def test_a_config_file_takes_aggregate(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[compare]\ndata = "diabetes"\naggregate = ["weighted", "best_single"]\n')
    assert load_config(path)["aggregate"] == ["weighted", "best_single"]
