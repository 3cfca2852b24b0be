"""Training-batch samplers in compare: ``sampler=...`` per loss entry or for every loss.

The embedding task's :class:`~lossreg.LossEmbedder` draws its training batches as its
``sampler`` option says (``"auto"``, ``"random"``, ``"class_balanced"``,
``"pseudo_label_diverse"``). In a comparison the option is set for every loss in the
estimator settings (``[compare.estimator] sampler = "random"``), or for one loss entry
beside its parameters, so that one comparison holds both variants of a loss::

    losses = ["info_nce", "info_nce(sampler=pseudo_label_diverse)"]

``sampler`` is not passed to the loss. The pseudo-label sampler takes its settings in
parentheses, quoted inside a loss entry:
``info_nce(sampler='pseudo_label_diverse(n_clusters=32, latent_dim=8)')`` (the parameters of
:class:`~lossreg.estimators.PseudoLabelDiverse`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["SAMPLER_KEY", "check_samplers", "sampler_setting", "split_sampler"]

#: the loss-entry parameter (and estimator setting) that chooses the batch sampler
SAMPLER_KEY = "sampler"


def split_sampler(params: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """A loss entry's parameters without ``sampler``, and its ``sampler`` (None if absent)."""
    rest = {k: v for k, v in params.items() if k != SAMPLER_KEY}
    return rest, params.get(SAMPLER_KEY)


def sampler_setting(value: Any) -> Any:
    """The ``LossEmbedder(sampler=...)`` value of a configured sampler.

    ``"random"`` and the other names stay strings; ``"pseudo_label_diverse(k=v, ...)"``
    becomes a :class:`~lossreg.estimators.PseudoLabelDiverse` with those settings.

    Raises
    ------
    ValueError
        For an unknown sampler name, settings given to a sampler without any, or invalid
        pseudo-label settings; the message names the value and the choices.
    """
    from lossreg.compare._losses import _parse_one
    from lossreg.estimators import PseudoLabelDiverse
    from lossreg.estimators.embedder import SAMPLER_NAMES

    if isinstance(value, PseudoLabelDiverse):
        return value
    if not isinstance(value, str):
        raise ValueError(
            f"sampler must be a name, one of {', '.join(map(repr, SAMPLER_NAMES))}. Got {value!r}."
        )
    try:
        parsed = _parse_one(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.name not in SAMPLER_NAMES:
        raise ValueError(
            f"Unknown sampler {value!r}: use one of {', '.join(map(repr, SAMPLER_NAMES))}, "
            "e.g. sampler=pseudo_label_diverse."
        )
    if parsed.name != "pseudo_label_diverse":
        if parsed.params:
            raise ValueError(
                f"Sampler {parsed.name!r} takes no settings. Got {value!r}; write "
                f"sampler={parsed.name}."
            )
        return parsed.name
    try:
        return PseudoLabelDiverse(**parsed.params)
    except TypeError as exc:
        known = ", ".join(PseudoLabelDiverse().get_params())
        raise ValueError(
            f"Cannot read sampler {value!r}: {exc}. The settings of pseudo_label_diverse "
            f"are: {known}."
        ) from None


def check_samplers(
    entries: Iterable[tuple[str, Mapping[str, Any]]],
    task: str,
    estimator_params: Mapping[str, Any] | None,
) -> None:
    """Fail before any fit when a sampler is unknown or given for a task other than embedding.

    ``entries`` are the (label, parameters) of the loss entries.
    """
    where = []
    if estimator_params and SAMPLER_KEY in estimator_params:
        where.append(("the estimator settings", estimator_params[SAMPLER_KEY]))
    where.extend((label, params[SAMPLER_KEY]) for label, params in entries if SAMPLER_KEY in params)
    for place, value in where:
        if task != "embedding":
            raise ValueError(
                f"sampler={value!r} in {place} chooses LossEmbedder's training batches: it "
                f"works for task 'embedding', not {task!r}. Remove it."
            )
        try:
            sampler_setting(value)
        except ValueError as exc:
            raise ValueError(f"In {place}: {exc}") from None
