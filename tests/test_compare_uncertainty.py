"""lossreg compare: uncertainty metrics, true sigma, vacuity, subsample, calibrate, claim checks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from lossreg.compare import compare, corrupt, load_data
from lossreg.compare._scenarios import parse_scenario
from lossreg.compare._uncertainty import (
    QUANTILE_LEVELS,
    ause,
    classification_uncertainty,
    quantile_coverage,
    regression_uncertainty,
)

ROOT = Path(__file__).resolve().parents[1]
FAST = {"max_iter": 3, "module__hidden_units": (8,), "batch_size": 64}


def run(data, **kwargs):
    kwargs.setdefault("estimator_params", FAST)
    kwargs.setdefault("torch_threads", 1)
    kwargs.setdefault("cv", 2)
    return compare(data, **kwargs)


# -- metrics against independent computations ------------------------------------------------
def _ause_loop(errors, uncertainty, steps):
    """The same definition written as plain loops over the removal fractions."""
    n = len(errors)
    rank_u = sorted(range(n), key=lambda i: (-uncertainty[i], i))
    rank_e = sorted(range(n), key=lambda i: -errors[i])
    total = sum(errors) / n
    gaps = []
    for k in range(steps):
        start = int(k * n // steps)
        kept_u = [errors[i] for i in rank_u[start:]]
        kept_e = [errors[i] for i in rank_e[start:]]
        gaps.append(sum(kept_u) / len(kept_u) - sum(kept_e) / len(kept_e))
    return sum(gaps) / steps / total


def test_ause_is_zero_for_a_perfect_ranking_and_matches_a_loop():
    rng = np.random.default_rng(0)
    errors = rng.exponential(size=200)
    assert ause(errors, errors) == pytest.approx(0.0, abs=1e-12)
    noise = rng.normal(size=200)
    assert ause(errors, noise) == pytest.approx(_ause_loop(list(errors), list(noise), 50))
    # an informative uncertainty beats an uninformative one
    assert ause(errors, errors + 0.1 * noise) < ause(errors, noise)


def test_regression_uncertainty_against_scipy():
    rng = np.random.default_rng(1)
    y_pred = rng.normal(size=300)
    sigma = rng.uniform(0.2, 2.0, size=300)
    y = y_pred + sigma * rng.normal(size=300)
    std = sigma * rng.uniform(0.8, 1.2, size=300)
    out = regression_uncertainty(y, y_pred, std, true_sigma=sigma)
    assert out["gaussian_nll"] == pytest.approx(-stats.norm.logpdf(y, y_pred, std).mean())
    assert out["sigma_corr"] == pytest.approx(stats.pearsonr(std, sigma).statistic)
    assert out["squared_error_p90"] == pytest.approx(np.percentile((y - y_pred) ** 2, 90))
    # without a predicted spread only the tail metric is there
    assert set(regression_uncertainty(y, y_pred)) == {"squared_error_p90"}


def test_quantile_coverage_interpolates_the_models_levels():
    rng = np.random.default_rng(2)
    y = rng.normal(size=20000)
    levels = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    values = np.tile(stats.norm.ppf(levels), (len(y), 1))
    coverage = quantile_coverage(y, levels, values)
    assert list(coverage) == list(QUANTILE_LEVELS)
    # linear interpolation between the given quantiles of N(0, 1), checked at 0.1
    q10 = np.interp(0.1, levels, stats.norm.ppf(levels))
    assert coverage[0.1] == pytest.approx(np.mean(y <= q10))
    assert coverage[0.5] == pytest.approx(0.5, abs=0.02)
    # levels that do not reach 0.1 and 0.9 cannot be compared
    assert quantile_coverage(y, [0.25, 0.75], values[:, 1:4:2]) is None
    out = regression_uncertainty(y, np.zeros_like(y), quantiles=(levels, values))
    assert out["quantile_calibration_error"] == pytest.approx(
        np.mean([abs(c - level) for level, c in coverage.items()])
    )


def test_classification_uncertainty_by_hand():
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
    y = np.array([0, 1, 1, 1])  # rows 2 and 3 are wrong
    vac = np.array([0.1, 0.9, 0.8, 0.7])
    plain = classification_uncertainty(y, proba)
    assert plain["error_confidence"] == pytest.approx((0.6 + 0.5) / 2)
    assert plain["uncertainty_auroc"] == pytest.approx(
        roc_auc_score([0, 0, 1, 1], 1 - proba.max(axis=1))
    )
    assert plain["log_loss_p90"] == pytest.approx(np.percentile(-np.log([0.7, 0.8, 0.3, 0.3]), 90))
    assert "mean_vacuity" not in plain
    own = np.array([0.7, 0.8, 0.3, 0.3])
    assert plain["coverage_at_4"] == pytest.approx(np.mean([1 - (1 - p) ** 4 for p in own]))
    assert plain["coverage_at_64"] > plain["coverage_at_16"] > plain["coverage_at_4"]
    evidential = classification_uncertainty(y, proba, vac)
    assert evidential["uncertainty_auroc"] == pytest.approx(roc_auc_score([0, 0, 1, 1], vac))
    assert evidential["mean_vacuity"] == pytest.approx(vac.mean())


def test_class_geometry_of_orthogonal_means_growing_with_counts():
    from lossreg.compare._geometry import class_geometry

    # class k's rows sit at (k + 1) * e_k, the counts grow with k: norms follow the counts
    y = np.repeat(np.arange(4), 5)
    features = np.zeros((20, 4))
    features[np.arange(20), y] = y + 1.0
    out = class_geometry(features, y, train_counts=np.array([10, 20, 40, 80]))
    assert out["class_norm_count_corr"] == pytest.approx(1.0)
    assert out["class_mean_cosine"] == pytest.approx(0.0)
    # reversed counts reverse the correlation; equal means give cosine 1
    assert class_geometry(features, y, np.array([80, 40, 20, 10]))[
        "class_norm_count_corr"
    ] == pytest.approx(-1.0)
    same = class_geometry(np.ones((20, 4)), y, np.array([10, 20, 40, 80]))
    assert same["class_mean_cosine"] == pytest.approx(1.0)
    assert "class_norm_count_corr" not in same  # equal norms: no ranking to correlate


def test_mlp_without_a_head_bias():
    from sklearn.datasets import load_iris

    from lossreg.estimators import LossClassifier

    X, y = load_iris(return_X_y=True)
    model = LossClassifier(module__head_bias=False, random_state=0, **FAST).fit(X, y)
    assert model.net_.module_.layers[-1].bias is None
    assert LossClassifier(random_state=0, **FAST).fit(X, y).net_.module_.layers[-1].bias is not None


# -- data and scenarios -----------------------------------------------------------------------
def test_heteroscedastic_true_sigma_is_kept_out_of_the_features():
    data = load_data("synthetic:heteroscedastic(n_samples=300, n_features=4)")
    assert list(data.X.columns) == ["x0", "x1", "x2", "x3"]
    assert np.allclose(data.true_sigma, 0.1 + 0.5 * np.abs(data.X["x0"]))


@pytest.mark.parametrize("name", ["heteroscedastic", "heavy_tailed", "skewed", "multimodal"])
def test_generators_on_the_shared_mean_need_four_features(name):
    with pytest.raises(ValueError, match=r"n_features must be at least 4\. Got n_features=3"):
        load_data(f"synthetic:{name}(n_samples=50, n_features=3)")
    assert load_data(f"synthetic:{name}(n_samples=50, n_features=4)").X.shape == (50, 4)


def test_sampled_labels_follow_their_softmax():
    data = load_data("synthetic:sampled_labels(n_samples=4000, n_classes=3, temperature=100.0)")
    # a very flat p(y|x): each class about a third of the rows
    assert np.allclose(np.bincount(data.y) / 4000, 1 / 3, atol=0.03)
    sharp = load_data("synthetic:sampled_labels(n_samples=400, n_classes=3, temperature=0.01)")
    # a very sharp one: the label is the argmax of a linear score, which a linear model finds
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(max_iter=2000).fit(sharp.X, sharp.y)
    assert fitted.score(sharp.X, sharp.y) > 0.95
    with pytest.raises(ValueError, match="temperature must be > 0"):
        load_data("synthetic:sampled_labels(temperature=0.0)")


def test_subsample_keeps_a_fraction_of_the_training_rows():
    X = np.arange(200).reshape(100, 2)
    y = np.arange(100)
    X_c, y_c, info = corrupt(X, y, parse_scenario("subsample:0.25"), 0)
    assert len(y_c) == 25 and info["n_train"] == 25 and info["n_removed"] == 75
    assert np.array_equal(X_c[:, 0] // 2, y_c)  # rows stay whole
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        parse_scenario("subsample:1.5").check("regression")


# -- compare end to end ------------------------------------------------------------------------
def test_compare_scores_predicted_spreads_against_the_true_sigma():
    frame = run(
        "synthetic:heteroscedastic(n_samples=200, n_features=4)",
        losses="mse,gaussian_nll",
        scenarios=["clean", "subsample:0.5"],
    )
    assert (frame["status"] == "ok").all()
    assert "true_sigma" not in frame
    nll = frame[frame["loss_label"] == "gaussian_nll"]
    assert nll[["gaussian_nll", "ause", "sigma_corr", "squared_error_p90"]].notna().all().all()
    assert frame.loc[frame["loss_label"] == "mse", "sigma_corr"].isna().all()
    assert (frame.loc[frame["scenario"] == "subsample:0.5", "n_train"] == 50).all()


def test_compare_reports_vacuity_for_evidential_losses():
    frame = run("iris", losses="cross_entropy,edl_log")
    ce = frame[frame["loss_label"] == "cross_entropy"]
    assert ce["mean_vacuity"].isna().all()
    # for a softmax model the uncertainty is one minus the top probability
    both = ce[["uncertainty_auroc", "error_auroc"]].dropna()
    assert np.allclose(both["uncertainty_auroc"], both["error_auroc"])
    edl = frame[frame["loss_label"] == "edl_log"]
    assert edl["mean_vacuity"].between(0, 1).all()
    # every MLP classifier also reports its class-mean geometry
    assert frame["class_mean_cosine"].between(-1, 1).all()


def test_compare_calibrate_fits_calibrators_on_one_base_model():
    frame = run(
        "iris", losses="temperature_scaling,temperature_scaling(affine=True)", calibrate="ce"
    )
    assert (frame["status"] == "ok").all()
    assert frame.attrs["baseline"] == "temperature_scaling"
    assert set(frame["calibrate"]) == {"cross_entropy"}
    assert frame[["ece", "error_confidence", "log_loss"]].notna().all().all()


def test_held_out_calibrated_shares_the_base_model_across_calibrators():
    from sklearn.datasets import load_iris

    from lossreg.compare._calibrate import HeldOutCalibrated
    from lossreg.estimators import LossClassifier

    X, y = load_iris(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    base = LossClassifier(loss="cross_entropy", random_state=0, **FAST)
    fits = [
        HeldOutCalibrated(base, method, random_state=3).fit(X, y)
        for method in ("temperature_scaling", "correctness_aware")
    ]
    # the same split and seed give the same base model under every calibrator
    assert np.array_equal(fits[0].base_.predict_proba(X), fits[1].base_.predict_proba(X))
    # the calibrator saw 20% of the rows, the base model the other 80%
    assert len(fits[0].base_.history_) == FAST["max_iter"]
    # a temperature keeps each row's top class
    assert np.array_equal(fits[0].predict(X), fits[0].base_.predict(X))
    assert not np.allclose(fits[0].predict_proba(X), fits[0].base_.predict_proba(X))


@pytest.mark.parametrize(
    ("data", "losses", "calibrate", "message"),
    [
        ("iris", "temperature_scaling,focal", "cross_entropy", "'focal' is not"),
        ("iris", "temperature_scaling", "temperature_scaling", "not a calibrator"),
        ("diabetes", "temperature_scaling", "cross_entropy", "class target"),
    ],
)
def test_compare_calibrate_errors_name_the_value(data, losses, calibrate, message):
    with pytest.raises(ValueError, match=message):
        run(data, losses=losses, calibrate=calibrate)


def test_cli_calibrate_option(tmp_path):
    from click.testing import CliRunner

    from lossreg.cli import cli

    result = CliRunner().invoke(
        cli,
        [
            "compare",
            "iris",
            "--losses",
            "temperature_scaling,correctness_aware",
            "--calibrate",
            "cross_entropy",
            "--cv",
            "2",
            "--max-iter",
            "2",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "correctness_aware" in result.output


# -- the claims runner's descriptive checks ------------------------------------------------------
def _runner():
    spec = importlib.util.spec_from_file_location(
        "run_claims", ROOT / "examples" / "claims" / "run_claims.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_claims"] = module
    spec.loader.exec_module(module)
    return module


def test_claim_checks_against_a_threshold_and_another_scenario():
    claims = _runner()
    rows = []
    for scenario, shift in (("clean", 0.0), ("subsample:0.1", 0.2)):
        for fold in range(5):
            rows.append(
                {
                    "loss_label": "edl_log",
                    "scenario": scenario,
                    "repeat": 0,
                    "fold": fold,
                    "status": "ok",
                    "mean_vacuity": 0.3 + shift + 0.01 * fold,
                    "sigma_corr": 0.8 + 0.01 * fold,
                }
            )
    results = pd.DataFrame(rows)
    results.attrs.update(cv=5, baseline="edl_log")
    claim = claims.Claim(
        id="C00",
        title="t",
        evidence="N",
        source="",
        compare={},
        checks=[
            # vacuity with all rows is 0.2 lower than with a tenth of them
            claims.Check(
                loss="edl_log",
                metric="mean_vacuity",
                baseline_scenario="subsample:0.1",
                expect="better",
            ),
            claims.Check(loss="edl_log", metric="sigma_corr", threshold=0.7, expect="better"),
            claims.Check(loss="edl_log", metric="sigma_corr", threshold=0.9, expect="better"),
        ],
    )
    first, above, not_above = claims.evaluate(claim, results)
    assert first["diff"] == pytest.approx(0.2) and first["outcome"] is True
    assert first["baseline"] == "edl_log @ subsample:0.1"
    assert above["diff"] == pytest.approx(0.12) and above["outcome"] is True
    assert above["baseline"] == "= 0.7"
    assert not_above["outcome"] is False
