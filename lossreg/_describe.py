"""Plain-data descriptions of losses and plugins, shared by the CLI and the docs generator."""

from __future__ import annotations

import inspect
import re
from typing import Any

from lossreg.links import resolve_link
from lossreg.registry import PluginInfo, RegisteredLoss
from lossreg.targets import rule_text

__all__ = ["FLAGS", "describe_loss", "describe_plugin", "docstring_formula"]

_SECTION = re.compile(r"^(Parameters|Attributes|Returns|Notes|References|Examples|See Also)$")


def docstring_formula(factory: Any) -> str:
    """Return the factory docstring's description: everything before its first section."""
    doc = inspect.getdoc(factory) or ""
    lines = doc.splitlines()
    kept: list[str] = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if _SECTION.match(line.strip()) and set(nxt.strip()) == {"-"}:
            break
        if line.strip() == ".. math::":
            continue
        kept.append(line)
    return "\n".join(kept).strip()


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return repr(value)


#: the spec's switches shown on one "flags" line by ``lossreg info`` and docs/losses.md
FLAGS = (
    "per_sample",
    "stochastic",
    "learnable",
    "sampler",
    "views",
    "view_maker",
    "semi_supervised",
)


def describe_loss(entry: RegisteredLoss) -> dict[str, Any]:
    """Return everything ``lossreg info`` shows about a loss, as JSON-ready data."""
    spec = entry.spec
    link = resolve_link(spec.link)
    return {
        "name": spec.name,
        "aliases": list(spec.aliases),
        "summary": spec.summary,
        "formula": docstring_formula(spec.factory),
        "tasks": sorted(spec.tasks),
        "link": {"name": link.name, "kind": link.kind, "summary": link.summary},
        "parameters": [
            {
                "name": p.name,
                "kind": p.kind,
                "default": _json_safe(p.default),
                "valid": p.constraint,
                "grid": _json_safe(list(p.grid)),
                "doc": p.doc,
            }
            for p in spec.params
        ],
        "data_params": list(spec.data_params),
        "fit_extras": list(spec.fit_extras),
        "per_sample": spec.per_sample,
        "stochastic": spec.stochastic,
        "learnable": spec.learnable,
        "sampler": spec.sampler,
        "views": spec.views,
        "view_maker": spec.view_maker,
        "semi_supervised": spec.semi_supervised,
        "outputs": spec.outputs,
        "output_size": None if spec.output_size is None else rule_text(spec.output_size),
        "extra_widths": {name: rule_text(rule) for name, rule in spec.extra_widths.items()},
        "data_params_of": None if spec.data_params_of is None else rule_text(spec.data_params_of),
        "reference": spec.reference,
        "factory": f"{spec.factory.__module__}.{spec.factory.__qualname__}",
        "plugin": entry.plugin.name,
        "distribution": entry.plugin.distribution,
        "version": entry.plugin.version,
    }


def describe_plugin(info: PluginInfo) -> dict[str, Any]:
    """Return a plugin's row for ``lossreg plugins``, as JSON-ready data."""
    return {
        "name": info.name,
        "source": info.source,
        "distribution": info.distribution,
        "version": info.version,
        "status": info.status,
        "losses": list(info.losses),
        "error": info.error,
    }
