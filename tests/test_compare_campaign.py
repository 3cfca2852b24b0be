"""compare's value column: campaign-profit metrics, the churn generator, the value fit extra."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossreg.compare import compare
from lossreg.compare._campaign import (
    CAMPAIGN_DEFAULTS,
    campaign_benefits,
    check_value,
    profit_threshold,
)
from lossreg.compare._synthetic import make_synthetic

ROOT = Path(__file__).resolve().parents[1]


def test_benefit_of_targeting_follows_the_campaign_economics():
    # a churner worth 200, a churner worth 5 (below the incentive), a loyal customer
    got = campaign_benefits(np.array([1, 1, 0]), np.array([200.0, 5.0, 900.0]), CAMPAIGN_DEFAULTS)
    np.testing.assert_allclose(got, [0.3 * 190 - 1, 0.3 * -5 - 1, -11.0])


def test_profit_threshold_maximises_the_training_profit():
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    benefits = np.array([5.0, -1.0, 4.0, -10.0, 3.0])
    # targeting the top 1, 2, 3, 4, 5 rows earns 5, 4, 8, -2, 1: cut between 0.7 and 0.2
    assert profit_threshold(scores, benefits) == pytest.approx(0.45)
    # nobody is worth targeting: the threshold is the top score, so no row passes it
    assert profit_threshold(scores, -np.abs(benefits)) == pytest.approx(0.9)
    # everybody: below the lowest score
    assert profit_threshold(scores, np.abs(benefits)) == -np.inf
    # tied scores are targeted together: (0.5, +4) and (0.5, -6) cannot be split
    assert profit_threshold(np.array([0.5, 0.5, 0.1]), np.array([4.0, -6.0, 1.0])) == 0.5


def test_check_value_says_what_is_wrong():
    X = pd.DataFrame({"x0": [0.0, 1.0], "clv": [10.0, np.nan], "name": ["a", "b"]})
    ok = pd.DataFrame({"clv": [10.0, 20.0]})
    no_extras = {"bce": ()}
    with pytest.raises(ValueError, match="'spend' is not a feature column"):
        check_value("spend", X, "binary", no_extras)
    with pytest.raises(ValueError, match="missing or non-numeric"):
        check_value("clv", X, "binary", no_extras)
    with pytest.raises(ValueError, match="task is 'multiclass'"):
        check_value("clv", ok, "multiclass", no_extras)
    with pytest.raises(ValueError, match="Unknown campaign setting"):
        check_value("clv(cost=2)", ok, "binary", no_extras)
    with pytest.raises(ValueError, match="gamma must lie in"):
        check_value("clv(gamma=1.5)", ok, "binary", no_extras)
    for bad in ("clv(gamma=abc)", "clv(gamma=[1])", "clv(delta=True)"):
        with pytest.raises(ValueError, match="campaign settings are numbers"):
            check_value(bad, ok, "binary", no_extras)
    with pytest.raises(ValueError, match="pno_churn_regret need each row's monetary value"):
        check_value(None, ok, "binary", {"pno_churn_regret": ("value",)})
    assert check_value(None, ok, "binary", no_extras) is None
    assert check_value("clv(delta=5)", ok, "binary", no_extras) == {
        "column": "clv",
        "gamma": 0.3,
        "delta": 5.0,
        "contact_cost": 1.0,
    }


def test_churn_generator_has_heavy_tailed_values_and_the_asked_churn_rate():
    _, frame = make_synthetic("synthetic:churn(n_samples=4000, churn_rate=0.1)")
    assert list(frame.columns[-2:]) == ["clv", "target"]
    assert abs(frame["target"].mean() - 0.1) < 0.02
    clv = frame["clv"]
    assert (clv > 0).all() and clv.mean() > 1.3 * clv.median()  # a long right tail
    # valuable customers churn less by default (value_link < 0)
    high = clv > clv.median()
    assert frame.loc[high, "target"].mean() < frame.loc[~high, "target"].mean()
    _, again = make_synthetic("synthetic:churn(n_samples=4000, churn_rate=0.1)")
    pd.testing.assert_frame_equal(frame, again)
    with pytest.raises(ValueError, match="churn_rate must be a number in"):
        make_synthetic("synthetic:churn(churn_rate=1.5)")


def test_compare_feeds_the_value_and_scores_the_campaign():
    results = compare(
        "synthetic:churn(n_samples=300)",
        losses=["bce", "pno_churn_regret(gamma=0.5)"],
        models=["logistic_regression"],
        value="clv(gamma=0.5)",
        cv=2,
        estimator_params={"max_iter": 3},
        report=False,
    )
    assert (results["status"] == "ok").all(), results.get("error")
    for metric in ("campaign_profit", "campaign_profit_tuned", "campaign_target_rate"):
        assert results[metric].notna().all()
    # the hindsight optimum depends on the fold only
    assert results.groupby("fold")["campaign_profit_max"].nunique().eq(1).all()
    assert (results["campaign_profit"] <= results["campaign_profit_max"] + 1e-12).all()
    by_loss = results.set_index("loss_label")
    assert by_loss.loc["bce", "campaign_profit_expected"].notna().all()
    assert len(by_loss.filter(like="logistic_regression", axis=0)) == 2  # reference models too
    assert by_loss.loc["pno_churn_regret(gamma=0.5)", "campaign_profit_expected"].isna().all()
    # without a value column, a loss that needs one is refused before any fit
    with pytest.raises(ValueError, match="need each row's monetary value"):
        compare("synthetic:churn(n_samples=300)", losses=["pno_churn_regret"], report=False)


def test_cli_takes_the_value_column():
    from click.testing import CliRunner

    from lossreg.cli import cli

    args = ["compare", "synthetic:churn(n_samples=200)", "--losses", "bce", "--cv", "2"]
    args += ["--max-iter", "1", "--no-progress", "--value", "spend"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert "Value column 'spend' is not a feature column" in result.output


def _run_claims():
    path = ROOT / "examples" / "claims" / "run_claims.py"
    spec = importlib.util.spec_from_file_location("run_claims", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_claims"] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def test_a_check_can_read_the_baseline_from_another_metric():
    claims = _run_claims()
    rows = [
        {
            "loss_label": label,
            "repeat": 0,
            "fold": fold,
            "status": "ok",
            "scenario": "clean",
            "campaign_profit": own + fold,
            "campaign_profit_tuned": tuned + fold,
        }
        for fold in range(5)
        for label, own, tuned in (("bce", 1.0, 3.0), ("pno", 2.0, 9.0))
    ]
    frame = pd.DataFrame(rows)
    frame.attrs.update(cv=5, baseline="bce")
    check = claims.Check(
        loss="pno", metric="campaign_profit", baseline_metric="campaign_profit_tuned"
    )
    (row,) = claims.evaluate(claims.Claim("C0", "t", "T", "", {}, [check]), frame)
    assert row["diff"] == pytest.approx(2.0 - 3.0)  # pno's own profit against bce's tuned one
    assert row["baseline"] == "bce [campaign_profit_tuned]"
    raw = {"loss": "pno", "metric": "campaign_profit", "baseline_metric": "log_loss"}
    with pytest.raises(ValueError, match="pointing the same way"):
        claims._check(Path("C0.toml"), raw, {"": {}})
