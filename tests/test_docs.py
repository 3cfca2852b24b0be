"""The docs: the plugin guide documents every hook and field; the catalogue is not stale.

docs/plugins.md's tutorial is followed literally: its code blocks become a plugin in a temp
folder, which is installed, listed, checked and tested.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import lossreg
import lossreg._docs
from lossreg import hookspecs
from lossreg.links import BUILTIN_LINKS
from lossreg.params import PARAM_KINDS
from lossreg.spec import DATA_PARAMS, FIT_EXTRAS, TASKS, LossSpec
from lossreg.testing import LOSS_CHECKS

ROOT = Path(lossreg.__file__).resolve().parent.parent
PLUGINS_MD = ROOT / "docs" / "plugins.md"
LOSSES_MD = ROOT / "docs" / "losses.md"
ENV_SWITCHES = ("LOSSREG_LOAD_PLUGINS", "LOSSREG_BLOCK_PLUGINS", "LOSSREG_STRICT_PLUGINS")


@pytest.fixture(scope="module")
def guide() -> str:
    return PLUGINS_MD.read_text(encoding="utf-8")


def _hooks() -> list[str]:
    return [name for name, f in inspect.getmembers(hookspecs) if hasattr(f, "lossreg_spec")]


def test_there_are_hooks_to_document():
    assert "register_losses" in _hooks()


@pytest.mark.parametrize("hook", _hooks())
def test_every_hook_is_documented_with_its_signature_and_an_example(guide, hook):
    assert re.search(rf"^### The hook: `{hook}\(\)`", guide, re.M), f"no heading for {hook}"
    signature = inspect.signature(getattr(hookspecs, hook))
    params = ", ".join(signature.parameters)
    assert f"def {hook}({params})" in guide, f"{hook}'s signature is not shown"
    assert guide.count(f"def {hook}(") >= 2, f"{hook} has no example"


@pytest.mark.parametrize(
    ("what", "names"),
    [
        ("LossSpec field", [f.name for f in dataclasses.fields(LossSpec)]),
        ("Param field", [f.name for f in dataclasses.fields(lossreg.Param)]),
        ("Param kind", list(PARAM_KINDS)),
        ("environment switch", list(ENV_SWITCHES)),
        ("conformance check", list(LOSS_CHECKS)),
        ("data param", list(DATA_PARAMS)),
        ("fit extra", list(FIT_EXTRAS)),
        ("task", sorted(TASKS)),
        ("link", list(BUILTIN_LINKS)),
    ],
)
def test_the_guide_documents_every(guide, what, names):
    missing = [n for n in names if f"`{n}`" not in guide and f"{n}=" not in guide]
    assert not missing, (
        f"docs/plugins.md does not document {what}(s) {missing}: add each, in backticks, "
        "to its table in the Reference section."
    )


def test_losses_md_is_up_to_date():
    expected = lossreg._docs.render_losses_md()
    assert LOSSES_MD.read_text(encoding="utf-8") == expected, (
        "docs/losses.md is stale: regenerate it with `make docs` "
        "(lossreg docs --out docs/losses.md)"
    )


def test_the_catalogue_lists_not_registered_losses(monkeypatch):
    import lossreg.plugins.regression as regression

    monkeypatch.setattr(
        regression, "NOT_REGISTERED", {"log_cosh": "numerically a Huber loss"}, raising=False
    )
    text = lossreg._docs.render_losses_md()
    section = text.split("## lossreg.plugins.regression", 1)[1]
    assert "### Not registered, and why" in section
    section = section.split("\n## ", 1)[0]  # up to the next plugin
    assert "| `log_cosh` | numerically a Huber loss |" in section


def test_lossreg_docs_writes_the_file(tmp_path):
    from click.testing import CliRunner

    from lossreg.cli import cli

    out = tmp_path / "losses.md"
    result = CliRunner().invoke(cli, ["docs", "--out", str(out)])
    assert result.exit_code == 0
    assert out.read_text() == lossreg._docs.render_losses_md()
    printed = CliRunner().invoke(cli, ["docs"])
    assert printed.output == out.read_text()


def _block(guide: str, label: str) -> str:
    match = re.search(rf"<!-- docs-test: {label} -->\n```\w+\n(.*?)```", guide, re.S)
    assert match, f"no code block labelled {label!r} in docs/plugins.md"
    return match.group(1)


@pytest.mark.slow
def test_following_the_guide_gives_a_working_plugin(guide, tmp_path):
    """Write the tutorial's files as the guide says, install, list, check and test them."""
    plugin = tmp_path / "lossreg-tutorial"
    (plugin / "src" / "lossreg_tutorial").mkdir(parents=True)
    (plugin / "tests").mkdir()
    (plugin / "pyproject.toml").write_text(_block(guide, "tutorial-pyproject"))
    (plugin / "src" / "lossreg_tutorial" / "__init__.py").write_text(
        _block(guide, "tutorial-module")
    )
    (plugin / "tests" / "test_tutorial.py").write_text(_block(guide, "tutorial-tests"))
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(site), str(plugin)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    path = os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path.rstrip(os.pathsep)}
    for var in ENV_SWITCHES:
        env.pop(var, None)

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True
        )

    listed = json.loads(run("-m", "lossreg.cli", "list", "--plugin", "tutorial", "--json").stdout)
    assert [r["name"] for r in listed] == ["tutorial_gce"]
    checked = run("-m", "lossreg.cli", "check", "tutorial", "--skip", "check_estimator_smoke_fit")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = run("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=plugin)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    doctests = run("-m", "pytest", "-q", "-p", "no:cacheprovider", "--doctest-modules",
                   str(site / "lossreg_tutorial"), cwd=tmp_path)  # fmt: skip
    assert doctests.returncode == 0, doctests.stdout + doctests.stderr
