"""lossreg compare across domains: group-wise splits, held-out test groups, their generators."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lossreg.cli import cli
from lossreg.compare import compare, load_data, plan_fits
from lossreg.compare._config import load_config
from lossreg.compare._synthetic import make_synthetic

FAST = {"max_iter": 2, "module__hidden_units": (8,), "batch_size": 64}


def test_environments_flip_the_spurious_feature_in_the_last_environment():
    _, frame = make_synthetic(
        "synthetic:environments(n_samples=6000, agreements=(0.8, 0.9), test_agreement=0.1)"
    )
    assert sorted(frame["group"].unique()) == [0, 1, 2]
    agreement = (frame["x0"] == frame["target"]).groupby(frame["group"]).mean()
    assert agreement.to_numpy() == pytest.approx([0.8, 0.9, 0.1], abs=0.03)
    # the label is the invariant rule flipped in 25% of the rows
    core = frame[["x1", "x2", "x3", "x4"]].to_numpy() @ np.linspace(1.0, 0.2, 4)
    assert np.mean((core > 0) == frame["target"]) == pytest.approx(0.75, abs=0.03)


def test_domains_shift_the_features_and_keep_one_rule():
    _, frame = make_synthetic(
        "synthetic:domains(n_samples=4000, n_domains=4, n_features=3, n_style=2, shift=2.0)"
    )
    assert sorted(frame["group"].unique()) == [0, 1, 2, 3]
    assert list(frame.columns) == ["x0", "x1", "x2", "x3", "x4", "target", "group"]
    means = frame.groupby("group")[["x0", "x1", "x2"]].mean()
    assert means.std().min() > 0.5  # covariate shift between domains
    # style features: a class's mean differs from domain to domain
    style = frame.groupby(["group", "target"])["x3"].mean().unstack()
    assert style.std(axis=0).min() > 0.3
    with pytest.raises(ValueError, match="n_domains >= 2"):
        make_synthetic("synthetic:domains(n_domains=1)")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        make_synthetic("synthetic:environments(agreements=(0.8, 1.5))")


def test_group_split_tests_on_groups_the_fold_never_trained_on():
    data = load_data("synthetic:domains(n_samples=400, n_domains=4)")
    plan = plan_fits(data, losses="cross_entropy", cv=4, repeats=2, split="group")
    groups = data.groups.to_numpy()
    for repeat in (0, 1):
        fits = [f for f in plan["fits"] if f["repeat"] == repeat]
        tested = [set(groups[f["test"]]) for f in fits]
        # leave-one-group-out: each group is the whole test fold exactly once
        assert sorted(g for t in tested for g in t) == [0, 1, 2, 3]
        for fit, test_groups in zip(fits, tested, strict=True):
            assert not test_groups & set(groups[fit["train"]])
            assert len(fit["train"]) + len(fit["test"]) == 400
    assert plan["split_attrs"] == {"split": "group", "test_share": pytest.approx(1 / 3)}
    # two groups per fold with cv=2; repeats shuffle which groups share a fold
    two = plan_fits(data, losses="cross_entropy", cv=2, repeats=4, split="group")
    pairs = {frozenset(groups[f["test"]]) for f in two["fits"]}
    assert all(len(p) == 2 for p in pairs) and len(pairs) > 2


def test_test_groups_are_only_ever_tested_on_and_split_into_disjoint_parts():
    data = load_data("synthetic:environments(n_samples=600)")
    plan = plan_fits(data, losses="cross_entropy", cv=5, test_groups=[2])
    groups = data.groups.to_numpy()
    tests = [np.asarray(f["test"]) for f in plan["fits"]]
    for fit in plan["fits"]:
        assert set(groups[fit["train"]]) == {0, 1} and set(groups[fit["test"]]) == {2}
        assert len(fit["train"]) == 320  # 4/5 of the 400 training-environment rows
    everything = np.concatenate(tests)
    assert len(everything) == len(set(everything)) == 200  # every held-out row once
    assert plan["split_attrs"]["split"] == "rows|test_groups=2"
    assert plan["split_attrs"]["test_share"] == pytest.approx(40 / 320)
    # the same group named as text (the command line) gives the same folds
    again = plan_fits(data, losses="cross_entropy", cv=5, test_groups="2")
    assert [f["test"] for f in again["fits"]] == [f["test"] for f in plan["fits"]]
    # row splits and held-out splits are different experiments: their fits never share keys
    rows = plan_fits(data, losses="cross_entropy", cv=5)
    assert not {f["key"] for f in rows["fits"]} & {f["key"] for f in plan["fits"]}
    assert rows["split_attrs"] == {}


@pytest.mark.parametrize(
    ("data", "kwargs", "message"),
    [
        ("iris", {"split": "group"}, "needs group ids: name the column"),
        ("iris", {"test_groups": [1]}, "needs group ids"),
        ("synthetic:domains(n_samples=200)", {"split": "domain"}, "Unknown split 'domain'"),
        ("synthetic:domains(n_samples=200)", {"split": "group", "cv": 5}, "use cv <= 4"),
        ("synthetic:domains(n_samples=200)", {"test_groups": [7]}, "'7' not in the group"),
        (
            "synthetic:domains(n_samples=200, n_domains=2)",
            {"test_groups": [0, 1]},
            "hold out every group",
        ),
        (
            "synthetic:domains(n_samples=200)",
            {"split": "group", "test_groups": [0]},
            "drop test_groups",
        ),
    ],
)
def test_bad_group_splits_name_the_fix(data, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan_fits(load_data(data), losses="cross_entropy", **{"cv": 2, **kwargs})


def test_held_out_domains_are_scored_and_training_groups_reach_the_loss(monkeypatch):
    from lossreg.compare import _scenarios

    seen: list[np.ndarray] = []
    real = _scenarios.StressedEstimator.fit

    def spy(self, X, y, **fit_params):
        if "model__group" in fit_params:
            seen.append(np.asarray(fit_params["model__group"]))
        return real(self, X, y, **fit_params)

    monkeypatch.setattr(_scenarios.StressedEstimator, "fit", spy)
    results = compare(
        "synthetic:domains(n_samples=240, n_domains=3)",
        losses="cross_entropy,group_dro",
        split="group",
        cv=3,
        estimator_params=FAST,
        torch_threads=1,
    )
    assert (results["status"] == "ok").all(), results["error"].dropna().tolist()
    assert results.attrs["split"] == "group" and results.attrs["test_share"] == pytest.approx(0.5)
    # group_dro saw the two training domains of each fold, never the held-out one
    data = load_data("synthetic:domains(n_samples=240, n_domains=3)")
    plan = plan_fits(data, losses="cross_entropy,group_dro", split="group", cv=3)
    groups = data.groups.to_numpy()
    expected = [
        sorted({0, 1, 2} - set(groups[f["test"]])) for f in plan["fits"] if f["loss"] == "group_dro"
    ]
    assert [sorted(set(s)) for s in seen] == expected and len(expected) == 3
    # one held-out domain per fold: its worst-group accuracy is its accuracy
    assert np.allclose(results["worst_group_accuracy"], results["accuracy"])


def test_split_from_the_config_file_and_the_command_line(tmp_path, monkeypatch):
    path = tmp_path / "exp.toml"
    path.write_text(
        "[compare]\n"
        'data = "synthetic:environments(n_samples=150)"\n'
        'losses = ["cross_entropy"]\n'
        "test_groups = [2]\ncv = 2\n"
        "[compare.estimator]\nmax_iter = 2\n"
    )
    assert load_config(path)["test_groups"] == [2]
    out = tmp_path / "out"
    args = ["compare", "--config", str(path), "--no-progress", "--out", str(out)]
    result = CliRunner().invoke(cli, [*args, "--torch-threads", "1"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "results.jsonl").open()]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    assert "split rows|test_groups=2 (test rows from groups" in (out / "report.md").read_text()
    # --split group on the command line; a bad value exits 2 naming the fix
    grouped = CliRunner().invoke(
        cli,
        [
            "compare",
            "synthetic:domains(n_samples=120, n_domains=3)",
            "--losses",
            "cross_entropy",
            "--split",
            "group",
            "--cv",
            "3",
            "--max-iter",
            "2",
            "--torch-threads",
            "1",
            "--no-progress",
            "--out",
            str(tmp_path / "grouped"),
        ],
    )
    assert grouped.exit_code == 0, grouped.output
    bad = CliRunner().invoke(cli, [*args, "--test-group", "9", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "'9' not in the group column" in bad.output


def test_claim_verdicts_use_the_recorded_test_share():
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "claims" / "run_claims.py"
    spec = importlib.util.spec_from_file_location("run_claims_domains", path)
    runner = importlib.util.module_from_spec(spec)
    sys.modules["run_claims_domains"] = runner
    spec.loader.exec_module(runner)
    rows = [
        {
            "loss_label": label,
            "repeat": 0,
            "fold": fold,
            "status": "ok",
            "scenario": "clean",
            "accuracy": value,
        }
        for fold in range(4)
        for label, value in (("ce", 0.5 + 0.01 * fold), ("x", 0.55 + 0.02 * fold))
    ]
    frame = pd.DataFrame(rows)
    frame.attrs.update(cv=4, baseline="ce")
    claim = runner.Claim("C0", "t", "X", "", {}, [runner.Check(loss="x", metric="accuracy")])
    plain = runner.evaluate(claim, frame)[0]
    frame.attrs["test_share"] = 1.0
    wide = runner.evaluate(claim, frame)[0]
    assert wide["hi"] - wide["lo"] > plain["hi"] - plain["lo"]
    diff = np.array([0.05, 0.06, 0.07, 0.08])
    se = np.sqrt(diff.var(ddof=1) * (1 / 4 + 1.0))
    assert wide["hi"] - wide["diff"] == pytest.approx(3.182446305284263 * se)
