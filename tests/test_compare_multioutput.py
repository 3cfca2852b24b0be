"""lossreg compare: multi-output regression targets, their metrics, generators and head scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LinearRegression

from lossreg.cli import cli
from lossreg.compare import compare, load_data
from lossreg.compare._fit import TargetScaled
from lossreg.compare._multioutput import (
    _distance_from_pca,
    _heads_in_target_units,
    head_metrics,
    loss_scaling,
    multioutput_metrics,
    score_heads,
)
from lossreg.compare._scenarios import Scenario, corrupt
from lossreg.compare._synthetic import make_synthetic

FAST = {"max_iter": 2, "module__hidden_units": (8,), "batch_size": 64}


def _frame(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.standard_normal(n),
            "a": rng.standard_normal(n),
            "b": 100 * rng.standard_normal(n),
            "c": rng.integers(0, 2, n),
            "d": rng.integers(0, 2, n),
        }
    )


def test_several_numeric_target_columns_make_a_multioutput_task():
    frame = _frame()
    data = load_data(frame, target="a,b")
    assert data.task == "multioutput" and list(data.y.columns) == ["a", "b"]
    assert data.y.dtypes.eq(np.float64).all() and list(data.X.columns) == ["x", "c", "d"]
    # 0/1 columns stay a multilabel target unless the task says otherwise
    assert load_data(frame, target=["c", "d"]).task == "multilabel"
    forced = load_data(frame, target=["c", "d"], task="multioutput")
    assert forced.task == "multioutput" and forced.y.dtypes.eq(np.float64).all()
    # generated data: the target_* columns, found by default or by a pattern
    generated = load_data("synthetic:multi_horizon(n_samples=50, n_horizons=3)")
    assert generated.task == "multioutput" and generated.y.shape == (50, 3)
    _, table = make_synthetic("synthetic:multi_horizon(n_samples=50, n_horizons=3)")
    by_pattern = load_data(table, target="target_*")
    assert list(by_pattern.y.columns) == ["target_0", "target_1", "target_2"]
    assert by_pattern.fingerprint == generated.fingerprint


@pytest.mark.parametrize(
    ("target", "task", "message"),
    [
        ("a,b", "regression", "task='regression' needs one column"),
        ("y_*", None, "Target pattern 'y_\\*' matches no column"),
        ("a,label", None, "column 'label' holds .* values. Convert it to numbers"),
        ("c,d", "multilabel", None),
    ],
)
def test_multioutput_target_errors_name_the_fix(target, task, message):
    frame = _frame().assign(label=["u", "v"] * 30)
    if message is None:
        assert load_data(frame, target=target, task=task).task == "multilabel"
        with pytest.raises(ValueError, match="must be 0 or 1"):
            load_data(frame, target="a,b", task="multilabel")
        return
    with pytest.raises(ValueError, match=message):
        load_data(frame, target=target, task=task)


def test_multioutput_metrics_by_hand():
    y = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0], [3.0, 40.0]])
    pred = y + np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, -10.0], [-1.0, 10.0]])
    scores = multioutput_metrics(y, pred)
    assert scores["mae"] == pytest.approx((4 * 1 + 2 * 10) / 8)
    assert scores["mse"] == pytest.approx((4 * 1 + 2 * 100) / 8)
    assert scores["rmse"] == pytest.approx(np.sqrt(scores["mse"]))
    r2 = [1 - 4 / 5, 1 - 200 / 500]  # residual over total sum of squares, per column
    assert scores["r2_per_output"] == pytest.approx(r2)
    assert scores["r2"] == pytest.approx(np.mean(r2)) and scores["worst_r2"] == pytest.approx(0.2)
    assert scores["first_mae"] == 1.0 and scores["last_mae"] == 5.0
    assert scores["mae_per_output"] == [1.0, 5.0]
    # each output's MAE over its (population) standard deviation, then the mean
    assert scores["scaled_mae"] == pytest.approx((1 / np.sqrt(1.25) + 5 / np.sqrt(125)) / 2)
    assert scores["sum_mae"] == pytest.approx(np.mean([1, 1, 9, 9]))
    # one prediction: the oracle and the best head are its MAE
    assert scores["oracle_mae"] == scores["best_head_mae"] == scores["mae"]


def test_hard_mae_scores_the_entries_off_the_training_components():
    rng = np.random.default_rng(0)
    factor = rng.standard_normal(200)
    y_train = np.column_stack([factor, 2 * factor, -factor])  # one component explains all
    y = y_train[:10].copy()
    y[3, 2] += 5.0  # the one entry off the component
    pred = y.copy()
    pred[3, 2] += 7.0
    pred[0, 0] += 1.0
    scores = multioutput_metrics(y, pred, y_train)
    # the top 10% of the 30 distances: 3 entries, among them the shifted one (error 7); row 3
    # is off as a whole after projection, the other two of its entries have no error
    assert scores["hard_mae"] == pytest.approx(7.0 / 3)
    assert scores["mae"] == pytest.approx(8.0 / 30)


def test_head_metrics_by_hand():
    y = np.array([0.0, 1.0, 2.0])
    heads = np.array([[[0.0], [5.0]], [[3.0], [1.5]], [[2.0], [2.0]]])  # (n=3, H=2, K=1)
    scores = head_metrics(y, heads, best_head=1)
    assert scores["oracle_mae"] == pytest.approx((0.0 + 0.5 + 0.0) / 3)
    assert scores["best_head_mae"] == pytest.approx((5.0 + 0.5 + 0.0) / 3)


def test_target_scaling_is_per_column_and_mapped_back():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((80, 3))
    Y = np.column_stack([X @ [1.0, 2.0, 0.0] + 5, 1000 * X[:, 2] - 300])
    model = TargetScaled(LinearRegression()).fit(X, Y)
    assert model.offset_ == pytest.approx(Y.mean(axis=0))
    assert model.scale_ == pytest.approx(Y.std(axis=0))
    assert model.regressor_.predict(X).std(axis=0) == pytest.approx([1.0, 1.0])
    assert model.predict(X) == pytest.approx(Y, abs=1e-6)
    # (n, K, levels) outputs: the statistics meet the target axis
    cube = np.zeros((2, 2, 3))
    assert model._back(cube)[:, 1, :] == pytest.approx(np.full((2, 3), Y[:, 1].mean()))
    single = TargetScaled(LinearRegression()).fit(X, Y[:, 1])
    assert isinstance(single.offset_, float) and isinstance(single.scale_, float)


def test_target_noise_and_outliers_use_each_columns_scale():
    rng = np.random.default_rng(2)
    y = np.column_stack([rng.standard_normal(4000), 100 * rng.standard_normal(4000)])
    _, noisy, info = corrupt(None, y, Scenario("target_noise", 0.5), 0)
    added = (noisy - y).std(axis=0)
    assert added == pytest.approx([0.5, 50.0], rel=0.05) and info["n_corrupted"] == 4000
    _, moved, info = corrupt(None, y, Scenario("outliers", 0.1), 0)
    shift = np.abs(moved - y)[moved != y].reshape(-1)
    assert info["n_corrupted"] == int((moved != y).sum())
    assert 0.08 < info["n_corrupted"] / y.size < 0.12 and shift.max() > 400


def test_generators_have_the_stated_properties():
    _, horizons = make_synthetic("synthetic:multi_horizon(n_samples=4000, n_horizons=4)")
    X = horizons[[f"x{j}" for j in range(6)]].to_numpy()
    base = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.25 * X[:, 2] * X[:, 3]
    noise = [(horizons[f"target_{h}"] - base - 0.3 * h * X[:, 4]).std() for h in range(4)]
    assert noise == pytest.approx([0.2, 0.6, 1.0, 1.4], rel=0.05)
    _, counts = make_synthetic("synthetic:count_histogram(n_samples=3000, n_bins=5)")
    Y = counts[[f"target_{b}" for b in range(5)]].to_numpy()
    assert (Y >= 0).all() and (np.round(Y) == Y).all()
    assert Y.sum(axis=1).mean() == pytest.approx(30.0, rel=0.1)
    _, colours = make_synthetic("synthetic:colour_field(n_samples=500)")
    assert colours.shape == (500, 5) and colours.filter(like="target").stack().between(0, 1).all()
    _, spread = make_synthetic(
        "synthetic:correlated_outputs(n_samples=3000, n_outputs=5, scale_spread=4.0)"
    )
    stds = spread[[f"target_{k}" for k in range(5)]].std().to_numpy()
    assert stds[-1] / stds[0] > 1e3  # four orders of magnitude apart, give or take the loadings
    # the later outputs are the hard ones: farther from the shared factors
    data = load_data("synthetic:correlated_outputs(n_samples=3000, n_outputs=6)")
    scores = multioutput_metrics(data.y.to_numpy(), data.y.to_numpy(), data.y.to_numpy())
    assert scores["hard_mae"] == 0.0
    gap = _distance_from_pca(data.y.to_numpy(), data.y.to_numpy())
    hard = (gap >= np.quantile(gap, 0.9)).mean(axis=0)
    assert hard[3:].sum() > 2 * hard[:3].sum()


def test_compare_fits_and_scores_a_multioutput_target():
    results = compare(
        "synthetic:correlated_outputs(n_samples=120, n_outputs=3)",
        losses=["mse", "signal_decay_mae"],
        cv=2,
        scenarios=["target_noise:0.5"],
        estimator_params=FAST,
    )
    assert (results["status"] == "ok").all(), results["error"].dropna().tolist()
    a = results.attrs
    assert a["task"] == "multioutput" and a["baseline"] == "mse" and a["primary"] == "rmse"
    for metric in ("rmse", "r2", "worst_r2", "hard_mae", "sum_mae", "first_mae", "oracle_mae"):
        assert results[metric].notna().all(), metric
    assert results["mae_per_output"].map(len).eq(3).all()
    assert (results["worst_r2"] <= results["r2"]).all()
    with pytest.raises(ValueError, match="does not support task 'multioutput'"):
        compare("synthetic:multi_horizon(n_samples=60)", losses="cross_entropy", cv=2)
    with pytest.raises(ValueError, match="Unknown scoring 'accuracy' for multioutput"):
        compare("synthetic:multi_horizon(n_samples=60)", losses="mse", scoring="accuracy")


def test_hypothesis_heads_are_scored_in_target_units():
    data = load_data("synthetic:multimodal(n_samples=200)")
    results = compare(
        data.X.assign(target=data.y),
        target="target",
        losses=["mse", "multi_hypothesis_min_mse(n_heads=3)"],
        cv=2,
        estimator_params=FAST,
    )
    assert (results["status"] == "ok").all(), results["error"].dropna().tolist()
    single = results[results["loss"] == "mse"]
    assert (single["oracle_mae"] == single["mae"]).all()
    assert (single["best_head_mae"] == single["mae"]).all()
    heads = results[results["loss"] != "mse"]
    assert (heads["oracle_mae"] < heads["best_head_mae"]).all()
    # head 0 (the link's head, never reselected by the estimator) maps back to predict()
    from lossreg import LossRegressor

    X, y = data.X.to_numpy(), data.y.to_numpy()
    model = TargetScaled(LossRegressor("multi_hypothesis_min_mse", loss__n_heads=3, **FAST))
    model.fit(X, 10 * y + 50)
    heads, best = _heads_in_target_units(model, X[:20], X, (10 * y + 50).reshape(-1, 1))
    assert heads.shape == (20, 3, 1) and best in (0, 1, 2)
    assert heads[:, 0, 0] == pytest.approx(model.predict(X[:20]))
    scores = score_heads(model, X[:20], 10 * y[:20] + 50, X, 10 * y + 50, point_mae=0.0)
    assert scores["oracle_mae"] <= scores["best_head_mae"]


def test_cli_compares_a_multioutput_target(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            "synthetic:count_histogram(n_samples=80, n_bins=3)",
            "--target",
            "target_*",
            "--task",
            "multioutput",
            "--losses",
            "mse,mae",
            "--cv",
            "2",
            "--max-iter",
            "1",
            "--target-scaling",
            "none",
            "--scoring",
            "sum_mae",
            "--out",
            str(tmp_path),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "sum_mae" in result.output


def test_target_scaling_can_differ_by_loss():
    from lossreg.compare._fit import make_pipeline
    from lossreg.errors import UnknownLossError

    table = {"phi_s_mse": "none", "default": "scale"}
    assert loss_scaling(table, "phi_s_mse") == "none"
    assert loss_scaling(table, "mse") == "scale"
    assert loss_scaling({"phi_s_mse": "none"}, "mse") == "standard"
    assert loss_scaling("none", "mse") == "none"
    settings = {"max_iter": 1, "target_scaling": table}
    assert make_pipeline("multioutput", "phi_s_mse", {}, settings, 0)[-1].scaling == "none"
    assert make_pipeline("multioutput", "mse", {}, settings, 0)[-1].scaling == "scale"
    with pytest.raises(UnknownLossError, match="phi_s_mse"):
        loss_scaling({"phi_s_mse_": "none"}, "mse")
