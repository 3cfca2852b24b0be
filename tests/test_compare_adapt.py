"""lossreg compare --adapt: source model, then test-time / source-free adaptation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from lossreg.cli import cli
from lossreg.compare import compare, load_data, plan_fits

SHIFT = "synthetic:covariate_shift(n_samples=240, n_features=4)"
FAST = {"max_iter": 5, "module__hidden_units": (8,), "module__batch_norm": True}


def run(**kwargs):
    kwargs.setdefault("estimator_params", FAST)
    return compare(SHIFT, target_domain="domain=target", cv=2, repeats=1, torch_threads=1, **kwargs)


@pytest.mark.parametrize("rows", ["test", "train"])
def test_adapted_fits_start_from_the_source_model_and_adapt_on_target_rows(rows):
    results = run(
        losses=["cross_entropy", "entropy_min"],
        adapt="cross_entropy",
        adapt_params={"rows": rows, "max_iter": 2},
    )
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert results.attrs["baseline"] == "cross_entropy"
    plan = plan_fits(
        load_data(SHIFT, target_domain="domain=target"),
        cv=2,
        losses="cross_entropy,entropy_min",
        adapt="cross_entropy",
        adapt_params={"rows": rows, "max_iter": 2},
    )
    source = results[results["loss"] == "cross_entropy"].reset_index(drop=True)
    adapted = results[results["loss"] == "entropy_min"].reset_index(drop=True)
    # the source model never sees the target rows: a supervised loss drops unlabeled rows
    assert (source["n_unlabeled"] == 0).all() and (source["n_adapt"] == 0).all()
    fits = [f for f in plan["fits"] if f["loss"] == "entropy_min"]
    expected = [len(f["test"] if rows == "test" else f["hidden"]) for f in fits]
    assert adapted["n_adapt"].tolist() == expected
    assert all(len(h) == 2 for h in adapted["adapt_loss"])
    # same source training (same seed, rows, loss): the same training curve
    np.testing.assert_allclose(
        np.stack(source["train_loss"].to_numpy()), np.stack(adapted["train_loss"].to_numpy())
    )
    assert not np.allclose(source["accuracy"], adapted["accuracy"]) or not np.allclose(
        source["source_accuracy"], adapted["source_accuracy"]
    )


def test_adaptation_settings_are_part_of_a_fit_identity():
    dataset = load_data(SHIFT, target_domain="domain=target")
    keys = [
        {f["key"] for f in plan_fits(dataset, cv=2, losses="entropy_min", **kw)["fits"]}
        for kw in (
            {"adapt": "cross_entropy"},
            {"adapt": "cross_entropy", "adapt_params": {"rows": "train"}},
            {},
        )
    ]
    assert not keys[0] & keys[1] and not keys[0] & keys[2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"adapt": "entropy_min"}, "must be a supervised multiclass loss"),
        ({"adapt": "cross_entropy", "losses": "focal"}, "must learn from unlabeled rows"),
        ({"adapt": "cross_entropy", "adapt_params": {"steps": 3}}, "Unknown adapt_params"),
        ({"adapt": "cross_entropy", "adapt_params": {"rows": "all"}}, "rows must be 'test'"),
    ],
)
def test_bad_adapt_settings_name_the_fix(kwargs, message):
    kwargs.setdefault("losses", "entropy_min")
    dataset = load_data(SHIFT, target_domain="domain=target")
    with pytest.raises(ValueError, match=message):
        plan_fits(dataset, cv=2, **kwargs)


def test_adapt_needs_a_target_domain_and_classes():
    with pytest.raises(ValueError, match="target_domain='COLUMN=VALUE'"):
        plan_fits(load_data("iris"), losses="entropy_min", adapt="cross_entropy")
    with pytest.raises(ValueError, match="adapts a multiclass classifier"):
        plan_fits(load_data("breast_cancer"), losses="entropy_min", adapt="cross_entropy")


def test_cli_and_config_file(tmp_path):
    config = tmp_path / "adapt.toml"
    config.write_text(
        f'[compare]\ndata = "{SHIFT}"\ntarget_domain = "domain=target"\n'
        'losses = ["cross_entropy", "entropy_min"]\nadapt = "cross_entropy"\ncv = 2\n'
        "[compare.adapt_params]\nmax_iter = 1\n"
        "[compare.estimator]\nmax_iter = 2\nmodule__batch_norm = true\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            "--config",
            str(config),
            "--adapt-param",
            "rows=train",
            "--out",
            str(out),
            "--torch-threads",
            "1",
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["adapt"]["rows"] for r in records} == {"train"}
    assert {r["adapt"]["max_iter"] for r in records} == {1}
