"""The conformance checks: one small function per contract a registered loss must keep.

Each check takes a :class:`~lossreg.testing.LossCase`, raises ``AssertionError`` (with a
message saying what broke and how to fix it) when the loss breaks the contract, and
:class:`SkipCheck` when it finds at run time that the contract does not concern this loss.
Which checks apply is decided from the spec's flags beforehand (:func:`applicable_checks`).
"""

from __future__ import annotations

import copy
import dataclasses
import io
import math
import pickle
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from lossreg._effective import effective_spec
from lossreg.links import LINK_KINDS, resolve_link
from lossreg.params import Param, check_params
from lossreg.reduction import REDUCTIONS
from lossreg.spec import LossSpec, _same_default, spec_problems
from lossreg.targets import extra_widths, output_size
from lossreg.testing._case import LossCase
from lossreg.testing._toy import (
    CLASS_TASKS,
    COUPLED_TASKS,
    COUPLING_EXTRAS,
    FEATURE_DIM,
    TASK_ORDER,
    Toy,
    toy_extra,
    unlabel_rows,
)

__all__ = ["LOSS_CHECKS", "SkipCheck", "applicable_checks", "not_applicable_reason"]

Check = Callable[[LossCase], None]

#: Every check, by name, in the order they run.
LOSS_CHECKS: dict[str, Check] = {}
_APPLIES: dict[str, Callable[[LossSpec], str | None]] = {}

#: Tasks the estimator smoke fit knows how to fit, and the estimator for each.
SMOKE_ESTIMATORS = {
    "multiclass": "LossClassifier",
    "binary": "LossClassifier",
    "multilabel": "LossClassifier",
    "ordinal": "LossClassifier",
    "regression": "LossRegressor",
    "embedding": "LossEmbedder",
    "ranking": "LossRanker",
    "survival": "LossSurvivalRegressor",
    "mixed": "LossMixedEstimator",
}

#: The smoke fit's batch size: 96 rows make 6 batches, so 5 epochs are 30 optimizer steps at
#: the estimator's default learning rate, enough to show training (15 steps of 32 rows are
#: not, for mined embedding losses).
SMOKE_BATCH_SIZE = 16

#: The embedding width the smoke fit asks for (LossEmbedder's default n_components).
SMOKE_EMBEDDING_WIDTH = 32

RTOL = 1e-6
ATOL = 1e-9


class SkipCheck(Exception):
    """Raised by a check that finds at run time that it does not apply to this loss."""


def _register(applies: Callable[[LossSpec], str | None] | None = None) -> Callable[[Check], Check]:
    def decorator(func: Check) -> Check:
        LOSS_CHECKS[func.__name__] = func
        _APPLIES[func.__name__] = applies or (lambda spec: None)
        return func

    return decorator


def not_applicable_reason(check: str, spec: LossSpec) -> str | None:
    """Return why ``check`` does not apply to ``spec`` (from its flags), or None if it does."""
    return _APPLIES[check](spec)


def applicable_checks(spec: LossSpec, checks: Iterable[str] | None = None) -> list[str]:
    """Return the names of the checks (of ``checks``, default all) that apply to ``spec``."""
    names = list(LOSS_CHECKS) if checks is None else list(checks)
    return [n for n in names if not_applicable_reason(n, spec) is None]


# -- helpers --------------------------------------------------------------------------------
def _assert_finite(value: torch.Tensor, what: str) -> None:
    if not bool(torch.isfinite(value).all()):
        raise AssertionError(f"{what} is not finite: {value.detach()!r}")


