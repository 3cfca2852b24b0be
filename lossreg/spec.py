"""LossSpec, the one contract between a loss plugin and the rest of lossreg, and its rules."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lossreg.links import BUILTIN_LINKS, Link
from lossreg.params import Param

__all__ = [
    "DATA_PARAMS",
    "FIT_EXTRAS",
    "OUTPUTS",
    "SAMPLERS",
    "SCALAR_EXTRAS",
    "SIZED_EXTRAS",
    "TASKS",
    "VIEW_MAKERS",
    "LossSpec",
    "spec_problems",
]

#: The target types a loss can declare.
TASKS = frozenset(
    {"bag", "binary", "embedding", "multiclass", "multilabel", "ordinal", "ranking", "regression"}
    | {"mixed", "survival"}
)

#: Factory arguments that an estimator computes from the training fold, with their meaning.
DATA_PARAMS: dict[str, str] = {
    "n_classes": "number of classes (or labels) in the training fold",
    "class_counts": "rows per class in the training fold (per label for multilabel targets)",
    "class_priors": "class frequencies in the training fold (class_counts / n)",
    "n_outputs": "number of regression targets or labels (mixed targets: 2 columns)",
    "n_samples": "number of rows in the training fold",
    "target_min": "smallest training target (per output)",
    "target_max": "largest training target (per output)",
    "label_cooccurrence": "multilabel: L x L counts of rows where labels j and k are both positive",
    "embedding_dim": "width of the network's output (the embedding dimension D); the estimator "
    "takes it from the module it builds, not from the targets",
    "target_values": "the training targets themselves, one value (or one list per row) per row",
    "feature_dim": "width D of the penultimate features a network returns next to its logits "
    "(losses with outputs='logits+features'); the estimator takes it from the module it builds",
}

#: Per-row arrays a loss can ask for at fit time, routed with scikit-learn metadata routing.
FIT_EXTRAS: dict[str, str] = {
    "group": "group / environment / domain id per row",
    "bag": "bag id per row",
    "bag_target": "the bag's label proportion or mean, repeated on each row of the bag",
    "teacher_logits": "a teacher model's logits per row",
    "sample_index": "a stable index of each training row",
    "event": "event indicator per row (survival)",
    "features": "the row's input features X, routed to the criterion as well as the network",
    "rejected_label": "the rejected (dispreferred) class per row (preference supervision)",
    "teacher_features": "a teacher model's penultimate features per row, as wide as the "
    "student's features (losses with outputs='logits+features')",
    "bid": "the bid (value per click, >= 0) of each row: an ad's bid in its auction",
    "value": "a monetary value per row (a customer's lifetime value), unscaled",
}

#: Fit extras whose width (columns per row) a loss may declare in ``LossSpec.extra_widths``:
#: the float arrays whose width is the loss's choice. The others have a width fixed by what they
#: mean (ids, one event flag, the inputs X, a bag's class proportions).
SIZED_EXTRAS = ("teacher_logits", "teacher_features")

#: Fit extras that hold one number per row, whatever the loss: shape (N,) or (N, 1) (ids, a
#: flag, a class, an amount).
SCALAR_EXTRAS = ("group", "bag", "sample_index", "event", "rejected_label", "bid", "value")

#: How an estimator may have to draw training batches for a loss: ``class_balanced`` (several
#: rows of each class in a batch), ``whole_bags`` / ``whole_groups`` (every bag or group id of
#: the ``bag`` / ``group`` extra lies entirely inside one batch), ``group_balanced`` /
#: ``group_stratified`` (every batch holds rows of every group of the ``group`` extra, in
#: equal shares / in proportion to the group sizes).
SAMPLERS = (
    None,
    "class_balanced",
    "whole_bags",
    "whole_groups",
    "group_balanced",
    "group_stratified",
)

#: What the network returns to the loss: ``logits`` (one tensor, (N, width)) or
#: ``logits+features`` (the pair ``(logits, features)``, features (N, D) being the network's
#: penultimate layer, for losses on representations: CORAL, Fishr, neural-collapse terms ...).
OUTPUTS = ("logits", "logits+features")

#: How the estimator makes the two views of a ``views=2`` loss: ``augment`` (both views are
#: random augmentations of the batch, the estimator's augmentation) or ``virtual_adversarial``
#: (view 1 is the batch itself, view 2 the batch moved by its virtual adversarial perturbation,
#: found by one power iteration through the network with the loss's ``eps`` and ``xi``).
VIEW_MAKERS = ("augment", "virtual_adversarial")

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MISSING = object()


class _FrozenMapping(Mapping[str, Any]):
    """A read-only, hashable mapping, so that a LossSpec stays hashable with ``extra_widths``."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, Any]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, id(v)) for k, v in self._items.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __repr__(self) -> str:
        return repr(self._items)


