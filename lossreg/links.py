"""Links: how a module's raw output becomes probabilities, scores or predicted values.

A :class:`~lossreg.LossSpec` names one of the built-in links (``"softmax"``, ``"sigmoid"``,
``"identity"``, ``"score"``) or provides its own :class:`Link` for special cases (expected bin
value, Dirichlet mean ...). A link may read the fitted criterion (bin centres, learned
temperatures), which is why it receives it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["BUILTIN_LINKS", "LINK_KINDS", "Link", "resolve_link"]

#: ``proba``: the transform returns probabilities (classifiers get ``predict_proba``).
#: ``score``: decision scores, argmax (or sign) decides; no probabilities.
#: ``value``: predicted values (regression).
LINK_KINDS = ("proba", "score", "value")


@dataclass(frozen=True)
class Link:
    """A transform from module output to predictions.

    Parameters
    ----------
    name : str
        Shown by ``lossreg info``.
    transform : callable
        ``transform(output, criterion) -> Tensor``; ``criterion`` is the fitted loss module,
        or ``None`` when no fitted module is at hand.
    kind : {"proba", "score", "value"}
        What the transform returns; decides which prediction methods an estimator offers.
    summary : str
        One line describing the link.
    """

    name: str
    transform: Callable[..., torch.Tensor]
    kind: str
    summary: str = ""

    @property
    def has_proba(self) -> bool:
        """Whether the link yields probabilities (an estimator then offers ``predict_proba``)."""
        return self.kind == "proba"

    def __call__(self, output: torch.Tensor, criterion: nn.Module | None = None) -> torch.Tensor:
        return self.transform(output, criterion)


def _softmax(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    return output.softmax(dim=-1)


def _sigmoid(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    return output.sigmoid()


def _identity(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    return output


BUILTIN_LINKS: dict[str, Link] = {
    "softmax": Link("softmax", _softmax, "proba", "class probabilities softmax(z)"),
    "sigmoid": Link("sigmoid", _sigmoid, "proba", "per-output probabilities sigmoid(z)"),
    "identity": Link("identity", _identity, "value", "the output is the predicted value"),
    "score": Link("score", _identity, "score", "decision scores; argmax or sign, no probabilities"),
}


def resolve_link(link: str | Link) -> Link:
    """Return the :class:`Link` a spec names, or the one it provides.

    Raises
    ------
    KeyError
        When ``link`` names no built-in link.
    """
    if isinstance(link, Link):
        return link
    return BUILTIN_LINKS[link]
