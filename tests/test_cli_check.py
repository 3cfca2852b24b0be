"""``lossreg check``: the conformance kit from the command line, its table and exit statuses."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from conftest import ToySquared, make_plugin, toy_spec

import lossreg.registry
from lossreg.cli import cli

NO_FIT = ("--skip", "check_estimator_smoke_fit")


class Drifting(ToySquared):
    """Adds noise on every call but does not declare stochastic=True."""

    def per_sample_loss(self, input, target, **extras):
        return super().per_sample_loss(input, target) + torch.rand(input.shape[0])


@pytest.fixture
def registry(monkeypatch):
    """Built-ins plus a plugin 'shaky' with one good and one non-deterministic loss."""
    plugin = make_plugin("shaky", toy_spec("steady"), toy_spec("drifting", factory=Drifting))
    instance = lossreg.Registry(entry_points=False, plugins=[plugin])
    monkeypatch.setattr(lossreg.registry, "_default", instance)
    return instance


def _run(*args: str):
    return CliRunner().invoke(cli, ["check", *args])


def test_check_a_loss_prints_a_table_and_exits_0(registry):
    result = _run("focal", *NO_FIT)
    assert result.exit_code == 0, result.output
    assert "check_gradcheck" in result.output and "passed" in result.output
    assert "0 failed" in result.output


def test_check_with_params_and_json(registry):
    result = _run("focal", "-p", "gamma=0.0", "-p", "alpha=[1.0, 2.0, 1.0]", *NO_FIT, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["loss"] for r in rows} == {"focal(gamma=0.0,alpha=[1.0, 2.0, 1.0])"}
    assert {r["status"] for r in rows} <= {"passed", "skipped"}


def test_check_a_plugin_runs_each_of_its_losses_and_exits_1_on_failure(registry):
    result = _run("shaky", "--check", "check_deterministic", "--json")
    assert result.exit_code == 1
    rows = {r["loss"]: r for r in json.loads(result.output)}
    assert rows["steady"]["status"] == "passed"
    assert rows["drifting"]["status"] == "failed"
    assert "stochastic=True" in rows["drifting"]["message"]


def test_check_a_builtin_plugin(registry):
    result = _run("lossreg.plugins.regression", "--check", "check_spec_valid", "--json")
    assert result.exit_code == 0
    assert {"huber", "mae", "mse"} <= {r["loss"] for r in json.loads(result.output)}


def test_missing_estimators_fail_the_smoke_fit_clearly(registry, monkeypatch):
    monkeypatch.setattr(lossreg, "__getattr__", _no_estimators)
    monkeypatch.delattr(lossreg, "LossRegressor", raising=False)
    result = _run("mse", "--check", "check_estimator_smoke_fit")
    assert result.exit_code == 1
    assert "needs lossreg.LossRegressor" in result.output


def _no_estimators(name):
    raise AttributeError(name)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("focall",), "Unknown loss or plugin 'focall'. Did you mean 'focal'?"),
        (("focal", "--skip", "check_gradchek"), "Did you mean 'check_gradcheck'?"),
        (("shaky", "-p", "scale=2.0"), "--param needs a single loss"),
        (("focal", "-p", "gamma"), "--param takes KEY=VALUE"),
    ],
)
def test_usage_errors_exit_2(registry, args, message):
    result = _run(*args)
    assert result.exit_code == 2
    assert message in result.output
