"""The command line: list, info and plugins, their JSON forms and their exit statuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import make_plugin

import lossreg.registry
from lossreg.cli import cli

BIN = Path(sys.executable).parent


@pytest.fixture
def registry(monkeypatch, fake_entry_points):
    """The CLI's default registry: built-ins plus one failing entry-point plugin."""

    def broken():
        raise ImportError("needs a package that is not installed")

    fake_entry_points("broken", broken, "lossreg-broken", "0.9")
    instance = lossreg.Registry()
    monkeypatch.setattr(lossreg.registry, "_default", instance)
    return instance


def _run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_list_shows_losses_with_their_plugin(registry):
    with pytest.warns(lossreg.LossPluginWarning):
        result = _run("list")
    assert result.exit_code == 0
    assert "focal" in result.output and "lossreg.plugins.classification" in result.output


def test_list_json_and_filters(registry):
    with pytest.warns(lossreg.LossPluginWarning):
        rows = json.loads(_run("list", "--task", "regression", "--json").output)
    names = [r["name"] for r in rows]  # families grow: check membership and order only
    assert {"huber", "mae", "mse"} <= set(names) and names == sorted(names)
    assert {r["plugin"] for r in rows if r["name"] == "mse"} == {"lossreg.plugins.regression"}
    assert "cross_entropy" not in names
    rows = json.loads(_run("list", "--plugin", "lossreg.plugins.classification", "--json").output)
    assert "focal" in [r["name"] for r in rows] and "mse" not in [r["name"] for r in rows]


def test_list_rejects_an_unknown_task(registry):
    result = CliRunner().invoke(cli, ["list", "--task", "classifcation"])
    assert result.exit_code == 2
    assert "Unknown task 'classifcation'" in result.output


def test_info_shows_parameters_ranges_and_paper(registry):
    with pytest.warns(lossreg.LossPluginWarning):
        result = _run("info", "focal")
    assert result.exit_code == 0
    out = result.output
    assert "[0, inf)" in out and "gamma" in out and "2.0" in out
    assert "[0, 1)" in _run("info", "cross_entropy").output  # brackets are not rich markup
    assert "Focal Loss for Dense Object Detection" in out
    assert "(1 - p_{t})^{\\gamma}" in out  # the formula, from the docstring
    assert "lossreg.plugins.classification" in out


def test_info_json(registry):
    with pytest.warns(lossreg.LossPluginWarning):
        data = json.loads(_run("info", "ce", "--json").output)
    assert data["name"] == "cross_entropy"
    assert data["link"]["name"] == "softmax"
    (smoothing,) = data["parameters"]
    assert smoothing["valid"] == "a float in the range [0, 1)"
    assert data["distribution"] == "lossreg"


def test_info_of_an_unknown_loss_exits_2_with_a_suggestion(registry):
    with pytest.warns(lossreg.LossPluginWarning):
        result = CliRunner().invoke(cli, ["info", "focall"])
    assert result.exit_code == 2
    assert "Did you mean 'focal'?" in result.output


def test_plugins_lists_failed_plugins_with_their_error(registry):
    with pytest.warns(lossreg.LossPluginWarning):
        rows = json.loads(_run("plugins", "--json").output)
    by_name = {r["name"]: r for r in rows}
    assert by_name["broken"]["status"] == "failed"
    assert "needs a package that is not installed" in by_name["broken"]["error"]
    assert by_name["lossreg.plugins.classification"]["status"] == "loaded"
    table = _run("plugins").output
    assert "failed" in table and "broken" in table


def _lossreg(*args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    return subprocess.run(
        [str(BIN / "lossreg"), *args], capture_output=True, text=True, env=full_env, check=False
    )


def test_console_script_exit_status_and_stderr():
    result = _lossreg("info", "focall")
    assert result.returncode == 2
    assert "Unknown loss 'focall'. Did you mean 'focal'?" in result.stderr


def test_the_example_plugin_is_found_through_its_entry_point():
    """The real, pip-installed plugins/lossreg-example distribution, not a fake."""
    rows = json.loads(_lossreg("list", "--json").stdout)
    brier = [r for r in rows if r["name"] == "brier"]
    assert brier and brier[0]["plugin"] == "example"
    assert brier[0]["distribution"] == "lossreg-example"
    assert "focal" in [r["name"] for r in rows]

    hidden = json.loads(_lossreg("list", "--json", LOSSREG_LOAD_PLUGINS="").stdout)
    assert "brier" not in [r["name"] for r in hidden] and "focal" in [r["name"] for r in hidden]

    blocked = _lossreg("plugins", "--json", LOSSREG_BLOCK_PLUGINS="lossreg-example")
    statuses = {r["name"]: r["status"] for r in json.loads(blocked.stdout)}
    assert statuses["example"] == "blocked"


def test_make_plugin_helper_is_usable_here():
    assert make_plugin("x").register_losses() == []


def test_compare_task_choices_are_compares_tasks():
    from lossreg.cli import compare_command
    from lossreg.compare._data import TASKS

    (option,) = [p for p in compare_command.params if p.name == "task"]
    assert tuple(option.type.choices) == TASKS
