"""``lossreg new-plugin``: write a ready-to-publish plugin distribution from a template."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from lossreg._version import __version__

__all__ = ["TEMPLATE_SKIPPED_CHECKS", "PluginNames", "plugin_files", "plugin_names", "write_plugin"]

#: Conformance checks the generated test does not run yet, with the reason written beside them.
TEMPLATE_SKIPPED_CHECKS: dict[str, str] = {}

_NAME = re.compile(r"^[a-z][a-z0-9]*([_-][a-z0-9]+)*$")
_LOSS = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class PluginNames:
    """The names a plugin called ``slug`` gets: distribution, package, entry point, loss."""

    slug: str  # "my-plugin"
    distribution: str  # "lossreg-my-plugin"
    package: str  # "lossreg_my_plugin"
    entry_point: str  # "my_plugin"
    loss: str  # "my_plugin_brier"
    loss_class: str  # "MyPluginBrier"


def plugin_names(name: str, loss: str | None = None) -> PluginNames:
    """Derive every name from the plugin name (``example``, ``my-plugin``, ``lossreg-asl`` ...).

    Raises
    ------
    ValueError
        When the plugin or loss name is not usable.
    """
    slug = name.strip().lower().replace("_", "-")
    for prefix in ("lossreg-",):
        if slug.startswith(prefix) and len(slug) > len(prefix):
            slug = slug[len(prefix) :]
    if not _NAME.match(slug):
        raise ValueError(
            f"Plugin name {name!r} must be lowercase letters, digits, '-' or '_', starting "
            "with a letter (for example 'asl' or 'my-losses')."
        )
    snake = slug.replace("-", "_")
    loss = loss if loss is not None else f"{snake}_brier"
    if not _LOSS.match(loss) or loss.endswith("_loss"):
        raise ValueError(f"Loss name {loss!r} must match {_LOSS.pattern} and not end in '_loss'.")
    loss_class = "".join(part.capitalize() for part in loss.split("_"))
    return PluginNames(
        slug=slug,
        distribution=f"lossreg-{slug}",
        package=f"lossreg_{snake}",
        entry_point=snake,
        loss=loss,
        loss_class=loss_class,
    )


def plugin_files(names: PluginNames) -> dict[str, str]:
    """Return the plugin's files, by path relative to its folder."""
    minor = ".".join(__version__.split(".")[:2])
    skipped = "".join(
        f"    {json.dumps(check)}: {json.dumps(reason)},\n"
        for check, reason in TEMPLATE_SKIPPED_CHECKS.items()
    )
    values = {
        **names.__dict__,
        "lossreg_version": minor,
        "skipped": "{\n" + skipped + "}" if skipped else "{}",
    }
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"src/{names.package}/__init__.py": _INIT,
        f"src/{names.package}/{names.loss}.py": _LOSS_MODULE,
        f"src/{names.package}/py.typed": "",
        f"tests/test_{names.package}_conformance.py": _TEST_CONFORMANCE,
        f"tests/test_{names.loss}.py": _TEST_REFERENCE,
    }
    return {path: Template(text).substitute(values) for path, text in files.items()}


def write_plugin(
    name: str, directory: str | Path = ".", *, loss: str | None = None, force: bool = False
) -> Path:
    """Write the plugin ``lossreg-<name>`` into ``directory`` and return its folder.

    Raises
    ------
    FileExistsError
        When the folder exists and is not empty, unless ``force`` (which overwrites the
        template's files and leaves any other file alone).
    """
    names = plugin_names(name, loss)
    root = Path(directory) / names.distribution
    if root.exists() and any(root.iterdir()) and not force:
        raise FileExistsError(
            f"{root} exists and is not empty; choose another --dir, or pass --force to "
            "overwrite the template's files."
        )
    for path, text in plugin_files(names).items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root


_PYPROJECT = """\
[build-system]
requires = ["hatchling>=1.20"]
build-backend = "hatchling.build"

[project]
name = "${distribution}"
version = "0.1.0"
description = "A lossreg plugin: the ${loss} loss."
readme = "README.md"
requires-python = ">=3.10"
license = "MIT"
dependencies = ["lossreg>=${lossreg_version}", "torch>=2.1"]

[project.optional-dependencies]
test = ["pytest>=8", "numpy>=1.24"]

# This table is what makes the plugin discoverable: group "lossreg", any entry-point name,
# pointing at the module that defines the register_losses() hook.
[project.entry-points.lossreg]
${entry_point} = "${package}"

[tool.hatch.build.targets.wheel]
packages = ["src/${package}"]

[tool.pytest.ini_options]
markers = ["reference(*names): an independent reference-value test of these losses"]
"""