@dataclass(frozen=True)
class LossSpec:
    """Everything lossreg needs to know about a loss, as plain data.

    Parameters
    ----------
    name : str
        snake_case, ``^[a-z][a-z0-9_]*$``, no ``_loss`` suffix. A changed formula gets a new
        name; a name never gets new numerics.
    factory : callable
        The ``nn.Module`` class (or a keyword-only factory). Every hyperparameter has a default
        equal to the paper's; it accepts ``reduction`` and every name in ``data_params``.
    tasks : set of str
        A non-empty subset of :data:`TASKS`.
    link : str or Link
        ``"softmax"``, ``"sigmoid"``, ``"identity"``, ``"score"``, or a :class:`Link`.
    reference : str
        The paper: title and arXiv id or DOI.
    summary : str
        One line for ``lossreg list``.
    aliases : tuple of str
        Other names, numerically identical with the same defaults.
    params : tuple of Param
        The hyperparameter schema.
    data_params : tuple of str
        Factory arguments computed from the training fold (keys of :data:`DATA_PARAMS`).
    fit_extras : tuple of str
        Per-row arrays needed at fit time (keys of :data:`FIT_EXTRAS`).
    per_sample : bool
        Whether ``reduction="none"`` returns one loss per row.
    stochastic : bool
        Whether two calls on the same input may differ.
    learnable : bool
        Whether the module has parameters that must be trained with the network.
    output_size : callable or None
        ``output_size(context) -> int`` with ``context`` holding ``n_classes``, ``n_outputs``
        and the loss's hyperparameters; ``None`` lets the estimator decide from the link
        and the task.
    sampler : str or None, one of :data:`SAMPLERS`
        How training batches must be drawn: ``"class_balanced"`` gives every batch several
        rows of each of its classes (pair and triplet losses need positives in a batch);
        ``"whole_bags"`` / ``"whole_groups"`` keep each bag (``bag`` extra) or group (``group``
        extra: a query, a pair) inside one batch, for losses on bag or group aggregates;
        ``"group_balanced"`` / ``"group_stratified"`` put rows of every group (``group``
        extra: an environment, a domain) in every batch, in equal shares (GroupDRO's
        uniform-over-groups sampling, one equal minibatch per environment for IRM) or in
        proportion to the group sizes (every row once per epoch), for losses that compare
        groups inside a batch.
    views : {1, 2}
        ``2``: the loss takes a (2N, D) output whose rows i and i+N are two augmented views of
        row i; the estimator augments each batch twice and stacks the outputs.
    view_maker : str, one of :data:`VIEW_MAKERS`
        How the two views of a ``views=2`` loss are made. ``"augment"`` (the default): two
        random augmentations. ``"virtual_adversarial"``: rows i are the clean inputs x, rows
        i+N the inputs x + r_adv, r_adv being the perturbation of norm ``eps`` that most
        changes the network's softmax output (virtual adversarial training); the loss must
        declare the float parameters ``eps`` (the radius, in the units of the scaled inputs)
        and ``xi`` (the finite-difference step of the power iteration), which the estimator
        reads from the loss module.
    semi_supervised : bool
        The loss learns from unlabeled rows, marked ``-1`` in the target (scikit-learn's
        convention, as in ``SelfTrainingClassifier``): estimators keep ``-1`` out of
        ``classes_`` and the data params, and pass it to the loss unchanged.
    outputs : {"logits", "logits+features"}
        ``"logits+features"``: the loss's ``input`` is the pair ``(logits, features)``, logits
        (N, width) as for any loss and features (N, D) the network's penultimate layer (the
        default MLP's last hidden layer). Estimators build such a network, pass the pair to
        the loss in training, and give the link the logits only.
    extra_widths : mapping of str to callable
        ``{extra: width(context)}`` for fit extras (of :data:`SIZED_EXTRAS`, declared in
        ``fit_extras``) whose columns per row are not the default (one per class for class
        tasks, one per output column otherwise): two models' logits side by side, old
        embeddings as wide as the output. ``context`` is ``output_size``'s plus ``width``, the
        network's output width; the callable returns an int, a tuple of accepted ints (the
        first is the usual one) or None (no fixed width). Estimators reject a passed extra of
        another width; the conformance kit builds its toy extras that wide. Its docstring's
        first line is what ``lossreg info`` shows.
    data_params_of : callable or None
        For a loss built from other registered losses (``weighted_sum``, wrappers with a
        ``base``): ``data_params_of(params) -> iterable of str``, the data params its members
        need for these hyperparameters (defaults filled in). Estimators and the kit compute
        them per training fold, as for ``data_params``, and pass them to the factory, which
        takes them through ``**kwargs`` and hands each member its own.
    """

    name: str
    factory: Callable[..., Any]
    tasks: frozenset[str]
    link: str | Link
    reference: str
    summary: str = ""
    aliases: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    data_params: tuple[str, ...] = ()
    fit_extras: tuple[str, ...] = ()
    per_sample: bool = True
    stochastic: bool = False
    learnable: bool = False
    output_size: Callable[[Mapping[str, Any]], int] | None = None
    sampler: str | None = None
    views: int = 1
    view_maker: str = "augment"
    semi_supervised: bool = False
    outputs: str = "logits"
    extra_widths: Mapping[str, Callable[[Mapping[str, Any]], Any]] = _FrozenMapping({})
    data_params_of: Callable[[Mapping[str, Any]], Any] | None = None

    def __post_init__(self) -> None:
        # Accept lists and sets from plugin authors, store immutable values.
        tasks = {self.tasks} if isinstance(self.tasks, str) else self.tasks
        object.__setattr__(self, "tasks", frozenset(tasks))
        for attr in ("aliases", "data_params", "fit_extras"):
            value = getattr(self, attr)
            object.__setattr__(self, attr, (value,) if isinstance(value, str) else tuple(value))
        params = self.params.values() if isinstance(self.params, Mapping) else self.params
        object.__setattr__(self, "params", tuple(params))
        if isinstance(self.extra_widths, Mapping):
            object.__setattr__(self, "extra_widths", _FrozenMapping(self.extra_widths))

    @property
    def names(self) -> tuple[str, ...]:
        """The name followed by the aliases."""
        return (self.name, *self.aliases)

    @property
    def defaults(self) -> dict[str, Any]:
        """The hyperparameters' defaults, by name."""
        return {p.name: p.default for p in self.params}


