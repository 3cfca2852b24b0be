"""WeightedSum: a loss made of other registered losses, summed per row with weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

import lossreg
from lossreg import (
    InvalidLossParameterError,
    InvalidReductionError,
    Link,
    LossSpec,
    check_batch_reduction,
    reduce,
)

from .semi import member_flags, semi_supervised_sum

__all__ = ["WeightedSum", "member_data_params", "member_link", "member_output_size"]

_NAME = "weighted_sum"

#: The shape facts of a width rule's context, as opposed to the composite's hyperparameters.
_SHAPE_KEYS = ("n_classes", "n_outputs", "task", "n_features", "width")


def _as_names(losses: str | Sequence[str]) -> tuple[str, ...]:
    return (losses,) if isinstance(losses, str) else tuple(losses)


def _link_name(spec: LossSpec) -> str:
    return spec.link if isinstance(spec.link, str) else spec.link.name


def _member_specs(names: tuple[str, ...]) -> list[LossSpec]:
    """Return the members' specs, checking that they can be combined."""
    problems = []
    specs = []
    for name in names:
        if name == _NAME:
            problems.append(f"'{_NAME}' cannot be a member of itself.")
            continue
        try:
            specs.append(lossreg.get_spec(name))
        except lossreg.UnknownLossError as exc:
            problems.append(f"member {name!r}: {exc.args[0]}")
    canonical = [s.name for s in specs]
    repeated = sorted({n for n in canonical if canonical.count(n) > 1})
    if repeated:
        problems.append(
            f"members {repeated!r} appear more than once (names and aliases count as the same "
            "loss); give each loss once and set its weight instead."
        )
    if problems:
        raise InvalidLossParameterError("\n".join(f"Loss '{_NAME}': {p}" for p in problems))
    return specs