def _assert_close(got: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    got, expected = got.detach().double(), expected.detach().double()
    if got.shape != expected.shape or not torch.allclose(got, expected, rtol=RTOL, atol=ATOL):
        raise AssertionError(f"{what}: got {got!r}, expected {expected!r}")


def _assert_raises(action: Callable[[], Any], what: str, *, names: str = "") -> BaseException:
    try:
        action()
    except (ValueError, TypeError, KeyError) as exc:
        if names and names not in str(exc):
            raise AssertionError(
                f"{what} raised {type(exc).__name__}: {exc}, but the message does not name "
                f"{names!r}; say which parameter was wrong."
            ) from exc
        return exc
    raise AssertionError(f"{what} was accepted; it must raise ValueError (or TypeError).")


def _scalar(case: LossCase, module: nn.Module, toy: Toy, **kwargs: Any) -> torch.Tensor:
    out = case.call(module, toy, **kwargs)
    if not isinstance(out, torch.Tensor) or out.ndim != 0:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise AssertionError(
            f"reduction={getattr(module, 'reduction', '?')!r} must return a 0-dim tensor, got "
            f"{shape}"
        )
    return out


def _per_row(case: LossCase, module: nn.Module, toy: Toy, **kwargs: Any) -> torch.Tensor:
    out = case.call(module, toy, **kwargs)
    if out.shape != (toy.n,):
        raise AssertionError(
            f"reduction='none' must return one loss per row, shape ({toy.n},); got "
            f"{tuple(out.shape)}. Implement per_sample_loss and let lossreg.reduce() reduce."
        )
    return out


def _leaves(
    toy: Toy, input: torch.Tensor | None = None, features: torch.Tensor | None = None
) -> tuple[torch.Tensor, ...]:
    """Fresh leaves requiring grad: the input, and the features of a ``logits+features`` toy.

    :meth:`LossCase.call` takes the tuple as the loss's whole input, so gradients reach
    both parts of a (logits, features) output.
    """
    parts = [toy.input if input is None else input]
    if toy.features is not None:
        parts.append(toy.features if features is None else features)
    return tuple(p.detach().clone().requires_grad_(True) for p in parts)


def _part_names(parts: tuple[torch.Tensor, ...]) -> tuple[str, ...]:
    return ("input",) if len(parts) == 1 else ("logits", "features")


def _needs_per_sample(spec: LossSpec) -> str | None:
    return None if spec.per_sample else "the spec says per_sample=False"


def _needs_params(spec: LossSpec) -> str | None:
    return None if spec.params else "the loss has no hyperparameters"


def _deterministic_only(spec: LossSpec) -> str | None:
    return "the spec says stochastic=True" if spec.stochastic else None


# -- the checks -----------------------------------------------------------------------------
@_register()
def check_spec_valid(case: LossCase) -> None:
    """The spec keeps every registration rule and the case's hyperparameters are valid.

    Name and aliases snake_case without ``_loss``, known tasks, link, data params and fit
    extras, a reference and a summary, a sound Param schema whose defaults equal the
    factory's, and a factory that accepts ``reduction`` and every declared name.
    """
    problems = spec_problems(case.spec)
    if problems:
        raise AssertionError(
            "The spec breaks registration rules:\n"
            + "\n".join(f"  {rule}: {text}" for rule, text in problems)
        )
    try:
        check_params(case.spec.name, case.spec.params, case.params)
    except ValueError as exc:
        raise AssertionError(f"The hyperparameters to check with are invalid: {exc}") from exc


@_register()
def check_constructs_with_defaults(case: LossCase) -> None:
    """The factory builds an ``nn.Module`` from the data params alone; ``reduction`` is "mean".

    Data params come from a toy training target through ``compute_data_params``, as an
    estimator computes them; every hyperparameter keeps its default.
    """
    # the defaults' own flags: a composite's case may have members that change them
    defaults = LossCase(effective_spec(case.spec))
    toy = defaults.toy()
    module = case.spec.factory(**toy.data_params)
    if not isinstance(module, nn.Module):
        raise AssertionError(f"The factory returned {type(module).__name__}, not an nn.Module.")
    reduction = getattr(module, "reduction", "mean")
    if reduction != "mean":
        raise AssertionError(f"The default reduction must be 'mean', got {reduction!r}.")
    out = defaults.call(module, toy)
    _assert_finite(out, "The loss with default hyperparameters")


@_register(_needs_params)
def check_hyperparameters_stored(case: LossCase) -> None:
    """Every hyperparameter is stored unchanged as an attribute of the same name.

    Checked with the case's values and, for each parameter, with a non-default value from
    its search grid, so a loss that ignores an argument is caught.
    """
    toy = case.toy()
    trials = [dict(case.params)]
    for param in case.spec.params:
        other = [g for g in param.grid if not _same_default(g, param.default)]
        if other and param.name not in case.params:
            trials.append({**case.params, param.name: other[0]})
    for params in trials:
        module = LossCase(case.spec, params).build(toy)
        for param in case.spec.params:
            expected = params.get(param.name, param.default)
            if not hasattr(module, param.name):
                raise AssertionError(
                    f"The module has no attribute {param.name!r}; store each hyperparameter "
                    "unchanged under its own name (tensors as buffers under another name)."
                )
            got = getattr(module, param.name)
            if not _same_default(got, expected):
                raise AssertionError(
                    f"Attribute {param.name!r} is {got!r} after passing {expected!r}; store it "
                    "unchanged."
                )


@_register()
def check_learnable_flag(case: LossCase) -> None:
    """``learnable`` matches the module: trainable parameters exist, and get finite gradients.

    A loss with ``learnable=False`` must have no parameter requiring grad (an estimator
    would never hand it to the optimizer); tensors that are not trained belong in buffers.
    """
    toy = case.toy()
    module = case.build(toy)
    trainable = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    if not case.spec.learnable:
        if trainable:
            names = [n for n, _ in trainable]
            raise AssertionError(
                f"The module has trainable parameters {names} but the spec says "
                "learnable=False: declare learnable=True or register them as buffers."
            )
        return
    if not trainable:
        raise AssertionError("The spec says learnable=True but the module has no parameters.")
    case.call(module, toy).backward()
    grads = [(n, p.grad) for n, p in trainable if p.grad is not None]
    if not grads:
        raise AssertionError("No gradient reaches the learnable parameters.")
    for name, grad in grads:
        _assert_finite(grad, f"The gradient of parameter {name!r}")


@_register()
def check_scalar_finite_output(case: LossCase) -> None:
    """``mean`` and ``sum`` return finite 0-dim tensors whose input gradient is finite, nonzero.

    For a ``logits+features`` loss the gradients of both parts must be finite (where they
    exist: a loss may use the features without gradient) and not all zero.
    """
    toy = case.toy()
    for reduction in ("mean", "sum"):
        module = case.build(toy, reduction)
        parts = _leaves(toy)
        out = _scalar(case, module, toy, input=parts)
        _assert_finite(out, f"The {reduction!r} loss")
        if not out.requires_grad:
            raise AssertionError("The loss does not depend on the input (no autograd graph).")
        out.backward()
        grads = [x.grad for x in parts if x.grad is not None]
        if not grads:
            raise AssertionError("No gradient reaches the input.")
        for name, x in zip(_part_names(parts), parts, strict=True):
            if x.grad is not None:
                _assert_finite(x.grad, f"The {name} gradient of the {reduction!r} loss")
        if not any(bool((g != 0).any()) for g in grads):
            raise AssertionError("The input gradient is zero everywhere on a random toy batch.")


@_register()
def check_reduction_consistency(case: LossCase) -> None:
    """``mean`` and ``sum`` agree with ``none``; an invalid reduction name is rejected.

    For per-sample losses ``none`` has shape (N,), ``mean`` equals its mean and ``sum`` its
    sum. A reduction such as ``"average"`` raises ValueError when building or calling.
    """
    toy = case.toy(dtype=torch.float64)
    if case.spec.per_sample:
        rows = _per_row(case, case.build(toy, "none", torch.float64), toy)
        mean = _scalar(case, case.build(toy, "mean", torch.float64), toy)
        total = _scalar(case, case.build(toy, "sum", torch.float64), toy)
        _assert_close(mean, rows.mean(), "reduction='mean' differs from the mean of 'none'")
        _assert_close(total, rows.sum(), "reduction='sum' differs from the sum of 'none'")
    for bad in ("average", "MEAN", None):

        def build_and_call(bad: Any = bad) -> None:
            case.call(case.build(toy, bad), toy)

        _assert_raises(build_and_call, f"reduction={bad!r}")


@_register(_needs_per_sample)
def check_sample_weight_equivalence(case: LossCase) -> None:
    """Sample weights act like row counts.

    All-ones weights equal no weights (``mean``, ``sum`` and ``none``). For losses whose rows
    are independent (not embedding, ranking or bag tasks, no group or bag extras) and that
    are not stochastic, an integer weight k equals the row repeated k times (0: dropped),
    for ``mean`` and ``sum``.
    """
    toy = case.toy(dtype=torch.float64)
    ones = torch.ones(toy.n, dtype=torch.float64)
    for reduction in REDUCTIONS:
        _assert_close(
            case.value(toy, reduction, torch.float64, sample_weight=ones),
            case.value(toy, reduction, torch.float64),
            f"reduction={reduction!r} with all-ones weights differs from no weights",
        )
    if case.task in COUPLED_TASKS or COUPLING_EXTRAS & set(case.spec.fit_extras):
        return
    if case.spec.stochastic:
        return
    counts = ones.clone()
    counts[:3] = torch.tensor([2.0, 0.0, 3.0], dtype=torch.float64)
    keep = [0, 0, 2, 2, 2, *range(3, toy.n)]  # the rows repeated as often as their weight
    for reduction in ("mean", "sum"):
        module = case.build(toy, reduction, torch.float64)  # data params of the original rows
        _assert_close(
            case.call(copy.deepcopy(module), toy, sample_weight=counts),
            case.call(module, toy.rows(keep)),
            f"reduction={reduction!r}: weights 2, 0 and 3 must equal the rows repeated twice, "
            "dropped and repeated three times",
        )


#: Tasks whose outputs are values (not logits or features): their extreme inputs are +-30,
#: which an exponential (log-link) output still survives in float32.
VALUE_TASKS = ("regression", "ranking", "survival")


def _extreme_scale(task: str) -> float:
    return 30.0 if task in VALUE_TASKS else 100.0


def _extreme_inputs(toy: Toy) -> dict[str, torch.Tensor]:
    scale = _extreme_scale(toy.task)
    x = toy.input
    gen = torch.Generator().manual_seed(1)
    signs = torch.randn(x.shape, generator=gen, dtype=torch.float64).sign().to(x.dtype)
    variants = {"zeros": torch.zeros_like(x), "+-large": scale * signs}
    if toy.task in VALUE_TASKS:
        variants["target"] = toy.target.to(x.dtype).reshape(x.shape[0], -1)[:, 0].reshape(-1)
        if x.ndim == 2:
            variants["target"] = variants["target"].unsqueeze(1).expand_as(x).clone()
    elif not toy.target.is_floating_point() and x.ndim == 2 and x.shape[1] > 1:
        labels = toy.target.reshape(-1).clamp_min(0)  # unlabeled rows (-1) as class 0
        if int(labels.max()) < x.shape[1]:
            one_hot = torch.nn.functional.one_hot(labels, x.shape[1]).to(x.dtype)
            # Two views: output rows i and i+n both belong to row i (and its label).
            one_hot = one_hot.repeat(toy.views, 1)
            variants["confident right"] = scale * (2 * one_hot - 1)
            variants["confident wrong"] = -scale * (2 * one_hot - 1)
    elif toy.target.is_floating_point() and toy.target.numel() == x.numel():
        aligned = scale * (2 * toy.target.reshape(x.shape) - 1)
        variants["confident right"] = aligned
        variants["confident wrong"] = -aligned
    return variants


@_register()
def check_finite_gradients_at_extremes(case: LossCase) -> None:
    """Loss and input gradient stay finite at extreme inputs, in float32.

    Inputs: all zeros (ties), +-100 logits (+-30 for value outputs), confidently right and
    confidently wrong logits, predictions equal to the target. Use log-space forms
    (``logsumexp``, ``softplus``, ``log_softmax``) and clamp with a reason. The features of a
    ``logits+features`` loss are zero with the zero logits and +-100 with the +-large ones.
    """
    toy = case.toy()
    for label, value in _extreme_inputs(toy).items():
        features = None
        if toy.features is not None and label in ("zeros", "+-large"):
            gen = torch.Generator().manual_seed(2)
            signs = torch.randn(toy.features.shape, generator=gen, dtype=torch.float64).sign()
            scale = 0.0 if label == "zeros" else 100.0
            features = (scale * signs).to(toy.features.dtype)
        parts = _leaves(toy, value, features)
        out = _scalar(case, case.build(toy), toy, input=parts)
        _assert_finite(out, f"The loss at {label} inputs")
        out.backward()
        for name, x in zip(_part_names(parts), parts, strict=True):
            if x.grad is not None:
                _assert_finite(x.grad, f"The {name} gradient at {label} inputs")


@_register()
def check_gradcheck(case: LossCase) -> None:
    """Analytic gradients match finite differences (``torch.autograd.gradcheck``, float64).

    Run on a 6-row toy batch with ``reduction="none"`` for per-sample losses (the full
    Jacobian), ``"mean"`` otherwise; a stochastic loss is re-seeded on every call. Wide outputs
    (more than 256 input values, e.g. a 1000-wide code) use gradcheck's fast mode, which
    compares random projections of the Jacobian instead of every entry. A
    ``logits+features`` loss is checked with respect to both parts.
    """
    toy = case.toy(n=6, dtype=torch.float64)
    reduction = "none" if case.spec.per_sample else "mean"
    module = case.build(toy, reduction, torch.float64)

    def f(*parts: torch.Tensor) -> torch.Tensor:
        # A copy per call: a stateful loss sees the same state at every evaluation.
        return case.call(copy.deepcopy(module), toy, input=parts, seed=0)

    parts = _leaves(toy)
    fast = sum(x.numel() for x in parts) > 256
    try:
        torch.autograd.gradcheck(f, parts, eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=fast)
    except RuntimeError as exc:  # GradcheckError
        raise AssertionError(f"gradcheck failed: {exc}") from exc


@_register()
def check_dtype_preserved(case: LossCase) -> None:
    """float32 input gives a float32 loss and gradient; float64 gives float64."""
    for dtype in (torch.float32, torch.float64):
        toy = case.toy(dtype=dtype)
        reductions = ("mean", "none") if case.spec.per_sample else ("mean",)
        for reduction in reductions:
            module = case.build(toy, reduction, dtype)
            parts = _leaves(toy)
            out = case.call(module, toy, input=parts)
            if out.dtype != dtype:
                raise AssertionError(
                    f"{dtype} input gave a {out.dtype} loss (reduction={reduction!r}); keep "
                    "the input's dtype (cast buffers and constants to input.dtype)."
                )
            out.sum().backward()
            for x in parts:
                if x.grad is not None and x.grad.dtype != dtype:
                    raise AssertionError(f"{dtype} input gave a {x.grad.dtype} gradient.")


@_register(_deterministic_only)
def check_permutation_invariance(case: LossCase) -> None:
    """Shuffling the rows (with their targets and extras) permutes ``none``, keeps ``mean``/``sum``.

    Not run for stochastic losses: their random draws follow row positions.
    """
    toy = case.toy(dtype=torch.float64)
    perm = torch.randperm(toy.n, generator=torch.Generator().manual_seed(3))
    shuffled = toy.rows(perm)
    for reduction in ("mean", "sum"):
        _assert_close(
            case.value(shuffled, reduction, torch.float64),
            case.value(toy, reduction, torch.float64),
            f"reduction={reduction!r} changes when the rows are shuffled",
        )
    if case.spec.per_sample:
        _assert_close(
            case.value(shuffled, "none", torch.float64),
            case.value(toy, "none", torch.float64)[perm],
            "reduction='none' is not permuted along with the rows",
        )


@_register()
def check_deterministic(case: LossCase) -> None:
    """Equal modules give equal losses on the same input; a stochastic loss under the same seed.

    A module, its deepcopy and a fresh build agree exactly (state a loss keeps between calls
    is allowed: copies share it). A deterministic loss must not draw random numbers; a
    stochastic one must draw from torch's generator, so ``torch.manual_seed`` reproduces it.
    """
    toy = case.toy()
    if case.spec.stochastic:
        module = case.build(toy)
        twin = copy.deepcopy(module)
        first = case.call(module, toy, seed=11)
        second = case.call(twin, toy, seed=11)
        if not torch.equal(first, second):
            raise AssertionError(
                f"The stochastic loss differs under the same torch seed: {first} vs {second}; "
                "draw randomness from torch's default generator."
            )
        return
    module = case.build(toy)
    twin = copy.deepcopy(module)  # a stateful loss may change between calls, not between twins
    first, second = case.call(module, toy), case.call(twin, toy)
    third = case.value(toy)
    if not (torch.equal(first, second) and torch.equal(first, third)):
        raise AssertionError(
            f"The loss gives {first}, {second} (a copy) and {third} (a fresh module) on the "
            "same input; declare stochastic=True if it samples."
        )


def _format_variants(case: LossCase, task: str) -> list[tuple[str, Toy]]:
    """Equivalent ways to pass the same batch; the first is the canonical one."""
    toy = case.toy(task)
    variants = [("canonical", toy)]
    if not toy.target.is_floating_point():
        variants.append(("int32 labels", _with_target(toy, toy.target.to(torch.int32))))
        variants.append(("(N, 1) labels", _with_target(toy, toy.target.reshape(-1, 1))))
    elif toy.input.ndim == 1:
        n = toy.n
        col_in = toy.input.reshape(n, 1)
        col_target = toy.target.reshape(n, 1)
        variants.append(("(N, 1) input and target", _replace(toy, col_in, col_target)))
        variants.append(("(N, 1) input, (N,) target", _replace(toy, col_in, toy.target)))
    return variants


def _with_target(toy: Toy, target: torch.Tensor) -> Toy:
    return _replace(toy, toy.input, target)


def _replace(toy: Toy, input: torch.Tensor, target: torch.Tensor) -> Toy:
    return dataclasses.replace(toy, input=input, target=target)


def _instance_tasks(case: LossCase) -> frozenset[str]:
    """The tasks of the module these hyperparameters build: its ``tasks_`` when it has one.

    A loss built from others (``weighted_sum``, ``class_balanced``'s base) knows which of the
    spec's tasks it fits only once built, and says so in ``tasks_``, as estimators read it.
    """
    module = case.build(case.toy())
    return frozenset(getattr(module, "tasks_", case.spec.tasks)) & case.spec.tasks


@_register()
def check_target_formats(case: LossCase) -> None:
    """Every declared task accepts the target formats an estimator passes, with equal values.

    The tasks are the spec's, narrowed by the built module's ``tasks_`` when it has one (a
    loss built from others knows its tasks only once built; estimators read it too).

    Class labels: int64 (N,), int32 and (N, 1), with (N, C) logits (softmax) or (N,) / (N, 1)
    logits with float 0/1 targets (sigmoid binary); multilabel (N, L) float 0/1; regression
    (N,) and (N, 1) (multi-output targets: :func:`check_multioutput_regression`); embedding
    (N, D) features with int labels, several rows per class.
    """
    tasks = [t for t in TASK_ORDER if t in _instance_tasks(case)]
    if any(p.kind == "vector" and p.name in case.params for p in case.spec.params):
        tasks = [case.task]  # a vector sized for one task's classes fits only that task
    for task in tasks:
        canonical: torch.Tensor | None = None
        for label, toy in _format_variants(case, task):
            module = case.build(toy)
            try:
                out = _scalar(case, module, toy, seed=0)
            except AssertionError:
                raise
            except Exception as exc:
                raise AssertionError(
                    f"Task {task!r} with {label} (input {tuple(toy.input.shape)}, target "
                    f"{tuple(toy.target.shape)} {toy.target.dtype}) raised "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            _assert_finite(out, f"Task {task!r} with {label}")
            if canonical is None:
                canonical = out
            else:
                _assert_close(out, canonical, f"Task {task!r} with {label} gives another value")


def _regression(spec: LossSpec) -> str | None:
    return None if "regression" in spec.tasks else "the loss declares no regression task"


@_register(_regression)
def check_multioutput_regression(case: LossCase) -> None:
    """A regression loss takes K = 2 target columns: (N, K) targets with the head width
    ``output_size`` gives for ``n_outputs=2``; ``none`` still has one value per row. Skipped
    when the built module's ``tasks_`` exclude regression (a composite of class losses).
    """
    if "regression" not in _instance_tasks(case):
        raise SkipCheck("the module's tasks_ exclude regression with these hyperparameters")
    toy = case.toy("regression", n_outputs=2)
    reductions = ("mean", "none") if case.spec.per_sample else ("mean",)
    for reduction in reductions:
        try:
            out = case.value(toy, reduction, seed=0)
        except Exception as exc:
            raise AssertionError(
                f"(N, 2) regression targets with input {tuple(toy.input.shape)} raised "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        expected = (toy.n,) if reduction == "none" else ()
        if out.shape != expected:
            raise AssertionError(
                f"reduction={reduction!r} on (N, 2) targets gave shape {tuple(out.shape)}, "
                f"expected {expected}"
            )
        _assert_finite(out, "The loss on (N, 2) targets")


def invalid_values(param: Param) -> list[Any]:
    """Return values that ``param``'s schema declares invalid."""
    bad: list[Any] = [] if param.nullable else [None]
    if param.kind == "bool":
        return [*bad, "yes"]
    if param.kind == "choice":
        return [*bad, "__not_an_option__"]
    if param.kind == "str":
        return [*bad, 3]
    low_open = param.closed in ("right", "neither")
    high_open = param.closed in ("left", "neither")
    out_of_range = []
    if param.low is not None:
        out_of_range.append(param.low if low_open else param.low - 1)
    if param.high is not None:
        out_of_range.append(param.high if high_open else param.high + 1)
    if param.kind == "int":
        out_of_range = [int(v) for v in out_of_range]
        return [*bad, 1.5, "1", *out_of_range]
    if param.kind == "float":
        return [*bad, "1.0", math.nan, *[float(v) for v in out_of_range]]
    return [*bad, "abc", [], *[[float(v)] for v in out_of_range]]  # vector


def _vector_element(param: Param) -> float | None:
    for candidate in (1.0, 0.5, 0.0, 2.0, param.low, param.high):
        if candidate is not None and param.is_valid([float(candidate)]):
            return float(candidate)
    return None


@_register(_needs_params)
def check_invalid_params_raise(case: LossCase) -> None:
    """Invalid hyperparameters raise an error that names the parameter.

    Every value outside a Param's declared type or range and every unknown parameter name
    is rejected on the way in (the path ``create_loss`` and the estimators take). A vector
    sized per class or label (default None or one value per output, not setting the output
    size) of the wrong length must raise, naming the parameter, when built or called.
    """
    toy = case.toy()
    for param in case.spec.params:
        for value in invalid_values(param):
            _assert_raises(
                lambda value=value, name=param.name: case.build(toy, **{name: value}),
                f"{param.name}={value!r}",
                names=param.name,
            )
    _assert_raises(
        lambda: case.build(toy, not_a_parameter=1), "an unknown parameter", names="not_a_parameter"
    )
    width = toy.width
    for param in case.spec.params:
        if param.kind != "vector" or param.name in case.params:
            continue
        if param.default is not None and len(param.default) != width:
            continue
        element = _vector_element(param)
        if element is None:
            continue
        wrong = [element] * (width + 1)
        if LossCase(case.spec, {**case.params, param.name: wrong}).toy().width != width:
            continue  # the vector sets the head width: any length is valid

        def build_and_call(name: str = param.name, wrong: list[float] = wrong) -> None:
            case.call(case.build(toy, **{name: wrong}), toy)

        _assert_raises(
            build_and_call, f"{param.name} with {width + 1} values for {width}", names=param.name
        )


def _valid_corner_values(param: Param) -> list[Any]:
    values = list(param.grid)
    if param.nullable:
        values.append(None)
    if param.kind in ("float", "int"):
        if param.low is not None and param.closed in ("both", "left"):
            values.append(param.low)
        if param.high is not None and param.closed in ("both", "right"):
            values.append(param.high)
    if param.kind in ("bool",):
        values.extend([True, False])
    if param.kind == "choice":
        values.extend(param.options)
    return [v for i, v in enumerate(values) if param.is_valid(v) and v not in values[:i]]


def _try_value(case: LossCase, task: str) -> str | None:
    """Return why ``case`` fails on a toy batch of ``task`` (None when it works)."""
    try:
        toy = case.toy(task)
        parts = _leaves(toy)
        out = _scalar(case, case.build(toy), toy, input=parts)
        _assert_finite(out, "the loss")
        out.backward()
        if all(x.grad is None for x in parts):
            return "no gradient reaches the input"
        for x in parts:
            if x.grad is not None:
                _assert_finite(x.grad, "the input gradient")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@_register(_needs_params)
def check_param_grid_values_work(case: LossCase) -> None:
    """Every search-grid value, option and closed bound of a Param builds and gives a finite loss.

    What the schema calls valid must work (``loss_grid`` searches these values) on at least
    one declared task: a value may suit only some tasks (a sigmoid base on multilabel).
    """
    tasks = [t for t in TASK_ORDER if t in case.spec.tasks]
    for param in case.spec.params:
        for value in _valid_corner_values(param):
            variant = LossCase(case.spec, {**case.params, param.name: value})
            errors = {}
            for task in tasks:
                error = _try_value(variant, task)
                if error is None:
                    break
                errors[task] = error
            else:
                detail = "; ".join(f"on {task}: {error}" for task, error in errors.items())
                raise AssertionError(f"{param.name}={value!r} is valid by the schema but {detail}")


def _state_equal(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    if list(sa) != list(sb):
        raise AssertionError(f"state_dict keys differ: {list(sa)} vs {list(sb)}")
    for key in sa:
        if not torch.equal(sa[key], sb[key]):
            raise AssertionError(f"state_dict entry {key!r} differs after the round trip")


@_register()
def check_round_trip(case: LossCase) -> None:
    """pickle, deepcopy and ``state_dict`` reload give a module that computes the same loss.

    The module is called (and backpropagated) twice first, so state kept between calls
    must live in buffers to survive: a fresh module loading the state_dict must agree.
    """
    toy = case.toy()
    module = case.build(toy)
    for _ in range(2):
        case.call(module, toy, input=_leaves(toy)).backward()
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    fresh = case.build(toy)
    try:
        fresh.load_state_dict(torch.load(buffer, weights_only=True))
    except (RuntimeError, pickle.UnpicklingError) as exc:
        raise AssertionError(f"load_state_dict failed on a fresh module: {exc}") from exc
    try:
        pickled = pickle.loads(pickle.dumps(module))
    except Exception as exc:
        raise AssertionError(f"The module does not pickle: {type(exc).__name__}: {exc}") from exc
    copies = {"pickle": pickled, "deepcopy": copy.deepcopy(module), "state_dict": fresh}
    for how, other in copies.items():
        _state_equal(module, other)
        for param in case.spec.params:
            if not _same_default(getattr(other, param.name, None), getattr(module, param.name)):
                raise AssertionError(f"{how} lost hyperparameter {param.name!r}")
    outputs = {how: case.call(other, toy, seed=0) for how, other in copies.items()}
    reference = case.call(module, toy, seed=0)
    for how, out in outputs.items():
        _assert_close(out, reference, f"The {how} copy computes another loss")


def _has_set_epoch(spec: LossSpec) -> str | None:
    factory = spec.factory
    if isinstance(factory, type) and not callable(getattr(factory, "set_epoch", None)):
        return "the loss has no set_epoch(epoch, max_epochs)"
    return None


@_register(_has_set_epoch)
def check_set_epoch(case: LossCase) -> None:
    """``set_epoch(epoch, max_epochs)`` works at the first, a middle and the last epoch.

    After each call the loss and its input gradient stay finite.
    """
    toy = case.toy()
    module = case.build(toy)
    if not callable(getattr(module, "set_epoch", None)):
        raise SkipCheck("the module has no set_epoch(epoch, max_epochs)")
    for epoch in (0, 5, 9):
        module.set_epoch(epoch, 10)
        parts = _leaves(toy)
        out = case.call(module, toy, input=parts)
        _assert_finite(out, f"The loss after set_epoch({epoch}, 10)")
        out.backward()
        for x in parts:
            if x.grad is not None:
                _assert_finite(x.grad, f"The input gradient after set_epoch({epoch}, 10)")


def _has_validation_hook(spec: LossSpec) -> str | None:
    factory = spec.factory
    if isinstance(factory, type) and not callable(getattr(factory, "on_validation_end", None)):
        return "the loss has no on_validation_end(input, target, **fields)"
    return None


@_register(_has_validation_hook)
def check_on_validation_end(case: LossCase) -> None:
    """``on_validation_end`` takes what an estimator passes; the loss stays finite after it.

    The hook gets the toy batch's detached outputs (the ``(logits, features)`` pair for such
    losses), targets, sample weights and fit extras under ``torch.no_grad()``, as the
    estimators call it after each epoch: once with the toy outputs, once with them scaled
    to extremes (x100, a confident network). After each call the loss and its input
    gradient stay finite.
    """
    toy = case.toy()
    module = case.build(toy)
    hook = getattr(module, "on_validation_end", None)
    if not callable(hook):
        raise SkipCheck("the module has no on_validation_end(input, target, **fields)")
    weight = torch.linspace(0.5, 1.5, toy.target.shape[0], dtype=toy.input.dtype)
    for scale in (1.0, 100.0):
        output = toy.output
        scaled = (
            tuple(part.detach() * scale for part in output)
            if isinstance(output, tuple)
            else output.detach() * scale
        )
        with torch.no_grad():
            hook(scaled, toy.target, sample_weight=weight, **toy.extras)
        parts = _leaves(toy)
        out = case.call(module, toy, input=parts)
        what = f"The loss after on_validation_end on outputs x{scale:g}"
        _assert_finite(out, what)
        out.backward()
        for x in parts:
            if x.grad is not None:
                _assert_finite(x.grad, f"The input gradient after on_validation_end (x{scale:g})")


@_register()
def check_link_valid(case: LossCase) -> None:
    """The link resolves and turns outputs into finite predictions, one row per input row.

    A ``proba`` link returns values in [0, 1] whose rows sum to 1 for (N, C) class outputs;
    extreme outputs (+-100, +-30 for value tasks) stay finite. The link receives the fitted
    loss module, and the logits alone for a ``logits+features`` loss (as estimators give it).
    The tasks are the spec's, narrowed by the built module's ``tasks_`` when it has one.
    """
    try:
        link = resolve_link(case.spec.link)
    except KeyError as exc:
        raise AssertionError(f"Unknown link {case.spec.link!r}") from exc
    if link.kind not in LINK_KINDS:
        raise AssertionError(f"Link kind {link.kind!r} is not one of {LINK_KINDS}")
    for task in [t for t in TASK_ORDER if t in _instance_tasks(case)]:
        toy = case.toy(task)
        module = case.build(toy)
        extreme = toy.input.sign() * _extreme_scale(task)
        for label, x in (("toy", toy.input), ("extreme", extreme)):
            with torch.no_grad():
                out = link(x, module)
            if not isinstance(out, torch.Tensor) or out.shape[:1] != x.shape[:1]:
                raise AssertionError(f"The {link.name!r} link must return one row per input row.")
            _assert_finite(out, f"The link output at {label} inputs ({task})")
            if link.kind != "proba":
                continue
            if bool((out < 0).any() or (out > 1).any()):
                raise AssertionError(f"The {link.name!r} link returned values outside [0, 1].")
            if task in ("binary", "multiclass") and out.ndim == 2 and out.shape[1] > 1:
                sums = out.sum(dim=1)
                if not torch.allclose(sums, torch.ones_like(sums), atol=1e-5):
                    raise AssertionError(f"Class probabilities do not sum to 1: {sums}")


def _smoke_task(spec: LossSpec) -> str | None:
    for task in TASK_ORDER:
        if task in spec.tasks and task in SMOKE_ESTIMATORS:
            return task
    return None


def _has_estimator(spec: LossSpec) -> str | None:
    if _smoke_task(spec) is None:
        return f"no estimator fits tasks {sorted(spec.tasks)} yet"
    return None


def _smoke_data(task: str) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Tiny training data for ``task``: (X, y, the extras the task itself defines).

    Survival: right-censored Weibull times whose scale follows the first feature, and their
    ``event`` flags; ranking: graded relevance (0-3) that follows the first feature, in 12
    queries of 8 rows (``group``). Those extras belong to the data, so they are passed even
    when a loss does not declare them (the estimators need the event flags).
    """
    from sklearn.datasets import (
        make_classification,
        make_multilabel_classification,
        make_regression,
    )

    n, d = 96, 6
    task_extras: dict[str, np.ndarray] = {}
    if task == "multilabel":
        X, y = make_multilabel_classification(
            n_samples=n, n_features=d, n_classes=3, random_state=0
        )
    elif task == "regression":
        X, y = make_regression(n_samples=n, n_features=d, noise=0.1, random_state=0)
        # Unit scale and positive, as the toy targets: fits losses on counts and logarithms.
        y = (y - y.min()) / y.std() + 0.1
    elif task == "mixed":
        # a value and a class (3 classes) of the same features
        X, labels = make_classification(
            n_samples=n,
            n_features=d,
            n_informative=4,
            n_redundant=0,
            n_classes=3,
            n_clusters_per_class=1,
            random_state=0,
        )
        y = np.column_stack([X[:, 0] + 0.5 * X[:, 1] ** 2, labels])
    elif task in ("survival", "ranking"):
        rng = np.random.default_rng(0)
        X = rng.normal(size=(n, d))
        if task == "survival":
            # Times of order 1 (the parametric likelihoods contain t**gamma); ~30% censored.
            true_time = np.exp(0.8 * X[:, 0]) * rng.weibull(1.5, size=n)
            censor = rng.exponential(2.5, size=n)
            y = np.minimum(true_time, censor)
            task_extras["event"] = (true_time <= censor).astype(np.int64)
        else:
            noisy = X[:, 0] + 0.3 * rng.normal(size=n)
            y = np.digitize(noisy, [-0.5, 0.5, 1.5]).astype(np.float64)
            task_extras["group"] = np.repeat(np.arange(n // 8), 8)
    else:
        X, y = make_classification(
            n_samples=n,
            n_features=d,
            n_informative=4,
            n_redundant=0,
            n_classes=2 if task == "binary" else 3,
            n_clusters_per_class=1,
            random_state=0,
        )
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return X.astype(np.float32), y, task_extras


def _smoke_width(spec: LossSpec, task: str, params: dict[str, Any]) -> int | None:
    """The embedding width the smoke fit's LossEmbedder is built with (None: not an embedding)."""
    if task != "embedding":
        return None
    if spec.output_size is None:
        return SMOKE_EMBEDDING_WIDTH  # LossEmbedder's n_components, left at its default
    return output_size(spec, task, n_outputs=SMOKE_EMBEDDING_WIDTH, params=params)


def _smoke_extras(
    spec: LossSpec,
    task: str,
    X: np.ndarray,
    y: np.ndarray,
    params: dict[str, Any] | None = None,
    task_extras: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    task_extras = dict(task_extras or {})
    params = dict(params or {})
    labeled = y[y >= 0] if task in CLASS_TASKS else y  # -1 marks unlabeled rows
    class_count = int(np.max(labeled)) + 1 if task in CLASS_TASKS else 1
    if task == "mixed":  # the classes of the class column
        class_count = int(np.max(y[:, 1])) + 1
    n_outputs = y.shape[1] if y.ndim == 2 else 1
    embedding_width = _smoke_width(spec, task, params)
    if embedding_width is not None:
        # What LossEmbedder gives output_size: n_components as the width asked for.
        n_outputs = embedding_width if spec.output_size is None else SMOKE_EMBEDDING_WIDTH
    width = output_size(
        spec,
        task,
        n_classes=class_count,
        n_outputs=n_outputs,
        params=params,
        n_features=X.shape[1],  # as the estimator gives it (a reconstruction head's width)
    )
    if embedding_width is not None:
        width = embedding_width
    widths = extra_widths(
        spec,
        task,
        width=width,
        n_classes=class_count,
        n_outputs=y.shape[1] if y.ndim == 2 else 1,
        params=params,
        n_features=X.shape[1],
    )
    n_classes = int(np.max(y)) + 1 if task in CLASS_TASKS else (y.shape[1] if y.ndim == 2 else 1)
    feature_width = FEATURE_DIM
    if spec.outputs == "logits+features":
        from lossreg.estimators import MLP

        # The width of the features the estimator's default MLP returns (its last hidden layer).
        feature_width = MLP(X.shape[1], width, return_features=True).n_features_out
    extras: dict[str, np.ndarray] = dict(task_extras)
    for name in spec.fit_extras:
        if name == "features" or name in extras:
            continue
        value = toy_extra(
            name,
            y,
            task,
            n_classes,
            width,
            rng,
            bag_size=4,
            feature_width=feature_width,
            columns=widths.get(name, (None,))[0],
        )
        extras[name] = value.astype(np.float32) if value.dtype.kind == "f" else value
    return extras  # "features" is X itself: the estimator routes it


def _estimator_class(name: str) -> Any:
    import lossreg

    try:
        return getattr(lossreg, name)
    except (AttributeError, ImportError) as exc:
        raise AssertionError(
            f"check_estimator_smoke_fit needs lossreg.{name}, which is not available "
            f"({type(exc).__name__}: {exc}). The estimators live in lossreg.estimators; "
            "skip this check (checks=... in Python, --skip check_estimator_smoke_fit on the "
            "command line) until they are installed."
        ) from exc


def _loss_argument(spec: LossSpec) -> Any:
    """The registered name when the default registry resolves it to this spec, else the spec."""
    from lossreg.errors import UnknownLossError
    from lossreg.registry import get_spec

    try:
        registered = get_spec(spec.name)
    except UnknownLossError:
        return spec
    return spec.name if registered.factory is spec.factory else spec


def _whole_set_loss(net: Any, data: Any) -> float:
    """The criterion on every training row, in eval mode, with a fixed seed; state untouched.

    Batches come from the net's own evaluation iterator (fixed order, the batch size it
    trains with), so mined and batch-statistic losses see the same batches before and after
    training. State the criterion keeps in buffers (running averages ...) is restored.
    """
    state = copy.deepcopy(net.criterion_.state_dict())
    total, rows = 0.0, 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for batch in net.get_iterator(data, training=False):
            size = int(batch[0].shape[0])
            total += float(net.validation_step(batch)["loss"]) * size
            rows += size
    net.criterion_.load_state_dict(state)
    return total / max(rows, 1)


def _training_set_probe() -> Any:
    """A skorch callback recording :func:`_whole_set_loss` when training begins and ends."""
    from skorch.callbacks import Callback

    class TrainingSetLoss(Callback):
        def __init__(self) -> None:
            self.values: list[float] = []

        def on_train_begin(self, net: Any, X: Any = None, y: Any = None, **kwargs: Any) -> None:
            self.values.append(_whole_set_loss(net, X))

        def on_train_end(self, net: Any, X: Any = None, y: Any = None, **kwargs: Any) -> None:
            self.values.append(_whole_set_loss(net, X))

    return TrainingSetLoss()


@_register(_has_estimator)
def check_estimator_smoke_fit(case: LossCase) -> None:
    """An estimator trained with the loss for 5 epochs (16-row batches) lowers its training loss.

    The estimator follows the loss's tasks (``LossClassifier`` for class and multilabel
    targets, ``LossRegressor`` for regression, ``LossEmbedder`` for embeddings, as wide as
    the spec's ``output_size`` asks, ``LossRanker`` for ranking, ``LossSurvivalRegressor``
    for survival, ``LossMixedEstimator`` for a value and a class column); tiny data from
    scikit-learn's generators (survival times and ranking queries from a seeded generator,
    with their ``event`` flags / query ``group`` ids), fit extras passed to ``fit``
    (``features`` is routed by the estimator itself). The loss compared is the criterion on
    the whole training set, in eval mode and with a fixed seed, before and after training (a
    callback): the per-epoch mean of shuffled, mined batch losses is not monotone even for a
    loss that trains. Needs :mod:`lossreg.estimators`; fails, saying so,
    without it.
    """
    task = _smoke_task(case.spec)
    assert task is not None
    estimator_class = _estimator_class(SMOKE_ESTIMATORS[task])
    X, y, task_extras = _smoke_data(task)
    if case.spec.semi_supervised and task in CLASS_TASKS:
        y = unlabel_rows(y)
    extras = _smoke_extras(case.spec, task, X, y, case.params, task_extras)
    kwargs: dict[str, Any] = {f"loss__{k}": v for k, v in case.params.items()}
    if task == "embedding" and case.spec.output_size is not None:
        kwargs["n_components"] = _smoke_width(case.spec, task, case.params)
    probe = _training_set_probe()
    estimator = estimator_class(
        loss=_loss_argument(case.spec),
        **kwargs,
        max_iter=5,
        batch_size=SMOKE_BATCH_SIZE,
        random_state=0,
        callbacks=[probe],
    )
    estimator.fit(X, y, **extras)
    history = np.asarray(estimator.history_[:, "train_loss"], dtype=float)
    if history.size < 2 or not np.isfinite(history).all():
        raise AssertionError(f"Training losses per epoch are {history.tolist()}")
    values = np.asarray(probe.values, dtype=float)
    if values.size != 2 or not np.isfinite(values).all():
        raise AssertionError(f"The training-set loss before and after fit is {values.tolist()}")
    if not values[1] < values[0]:
        raise AssertionError(
            f"The training loss did not decrease over {history.size} epochs: training-set "
            f"loss {values[0]!r} before, {values[1]!r} after (epoch means {history.tolist()})"
        )
