"""Built-in plugins are ordinary plugins: they import only public lossreg names; docs run."""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import lossreg
import lossreg.plugins

PLUGIN_ROOT = Path(lossreg.plugins.__file__).parent


def _plugin_files() -> list[Path]:
    return sorted(
        p for p in PLUGIN_ROOT.rglob("*.py") if p.name != "__init__.py" or p.parent != PLUGIN_ROOT
    )


@pytest.mark.parametrize("path", _plugin_files(), ids=lambda p: str(p.relative_to(PLUGIN_ROOT)))
def test_builtin_plugins_import_only_public_lossreg_names(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert not alias.name.startswith("lossreg."), (
                    f"{path.name}:{node.lineno} imports {alias.name}; use `from lossreg import ...`"
                )
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.startswith("lossreg."):
                pytest.fail(f"{path.name}:{node.lineno} imports from {node.module}, not public")
            if node.module == "lossreg":
                private = [a.name for a in node.names if a.name not in lossreg.__all__]
                assert not private, f"{path.name}:{node.lineno} imports non-public {private}"


def test_every_builtin_plugin_module_is_listed():
    listed = set(lossreg.plugins.BUILTIN_PLUGINS)
    packages = {f"lossreg.plugins.{m.name}" for m in pkgutil.iter_modules([str(PLUGIN_ROOT)])}
    assert packages == listed


def _doc_modules() -> list[str]:
    names = ["lossreg.reduction"]
    for package in lossreg.plugins.BUILTIN_PLUGINS:
        module = importlib.import_module(package)
        names.append(package)
        for info in pkgutil.iter_modules(module.__path__):
            names.append(f"{package}.{info.name}")
    return names


@pytest.mark.parametrize("module_name", _doc_modules())
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
