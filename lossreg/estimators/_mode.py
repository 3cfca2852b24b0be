"""A loss's mode for given hyperparameters: views, fit extras and target kind it trains with.

A :class:`~lossreg.LossSpec` states once how a loss is fed: ``views`` (one or two augmented
views per row), ``fit_extras`` and, for embedding losses, class labels as the target. A loss
whose hyperparameters switch how it is fed (``cwcl(kernel="laplace")`` weighs pairs by a
kernel on continuous targets over two augmented views, instead of contrasting with frozen
embeddings) says so through an optional static method of its factory::

    @staticmethod
    def mode_of(params: Mapping[str, Any]) -> Mapping[str, Any]:
        # keys (all optional): "views" (1 or 2), "fit_extras" (tuple of str),
        # "target" ("labels" or "continuous")
        ...

``params`` are the user's hyperparameters (defaults not filled in). Missing keys keep the
spec's values. Estimators and ``lossreg compare`` ask :func:`loss_mode` before building the
loss, since the mode decides how the target is encoded and whether a teacher is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lossreg.spec import LossSpec

__all__ = ["LossMode", "loss_mode"]

_TARGETS = ("labels", "continuous")


@dataclass(frozen=True)
class LossMode:
    """How a loss is fed with given hyperparameters.

    Attributes
    ----------
    views : {1, 2}
        Two: the network's outputs on two augmented copies of each batch, stacked (2N, D).
    fit_extras : tuple of str
        The per-row arrays the loss needs at fit time.
    target : {"labels", "continuous"}
        For embedding losses: class labels (label-encoded) or one real value per row.
    """

    views: int
    fit_extras: tuple[str, ...]
    target: str


def loss_mode(spec: LossSpec, params: Mapping[str, Any] | None = None) -> LossMode:
    """The :class:`LossMode` of ``spec`` with hyperparameters ``params``."""
    mode_of = getattr(spec.factory, "mode_of", None)
    declared = dict(mode_of(dict(params or {}))) if callable(mode_of) else {}
    unknown = sorted(set(declared) - {"views", "fit_extras", "target"})
    target = declared.get("target", "labels")
    views = declared.get("views", spec.views)
    if unknown or target not in _TARGETS or views not in (1, 2):
        raise ValueError(
            f"Loss {spec.name!r}: mode_of returned {declared!r}; it may hold 'views' (1 or 2), "
            f"'fit_extras' (a tuple of names) and 'target' (one of {', '.join(_TARGETS)})."
        )
    extras = tuple(declared.get("fit_extras", spec.fit_extras))
    return LossMode(views=int(views), fit_extras=extras, target=target)