_README = """\
# ${distribution}

A lossreg plugin that registers one loss, `${loss}`, through the entry point
`${entry_point}` in group `lossreg`. The loss is the multiclass Brier score: a correct,
documented and tested starting point, to replace with your own.

```bash
pip install -e '.[test]'     # install next to lossreg, with the test extras
lossreg list --plugin ${entry_point}   # ${loss}, from plugin '${entry_point}' (${distribution})
lossreg info ${loss}
lossreg check ${entry_point}           # the conformance kit, as a table
python -m pytest             # the kit and the reference test
```

Layout:

| file | what it holds |
|---|---|
| `pyproject.toml` | the distribution and its `[project.entry-points.lossreg]` table |
| `src/${package}/__init__.py` | the `register_losses()` hook returning one `LossSpec` per loss |
| `src/${package}/${loss}.py` | the loss: an `nn.Module` with a numpydoc docstring and a doctest |
| `tests/test_${package}_conformance.py` | lossreg's conformance kit over every loss of the plugin |
| `tests/test_${loss}.py` | the loss against an independent float64 reference, and its discovery |

To write your own loss: replace `${loss}.py` (keep `per_sample_loss`, the docstring, the
reference), edit its `LossSpec` in `__init__.py`, and rewrite the reference test. Publish with
`python -m build` and `twine upload dist/*`. The full guide is lossreg's `docs/plugins.md`.
"""

_INIT = '''\
"""${distribution}: a lossreg plugin registering the ${loss} loss."""

from __future__ import annotations

from lossreg import LossSpec, hookimpl

from .${loss} import ${loss_class}

__all__ = ["${loss_class}", "register_losses"]


@hookimpl
def register_losses() -> list[LossSpec]:
    """Return this plugin's losses; lossreg calls it on its first lookup."""
    return [
        LossSpec(
            name="${loss}",
            factory=${loss_class},
            tasks={"binary", "multiclass"},
            link="softmax",
            summary="Multiclass Brier score on softmax probabilities.",
            reference=(
                'Brier, "Verification of Forecasts Expressed in Terms of Probability", '
                "Monthly Weather Review 1950, doi:10.1175/1520-0493(1950)078<0001:VOFEIT>2.0.CO;2"
            ),
        )
    ]
'''

_LOSS_MODULE = '''\
"""The multiclass Brier score as a training loss."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossModule, as_class_target

__all__ = ["${loss_class}"]


class ${loss_class}(LossModule):
    r"""Multiclass Brier score: squared distance between the softmax and the one-hot target.

    .. math::

        \\ell_i = \\sum_{c=1}^{C} (p_{ic} - [y_i = c])^2, \\qquad p_i = \\mathrm{softmax}(z_i)

    A strictly proper scoring rule, bounded in [0, 2]. Input logits (N, C), class labels (N,).

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    References
    ----------
    G. W. Brier. "Verification of Forecasts Expressed in Terms of Probability." Monthly
    Weather Review 78(1), 1950, doi:10.1175/1520-0493(1950)078<0001:VOFEIT>2.0.CO;2.

    Examples
    --------
    >>> import torch
    >>> ${loss_class}(reduction="none")(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]))
    tensor([0.5000, 0.5000, 0.5000, 0.5000])
    """

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        probabilities = input.softmax(dim=-1)
        one_hot = torch.nn.functional.one_hot(as_class_target(target), input.shape[-1])
        return (probabilities - one_hot.to(input.dtype)).square().sum(dim=-1)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
'''

_TEST_CONFORMANCE = '''\
"""lossreg's conformance kit over every loss this plugin registers."""

import lossreg
from lossreg.testing import LOSS_CHECKS, parametrize_with_loss_checks

#: Checks not run, with the reason.
SKIPPED = ${skipped}


@parametrize_with_loss_checks(
    lossreg.list_losses(plugin="${entry_point}"),
    checks=[name for name in LOSS_CHECKS if name not in SKIPPED],
)
def test_conformance(loss, check):
    check(loss)
'''

_TEST_REFERENCE = '''\
"""The ${loss} loss against an independent float64 loop, and its discovery."""

import doctest
import inspect

import numpy as np
import pytest
import torch
from ${package} import ${loss_class}

import lossreg


def _brier_loop(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    out = []
    for row, label in zip(logits, labels):
        exp = np.exp(row - row.max())
        probs = exp / exp.sum()
        out.append(sum((p - (1.0 if c == label else 0.0)) ** 2 for c, p in enumerate(probs)))
    return np.array(out)


@pytest.mark.reference("${loss}")
def test_${loss}_matches_a_float64_loop():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(16, 4)) * 3
    labels = rng.integers(0, 4, size=16)
    got = ${loss_class}(reduction="none")(torch.tensor(logits), torch.tensor(labels))
    np.testing.assert_allclose(got.numpy(), _brier_loop(logits, labels), rtol=1e-12)


def test_${loss}_docstring_example():
    assert doctest.testmod(inspect.getmodule(${loss_class})).failed == 0


def test_${loss}_is_found_through_its_entry_point():
    registry = lossreg.Registry(builtins=False, load=None, block=())
    assert "${loss}" in registry.list_losses()
    (plugin,) = [p for p in registry.list_plugins() if p.name == "${entry_point}"]
    assert plugin.distribution == "${distribution}"
    assert plugin.losses == ("${loss}",)
'''
