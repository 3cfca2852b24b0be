"""Every registered built-in loss has at least one independent reference-value test.

A reference test is any test decorated ``@pytest.mark.reference("name", ...)``. The test
files are read statically, so the check holds whichever subset of the suite is run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import lossreg

TESTS = Path(__file__).parent


def _referenced_names() -> set[str]:
    names: set[str] = set()
    for path in TESTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "reference":
                base = func.value
                if isinstance(base, ast.Attribute) and base.attr == "mark":
                    names.update(
                        a.value
                        for a in node.args
                        if isinstance(a, ast.Constant) and isinstance(a.value, str)
                    )
    return names


def test_every_builtin_loss_has_an_independent_reference_test():
    registry = lossreg.Registry(entry_points=False)
    missing = sorted(set(registry.list_losses()) - _referenced_names())
    assert not missing, (
        f"These built-in losses have no @pytest.mark.reference test: {missing}. Add a test "
        "against a library that ships the loss or a float64 implementation of the paper's "
        "formula written in a different style."
    )


def test_reference_marks_name_registered_losses():
    registry = lossreg.Registry(entry_points=False)
    unknown = sorted(n for n in _referenced_names() if n not in registry)
    assert not unknown, f"@pytest.mark.reference names unknown losses: {unknown}"
