"""compare's training dynamics: learning curves, epochs_to_fit, divergence; the separable data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lossreg.compare import compare, load_data, plan_fits
from lossreg.compare._config import load_config
from lossreg.compare._curves import diverged, loss_rises
from lossreg.compare._synthetic import make_synthetic

LINEAR_GD = {
    "max_iter": 6,
    "module__hidden_units": (),
    "optimizer": "sgd",
    "batch_size": 4096,
    "n_iter_no_change": 100,
}


def test_diverged_and_loss_rises_read_the_training_loss():
    assert diverged([1.0, 0.5, 0.4]) == 0.0
    assert diverged([1.0, 2.0, 1.5]) == 1.0  # ended above where it started
    assert diverged([1.0, math.nan, 0.1]) == 1.0
    assert diverged([1.0, math.inf]) == 1.0
    assert loss_rises([3.0, 2.0, 2.5, 1.0, 1.2]) == pytest.approx(0.5)
    assert math.isnan(loss_rises([1.0]))


def test_separable_data_has_its_margin_and_is_linearly_separable():
    from sklearn.svm import LinearSVC

    _, frame = make_synthetic("synthetic:separable(n_samples=400, n_features=5, margin=0.2)")
    X, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()
    assert frame.shape == (400, 6) and set(np.unique(y)) == {0, 1}
    svm = LinearSVC(C=1e4, max_iter=100_000).fit(X, y)
    assert svm.score(X, y) == 1.0
    # the hard-margin SVM's margin is at least the generator's (it is the widest one)
    assert 1.0 / np.linalg.norm(svm.coef_) >= 0.2 - 1e-3
    with pytest.raises(ValueError, match="margin >= 0"):
        make_synthetic("synthetic:separable(margin=-1.0)")


def test_curves_replay_every_epoch_and_end_at_the_final_scores():
    results = compare(
        "synthetic:separable(n_samples=200, n_features=4, margin=0.3)",
        losses=["bce", "perceptron"],
        baseline="perceptron",
        cv=2,
        curves=True,
        estimator_params={**LINEAR_GD, "lr": 1.0},
        report=False,
    )
    assert (results["status"] == "ok").all()
    for _, row in results.iterrows():
        train, test = row["train_accuracy_curve"], row["test_accuracy_curve"]
        assert len(train) == len(test) == row["n_epochs"] == 6
        # the last epoch's weights are the fitted model: the curves end at its scores
        assert test[-1] == pytest.approx(row["accuracy"])
        assert row["train_accuracy"] == train[-1]
        assert row["test_accuracy_auc"] == pytest.approx(np.mean(test))
        reached = [i + 1 for i, a in enumerate(train) if a == 1.0]
        assert row["epochs_to_fit"] == (reached[0] if reached else 7)
        assert 0.0 <= row["loss_rises"] <= 1.0 and row["diverged"] in (0.0, 1.0)
    # the first epoch's weights are not the last's: the replay loads each epoch's snapshot
    assert any(r[0] != r[-1] for r in results["train_accuracy_curve"])


def test_regression_curves_are_rmse_in_target_units():
    results = compare(
        "synthetic:regression(n_samples=150, noise=5.0)",
        losses=["mse"],
        cv=2,
        curves=True,
        estimator_params={"max_iter": 4, "module__hidden_units": (8,)},
        report=False,
    )
    row = results.iloc[0]
    assert len(row["test_rmse_curve"]) == 4
    assert row["test_rmse_curve"][-1] == pytest.approx(row["rmse"])
    assert row["test_rmse_auc"] == pytest.approx(np.mean(row["test_rmse_curve"]))
    assert "epochs_to_fit" not in results


def test_a_diverging_fit_is_recorded_as_diverged_not_as_an_error():
    results = compare(
        "iris",
        losses=["cross_entropy"],
        cv=2,
        estimator_params={**LINEAR_GD, "lr": 1e38, "max_iter": 3},
        report=False,
    )
    assert (results["status"] == "ok").all()
    assert (results["diverged"] == 1.0).all()
    assert results["divergence"].str.contains("Training diverged").all()
    # NaN weights are not scored
    assert "accuracy" not in results or results["accuracy"].isna().all()


def test_curves_change_the_fit_keys_and_only_apply_to_classes_and_regression(tmp_path):
    data = load_data("iris")
    plain = plan_fits(data, losses=["cross_entropy"], cv=2)
    curved = plan_fits(data, losses=["cross_entropy"], cv=2, curves=True)
    assert {f["key"] for f in plain["fits"]}.isdisjoint(f["key"] for f in curved["fits"])
    multilabel = load_data("synthetic:multilabel(n_samples=60)", target=None)
    with pytest.raises(ValueError, match="Learning curves are scored for binary"):
        plan_fits(multilabel, losses=["bce"], cv=2, curves=True)
    with pytest.raises(ValueError, match="scoring 'epochs_to_fit'"):
        compare("iris", losses=["cross_entropy"], cv=2, scoring="epochs_to_fit")
    config = tmp_path / "c.toml"
    config.write_text('[compare]\ndata = "iris"\ncurves = "yes"\n')
    with pytest.raises(ValueError, match="curves must be of type bool"):
        load_config(config)
    config.write_text('[compare]\ndata = "iris"\ncurves = true\n')
    assert load_config(config)["curves"] is True


def test_the_cli_records_curves_with_the_flag(tmp_path):
    import json

    from click.testing import CliRunner

    from lossreg.cli import cli

    out = tmp_path / "out"
    args = ["compare", "iris", "--losses", "cross_entropy", "--cv", "2", "--max-iter", "2"]
    result = CliRunner().invoke(cli, [*args, "--curves", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "results.jsonl").open()]
    assert all(len(r["test_accuracy_curve"]) == 2 and "epochs_to_fit" in r for r in records)
