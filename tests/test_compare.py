"""lossreg compare: parsing, scenarios, metrics, the frame, resuming, dask, reports, the CLI."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lossreg.cli import cli
from lossreg.compare import (
    KILL_AFTER_ENV,
    LossChoice,
    Scenario,
    compare,
    corrupt,
    detect_task,
    expected_calibration_error,
    load_data,
    parse_losses,
    summarize,
)

ROOT = Path(__file__).resolve().parents[1]
# Tiny, fast fits: the point is the machinery, not the scores.
FAST = {"max_iter": 4, "module__hidden_units": (8,), "batch_size": 64}


def small_binary(n: int = 120) -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    return frame.sample(n, random_state=0).iloc[:, [0, 1, 2, 3, 4, 5, -1]].reset_index(drop=True)


def run(data, **kwargs):
    kwargs.setdefault("estimator_params", FAST)
    kwargs.setdefault("torch_threads", 1)
    kwargs.setdefault("cv", 2)
    return compare(data, **kwargs)


# -- parsing --------------------------------------------------------------------------------
def test_parse_losses_names_and_parameters():
    choices = parse_losses("cross_entropy, focal(gamma=2.0), comp_sum(tau=1.5, reduction=mean)")
    assert [c.name for c in choices] == ["cross_entropy", "focal", "comp_sum"]
    assert choices[1].params == {"gamma": 2.0}
    assert choices[2].params == {"tau": 1.5, "reduction": "mean"}
    assert choices[1].label == "focal(gamma=2.0)"
    assert parse_losses([("focal", {"gamma": 1})])[0] == LossChoice("focal", {"gamma": 1})


@pytest.mark.parametrize("text", ["focal(2.0)", "focal(gamma=)", "9bad", "focal,focal"])
def test_parse_losses_rejects_bad_text(text):
    with pytest.raises(ValueError, match=r"(?i)loss|twice|parameters"):
        parse_losses(text)


def test_detect_task():
    assert detect_task(pd.Series(["a", "b", "a"])) == "binary"
    assert detect_task(pd.Series([0, 1, 2, 1])) == "multiclass"
    assert detect_task(pd.Series(np.linspace(0, 1, 50))) == "regression"
    # integral floats with many values (load_diabetes) are a regression target
    assert detect_task(pd.Series(np.arange(100, dtype=float))) == "regression"
    assert load_data("diabetes").task == "regression"
    assert load_data("iris").task == "multiclass"
    assert load_data().name == "breast_cancer"


# -- scenarios ------------------------------------------------------------------------------
def test_symmetric_noise_flips_the_rate_to_other_classes_deterministically():
    y = np.repeat(np.array(["a", "b", "c"]), 1000)
    _, noisy, info = corrupt(None, y, Scenario("symmetric_noise", 0.3), random_state=1)
    changed = noisy != y
    assert abs(changed.mean() - 0.3) < 0.03
    assert info["n_corrupted"] == changed.sum()
    # every flipped class is drawn among the other classes, roughly uniformly
    flipped_a = noisy[(y == "a") & changed]
    assert set(flipped_a) == {"b", "c"}
    _, again, _ = corrupt(None, y, Scenario("symmetric_noise", 0.3), random_state=1)
    np.testing.assert_array_equal(noisy, again)


def test_class_noise_flips_only_the_second_of_two_classes():
    y = np.array([0] * 500 + [1] * 500)
    _, noisy, _ = corrupt(None, y, Scenario("class_noise", 0.4), random_state=0)
    assert (noisy[:500] == 0).all()
    assert 0.3 < (noisy[500:] == 0).mean() < 0.5


def test_imbalance_subsamples_to_the_ratio():
    X = pd.DataFrame({"x": np.arange(900)})
    y = np.repeat([0, 1, 2], 300)
    Xs, ys, info = corrupt(X, y, Scenario("imbalance", 10), random_state=0)
    counts = np.bincount(ys)
    assert counts.max() == 300 and counts.min() == 30  # n_max / n_min = 10, exponential profile
    assert counts[1] == round(300 * 10**-0.5)
    assert len(Xs) == len(ys) == info["n_train"]
    np.testing.assert_array_equal(y[Xs["x"].to_numpy()], ys)  # rows stay aligned


def test_regression_scenarios():
    y = np.random.default_rng(0).normal(size=2000)
    _, noisy, _ = corrupt(None, y, Scenario("target_noise", 0.5), random_state=0)
    assert 0.4 < np.std(noisy - y) < 0.6
    _, out, info = corrupt(None, y, Scenario("outliers", 0.1), random_state=0)
    moved = np.abs(out - y) > 4 * y.std()
    assert moved.sum() == info["n_corrupted"] and 0.07 < moved.mean() < 0.13


def test_scenario_must_fit_the_task():
    with pytest.raises(ValueError, match="does not apply to regression"):
        Scenario("imbalance", 10).check("regression")


# -- metrics ---------------------------------------------------------------------------------
def test_expected_calibration_error_by_hand():
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    y = np.array([0, 1, 1, 1])
    # bins: 0.9 -> [0.9,1) correct; 0.8 -> [0.8,0.9) wrong; 0.7 -> correct; 0.55 -> correct
    expected = (abs(1 - 0.9) + abs(0 - 0.8) + abs(1 - 0.7) + abs(1 - 0.55)) / 4
    assert expected_calibration_error(y, proba) == pytest.approx(expected)


# -- the API ----------------------------------------------------------------------------------
def test_compare_returns_a_tidy_frame_and_paired_summary(tmp_path):
    results = run(
        small_binary(),
        target="target",
        losses="cross_entropy,focal(gamma=2.0)",
        scenarios=["clean", "symmetric_noise:0.2"],
        repeats=2,
        out=tmp_path,
    )
    assert len(results) == 2 * 2 * 2 * 2  # losses × scenarios × repeats × folds
    assert (results["status"] == "ok").all()
    for column in ("accuracy", "balanced_accuracy", "f1_macro", "log_loss", "ece", "roc_auc"):
        assert results[column].between(0, np.inf).all(), column
    assert {"average_precision", "minority_recall", "fit_time", "train_loss"} <= set(results)
    assert results.attrs["task"] == "binary" and results.attrs["baseline"] == "cross_entropy"
    assert results.groupby(["loss_label", "scenario", "repeat", "fold"]).size().eq(1).all()
    # the same split and noise for every loss: training rows after corruption agree
    noisy = results[results["scenario"] == "symmetric_noise:0.2"]
    assert noisy.groupby(["repeat", "fold"])["n_corrupted"].nunique().eq(1).all()
    summary = summarize(results)
    focal = summary[(summary["loss"] == "focal(gamma=2.0)") & (summary["scenario"] == "clean")]
    assert int(focal["wins"].iloc[0] + focal["ties"].iloc[0] + focal["losses"].iloc[0]) == 4
    assert set(summary["rank"]) <= {1, 2}
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert len(lines) == len(results)
    assert all(json.loads(line)["key"] for line in lines)


def test_noise_touches_training_folds_only(monkeypatch):
    """The test fold is scored on its original labels, whatever the scenario."""
    import lossreg.compare._metrics as metrics_module
    from lossreg.compare import plan_fits

    seen = []
    original = metrics_module.classification_metrics

    def spy(y_true, *args, **kwargs):
        seen.append(np.asarray(y_true))
        return original(y_true, *args, **kwargs)

    monkeypatch.setattr(metrics_module, "classification_metrics", spy)
    data = small_binary(60)
    noise = ["symmetric_noise:0.45"]
    results = run(data, target="target", losses="cross_entropy", scenarios=noise)
    assert (results["n_corrupted"] > 5).all()
    plan = plan_fits(
        load_data(data, target="target"), cv=2, scenarios=noise, losses="cross_entropy"
    )
    truth = data["target"].to_numpy()
    assert len(seen) == len(plan["fits"]) == 2
    for fit, y_true in zip(plan["fits"], seen):
        np.testing.assert_array_equal(y_true, truth[fit["test"]])


def test_csv_with_categorical_columns_and_missing_values(tmp_path):
    rng = np.random.default_rng(0)
    n = 90
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n),
            "city": rng.choice(["x", "y"], size=n),
            "count": rng.integers(0, 5, size=n).astype(float),
        }
    )
    frame["label"] = np.where(frame["size"] + (frame["colour"] == "red") > 0.3, "yes", "no")
    frame.loc[::7, "size"] = np.nan
    frame.loc[::5, "colour"] = np.nan
    frame.loc[::11, "count"] = np.nan
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    results = run(str(path), target="label", losses="cross_entropy")
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert results.attrs["task"] == "binary" and results.attrs["n_features"] == 4
    parquet = tmp_path / "data.parquet"
    frame.to_parquet(parquet)
    again = run(str(parquet), target="label", losses="cross_entropy")
    assert (again["status"] == "ok").all()


def test_regression_metrics_with_quantiles_and_intervals():
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True).frame.iloc[:120]
    results = run(
        frame,
        target="target",
        losses="mse,pinball,gaussian_nll",
        scenarios=["clean", "outliers:0.1"],
    )
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert len(results) == 3 * 2 * 2
    assert results.loc[results["scenario"] == "outliers:0.1", "n_corrupted"].gt(0).all()
    assert results.attrs["primary"] == "rmse" and results.attrs["baseline"] == "mse"
    assert results.loc[results["loss"] == "pinball", "pinball"].notna().all()
    assert results.loc[results["loss"] == "gaussian_nll", "coverage_90"].between(0, 1).all()
    assert results.loc[results["loss"] == "mse", "rmse"].gt(0).all()
    # training targets are standardised per fold and predictions mapped back: even a few
    # epochs land near the target's level (unscaled, the RMSE would be ~ the mean, 150)
    clean = results[results["scenario"] == "clean"]
    assert clean["rmse"].lt(1.2 * frame["target"].std()).all()
    interval_width = results.loc[results["loss"] == "gaussian_nll", "interval_width_90"]
    assert interval_width.gt(0.5 * frame["target"].std()).all()


def test_a_crashing_fit_is_recorded_and_the_others_run(tmp_path, monkeypatch):
    import lossreg.compare._fit as fit_module

    real = fit_module.make_pipeline

    def flaky(task, loss, *args, **kwargs):
        if loss == "focal":
            raise FloatingPointError("diverged on purpose")
        return real(task, loss, *args, **kwargs)

    monkeypatch.setattr(fit_module, "make_pipeline", flaky)
    results = run(small_binary(60), target="target", losses="cross_entropy,focal", out=tmp_path)
    failed = results[results["loss"] == "focal"]
    assert (failed["status"] == "error").all()
    assert failed["error"].str.contains("diverged on purpose").all()
    assert failed["traceback"].str.contains("in flaky").all()  # where it was raised
    assert (results.loc[results["loss"] == "cross_entropy", "status"] == "ok").all()
    summary = summarize(results)
    assert summary.set_index("loss").loc["focal", "errors"] == 2
    assert "Failed fits (2)" in (tmp_path / "report.html").read_text()
    # errors are kept on resume unless asked to retry
    monkeypatch.setattr(fit_module, "make_pipeline", real)
    kept = run(small_binary(60), target="target", losses="cross_entropy,focal", out=tmp_path)
    assert kept.attrs["n_computed"] == 0
    retried = run(
        small_binary(60),
        target="target",
        losses="cross_entropy,focal",
        out=tmp_path,
        retry_errors=True,
    )
    assert retried.attrs["n_computed"] == 2 and (retried["status"] == "ok").all()


# -- resuming ----------------------------------------------------------------------------------
def _cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


@pytest.mark.slow
def test_killed_run_resumes_without_recomputing_finished_fits(tmp_path):
    args = [
        sys.executable,
        "-m",
        "lossreg.cli",
        "compare",
        "iris",
        "--losses",
        "cross_entropy,focal",
        "--cv",
        "3",
        "--max-iter",
        "3",
        "--param",
        "module__hidden_units=(8,)",
        "--torch-threads",
        "1",
        "--no-progress",
        "--out",
        str(tmp_path),
    ]
    # LOSSREG_COMPARE_KILL_AFTER=2: the process SIGKILLs itself after its 2nd record.
    first = subprocess.run(
        args, env=_cli_env(**{KILL_AFTER_ENV: "2"}), capture_output=True, text=True, cwd=ROOT
    )
    assert first.returncode == -signal.SIGKILL, first.stderr
    path = tmp_path / "results.jsonl"
    before = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(before) == 2
    assert not (tmp_path / "report.html").exists()
    with path.open("a") as handle:  # a write cut short by the kill
        handle.write('{"key": "half a li')
    second = subprocess.run(args, env=_cli_env(), capture_output=True, text=True, cwd=ROOT)
    assert second.returncode == 0, second.stderr
    assert "4 fits computed, 2 reused" in second.stdout
    after = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(after) == 6 and len({r["key"] for r in after}) == 6
    assert after[:2] == before  # untouched: same run id, same finish time
    assert len({r["run_id"] for r in after[2:]}) == 1
    assert after[2]["run_id"] != before[0]["run_id"]
    assert (tmp_path / "report.html").exists()


@pytest.mark.slow
def test_run_killed_from_outside_resumes(tmp_path):
    """A real SIGKILL once some fits have landed: the rerun keeps them and does the rest."""
    import time

    args = [sys.executable, "-m", "lossreg.cli", "compare", "iris", "--losses", "ce,focal"]
    args += ["--cv", "5", "--repeats", "2", "--max-iter", "5", "--torch-threads", "1"]
    args += ["--no-progress", "--out", str(tmp_path)]
    path = tmp_path / "results.jsonl"
    process = subprocess.Popen(args, env=_cli_env(), cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if path.exists() and path.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()
    before = [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    assert 3 <= len(before) < 20, "the run ended before it could be killed"
    rerun = subprocess.run(args, env=_cli_env(), capture_output=True, text=True, cwd=ROOT)
    assert rerun.returncode == 0, rerun.stderr
    after = [json.loads(line) for line in path.read_text().splitlines()]
    assert len({r["key"] for r in after}) == len(after) == 20
    assert after[: len(before)] == before
    assert f"{20 - len(before)} fits computed, {len(before)} reused" in rerun.stdout


# -- dask ------------------------------------------------------------------------------------------
COMPARED = ["key", "accuracy", "log_loss", "ece", "roc_auc", "n_epochs", "n_corrupted"]


def test_dask_cluster_gives_the_same_numbers_as_a_local_run():
    distributed = pytest.importorskip("distributed")
    data = small_binary(80)
    kwargs = {
        "target": "target",
        "losses": "cross_entropy,generalized_cross_entropy",
        "scenarios": ["symmetric_noise:0.2"],
    }
    local = run(data, **kwargs)
    with distributed.LocalCluster(
        n_workers=1, processes=False, threads_per_worker=1, dashboard_address=":0"
    ) as cluster:
        # an address, as --scheduler passes it; compare() opens and closes its own client
        remote = run(data, **kwargs, scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(local[COMPARED], remote[COMPARED])
    assert list(local["train_loss"]) == list(remote["train_loss"])


@pytest.mark.slow
def test_joblib_workers_give_the_same_numbers_as_a_serial_run(tmp_path):
    data = small_binary(80)
    kwargs = {"target": "target", "losses": "cross_entropy,focal", "scenarios": ["imbalance:3"]}
    serial = run(data, **kwargs, torch_threads=None)  # all cores in one thread pool
    parallel = run(data, **kwargs, n_jobs=2, torch_threads=None, out=tmp_path)
    pd.testing.assert_frame_equal(serial[COMPARED[:-1]], parallel[COMPARED[:-1]])
    assert list(serial["train_loss"]) == list(parallel["train_loss"])
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == len(serial)


# -- reports ------------------------------------------------------------------------------------
class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_report_is_self_contained_with_figures(tmp_path):
    results = run(
        load_data("iris").X.assign(target=load_data("iris").y),
        target="target",
        losses="cross_entropy,mae_prob",
        scenarios=["clean", "imbalance:5"],
        out=tmp_path,
    )
    text = (tmp_path / "report.html").read_text()
    parser = _Collect()
    parser.feed(text)
    ids = {attrs.get("id") for _tag, attrs in parser.tags}
    assert {"settings", "summary", "metrics", "figures"} <= ids
    assert {"fig-scores", "fig-training", "fig-reliability"} <= ids
    images = [attrs["src"] for tag, attrs in parser.tags if tag == "img"]
    assert len(images) == 3
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing is fetched from elsewhere
    assert not [a for _t, a in parser.tags if (a.get("href") or "").startswith("http")]
    assert all(not (a.get("src") or "data:").startswith(("http", "/")) for _t, a in parser.tags)
    summary_rows = text.split('<table class="summary">')[1].split("</table>")[0].count("<tr>")
    assert summary_rows == 1 + 4  # header + losses × scenarios
    markdown = (tmp_path / "report.md").read_text()
    assert "## Ranking by accuracy" in markdown and "figures/scores.png" in markdown
    assert (tmp_path / "figures" / "reliability.png").exists()
    assert pd.read_csv(tmp_path / "summary.csv")["loss"].nunique() == 2
    # the class the imbalance scenario makes rarest is the one whose recall is reported
    assert set(results["minority"]) == {"virginica"}


# -- the command line -------------------------------------------------------------------------
def test_cli_prints_the_ranked_table(tmp_path, monkeypatch):
    captured = {}
    import lossreg.compare

    real = lossreg.compare.compare

    def fake(data, **kwargs):
        captured.update(kwargs, data=data)
        return real(data, **{**kwargs, "estimator_params": FAST, "torch_threads": 1})

    monkeypatch.setattr(lossreg.compare, "compare", fake)
    path = tmp_path / "d.csv"
    small_binary(60).to_csv(path, index=False)
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            str(path),
            "--target",
            "target",
            "--losses",
            "cross_entropy,focal(gamma=1.0)",
            "--cv",
            "2",
            "--scenario",
            "class_noise:0.1",
            "--scoring",
            "balanced_accuracy",
            "--no-progress",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "balanced_accuracy" in result.output and "focal(gamma=1.0)" in result.output
    assert "W/T/L" in result.output and "baseline" in result.output
    assert "report.html" in result.output
    assert captured["losses"] == "cross_entropy,focal(gamma=1.0)"
    assert captured["scenarios"] == ("class_noise:0.1",)


def test_cli_errors_exit_2():
    runner = CliRunner()
    unknown = runner.invoke(cli, ["compare", "iris", "--losses", "focall", "--no-progress"])
    assert unknown.exit_code == 2 and "Did you mean 'focal'" in unknown.output
    neither = runner.invoke(cli, ["compare", "iris"])
    assert neither.exit_code == 2 and "--task-default" in neither.output
    wrong_task = runner.invoke(cli, ["compare", "diabetes", "--losses", "focal"])
    assert wrong_task.exit_code == 2 and "does not support task 'regression'" in wrong_task.output
    bad = runner.invoke(cli, ["compare", "iris", "--task-default", "--scenario", "outliers:0.1"])
    assert bad.exit_code == 2 and "does not apply" in bad.output


def test_task_default_picks_registered_losses():
    from lossreg.compare import plan_fits

    plan = plan_fits(load_data("iris"), cv=2)
    names = [c.name for c in plan["losses"]]
    assert names[0] == "cross_entropy" and len(names) >= 4
    aliased = plan_fits(load_data("iris"), cv=2, losses="ce,focal")
    assert [c.label for c in aliased["losses"]] == ["cross_entropy", "focal"]
    regression = plan_fits(load_data("diabetes"), cv=2)
    assert "mse" in [c.name for c in regression["losses"]]


def test_makefile_demo_runs_compare():
    demo = (ROOT / "Makefile").read_text().split("\ndemo:")[1].split("\n\n")[0]
    assert "compare-out" in (ROOT / ".gitignore").read_text()
    assert "lossreg compare" in demo and "--out" in demo


def test_summary_counts_a_diverged_fit_among_the_errors():
    from lossreg.compare import summarize

    rows = [
        {"scenario": "clean", "loss_label": label, "repeat": 0, "fold": fold, "status": "ok"}
        | (
            {"accuracy": 0.8, "diverged": 0.0, "fit_time": 1.0}
            if label == "ce" or fold
            else {"diverged": 1.0, "divergence": "non-finite loss", "fit_time": 1.0}
        )
        for fold in range(3)
        for label in ("ce", "x")
    ]
    results = pd.DataFrame(rows)
    summary = summarize(results, primary="accuracy", baseline="ce").set_index("loss")
    assert summary.loc["x", "n"] == 2 and summary.loc["x", "errors"] == 1
    assert summary.loc["ce", "errors"] == 0
    by_divergence = summarize(results, primary="diverged", baseline="ce").set_index("loss")
    assert by_divergence.loc["x", "errors"] == 0 and by_divergence.loc["x", "n"] == 3


def test_training_curves_of_a_model_without_curves_draw_no_empty_legend():
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    from lossreg.compare._report import _training_figure

    ok = pd.DataFrame(
        {
            "loss_label": ["cross_entropy", "cross_entropy", "model:ridge", "model:ridge"],
            "scenario": ["clean", "noise:0.2", "clean", "noise:0.2"],
            "train_loss": [[0.7, 0.5], [0.8, 0.6], None, None],  # reference models have none
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns on a legend without labels
        figure = _training_figure(ok)
    legends = [ax.get_legend() is not None for ax in figure.axes[:2]]
    assert legends == [True, False]


def test_a_loss_needing_groups_is_refused_before_any_fit_without_them(tmp_path):
    with pytest.raises(ValueError, match=r"group_dro need the fit extra 'group'.*--group COLUMN"):
        run(small_binary(60), target="target", losses="cross_entropy,group_dro", out=tmp_path)
    assert not (tmp_path / "results.jsonl").exists()  # nothing was fitted
