"""The hyperparameter schema of a loss: type, default, valid range or options, search space."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lossreg._suggest import did_you_mean
from lossreg.errors import InvalidLossParameterError

__all__ = ["PARAM_KINDS", "Param", "check_params"]

#: The kinds of value a hyperparameter can take.
PARAM_KINDS = ("bool", "choice", "float", "int", "str", "vector")
_CLOSED = ("both", "left", "right", "neither")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Param:
    """One hyperparameter of a loss.

    Parameters
    ----------
    name : str
        The factory's keyword argument, also the ``loss__<name>`` estimator parameter.
    kind : {"float", "int", "bool", "choice", "str", "vector"}
        ``vector`` is a 1-D sequence of numbers (per-class weights, quantile levels ...).
    default : object
        The paper's default. It must equal the factory's default.
    low, high : float or None
        Bounds for ``float``, ``int`` and the elements of ``vector``; ``None`` is unbounded.
    closed : {"both", "left", "right", "neither"}
        Which of the bounds belong to the valid range.
    options : tuple
        The valid values of a ``choice`` parameter.
    nullable : bool
        Whether ``None`` is a valid value (it usually means "switched off").
    grid : tuple
        A small search space used by :func:`lossreg.loss_grid`; empty means "not searched".
    doc : str
        One line for ``lossreg info``.
    """

    name: str
    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    closed: str = "both"
    options: tuple[Any, ...] = ()
    nullable: bool = False
    grid: tuple[Any, ...] = ()
    doc: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "grid", tuple(self.grid))

    @property
    def constraint(self) -> str:
        """Describe the valid values in words, as used in error messages."""
        if self.kind == "bool":
            text = "a bool"
        elif self.kind == "choice":
            text = "one of " + ", ".join(repr(o) for o in self.options)
        elif self.kind == "str":
            text = "a str"
        else:
            noun = {"float": "a float", "int": "an int", "vector": "a 1-D sequence of numbers"}
            text = noun[self.kind] + self._range_text()
        return text + (" or None" if self.nullable else "")

    def _range_text(self) -> str:
        if self.low is None and self.high is None:
            return ""
        lo = "-inf" if self.low is None else _fmt(self.low)
        hi = "inf" if self.high is None else _fmt(self.high)
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        where = " with every element" if self.kind == "vector" else ""
        return f"{where} in the range {left}{lo}, {hi}{right}"

    def is_valid(self, value: Any) -> bool:
        """Return whether ``value`` satisfies this parameter's constraint."""
        if value is None:
            return self.nullable
        if self.kind == "bool":
            return isinstance(value, bool | _np_bool())
        if self.kind == "choice":
            return any(value == o and type(value) is type(o) for o in self.options)
        if self.kind == "str":
            return isinstance(value, str)
        if self.kind == "int":
            return _is_int(value) and self._in_range(float(value))
        if self.kind == "float":
            return _is_real(value) and self._in_range(float(value))
        if self.kind == "vector":
            items = _as_vector(value)
            return items is not None and len(items) > 0 and all(self._in_range(v) for v in items)
        return False

    def _in_range(self, v: float) -> bool:
        if math.isnan(v):
            return False
        low_open = self.closed in ("right", "neither")
        high_open = self.closed in ("left", "neither")
        if self.low is not None and (v < self.low or (v == self.low and low_open)):
            return False
        return not (self.high is not None and (v > self.high or (v == self.high and high_open)))

    def spec_problems(self) -> list[str]:
        """Return what is wrong with this declaration itself (empty when it is sound)."""
        problems = []
        if not _IDENTIFIER.match(self.name):
            problems.append(f"parameter name {self.name!r} must be a snake_case identifier")
        if self.kind not in PARAM_KINDS:
            kinds = ", ".join(PARAM_KINDS)
            problems.append(f"parameter {self.name!r} has kind {self.kind!r}; use one of {kinds}")
            return problems
        if self.closed not in _CLOSED:
            problems.append(
                f"parameter {self.name!r} has closed={self.closed!r}; use one of {_CLOSED}"
            )
            return problems
        if self.kind == "choice" and not self.options:
            problems.append(f"choice parameter {self.name!r} declares no options")
        if not self.is_valid(self.default):
            problems.append(
                f"default {self.default!r} of parameter {self.name!r} is not {self.constraint}"
            )
        bad = [g for g in self.grid if not self.is_valid(g)]
        if bad:
            problems.append(
                f"search grid of parameter {self.name!r} holds {bad!r}, not {self.constraint}"
            )
        return problems


def check_params(
    loss: str,
    schema: Sequence[Param],
    values: Mapping[str, Any],
    *,
    data_params: Iterable[str] = (),
    require_data_params: bool = False,
    prefix: str = "",
) -> None:
    """Validate hyperparameter values against a schema, reporting every problem in one error.

    Parameters
    ----------
    loss : str
        The loss name, quoted in messages.
    schema : sequence of Param
        The declared hyperparameters.
    values : mapping
        The values to check, by parameter name.
    data_params : iterable of str
        Factory arguments that the estimator computes from the training data; accepted too.
    require_data_params : bool
        Whether every data param must be present in ``values``.
    prefix : str
        Shown before parameter names in messages (``"loss__"`` for estimators).

    Raises
    ------
    InvalidLossParameterError
        Naming each unknown parameter (with a suggestion) and each out-of-range value.
    """
    by_name = {p.name: p for p in schema}
    data = tuple(data_params)
    valid = sorted([*by_name, *data])
    problems = []
    for key, value in values.items():
        if key in by_name:
            param = by_name[key]
            if not param.is_valid(value):
                problems.append(
                    f"The {prefix + key!r} parameter of loss {loss!r} must be "
                    f"{param.constraint}. Got {value!r} instead."
                )
        elif key not in data:
            hint = did_you_mean(prefix + key, [prefix + v for v in valid])
            listing = ", ".join(prefix + v for v in valid) if valid else "none"
            problems.append(
                f"Loss {loss!r} has no parameter {prefix + key!r}.{hint} "
                f"Valid parameters: {listing}."
            )
    if require_data_params:
        for name in data:
            if name not in values:
                problems.append(
                    f"Loss {loss!r} needs the data parameter {name!r}, which an estimator "
                    f"computes from the training rows; pass {name}=... when creating it directly."
                )
    if problems:
        raise InvalidLossParameterError("\n".join(problems))


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _np_bool() -> type:
    import numpy as np

    return np.bool_


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | _np_bool())


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | _np_bool())


def _as_vector(value: Any) -> list[float] | None:
    """Return the elements of a 1-D numeric sequence, array or tensor as floats, or None."""
    if isinstance(value, str | bytes | Mapping):
        return None
    if hasattr(value, "tolist") and hasattr(value, "ndim"):
        if value.ndim != 1:
            return None
        value = value.tolist()
    if not isinstance(value, Iterable):
        return None
    items = list(value)
    if not all(_is_real(v) for v in items):
        return None
    return [float(v) for v in items]
