"""Parameter schemas for composite losses: a sequence of loss names and per-member settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lossreg import Param

__all__ = ["LossNamesParam", "MemberParamsParam"]


@dataclass(frozen=True)
class LossNamesParam(Param):
    """A non-empty sequence of loss names (a single name is one member).

    Declared with kind ``"str"`` because lossreg's schema has no sequence-of-str kind; the
    value check and the message below say what is really accepted.
    """

    @property
    def constraint(self) -> str:
        return "a non-empty sequence of registered loss names"

    def is_valid(self, value: Any) -> bool:
        if isinstance(value, str):
            return bool(value)
        if not isinstance(value, Sequence) or not value:
            return False
        return all(isinstance(v, str) and v for v in value)


@dataclass(frozen=True)
class MemberParamsParam(Param):
    """A mapping ``{member name: {parameter: value}}``, or None.

    Declared with kind ``"str"`` because lossreg's schema has no mapping kind; the value check
    and the message below say what is really accepted.
    """

    @property
    def constraint(self) -> str:
        return "a dict {member loss name: {parameter: value}} or None"

    def is_valid(self, value: Any) -> bool:
        if value is None:
            return True
        if not isinstance(value, Mapping):
            return False
        return all(
            isinstance(k, str) and isinstance(v, Mapping) and all(isinstance(p, str) for p in v)
            for k, v in value.items()
        )
