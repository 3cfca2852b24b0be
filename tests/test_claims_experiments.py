"""Claims with several experiments, checks across experiments or aggregated, property claims."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

FOLDER = Path(__file__).resolve().parents[1] / "examples" / "claims"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, FOLDER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


claims = _load("run_claims")
properties = _load("properties")

SWEEP = """
id = "C99"
title = "t"
evidence = "X"

[compare]
data = "iris"
losses = ["cross_entropy", "focal"]
cv = 5
repeats = 2

[compare.estimator]
max_iter = 10
lr = 0.01

[[experiment]]
name = "slow"
estimator = {{ lr = 0.001 }}

[[experiment]]
name = "fast"
{fast}

[[check]]
loss = "focal"
metric = "accuracy"
{check}
"""


def _claim(tmp_path, fast="estimator = { batch_size = 8 }", check='experiment = "fast"'):
    path = tmp_path / "C99.toml"
    path.write_text(SWEEP.format(fast=fast, check=check))
    return claims.load_claim(path)


def test_experiments_update_the_shared_table_key_by_key(tmp_path):
    claim = _claim(tmp_path)
    assert list(claim.experiments) == ["slow", "fast"]
    slow = claims.compare_kwargs(claim, smoke=False, experiment="slow")
    fast = claims.compare_kwargs(claim, smoke=False, experiment="fast")
    assert slow["estimator_params"] == {"max_iter": 10, "lr": 0.001}
    assert fast["estimator_params"] == {"max_iter": 10, "lr": 0.01, "batch_size": 8}
    assert slow["losses"] == fast["losses"] == ["cross_entropy", "focal"]
    # without a name, compare_kwargs reads the first experiment (a one-experiment claim's)
    assert claims.compare_kwargs(claim, smoke=False) == slow


def test_a_claim_without_experiments_has_one_unnamed_experiment():
    claim = claims.load_claim(FOLDER / "C03.toml")
    assert list(claim.experiments) == [""]
    assert all(c.experiment == "" for c in claim.checks)


@pytest.mark.parametrize(
    ("fast", "check", "message"),
    [
        ("", 'experiment = "quick"', r"unknown experiment\(s\) \['quick'\]"),
        ("", 'experiments = ["slow", "fast"]', "gives both experiments"),
        ("", 'experiments = ["slow", "fast"]\naggregate = "median"', "aggregate must be one"),
        ('data = "wine"', 'experiment = "slow"\nbaseline_experiment = "fast"', "different splits"),
    ],
)
def test_checks_name_existing_experiments_with_the_same_splits(tmp_path, fast, check, message):
    with pytest.raises(ValueError, match=message):
        _claim(tmp_path, fast=fast, check=check)


def test_experiment_names_are_required_and_distinct(tmp_path):
    path = tmp_path / "C99.toml"
    for names in (["a", "a"], ["a", ""]):
        path.write_text(
            SWEEP.split("[[experiment]]")[0].format()
            + "".join(f'[[experiment]]\nname = "{n}"\n' for n in names)
            + '[[check]]\nloss = "focal"\nmetric = "accuracy"\n'
        )
        with pytest.raises(ValueError, match="distinct, non-empty name"):
            claims.load_claim(path)


def _frame(values: dict[str, list[float]], metric: str = "log_loss") -> pd.DataFrame:
    rows = [
        {"loss_label": label, "scenario": "clean", "status": "ok", "repeat": 0, "fold": i}
        | {metric: v}
        for label, column in values.items()
        for i, v in enumerate(column)
    ]
    frame = pd.DataFrame(rows)
    frame.attrs.update(cv=5, baseline="cross_entropy")
    return frame


def test_cross_experiment_and_aggregate_checks_pair_the_same_folds(tmp_path):
    slow = _frame({"cross_entropy": [0.5, 0.6, 0.5, 0.7, 0.6], "focal": [0.4, 0.5, 0.4, 0.6, 0.5]})
    fast = _frame({"cross_entropy": [1.5, 2.6, 0.9, 1.7, 3.6], "focal": [0.5, 0.6, 0.5, 0.7, 0.6]})
    results = {"slow": slow, "fast": fast}
    claim = _claim(tmp_path, check='experiment = "fast"\nbaseline_experiment = "slow"')
    claim.checks[0].metric = "log_loss"
    claim.checks[0].baseline = "focal"
    (row,) = claims.evaluate(claim, results)
    # focal in "fast" against focal in "slow", fold by fold: 0.1 worse each time
    assert row["diff"] == pytest.approx(-0.1) and row["pairs"] == 5
    spread = _claim(tmp_path, check='experiments = ["slow", "fast"]\naggregate = "range"')
    spread.checks[0].metric = "log_loss"
    (row,) = claims.evaluate(spread, results)
    ce_range = np.abs(np.subtract([1.5, 2.6, 0.9, 1.7, 3.6], [0.5, 0.6, 0.5, 0.7, 0.6]))
    # smaller spread over the settings is better: positive diff favours focal
    assert row["base_mean"] == pytest.approx(ce_range.mean())
    assert row["mean"] == pytest.approx(0.1)
    assert row["diff"] == pytest.approx(ce_range.mean() - 0.1)
    assert row["outcome"] is (row["lo"] > 0)
    mean = _claim(tmp_path, check='experiments = ["slow", "fast"]\naggregate = "mean"')
    mean.checks[0].metric = "log_loss"
    fast.loc[(fast["loss_label"] == "focal") & (fast["fold"] == 4), "status"] = "error"
    (row,) = claims.evaluate(mean, results)
    assert row["pairs"] == 4  # an aggregate keeps the folds fitted in every experiment
    assert row["errors"] == 1


def test_the_sorting_property_holds_and_a_broken_score_is_caught(monkeypatch):
    rows = properties.run_property({"name": "sorting_quantiles", "draws": 500, "seed": 1})
    assert rows[0]["case"] == "weighted_interval_score"
    for row in rows:
        assert row["violations"] == 0 and row["outcome"] is True and row["worst"] <= 1e-12
        assert row["crossing"] > 100 and row["mean_gain"] > 0
    # a score that rewards crossing (the negated loss) must be reported as violated
    score = properties._score
    monkeypatch.setattr(properties, "_score", lambda *a: -score(*a))
    (broken,) = properties.sorting_quantiles(draws=200, losses=("pinball(quantiles=(0.1, 0.9))",))
    assert broken["violations"] > 0 and broken["outcome"] is False
    with pytest.raises(ValueError, match="Unknown property experiment 'sorted'"):
        properties.run_property({"name": "sorted"})


def test_property_claims_render_their_draws(tmp_path):
    claim = claims.load_claim(FOLDER / "C60.toml")
    assert claim.property["name"] in properties.PROPERTIES and not claim.checks
    rows = properties.run_property({**claim.property, "draws": 100})
    page = claims.render(
        [(claim, rows, rows, claims.verdict([r["outcome"] for r in rows]))],
        {},
        "cmd",
        smoke=False,
        image_dir="claims",
    )
    assert "## C60" in page and "Verdict: **holds**" in page
    assert "| `weighted_interval_score` | 100 |" in page and "| violations |" in page
    claims.plot_property(claim, rows, tmp_path / "C60.png")
    assert (tmp_path / "C60.png").stat().st_size > 1000


def test_the_madl_simulation_pairs_both_selections_on_each_draw():
    (row,) = properties.run_property(
        {"name": "madl_model_selection", "draws": 3, "n_days": 300, "neighbors": [5, 20]}
    )
    assert row["draws"] == 3 and len(row["per_draw"]) == 3
    assert row["diff"] == pytest.approx(np.mean(row["per_draw"]))
    assert row["diff"] == pytest.approx(row["sharpe_madl"] - row["sharpe_mse"])
    assert row["lo"] < row["diff"] < row["hi"] and row["outcome"] is (row["lo"] > 0)