def spec_problems(spec: Any) -> list[tuple[str, str]]:
    """Return every registration rule that ``spec`` breaks, as ``(rule, explanation)`` pairs."""
    if not isinstance(spec, LossSpec):
        return [("type", f"expected a lossreg.LossSpec, got {type(spec).__name__} {spec!r}")]
    problems: list[tuple[str, str]] = []
    for label, value in [("name", spec.name)] + [("alias", a) for a in spec.aliases]:
        if not isinstance(value, str) or not _NAME.match(value):
            problems.append((label, f"{label} {value!r} must match {_NAME.pattern}"))
        elif value.endswith("_loss"):
            problems.append((label, f"{label} {value!r} must not end in '_loss'"))
    if spec.name in spec.aliases or len(set(spec.aliases)) != len(spec.aliases):
        problems.append(("alias", f"aliases {spec.aliases!r} repeat a name"))
    if not spec.tasks:
        problems.append(("tasks", "declares no task"))
    unknown = sorted(spec.tasks - TASKS)
    if unknown:
        problems.append(("tasks", f"unknown tasks {unknown!r}; valid: {', '.join(sorted(TASKS))}"))
    if not isinstance(spec.link, Link) and spec.link not in BUILTIN_LINKS:
        problems.append(
            ("link", f"unknown link {spec.link!r}; use one of {', '.join(BUILTIN_LINKS)} or a Link")
        )
    if spec.sampler not in SAMPLERS:
        problems.append(("sampler", f"sampler {spec.sampler!r} is not one of {SAMPLERS!r}"))
    needed = {
        "whole_bags": "bag",
        "whole_groups": "group",
        "group_balanced": "group",
        "group_stratified": "group",
    }.get(spec.sampler or "")
    if needed and needed not in spec.fit_extras:
        problems.append(
            ("sampler", f"sampler {spec.sampler!r} needs {needed!r} in fit_extras to group by")
        )
    if spec.outputs not in OUTPUTS:
        problems.append(("outputs", f"outputs {spec.outputs!r} is not one of {OUTPUTS!r}"))
    elif "feature_dim" in spec.data_params and spec.outputs != "logits+features":
        problems.append(
            (
                "outputs",
                "data param 'feature_dim' is the width of the features of a "
                "'logits+features' output; declare outputs='logits+features'",
            )
        )
    problems.extend(("extra-widths", text) for text in _extra_width_problems(spec))
    if spec.data_params_of is not None and not callable(spec.data_params_of):
        problems.append(("data-params", f"data_params_of {spec.data_params_of!r} is not callable"))
    if spec.views not in (1, 2):
        problems.append(("views", f"views must be 1 or 2, got {spec.views!r}"))
    problems.extend(("view-maker", text) for text in _view_maker_problems(spec))
    if not (isinstance(spec.reference, str) and spec.reference.strip()):
        problems.append(("reference", "has no reference (paper title and arXiv id or DOI)"))
    if not (isinstance(spec.summary, str) and spec.summary.strip()):
        problems.append(("summary", "has no one-line summary"))
    for label, names, known in (
        ("data-params", spec.data_params, DATA_PARAMS),
        ("fit-extras", spec.fit_extras, FIT_EXTRAS),
    ):
        for name in names:
            if name not in known:
                problems.append(
                    (label, f"unknown {label} entry {name!r}; valid: {', '.join(known)}")
                )
    seen: set[str] = set()
    for param in spec.params:
        if not isinstance(param, Param):
            problems.append(("params", f"expected lossreg.Param, got {param!r}"))
            continue
        if param.name in seen or param.name in spec.data_params:
            problems.append(("params", f"parameter {param.name!r} is declared twice"))
        seen.add(param.name)
        problems.extend(("params", text) for text in param.spec_problems())
    problems.extend(("factory", text) for text in _factory_problems(spec))
    return problems


