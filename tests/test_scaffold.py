"""``lossreg new-plugin``: the template, the example plugin it regenerates, a real install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import lossreg
from lossreg._scaffold import plugin_files, plugin_names
from lossreg.cli import cli

ROOT = Path(lossreg.__file__).resolve().parent.parent
EXAMPLE = ROOT / "plugins" / "lossreg-example"
_IGNORED = {"__pycache__", ".pytest_cache", "build", "dist"}


def _files_under(folder: Path) -> dict[str, str]:
    found = {}
    for path in folder.rglob("*"):
        parts = set(path.relative_to(folder).parts)
        if (
            path.is_file()
            and not parts & _IGNORED
            and not any(p.endswith(".egg-info") for p in parts)
        ):
            found[path.relative_to(folder).as_posix()] = path.read_text(encoding="utf-8")
    return found


def test_the_example_plugin_is_exactly_what_new_plugin_writes():
    """Regenerate with: lossreg new-plugin example --loss brier --dir plugins --force"""
    expected = plugin_files(plugin_names("example", loss="brier"))
    assert _files_under(EXAMPLE) == expected


@pytest.mark.parametrize(
    ("name", "loss", "distribution", "package", "entry_point", "loss_name", "cls"),
    [
        ("example", "brier", "lossreg-example", "lossreg_example", "example", "brier", "Brier"),
        ("my-losses", None, "lossreg-my-losses", "lossreg_my_losses", "my_losses",
         "my_losses_brier", "MyLossesBrier"),
        ("lossreg-asl", None, "lossreg-asl", "lossreg_asl", "asl", "asl_brier", "AslBrier"),
    ],
)  # fmt: skip
def test_plugin_names(name, loss, distribution, package, entry_point, loss_name, cls):
    names = plugin_names(name, loss)
    assert (names.distribution, names.package, names.entry_point) == (
        distribution,
        package,
        entry_point,
    )
    assert (names.loss, names.loss_class) == (loss_name, cls)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["new-plugin", "My Plugin"], "must be lowercase letters"),
        (["new-plugin", "asl", "--loss", "asl_loss"], "not end in '_loss'"),
    ],
)
def test_bad_names_exit_2(args, message, tmp_path):
    result = CliRunner().invoke(cli, [*args, "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output


def test_an_existing_folder_needs_force(tmp_path):
    runner = CliRunner()
    assert runner.invoke(cli, ["new-plugin", "demo", "--dir", str(tmp_path)]).exit_code == 0
    again = runner.invoke(cli, ["new-plugin", "demo", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "--force" in again.output
    forced = runner.invoke(cli, ["new-plugin", "demo", "--dir", str(tmp_path), "--force"])
    assert forced.exit_code == 0
    assert (tmp_path / "lossreg-demo" / "src" / "lossreg_demo" / "demo_brier.py").is_file()


def _install(plugin: Path, target: Path) -> dict[str, str]:
    """pip-install ``plugin`` into ``target`` offline; return an env that sees it and lossreg."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(plugin)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    path = os.pathsep.join([str(target), str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path.rstrip(os.pathsep)}
    for var in ("LOSSREG_LOAD_PLUGINS", "LOSSREG_BLOCK_PLUGINS", "LOSSREG_STRICT_PLUGINS"):
        env.pop(var, None)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.mark.slow
def test_a_scaffolded_plugin_installs_is_found_and_passes_the_kit(tmp_path):
    result = CliRunner().invoke(cli, ["new-plugin", "kitdemo", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    plugin = tmp_path / "lossreg-kitdemo"
    env = _install(plugin, tmp_path / "site")

    listed = _run(["-m", "lossreg.cli", "list", "--json"], env)
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["kitdemo_brier"]["plugin"] == "kitdemo"
    assert rows["kitdemo_brier"]["distribution"] == "lossreg-kitdemo"

    checked = _run(
        ["-m", "lossreg.cli", "check", "kitdemo", "--skip", "check_estimator_smoke_fit"], env
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 failed" in checked.stdout

    tests = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider"], env, cwd=plugin)
    assert tests.returncode == 0, tests.stdout + tests.stderr


@pytest.mark.slow
def test_the_example_plugin_installs_and_its_tests_pass(tmp_path):
    """The example as committed here, installed in front of any other copy of it."""
    env = _install(EXAMPLE, tmp_path / "site")
    tests = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE)], env, cwd=EXAMPLE)
    assert tests.returncode == 0, tests.stdout + tests.stderr
