"""Built-in plugin: composite losses made of other registered losses (weighted_sum)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from lossreg import LossSpec, Param, hookimpl

from ._params import LossNamesParam, MemberParamsParam
from .weighted_sum import WeightedSum, member_data_params, member_link, member_output_size

__all__ = ["WeightedSum", "member_param_grid", "register_losses"]

#: Every task a member could have; the members' intersection is checked when built.
_ALL_TASKS = frozenset(
    {"bag", "binary", "embedding", "multiclass", "multilabel", "ordinal", "ranking"}
    | {"regression", "survival"}
)


def member_param_grid(grids: Mapping[str, Mapping[str, Sequence[Any]]]) -> list[dict]:
    """Expand per-member value lists into the list of ``member_params`` dicts a search varies.

    >>> member_param_grid({"focal": {"gamma": [1.0, 2.0]}, "gce": {"q": [0.7]}})
    [{'focal': {'gamma': 1.0}, 'gce': {'q': 0.7}}, {'focal': {'gamma': 2.0}, 'gce': {'q': 0.7}}]
    """
    keys = [(member, name) for member, params in grids.items() for name in params]
    out = []
    for values in itertools.product(*(grids[m][p] for m, p in keys)):
        combo: dict[str, dict[str, Any]] = {}
        for (member, name), value in zip(keys, values):
            combo.setdefault(member, {})[name] = value
        out.append(combo)
    return out


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="weighted_sum",
            factory=WeightedSum,
            tasks=_ALL_TASKS,
            link=member_link,
            params=(
                LossNamesParam(
                    "losses",
                    "str",
                    ("cross_entropy", "mae_prob"),
                    doc="member loss names; they must share a task and a link",
                ),
                Param(
                    "weights",
                    "vector",
                    None,
                    low=0,
                    nullable=True,
                    doc="one weight per member; None weighs every member 1",
                ),
                MemberParamsParam(
                    "member_params",
                    "str",
                    None,
                    nullable=True,
                    doc="{member: {parameter: value}} for the members' own parameters",
                ),
            ),
            output_size=member_output_size,
            data_params_of=member_data_params,
            summary="Weighted per-row sum of registered losses, reduced once.",
            reference="A lossreg composite of registered losses; each member cites its paper.",
        )
    ]