def _view_maker_problems(spec: LossSpec) -> list[str]:
    if spec.view_maker not in VIEW_MAKERS:
        return [f"view_maker {spec.view_maker!r} is not one of {VIEW_MAKERS!r}"]
    if spec.view_maker == "augment":
        return []
    problems = []
    if spec.views != 2:
        problems.append(f"view_maker {spec.view_maker!r} makes a second view; declare views=2")
    if spec.outputs != "logits":
        problems.append(f"view_maker {spec.view_maker!r} needs outputs='logits' (softmax logits)")
    declared = {p.name for p in spec.params if isinstance(p, Param)}
    missing = [name for name in ("eps", "xi") if name not in declared]
    if missing:
        problems.append(
            f"view_maker {spec.view_maker!r} reads the perturbation radius 'eps' and the "
            f"power-iteration step 'xi' from the loss; declare {', '.join(map(repr, missing))} "
            "in params"
        )
    return problems


def _extra_width_problems(spec: LossSpec) -> list[str]:
    if not isinstance(spec.extra_widths, Mapping):
        return [
            f"extra_widths must be a mapping {{extra: width(context)}}, got {spec.extra_widths!r}"
        ]
    problems = []
    for name, rule in spec.extra_widths.items():
        if name not in SIZED_EXTRAS:
            problems.append(
                f"extra_widths names {name!r}; only these extras have a width a loss chooses: "
                f"{', '.join(SIZED_EXTRAS)}"
            )
        elif name not in spec.fit_extras:
            problems.append(
                f"extra_widths names {name!r}, which is not in fit_extras {spec.fit_extras!r}"
            )
        if not callable(rule):
            problems.append(
                f"the width of {name!r} must be a callable width(context), got {rule!r}"
            )
    return problems


def _factory_problems(spec: LossSpec) -> list[str]:
    """Check that the factory's signature and the declared schema agree."""
    if not callable(spec.factory):
        return [f"factory {spec.factory!r} is not callable"]
    try:
        signature = inspect.signature(spec.factory)
    except (TypeError, ValueError) as exc:
        return [f"factory signature cannot be read: {exc}"]
    parameters = signature.parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    problems = []
    if "reduction" not in parameters and not takes_kwargs:
        problems.append("factory does not accept 'reduction'")
    declared = {p.name: p for p in spec.params}
    for name, parameter in parameters.items():
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL) or name in (
            "reduction",
            "self",
        ):
            continue
        if name in spec.data_params:
            continue
        if name not in declared:
            problems.append(f"factory argument {name!r} is not declared in params or data_params")
        elif parameter.default is inspect.Parameter.empty:
            problems.append(f"factory argument {name!r} has no default")
        elif not _same_default(parameter.default, declared[name].default):
            problems.append(
                f"default of {name!r} differs: factory {parameter.default!r}, "
                f"params {declared[name].default!r}"
            )
    if spec.data_params_of is not None and not takes_kwargs:
        problems.append("data_params_of is set but the factory takes no **kwargs to receive them")
    if not takes_kwargs:
        for name in [*declared, *spec.data_params]:
            if name not in parameters:
                problems.append(f"{name!r} is declared but the factory does not accept it")
    return problems


def _same_default(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return list(a) == list(b)
    try:
        return bool(a == b)
    except (TypeError, ValueError, RuntimeError):  # arrays and tensors have no single truth value
        return a is b
