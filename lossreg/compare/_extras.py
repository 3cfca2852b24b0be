"""Which fit extras a loss takes with given parameters, composites' members included.

A loss built from other registered losses (``weighted_sum``'s ``losses``, a wrapper's
``base``) routes each member the extras it declares, but its static :class:`LossSpec`
cannot list them: they depend on the members. ``compare`` asks here instead, so that
``weighted_sum(losses=('cross_entropy', 'binary_kl_kd'))`` gets its teacher's logits and a
wrapper around ``group_dro`` its groups.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["check_data_extras", "declared_extras"]

#: the parameters through which composites name their member losses
_MEMBER_PARAMS = ("losses", "base")


def declared_extras(name: str, params: Mapping[str, Any] | None = None) -> frozenset[str]:
    """The fit extras of loss ``name`` with ``params``: its own and its members' (if any)."""
    from lossreg.estimators._mode import loss_mode
    from lossreg.registry import default_registry

    registry = default_registry()
    spec = registry.get_spec(name)
    extras = set(loss_mode(spec, params).fit_extras)  # a mode may drop some (cwcl's kernel)
    if spec.data_params_of is None:  # not built from other losses
        return frozenset(extras)
    values = {p.name: p.default for p in spec.params}
    values.update(params or {})
    for key in _MEMBER_PARAMS:
        members = values.get(key)
        for member in [members] if isinstance(members, str) else list(members or ()):
            try:
                extras.update(registry.get_spec(member).fit_extras)
            except (KeyError, TypeError):  # the composite names a bad member when it is built
                continue
    return frozenset(extras)


#: per-row extras that come from the data only, and how a comparison supplies each
_FROM_DATA = {
    "group": "name the column of group ids with --group COLUMN (config group = 'COLUMN'), or "
    "use data with a group column (a domain or auction generator)",
    "bid": "name the column of bids with --bid COLUMN (config bid = 'COLUMN'), or use data "
    "with a bid column (synthetic:auctions)",
}


def check_data_extras(fit_extras: Mapping[str, frozenset[str]], available: set[str]) -> None:
    """Refuse, before any fit, a loss whose data-only extra (``group``, ``bid``) is missing.

    ``fit_extras`` maps each compared loss's label to the extras it declares; ``available``
    holds the extras the data supplies. Without this check every fit of such a loss fails
    on its own with the estimator's message, after the others have run.
    """
    for extra, fix in _FROM_DATA.items():
        needing = sorted(label for label, names in fit_extras.items() if extra in names)
        if needing and extra not in available:
            raise ValueError(
                f"Loss(es) {', '.join(needing)} need the fit extra {extra!r}, which this "
                f"data does not supply: {fix}."
            )
