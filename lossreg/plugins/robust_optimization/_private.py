"""Shared machinery of the robust-optimisation wrappers: the base loss, group means, the link."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

import lossreg
from lossreg import InvalidLossParameterError, Link, LossSpec, Param
from lossreg import row_weights as _row_weights

__all__ = [
    "BaseParamsParam",
    "BatchWrapper",
    "base_data_params",
    "base_link",
    "base_output_size",
    "base_param",
    "batch_reduce",
    "group_ids",
    "group_means",
    "row_weights",
]

#: The shape facts of a width rule's context, as opposed to the wrapper's hyperparameters.
_SHAPE_KEYS = ("n_classes", "n_outputs", "task", "n_features", "width")

#: Every task a base loss could have; the base's own tasks are checked once built.
ALL_TASKS = frozenset({"binary", "multiclass", "multilabel", "regression", "ordinal"})


@dataclass(frozen=True)
class BaseParamsParam(Param):
    """A mapping ``{parameter: value}`` for the base loss, or None.

    Declared with kind ``"str"`` because lossreg's schema has no mapping kind; the value check
    and the message below say what is really accepted.
    """

    @property
    def constraint(self) -> str:
        return "a dict {parameter: value} of the base loss, or None"

    def is_valid(self, value: Any) -> bool:
        if value is None:
            return True
        return isinstance(value, Mapping) and all(isinstance(k, str) for k in value)


def base_param(default: str = "cross_entropy") -> tuple[Param, Param]:
    """The ``base`` and ``base_params`` parameters every wrapper declares."""
    return (
        Param(
            "base",
            "str",
            default,
            doc="name of a registered per-row loss whose row losses are reweighted",
        ),
        BaseParamsParam(
            "base_params",
            "str",
            None,
            nullable=True,
            doc="{parameter: value} for the base loss (data params included)",
        ),
    )


def _link_name(spec: LossSpec) -> str:
    return spec.link if isinstance(spec.link, str) else spec.link.name


class BatchWrapper(nn.Module):
    """Base class of losses that reweight the per-row losses of a registered ``base`` loss.

    Builds ``base`` with ``reduction="none"`` and exposes what the static spec cannot say
    (``tasks_``, ``fit_extras_``, ``data_params_``, ``link_``, ``extra_widths_``), as the
    composite losses do. The base's data params arrive through ``**data_params``: estimators
    compute them per training fold (the spec's ``data_params_of``, :func:`base_data_params`);
    a value in ``base_params`` wins.
    Subclasses set ``_name`` and ``_own_extras`` and implement ``forward``.
    """

    _name = "wrapper"
    _own_extras: tuple[str, ...] = ()
    #: reductions the wrapper supports; per-row wrappers add "none"
    _reductions: tuple[str, ...] = ("mean", "sum")

    def __init__(
        self,
        *,
        base: str,
        base_params: Mapping[str, Any] | None,
        reduction: str,
        **data_params: Any,
    ) -> None:
        super().__init__()
        self.base = base
        self.base_params = base_params
        if reduction not in self._reductions:
            raise lossreg.InvalidReductionError(
                f"Loss {self._name!r} is batch-level (its row weights depend on the whole "
                f"batch) and supports reduction 'mean' or 'sum'. Got {reduction!r} instead."
            )
        self.reduction = reduction
        try:
            spec = lossreg.get_spec(base)
        except lossreg.UnknownLossError as exc:
            raise InvalidLossParameterError(f"Loss {self._name!r}: base {exc.args[0]}") from None
        if not spec.per_sample:
            raise InvalidLossParameterError(
                f"Loss {self._name!r}: base loss {base!r} has no per-row form; pick a loss with "
                "per_sample=True (cross_entropy, bce, mse ...)."
            )
        own = dict(base_params or {})
        for key in spec.data_params:
            if key not in own and key in data_params:
                own[key] = data_params[key]
        try:
            self.base_loss = lossreg.create_loss(base, reduction="none", **own)
        except InvalidLossParameterError as exc:
            raise InvalidLossParameterError(
                f"Base {base!r} of loss {self._name!r}: {exc.args[0]}"
            ) from None
        self.tasks_ = frozenset(spec.tasks)
        self.fit_extras_ = tuple(dict.fromkeys((*self._own_extras, *spec.fit_extras)))
        self.data_params_ = tuple(spec.data_params)
        self.stochastic_ = spec.stochastic
        self.learnable_ = spec.learnable
        self.link_ = _link_name(spec)
        self._link = spec.link
        self._base_extras = tuple(spec.fit_extras)

    def extra_widths_(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The widths the base loss declares for its sized fit extras (``extra_widths``)."""
        spec = lossreg.get_spec(self.base)
        shape = {k: context[k] for k in _SHAPE_KEYS if k in context}
        own = {**spec.defaults, **(self.base_params or {}), **shape}
        return {extra: rule(own) for extra, rule in spec.extra_widths.items()}

    def base_losses(
        self, input: torch.Tensor, target: torch.Tensor, extras: Mapping[str, Any]
    ) -> torch.Tensor:
        """Per-row losses of the base loss, shape (N,)."""
        given = {k: v for k, v in extras.items() if k in self._base_extras}
        return self.base_loss(input, target, **given)

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        """Forward the epoch to the base loss when it has a schedule."""
        if hasattr(self.base_loss, "set_epoch"):
            self.base_loss.set_epoch(epoch, max_epochs)

    def reject_sample_weight(self, sample_weight: torch.Tensor | None) -> None:
        """Raise for sample weights, for losses that cannot honour them."""
        if sample_weight is not None:
            raise ValueError(
                f"Loss {self._name!r} cannot honour sample_weight (its weights come from the "
                "batch itself); fit without sample_weight or use a per-row loss."
            )

    def _load_from_state_dict(
        self, state_dict: Mapping[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # State buffers grown on demand (group weights, EMAs) may be larger in a saved state
        # than in a freshly built loss: take the saved shape and dtype before loading.
        for name, buffer in list(self._buffers.items()):
            saved = state_dict.get(prefix + name)
            if buffer is not None and saved is not None and saved.shape != buffer.shape:
                self._buffers[name] = torch.empty_like(saved, device=buffer.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return f"base={self.base!r}, base_params={self.base_params!r}"


def group_ids(group: Any, n_rows: int, name: str) -> torch.Tensor:
    """Return the ``group`` extra as int64 (N,), with a clear error when it is missing."""
    if group is None:
        raise ValueError(
            f"Loss {name!r} needs 'group': pass fit(X, y, group=...) with one int id per row "
            "(or group=... to the loss's forward)."
        )
    group = torch.as_tensor(group)
    if group.ndim == 2 and group.shape[1] == 1:
        group = group[:, 0]
    if group.ndim != 1 or group.shape[0] != n_rows:
        raise ValueError(
            f"Loss {name!r}: group must hold one id per row, shape ({n_rows},). Got shape "
            f"{tuple(group.shape)}."
        )
    if group.is_floating_point() and not bool((group == group.round()).all()):
        raise ValueError(f"Loss {name!r}: group ids must be integers. Got {group.tolist()!r}.")
    group = group.long()
    if group.numel() and int(group.min()) < 0:
        raise ValueError(f"Loss {name!r}: group ids must be >= 0. Got {int(group.min())}.")
    return group


def group_means(
    losses: torch.Tensor, group: torch.Tensor, n_groups: int, weight: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean loss and total weight of each group 0..n_groups-1 (0 for absent groups)."""
    totals = torch.zeros(n_groups, dtype=losses.dtype, device=losses.device)
    totals = totals.index_add(0, group, losses * weight)
    mass = torch.zeros(n_groups, dtype=losses.dtype, device=losses.device)
    mass = mass.index_add(0, group, weight)
    # An absent group (or one whose rows all weigh 0) has mean 0, as in the reference code.
    means = totals / torch.where(mass > 0, mass, torch.ones_like(mass))
    return means, mass


def batch_reduce(value: torch.Tensor, reduction: str, mass: torch.Tensor) -> torch.Tensor:
    """``mean`` keeps the batch-level value; ``sum`` scales it by the batch's total weight."""
    return value if reduction == "mean" else value * mass


def _apply_link(link: str | Link, output: torch.Tensor, criterion: Any) -> torch.Tensor:
    if isinstance(link, Link):
        return link(output, criterion)
    if link == "softmax":
        return output.softmax(dim=-1)
    if link == "sigmoid":
        return output.sigmoid()
    return output


def _base_link(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    if criterion is None:
        return output.softmax(dim=-1)  # the default base's link (cross_entropy)
    # A special link reads its own loss module (bin centres ...): hand it the base loss.
    return _apply_link(criterion._link, output, criterion.base_loss)


#: The base loss's link, read from the fitted criterion (softmax without one).
base_link = Link(
    "base_link",
    _base_link,
    "proba",
    "the base loss's link (softmax, sigmoid, identity or a special link)",
)


def base_data_params(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The base loss's data params, less those given in ``base_params``."""
    try:
        spec = lossreg.get_spec(params["base"])
    except (KeyError, lossreg.UnknownLossError):
        return ()  # the factory reports an unknown base, with a suggestion
    given = params.get("base_params") or {}
    given = given if isinstance(given, Mapping) else {}
    return tuple(d for d in spec.data_params if d not in given)


def base_output_size(context: Mapping[str, Any]) -> int:
    """Return the output size the base loss needs."""
    spec = lossreg.get_spec(context["base"])
    if spec.output_size is not None:
        own = dict(context.get("base_params") or {})
        return int(spec.output_size({**spec.defaults, **context, **own}))
    task = context.get("task")
    if task in ("binary", "multiclass"):
        return 1 if _link_name(spec) == "sigmoid" else int(context["n_classes"])
    return int(context["n_outputs"])


def row_weights(sample_weight: Any, like: torch.Tensor) -> torch.Tensor:
    """Sample weights (N,) as ``like``'s dtype, ones when absent (``like`` holds one row each)."""
    return _row_weights(sample_weight, like.shape[0], like)
