"""The flags of a loss as built with given hyperparameters (composites follow their members).

A registered spec is static, but a composite's nature can depend on what it is built from:
``weighted_sum`` of ``cross_entropy`` and ``entropy_min`` learns from unlabeled rows, one of
``cross_entropy`` and ``mae_prob`` does not. A factory that knows this defines a static
``effective_flags(params) -> dict`` returning the :class:`~lossreg.LossSpec` fields that
differ for ``params``; estimators, ``lossreg compare`` and the conformance kit read the
flags through :func:`effective_spec`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from lossreg.spec import LossSpec

__all__ = ["effective_spec"]


def effective_spec(spec: LossSpec, params: Mapping[str, Any] | None = None) -> LossSpec:
    """Return ``spec`` with the flags its factory reports for ``params`` (defaults filled in).

    Parameters
    ----------
    spec : LossSpec
        A registered spec.
    params : mapping, optional
        The hyperparameters the loss is built with (unprefixed names).

    Returns
    -------
    LossSpec
        ``spec`` itself when its factory has no ``effective_flags`` rule or the rule changes
        nothing; else a copy with the changed fields (``semi_supervised``, ``per_sample``).
    """
    rule = getattr(spec.factory, "effective_flags", None)
    if rule is None:
        return spec
    flags = rule({**spec.defaults, **(params or {})})
    return dataclasses.replace(spec, **flags) if flags else spec
