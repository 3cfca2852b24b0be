"""The plugin hooks of lossreg and the ``hookimpl`` marker plugins decorate them with."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from lossreg.spec import LossSpec

__all__ = ["PROJECT_NAME", "hookimpl", "hookspec", "register_losses"]

PROJECT_NAME = "lossreg"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Decorate a plugin's hook functions with ``@lossreg.hookimpl``.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_losses() -> list[LossSpec]:  # type: ignore[empty-body]
    """Return the losses a plugin provides, as a list of :class:`lossreg.LossSpec`.

    Called once per registry, the first time a loss is looked up. Do nothing else here: no
    I/O, no global state. Return an empty list to register nothing.

    Examples
    --------
    >>> import lossreg
    >>> @lossreg.hookimpl
    ... def register_losses():
    ...     return [lossreg.LossSpec(name="my_loss_v1", ...)]  # doctest: +SKIP
    """
