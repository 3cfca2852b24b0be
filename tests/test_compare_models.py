"""compare's reference scikit-learn models, and the Gaussian class-conditional data."""

from __future__ import annotations

import numpy as np
import pytest

from lossreg.compare import compare, load_data, plan_fits
from lossreg.compare._models import check_models
from lossreg.compare._synthetic import make_synthetic

FAST = {"max_iter": 2, "module__hidden_units": (8,)}


def test_a_reference_model_is_fitted_on_the_same_folds_and_scored_the_same_way():
    from sklearn.model_selection import cross_val_score
    from sklearn.naive_bayes import GaussianNB

    results = compare(
        "wine",
        losses=["cross_entropy"],
        models=["gaussian_nb"],
        cv=3,
        estimator_params=FAST,
        report=False,
    )
    assert results.attrs["losses"] == ["cross_entropy", "model:gaussian_nb"]
    nb = results[results["loss_label"] == "model:gaussian_nb"]
    ce = results[results["loss_label"] == "cross_entropy"]
    assert (nb["status"] == "ok").all() and len(nb) == 3
    assert nb["fold"].tolist() == ce["fold"].tolist()
    assert {"accuracy", "log_loss", "ece"} <= set(nb.dropna(axis=1).columns)
    # the same splits as compare's: scikit-learn's own scores on them agree
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_data("wine")
    plan = plan_fits(data, losses=["cross_entropy"], cv=3, models=["gaussian_nb"])
    splits = [
        (np.asarray(f["train"]), np.asarray(f["test"]))
        for f in plan["fits"]
        if f["loss"] == "model:gaussian_nb"
    ]
    expected = cross_val_score(
        make_pipeline(StandardScaler(), GaussianNB()), data.X, data.y, cv=splits
    )
    np.testing.assert_allclose(nb["accuracy"].to_numpy(), expected)


def test_models_pair_with_losses_under_a_scenario_for_regression():
    results = compare(
        "diabetes",
        losses=["mse"],
        models="ridge",
        scenarios=["outliers:0.1"],
        cv=2,
        estimator_params=FAST,
        report=False,
    )
    ridge = results[results["loss_label"] == "model:ridge"]
    assert (ridge["status"] == "ok").all() and ridge["rmse"].notna().all()


def test_unusable_models_are_named_with_the_choices():
    assert check_models(None, "binary") == []
    assert check_models("gaussian_nb", "binary") == ["model:gaussian_nb"]
    with pytest.raises(ValueError, match=r"unknown model 'nb'.*gaussian_nb") as info:
        check_models(["nb", "ridge"], "multiclass")
    assert "model 'ridge' fits regression targets, not 'multiclass'" in str(info.value)
    with pytest.raises(ValueError, match="listed twice"):
        check_models(["ridge", "ridge"], "regression")


def test_gaussian_classes_have_the_stated_means_and_bayes_error():
    from scipy.stats import norm

    _, frame = make_synthetic(
        "synthetic:gaussian_classes(n_samples=20000, n_features=4, separation=2.0)"
    )
    X, y = frame.drop(columns="target").to_numpy(), frame["target"].to_numpy()
    gap = X[y == 1].mean(axis=0) - X[y == 0].mean(axis=0)
    np.testing.assert_allclose(gap, 1.0, atol=0.05)  # 2 / sqrt(4) per feature
    np.testing.assert_allclose(X[y == 1].std(axis=0), 1.0, atol=0.03)
    bayes = np.mean((X.sum(axis=1) > 0) != y)  # the optimal rule: sign of the sum
    assert bayes == pytest.approx(norm.cdf(-1.0), abs=0.01)
    with pytest.raises(ValueError, match="separation >= 0"):
        make_synthetic("synthetic:gaussian_classes(separation=-1.0)")


def test_the_cli_and_config_files_take_models(tmp_path):
    import json

    from click.testing import CliRunner

    from lossreg.cli import cli
    from lossreg.compare._config import load_config

    config = tmp_path / "c.toml"
    config.write_text('[compare]\ndata = "iris"\nlosses = ["cross_entropy"]\nmodels = 3\n')
    with pytest.raises(ValueError, match="models must be of type str or list"):
        load_config(config)
    config.write_text('[compare]\ndata = "iris"\nlosses = ["cross_entropy"]\nmodels = ["ridge"]\n')
    out = tmp_path / "out"
    base = ["compare", "--config", str(config), "--cv", "2", "--max-iter", "2", "--no-progress"]
    failed = CliRunner().invoke(cli, [*base, "--out", str(out)])
    assert failed.exit_code != 0 and "model 'ridge' fits regression targets" in failed.output
    result = CliRunner().invoke(cli, [*base, "--model", "gaussian_nb", "--out", str(out)])
    assert result.exit_code == 0, result.output
    labels = {json.loads(line)["loss_label"] for line in (out / "results.jsonl").open()}
    assert labels == {"cross_entropy", "model:gaussian_nb"}