class WeightedSum(nn.Module):
    r"""A weighted sum of registered losses, reduced once: :math:`\ell_i = \sum_m w_m \ell^{(m)}_i`.

    Every member is built with :func:`lossreg.create_loss` and ``reduction="none"``; the
    per-row sum goes through :func:`lossreg.reduce` with the call's ``sample_weight``, so a
    sample weight scales every member alike.

    Parameters
    ----------
    losses : sequence of str, default=("cross_entropy", "mae_prob")
        Member loss names (aliases allowed, each loss at most once). The members must share at
        least one task and the same link (checked here, with an error naming the members).
    weights : sequence of float >= 0, or None, default=None
        One weight per member; ``None`` weighs every member 1.
    member_params : dict or None, default=None
        ``{member name: {parameter: value}}``, the members' hyperparameters and data
        parameters, validated by each member's schema (keys as written in ``losses``).
    reduction : {"mean", "sum", "none"}, default="mean"
    **data_params
        Data parameters (``n_classes=...``) handed to every member that declares them; a
        member's own value in ``member_params`` wins. Estimators compute the ones the members
        need (the spec's ``data_params_of``, :func:`member_data_params`) on each training
        fold, as for any loss's ``data_params``.

    Attributes
    ----------
    members : nn.ModuleList
        The member loss modules, in order.
    tasks_ : frozenset of str
        The tasks every member supports.
    link_ : str
        The members' shared link name.
    weights_ : list of float
        The weight of each member (1.0 each when ``weights`` is None).
    fit_extras_, data_params_ : tuple of str
        The union of the members' fit extras and data parameters (the static spec declares
        none).
    stochastic_, learnable_ : bool
        Whether any member is stochastic / has learnable parameters.
    semi_supervised_ : bool
        Whether any member is semi-supervised (the composite then is, and is batch-level).

    Notes
    -----
    Search spaces: ``weights`` and ``member_params`` are ordinary estimator parameters
    (``loss__weights``, ``loss__member_params``), so ``GridSearchCV`` varies them like any
    other value, e.g. ``{"loss__weights": [(1.0, 0.1), (1.0, 0.5)], "loss__member_params":
    [{"focal": {"gamma": 1.0}}, {"focal": {"gamma": 2.0}}]}``; :func:`member_param_grid`
    expands per-member grids into that list. Fit extras are routed to each member that
    declares them; ``set_epoch`` is forwarded to members that have it. Members without a
    per-row form are rejected, unless a member is semi-supervised.

    Semi-supervised members (``semi_supervised`` specs: ``entropy_min``,
    ``entropy_prior_kl`` ...) make the composite semi-supervised (estimators then keep rows
    labelled -1, and ``lossreg compare`` gives it its unlabeled rows) and batch-level:
    :math:`L = \sum_m w_m L^{(m)}`, where a supervised member's :math:`L^{(m)}` is its
    (sample-weighted) mean over the labelled rows of the batch (0 for a batch without any)
    and a semi-supervised member's is its own reduced value on every row. Batch-level
    semi-supervised members are accepted; ``reduction="none"`` is refused. See
    :mod:`lossreg.plugins.composite.semi`.

    Examples
    --------
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [3.0, 0.0, 0.0]])
    >>> labels = torch.tensor([0, 1, 2, 1])
    >>> loss = WeightedSum(losses=("cross_entropy", "mae_prob"), weights=(1.0, 0.5),
    ...                    reduction="none")
    >>> [round(v, 4) for v in loss(logits, labels).tolist()]
    [0.3261, 0.7424, 1.7653, 4.0496]
    """

    def __init__(
        self,
        *,
        losses: str | Sequence[str] = ("cross_entropy", "mae_prob"),
        weights: Sequence[float] | None = None,
        member_params: Mapping[str, Mapping[str, Any]] | None = None,
        reduction: str = "mean",
        **data_params: Any,
    ) -> None:
        super().__init__()
        self.losses = losses
        self.weights = weights
        self.member_params = member_params
        if reduction not in ("mean", "sum", "none"):
            raise InvalidReductionError(
                f"reduction must be one of 'mean', 'sum', 'none'. Got {reduction!r} instead."
            )
        self.reduction = reduction
        names = _as_names(losses)
        specs = _member_specs(names)
        self._check_combination(names, specs, weights, member_params)
        self.tasks_ = frozenset.intersection(*(s.tasks for s in specs))
        # What the static spec cannot say, from the members (for estimators that look).
        self.fit_extras_ = tuple(dict.fromkeys(e for s in specs for e in s.fit_extras))
        self.data_params_ = tuple(dict.fromkeys(d for s in specs for d in s.data_params))
        self.stochastic_ = any(s.stochastic for s in specs)
        self.learnable_ = any(s.learnable for s in specs)
        self.link_ = _link_name(specs[0])
        self._link = specs[0].link
        self._extras = [s.fit_extras for s in specs]
        # A semi-supervised member makes the composite semi-supervised and batch-level
        # (see ``semi``): each member is then reduced on its own rows.
        self.semi_supervised_ = any(s.semi_supervised for s in specs)
        self._semi = [s.semi_supervised for s in specs]
        if self.semi_supervised_:
            check_batch_reduction(reduction, f"{_NAME} with a semi-supervised member")
        member_reduction = "mean" if self.semi_supervised_ else "none"
        member_params = member_params or {}
        members, flat = [], []
        for name, spec in zip(names, specs):
            own = dict(member_params.get(name, {}))
            for key in spec.data_params:
                if key not in own and key in data_params:
                    own[key] = data_params[key]
            try:
                members.append(lossreg.create_loss(name, reduction=member_reduction, **own))
            except InvalidLossParameterError as exc:
                raise InvalidLossParameterError(
                    f"Member {name!r} of loss '{_NAME}': {exc.args[0]}"
                ) from None
            except ValueError:
                # A batch-level member refuses reduction="none" unless its own parameters
                # give it a per-row form (softmax_norm_penalty's per_sample=True).
                if spec.per_sample:
                    raise
                flat.append(name)
        if flat:
            raise InvalidLossParameterError(
                f"Loss '{_NAME}': members {flat!r} have no per-row form and cannot be summed "
                "per row (with these parameters: a member whose parameters give it a per-row "
                "form, e.g. softmax_norm_penalty with per_sample=True, is accepted)."
            )
        self.members = nn.ModuleList(members)
        # Python floats, not a float32 buffer, so float64 inputs keep every digit of a weight.
        self.weights_ = [1.0] * len(names) if weights is None else [float(w) for w in weights]

    @staticmethod
    def _check_combination(
        names: tuple[str, ...],
        specs: list[LossSpec],
        weights: Sequence[float] | None,
        member_params: Mapping[str, Mapping[str, Any]] | None,
    ) -> None:
        problems = []
        if weights is not None and len(weights) != len(names):
            problems.append(
                f"'weights' has {len(weights)} values for {len(names)} members {list(names)!r}; "
                "pass one weight per member."
            )
        unknown = sorted(set(member_params or {}) - set(names))
        if unknown:
            problems.append(
                f"'member_params' names {unknown!r}, which are not members; members: "
                f"{list(names)!r}."
            )
        described = "; ".join(
            f"{n!r} supports {', '.join(sorted(s.tasks))}" for n, s in zip(names, specs)
        )
        if not frozenset.intersection(*(s.tasks for s in specs)):
            problems.append(f"the members share no task ({described}); pick losses of one task.")
        links = {_link_name(s) for s in specs}
        if len(links) > 1:
            by_link = "; ".join(f"{n!r} uses {_link_name(s)!r}" for n, s in zip(names, specs))
            problems.append(f"the members use different links ({by_link}); use one link.")
        if problems:
            raise InvalidLossParameterError("\n".join(f"Loss '{_NAME}': {p}" for p in problems))

    #: the spec flags for given hyperparameters (read through ``lossreg._effective``)
    effective_flags = staticmethod(member_flags)

    def extra_widths_(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The widths the members declare for their sized fit extras (``extra_widths``).

        Each member's rule sees its own hyperparameters and the shape facts of ``context``
        (the output width is shared: the members read the same output). The first member that
        declares an extra decides its width.
        """
        shape = {k: context[k] for k in _SHAPE_KEYS if k in context}
        own_params = self.member_params or {}
        out: dict[str, Any] = {}
        for name in _as_names(self.losses):
            spec = lossreg.get_spec(name)
            member = {**spec.defaults, **own_params.get(name, {}), **shape}
            for extra, rule in spec.extra_widths.items():
                out.setdefault(extra, rule(member))
        return out

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        """Return the reduced weighted sum of the members' per-row losses."""
        if self.semi_supervised_:
            return semi_supervised_sum(
                self.members,
                self.weights_,
                self._semi,
                self._extras,
                input,
                target,
                sample_weight,
                extras,
                self.reduction,
            )
        total = None
        for weight, member, wanted in zip(self.weights_, self.members, self._extras):
            given = {k: v for k, v in extras.items() if k in wanted}
            term = weight * member(input, target, **given)
            total = term if total is None else total + term
        return reduce(total, self.reduction, sample_weight)

    def per_member(self, input: torch.Tensor, target: torch.Tensor, **extras: Any) -> list:
        """Return each member's unweighted per-row losses (for logging terms separately)."""
        return [
            member(input, target, **{k: v for k, v in extras.items() if k in wanted})
            for member, wanted in zip(self.members, self._extras)
        ]

    def set_epoch(self, epoch: int, max_epochs: int) -> None:
        """Forward the epoch to every member that has a schedule."""
        for member in self.members:
            if hasattr(member, "set_epoch"):
                member.set_epoch(epoch, max_epochs)

    def extra_repr(self) -> str:
        return (
            f"losses={self.losses!r}, weights={self.weights!r}, "
            f"member_params={self.member_params!r}, reduction={self.reduction!r}"
        )


def _apply_link(link: str | Link, output: torch.Tensor, criterion: Any) -> torch.Tensor:
    if isinstance(link, Link):
        return link(output, criterion)
    if link == "softmax":
        return output.softmax(dim=-1)
    if link == "sigmoid":
        return output.sigmoid()
    return output


def _member_link(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    if criterion is None:
        return output.softmax(dim=-1)  # the default members' link
    # A special link reads its own loss module (bin centres ...): hand it the first member.
    return _apply_link(criterion._link, output, criterion.members[0])


#: The shared link of the members, read from the fitted criterion (softmax without one).
member_link = Link(
    "member_link",
    _member_link,
    "proba",
    "the members' shared link (softmax, sigmoid, identity or a special link)",
)


def member_output_size(context: Mapping[str, Any]) -> int:
    """Return the output size the members agree on (the first member's rule)."""
    names = _as_names(context["losses"])
    spec = lossreg.get_spec(names[0])
    if spec.output_size is not None:
        own = dict((context.get("member_params") or {}).get(names[0], {}))
        return int(spec.output_size({**spec.defaults, **context, **own}))
    task = context.get("task")
    if task in ("binary", "multiclass"):
        return 1 if _link_name(spec) == "sigmoid" else int(context["n_classes"])
    return int(context["n_outputs"])


def member_data_params(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The members' data params, less those a member is given in ``member_params``."""
    own_params = params.get("member_params") or {}
    names: list[str] = []
    for name in _as_names(params.get("losses") or ()):
        try:
            spec = lossreg.get_spec(name)
        except lossreg.UnknownLossError:
            continue  # the factory reports unknown members, with a suggestion
        given = own_params.get(name, {}) if isinstance(own_params, Mapping) else {}
        names.extend(d for d in spec.data_params if d not in given)
    return tuple(dict.fromkeys(names))
