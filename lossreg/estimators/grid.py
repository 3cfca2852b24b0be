"""loss_grid(): one search over several losses and each loss's own hyperparameters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lossreg.registry import default_registry

__all__ = ["loss_grid"]


def loss_grid(
    names: Iterable[str],
    overrides: Mapping[str, Mapping[str, Iterable[Any]]] | None = None,
    *,
    prefix: str = "",
) -> list[dict[str, list[Any]]]:
    """Build a scikit-learn parameter grid from the losses' declared search spaces.

    Parameters
    ----------
    names : iterable of str
        Registered loss names or aliases.
    overrides : mapping, optional
        ``{loss_name: {param: values}}`` replacing (or adding to) a loss's declared grid; an
        empty list of values drops that parameter from the search.
    prefix : str
        Put before every key, e.g. ``"clf__"`` when the estimator is a Pipeline step.

    Returns
    -------
    list of dict
        One dict per loss, e.g. ``{"loss": ["focal"], "loss__gamma": [0.5, 1.0, 2.0, 3.0]}``,
        usable as ``param_grid`` of ``GridSearchCV`` (and of the halving searches).

    Examples
    --------
    >>> from lossreg import loss_grid
    >>> grid = loss_grid(["cross_entropy", "focal"], overrides={"focal": {"gamma": [1.0, 2.0]}})
    >>> grid[0]
    {'loss': ['cross_entropy'], 'loss__label_smoothing': [0.0, 0.1]}
    >>> grid[1]
    {'loss': ['focal'], 'loss__gamma': [1.0, 2.0]}
    """
    registry = default_registry()
    overrides = dict(overrides or {})
    grid = []
    for name in names:
        spec = registry.get_spec(name)
        searched = {p.name: list(p.grid) for p in spec.params if p.grid}
        for key in (name, spec.name):
            for param, values in overrides.get(key, {}).items():
                searched[param] = list(values)
        entry: dict[str, list[Any]] = {f"{prefix}loss": [name]}
        for param, values in searched.items():
            if values:
                entry[f"{prefix}loss__{param}"] = values
        grid.append(entry)
    unknown = set(overrides) - {n for n in names} - {registry.get_spec(n).name for n in names}
    if unknown:
        raise ValueError(
            f"overrides name losses that are not in names: {sorted(unknown)!r}; add them to names."
        )
    return grid
