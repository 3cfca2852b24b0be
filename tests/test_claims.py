"""The claim experiments: every config is valid, the verdict statistics, a smoke run."""

from __future__ import annotations

import importlib.util
import inspect
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "examples" / "claims"


def _load_runner():
    spec = importlib.util.spec_from_file_location("run_claims", FOLDER / "run_claims.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_claims"] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


claims = _load_runner()
CLAIMS = claims.load_claims()


def test_every_claim_is_run_or_says_why_not():
    run = [c.id for c in CLAIMS]
    not_run = list(claims.load_not_run())
    assert len(set(run)) == len(run), "a claim id is used twice"
    assert not set(run) & set(not_run), "a claim is both run and listed as not run"
    everything = sorted(set(run) | set(not_run), key=lambda c: int(c[1:]))
    # the catalogue numbers its claims C01 .. C129 without gaps
    assert everything == [f"C{i:02d}" if i < 100 else f"C{i}" for i in range(1, 130)]
    for entry in claims.load_not_run().values():
        assert entry["title"] and len(entry["reason"]) > 20


COMPARISONS = [c for c in CLAIMS if c.property is None]


@pytest.mark.parametrize("claim", COMPARISONS, ids=[c.id for c in COMPARISONS])
def test_claim_config_is_a_valid_comparison(claim):
    from lossreg.compare import load_data, plan_fits
    from lossreg.compare._curves import curve_metrics
    from lossreg.compare._pretrain import pretrain_metrics
    from lossreg.compare._run import TASK_METRICS

    assert claim.path.stem == claim.id
    labels, scenarios, baselines = {}, {}, {}
    for name in claim.experiments:
        kwargs = claims.compare_kwargs(claim, smoke=False, experiment=name)
        # every option the config sets that load_data / plan_fits take reaches them, so a
        # plan-time check (probe_labels, value, bid ...) sees the claim's real settings
        loading = inspect.signature(load_data).parameters
        dataset = load_data(**{k: v for k, v in kwargs.items() if k in loading})
        planning = inspect.signature(plan_fits).parameters
        # plan_fits checks every loss is registered for the task with valid parameters
        plan = plan_fits(dataset, **{k: v for k, v in kwargs.items() if k in planning})
        labels[name] = [c.label for c in plan["losses"]]
        scenarios[name] = [s.label for s in plan["scenarios"]]
        baselines[name] = plan["baseline"]
        metrics = (
            TASK_METRICS[dataset.task]
            + curve_metrics(dataset.task, kwargs.get("curves", False))
            + pretrain_metrics(kwargs.get("pretrain"))
        )
        assert kwargs["cv"] * kwargs["repeats"] >= 5, "fewer than 5 paired fits per loss"
        for check in claim.checks:
            if name in (check.experiments or [check.experiment, check.baseline_experiment]):
                assert check.metric in metrics, f"{check.metric!r} is not a metric of {name!r}"
                assert (check.baseline_metric or check.metric) in metrics
    for check in claim.checks:
        named = check.experiments or [check.experiment]
        base_named = named if check.experiments else [check.baseline_experiment or named[0]]
        for name in named:
            assert check.loss in labels[name], f"{check.loss!r} is not one of {labels[name]}"
            assert check.scenario in scenarios[name], f"{check.scenario!r} not in {scenarios}"
            if check.contrast_scenario is not None:
                assert check.contrast_scenario in scenarios[name]
        for name in base_named:
            if check.threshold is None:
                assert (check.baseline or baselines[name]) in labels[name]
            assert (check.baseline_scenario or check.scenario) in scenarios[name]


