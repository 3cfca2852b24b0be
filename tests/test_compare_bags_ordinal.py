"""lossreg compare: bag scenarios (label proportions, aggregate responses) and ordinal targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

from lossreg.compare import compare, load_data
from lossreg.compare._bags import make_bags
from lossreg.compare._fit import TargetScaled
from lossreg.compare._ordinal import ordinal, ordinal_metrics
from lossreg.compare._run import plan_fits
from lossreg.compare._scenarios import StressedEstimator, corrupt, parse_scenario
from lossreg.compare._votes import expand_votes, vote_metrics


class Recorder(BaseEstimator):
    """Keeps what ``fit`` received; predicts zeros."""

    def fit(self, X, y, **fit_params):
        self.y_ = np.asarray(y)
        self.fit_params_ = fit_params
        return self

    def predict(self, X):
        return np.zeros(len(X))


def _labels(n=103, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    return X, (X["a"] > 0).astype(int).to_numpy()


def test_random_bags_hold_size_rows_and_their_true_label_shares():
    X, y = _labels()
    bag, share, y_seen = make_bags(X, y, 10, sort=False, regression=False, random_state=1)
    sizes = np.bincount(bag)
    assert sorted(sizes.tolist()) == [3] + [10] * 10  # the last bag takes the remainder
    for b in range(len(sizes)):
        rows = bag == b
        assert np.all(share[rows] == y[rows].mean())
        # a bag loss's y holds nothing beyond the proportions: the bag's own labels, reordered
        assert sorted(y_seen[rows]) == sorted(y[rows])
    assert not np.array_equal(y_seen, y)


def test_multiclass_bags_give_one_proportion_column_per_sorted_class():
    y = np.array(["b", "a", "c", "a", "c", "c"])
    bag, props, _ = make_bags(None, y, 3, sort=False, regression=False, random_state=0)
    assert props.shape == (6, 3)
    for i in range(6):
        members = y[bag == bag[i]]
        expected = [np.mean(members == k) for k in ("a", "b", "c")]
        assert props[i].tolist() == pytest.approx(expected)


def test_regression_bags_see_bag_means_only():
    X, _ = _labels(n=20)
    y = np.arange(20.0)
    bag, means, y_seen = make_bags(X, y, 5, sort=False, regression=True, random_state=0)
    for b in range(4):
        assert np.all(means[bag == b] == y[bag == b].mean())
    assert np.array_equal(y_seen, means)


def test_sorted_bags_are_purer_than_random_bags():
    X, y = _labels(n=400)
    spread = {}
    for sort in (False, True):
        bag, share, _ = make_bags(X, y, 20, sort=sort, regression=False, random_state=3)
        spread[sort] = np.std(share[np.unique(bag, return_index=True)[1]])
    assert spread[True] > 2 * spread[False]


@pytest.mark.parametrize("text", ["bags:1", "bags:2.5", "sorted_bags:0"])
def test_a_bag_size_must_be_an_integer_of_at_least_two(text):
    with pytest.raises(ValueError, match="bag size must be an integer >= 2"):
        parse_scenario(text).check("binary")


def test_bags_do_not_apply_to_multilabel_targets_and_corrupt_refuses_them():
    with pytest.raises(ValueError, match="does not apply to multilabel"):
        parse_scenario("bags:8").check("multilabel")
    parse_scenario("bags:8").check("regression")
    with pytest.raises(ValueError, match="StressedEstimator"):
        corrupt(None, np.zeros(4), parse_scenario("bags:2"), 0)


def test_bag_losses_get_bags_and_the_others_keep_the_true_labels():
    X, y = _labels()
    bagged = StressedEstimator(Recorder(), "bags:10", 5, bag_extras=("bag", "bag_target"))
    bagged.fit(X, y)
    params = bagged.estimator_.fit_params_
    assert set(params) == {"model__bag", "model__bag_target"}
    assert np.bincount(params["model__bag"]).max() == 10
    assert not np.array_equal(bagged.estimator_.y_, y)
    assert bagged.corruption_["n_bags"] == 11
    supervised = StressedEstimator(Recorder(), "bags:10", 5).fit(X, y)
    assert supervised.estimator_.fit_params_ == {}
    assert np.array_equal(supervised.estimator_.y_, y)


def test_target_scaling_scales_bag_means_like_the_target():
    y = np.array([1.0, 3.0, 5.0, 7.0])
    bag_target = np.array([2.0, 2.0, 6.0, 6.0])
    model = TargetScaled(Recorder()).fit(
        np.zeros((4, 1)), y, bag_target=bag_target, bag=[0, 0, 1, 1]
    )
    scaled = model.regressor_.fit_params_["bag_target"]
    assert scaled == pytest.approx((bag_target - 4.0) / np.std(y))
    assert model.regressor_.fit_params_["bag"] == [0, 0, 1, 1]


def test_a_bag_loss_needs_a_bag_scenario():
    data = load_data("synthetic:classification(n_samples=60, n_classes=2)")
    with pytest.raises(ValueError, match=r"dllp learn\(s\) from bag label proportions.*clean"):
        plan_fits(data, losses="cross_entropy,dllp", scenarios=["clean", "bags:8"])


def test_compare_fits_bag_losses_on_proportions_and_scores_rows():
    frame = compare(
        "synthetic:classification(n_samples=160, n_classes=3, n_features=5, n_informative=3)",
        losses="cross_entropy,dllp",
        scenarios=["bags:8"],
        cv=2,
        estimator_params={"max_iter": 3},
    )
    assert frame["status"].eq("ok").all(), frame["error"].tolist()
    assert frame["n_bags"].eq(10).all()
    assert frame["accuracy"].between(0, 1).all()


def test_compare_fits_aggregate_losses_on_bag_means():
    frame = compare(
        "synthetic:regression(n_samples=120, n_features=4)",
        losses="bag_mse,aggregate_interpolating(rho=0.5),instance_aggregate_mse",
        baseline="bag_mse",
        scenarios=["sorted_bags:6"],
        cv=2,
        estimator_params={"max_iter": 3},
    )
    assert frame["status"].eq("ok").all(), frame["error"].tolist()
    assert np.isfinite(frame["rmse"]).all()


def test_ordinal_metrics_measure_distances_in_class_units():
    y_true = np.array([0, 1, 2, 3, 4, 4])
    y_pred = np.array([0, 2, 2, 1, 4, 3])
    scores = ordinal_metrics(y_true, y_pred, classes=np.arange(5))
    assert scores["class_mae"] == pytest.approx(4 / 6)
    assert scores["class_rmse"] == pytest.approx(np.sqrt(6 / 6))
    # quadratic weighted kappa by its definition: 1 - sum(w O) / sum(w E)
    observed = np.zeros((5, 5))
    for t, p in zip(y_true, y_pred, strict=True):
        observed[t, p] += 1
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    weights = np.subtract.outer(np.arange(5), np.arange(5)) ** 2 / 16
    kappa = 1 - (weights * observed).sum() / (weights * expected).sum()
    assert scores["qwk"] == pytest.approx(kappa)


def test_a_class_missing_from_training_still_counts_its_distance():
    scores = ordinal_metrics(np.array([10, 30]), np.array([10, 10]), classes=np.array([10, 20]))
    assert scores["class_mae"] == pytest.approx(1.0)  # 30 is two ranks above 10


def test_the_ordinal_generator_cuts_a_score_into_equal_ordered_classes():
    frame = ordinal(n_samples=500, n_classes=5, noise=0.0, random_state=2)
    assert np.bincount(frame["target"]).tolist() == [100] * 5
    assert frame.attrs["task"] == "ordinal"
    # without noise the classes are ordered along one direction of x: a linear score
    # explains their order almost exactly
    X = frame.drop(columns="target").to_numpy()
    w = np.linalg.lstsq(X, frame["target"].to_numpy(float), rcond=None)[0]
    assert np.corrcoef(X @ w, frame["target"])[0, 1] > 0.9
    with pytest.raises(ValueError, match="n_informative"):
        ordinal(n_features=3, n_informative=4)


def test_ordinal_task_from_the_generator_and_only_for_numeric_classes():
    assert load_data("synthetic:ordinal(n_samples=50)").task == "ordinal"
    frame = pd.DataFrame({"x": range(6), "target": ["low", "high"] * 3})
    with pytest.raises(ValueError, match="ordered class labels"):
        load_data(frame, target="target", task="ordinal")


def test_compare_scores_ordinal_targets_with_class_distances():
    frame = compare(
        "synthetic:ordinal(n_samples=150, n_features=4, n_informative=2, n_classes=4)",
        losses="cross_entropy,distance_smoothed_ce,ntl_wasserstein",
        scenarios=["clean", "symmetric_noise:0.2"],
        cv=2,
        estimator_params={"max_iter": 3},
    )
    assert frame["status"].eq("ok").all(), frame["error"].tolist()
    assert frame.attrs["primary"] == "class_mae"
    assert frame["class_mae"].between(0, 3).all() and frame["qwk"].le(1).all()


def test_the_generator_gives_vote_counts_and_the_majority_vote():
    frame = ordinal(n_samples=300, n_classes=4, n_votes=5, noise=1.0, random_state=1)
    counts = frame[[f"votes_{k}" for k in range(4)]].to_numpy()
    assert (counts.sum(axis=1) == 5).all()
    assert (counts[np.arange(300), frame["target"]] == counts.max(axis=1)).all()
    assert (counts.max(axis=1) < 5).any()  # annotators disagree


def test_votes_leave_the_features_and_are_named_by_class():
    data = load_data("synthetic:ordinal(n_samples=80, n_classes=3, n_votes=4)")
    assert not any(c.startswith("votes_") for c in data.X.columns)
    assert data.votes.columns.tolist() == [0, 1, 2]
    frame = pd.DataFrame({"x": range(4), "y": [0, 1, 0, 1], "v0": [2, 0, 1, 1], "v1": [0, 2, 1, 1]})
    assert load_data(frame, target="y", votes="v0,v1").votes.to_numpy().sum() == 8
    with pytest.raises(ValueError, match="one vote-count column per class"):
        load_data(frame, target="y", votes="v0")


def test_expand_votes_repeats_rows_with_their_vote_shares():
    X = pd.DataFrame({"a": [1.0, 2.0]})
    X_rep, y_rep, params = expand_votes(X, np.array([[3, 1, 0], [0, 0, 2]]), np.array([5, 6, 7]))
    assert X_rep["a"].tolist() == [1.0, 1.0, 2.0]
    assert y_rep.tolist() == [5, 6, 7]
    assert params["model__sample_weight"].tolist() == pytest.approx([0.75, 0.25, 1.0])
    assert params["rows"].tolist() == [0, 0, 1]


def test_vote_metrics_by_their_definitions():
    votes = np.array([[2, 2, 0], [0, 0, 4]])
    proba = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    scores = vote_metrics(votes, proba)
    # |F_p - F_v| summed over levels: row 1 (0.5 + 0 + 0), row 2 (0 + 0.5 + 0)
    assert scores["vote_emd"] == pytest.approx(0.5)
    # top levels: 0 with confidence 1 (crowd share 0.5); 1 with 0.5 (crowd share 0)
    assert scores["vote_ece"] == pytest.approx((0.5 + 0.5) / 2)
    # a class the model never saw gets probability 0
    frame = pd.DataFrame(votes, columns=[0, 1, 2])
    shifted = vote_metrics(frame, np.array([[1.0, 0.0], [0.5, 0.5]]), classes=[0, 2])
    assert shifted["vote_emd"] == pytest.approx((0.5 + 1.0) / 2)


def test_the_votes_scenario_needs_votes_and_trains_on_them():
    plain = load_data("synthetic:ordinal(n_samples=60)")
    with pytest.raises(ValueError, match="the data has none"):
        plan_fits(plain, losses="cross_entropy", scenarios=["votes"])
    with pytest.raises(ValueError, match="takes no value"):
        parse_scenario("votes:3")
    frame = compare(
        "synthetic:ordinal(n_samples=120, n_features=4, n_informative=2, n_classes=3, n_votes=3)",
        losses="cross_entropy,ordinal_emd",
        scenarios=["clean", "votes"],
        cv=2,
        estimator_params={"max_iter": 2},
    )
    assert frame["status"].eq("ok").all(), frame["error"].tolist()
    voted = frame[frame["scenario"] == "votes"]
    assert (voted["n_vote_rows"] > voted["n_train"]).all()
    assert frame["vote_emd"].between(0, 2).all() and frame["vote_ece"].between(0, 1).all()


def test_a_bag_scenario_fits_no_teacher():
    X, y = _labels(n=20)
    with pytest.raises(ValueError, match="fits no teacher"):
        StressedEstimator(Recorder(), "bags:4", teacher=Recorder()).fit(X, y)


def test_the_cli_reads_vote_columns_and_the_votes_scenario(tmp_path):
    from click.testing import CliRunner

    from lossreg.cli import cli

    data = ordinal(n_samples=80, n_features=3, n_informative=2, n_classes=3, n_votes=3)
    path = tmp_path / "crowd.csv"
    data.rename(columns={f"votes_{k}": f"v{k}" for k in range(3)}).to_csv(path, index=False)
    args = ["compare", str(path), "--target", "target", "--task", "ordinal", "--votes", "v0,v1,v2"]
    args += ["--losses", "cross_entropy", "--scenario", "votes", "--cv", "2", "--max-iter", "1"]
    result = CliRunner().invoke(cli, [*args, "--no-progress", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    records = pd.read_json(tmp_path / "out" / "results.jsonl", lines=True)
    assert records["vote_emd"].notna().all() and records["class_mae"].notna().all()
    assert (records["n_vote_rows"] > records["n_train"]).all()
