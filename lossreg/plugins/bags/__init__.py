"""Built-in plugin: bag-level losses (learning from label proportions and aggregate responses)."""

from __future__ import annotations

from lossreg import LossSpec, hookimpl

__all__ = ["NOT_REGISTERED", "register_losses"]

#: Catalogue entries that cannot be a criterion for an MLP on tabular data, with the reason.
NOT_REGISTERED: dict[str, str] = {}


@hookimpl
def register_losses() -> list[LossSpec]:
    return []