def test_paired_test_is_the_corrected_resampled_t_test():
    from scipy import stats

    index = pd.MultiIndex.from_product([[0, 1], range(5)], names=["repeat", "fold"])
    rng = np.random.default_rng(0)
    base = pd.Series(rng.uniform(0.6, 0.8, 10), index=index)
    diff = rng.normal(0.02, 0.01, 10)
    values = base + diff
    out = claims.paired_test(values, base, greater_is_better=True, test_share=0.25)
    se = math.sqrt(diff.var(ddof=1) * (1 / 10 + 0.25))
    t = stats.t.ppf(0.975, 9)
    assert out["pairs"] == 10 and out["diff"] == pytest.approx(diff.mean())
    assert out["lo"] == pytest.approx(diff.mean() - t * se)
    assert out["hi"] == pytest.approx(diff.mean() + t * se)
    assert out["p"] == pytest.approx(2 * stats.t.sf(abs(diff.mean()) / se, 9))
    # wider than the naive paired t interval, which ignores that folds share training rows
    naive = stats.ttest_rel(values, base).confidence_interval(0.95)
    assert out["hi"] - out["lo"] > naive.high - naive.low
    # lower-is-better metrics flip the sign: positive still means "the loss did better"
    flipped = claims.paired_test(values, base, greater_is_better=False, test_share=0.25)
    assert flipped["diff"] == pytest.approx(-diff.mean())
    same = claims.paired_test(base, base, greater_is_better=True, test_share=0.25)
    assert (same["diff"], same["lo"], same["hi"], same["p"]) == (0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize(
    ("expect", "margin", "lo", "hi", "held"),
    [
        ("better", 0.0, 0.01, 0.05, True),
        ("better", 0.0, -0.01, 0.05, False),
        ("not_worse", 0.02, -0.01, 0.05, True),
        ("not_worse", 0.02, -0.03, 0.05, False),
        ("worse", 0.0, -0.05, -0.01, True),
        ("worse", 0.0, -0.05, 0.01, False),
        ("no_better", 0.01, -0.05, 0.005, True),
        ("no_better", 0.01, -0.05, 0.02, False),
    ],
)
def test_judge_reads_the_interval(expect, margin, lo, hi, held):
    check = claims.Check(loss="x", metric="accuracy", expect=expect, margin=margin)
    assert claims.judge(check, {"lo": lo, "hi": hi}) is held


def test_verdict_combines_the_checks():
    assert claims.verdict([True, True]) == "holds"
    assert claims.verdict([False, False]) == "does not hold"
    assert claims.verdict([True, False]) == "mixed"
    assert claims.verdict([None]) == "no result"
    assert claims.verdict([True, None]) == "mixed"


def test_smoke_run_writes_the_page_with_verdicts_and_plots(tmp_path):
    page = tmp_path / "docs" / "claims.md"
    code = claims.main(
        ["--smoke", "--only", "C03,C43", "--out", str(tmp_path / "out"), "--docs", str(page)]
    )
    assert code == 0
    text = page.read_text()
    assert "Smoke run" in text
    for claim_id in ("C03", "C43"):
        assert f"## {claim_id}" in text
        assert (tmp_path / "docs" / "claims" / f"{claim_id}.png").stat().st_size > 1000
    assert re.search(r"\*\*(holds|does not hold|mixed|no result)\*\*", text)
    not_run = claims.load_not_run()
    assert ("## Claims not run" in text) == bool(not_run)  # the section lists them, if any
    assert all(f"| {claim_id} " in text for claim_id in not_run)
    # resumable: a second run reuses every fit
    finished = sum(1 for _ in (tmp_path / "out" / "C03" / "results.jsonl").open())
    assert claims.main(["--smoke", "--only", "C03", "--out", str(tmp_path / "out")]) == 0
    assert sum(1 for _ in (tmp_path / "out" / "C03" / "results.jsonl").open()) == finished


def test_published_page_covers_every_claim():
    page = ROOT / "docs" / "claims.md"
    text = page.read_text()
    assert "Smoke run" not in text, "docs/claims.md was written by a smoke run"
    for claim in CLAIMS:
        assert f"## {claim.id}" in text, f"{claim.id} has no section: rerun `make claims`"
        assert (ROOT / "docs" / "claims" / f"{claim.id}.png").is_file()
    for claim_id in claims.load_not_run():
        assert f"| {claim_id} " in text


def test_a_diverged_fit_counts_as_failed_in_a_metric_check():
    rows = [
        {"loss_label": label, "repeat": 0, "fold": fold, "status": "ok", "scenario": "clean"}
        | ({"accuracy": 0.5 + 0.01 * fold, "diverged": 0.0} if ok else {"diverged": 1.0})
        | ({} if ok else {"divergence": "non-finite loss at epoch 3"})
        for fold in range(5)
        for label, ok in (("ce", True), ("x", fold != 2))
    ]
    frame = pd.DataFrame(rows)
    frame.attrs.update(cv=5, baseline="ce")
    checks = [
        claims.Check(loss="x", metric="accuracy", expect="not_worse", margin=0.1),
        claims.Check(loss="x", metric="diverged", expect="no_better", margin=1.0),
    ]
    claim = claims.Claim("C0", "t", "X", "", {}, checks)
    accuracy, divergence = claims.evaluate(claim, frame)
    assert accuracy["pairs"] == 4 and accuracy["errors"] == 1
    assert divergence["pairs"] == 5 and divergence["errors"] == 0


def test_the_page_lists_claims_not_run_only_when_there_are_some():
    everything = claims.render([], {}, "make claims", False, "claims")
    assert "every claim of the catalogue has an experiment" in everything
    assert "## Claims not run" not in everything
    reason = "needs a capability compare lacks, named here"
    some = claims.render([], {"C07": {"title": "A claim", "reason": reason}}, "x", False, "claims")
    assert "1 not run (listed at the end" in some
    assert f"| C07 A claim | {reason} |" in some
