"""Running the conformance checks: with pytest (parametrize) or without (check_loss)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from lossreg._suggest import did_you_mean
from lossreg.spec import LossSpec
from lossreg.testing._case import LossCase
from lossreg.testing._checks import (
    LOSS_CHECKS,
    SkipCheck,
    applicable_checks,
    not_applicable_reason,
)

if TYPE_CHECKING:
    from lossreg.registry import Registry

__all__ = [
    "CheckResult",
    "LossCheckError",
    "check_loss",
    "parametrize_with_loss_checks",
    "resolve_cases",
]

LossLike = Union[str, LossSpec, LossCase, tuple[str | LossSpec, Mapping[str, Any]]]  # noqa: UP007
ExpectedFailures = Union[  # noqa: UP007 - a runtime alias, where `|` needs every part a type
    Mapping[str, str], Callable[[LossCase], Mapping[str, str]], None
]


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run a check on one intra-op thread, then restore the setting.

    The kit's tensors have a dozen rows: threads only add overhead, and on busy shared
    cores some kernels (float64 log_softmax) wait milliseconds per call for idle threads.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one loss: ``passed``, ``failed`` or ``skipped``."""

    loss: str
    check: str
    status: str
    message: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != "failed"


class LossCheckError(AssertionError):
    """Raised by :func:`check_loss` when checks fail; ``results`` holds every outcome."""

    def __init__(self, message: str, results: list[CheckResult]) -> None:
        super().__init__(message)
        self.results = results


def _check_names(checks: Iterable[str | Callable[..., Any]] | None) -> list[str] | None:
    if checks is None:
        return None
    names = []
    for check in checks:
        name = check if isinstance(check, str) else getattr(check, "__name__", repr(check))
        if name not in LOSS_CHECKS:
            hint = did_you_mean(name, LOSS_CHECKS)
            raise ValueError(
                f"Unknown check {name!r}.{hint} Valid checks: {', '.join(LOSS_CHECKS)}."
            )
        names.append(name)
    return names


def resolve_cases(losses: Iterable[LossLike], registry: Registry | None = None) -> list[LossCase]:
    """Turn names, ``(name, params)`` pairs, specs and cases into :class:`LossCase` objects."""
    from lossreg._effective import effective_spec
    from lossreg.registry import default_registry

    def spec_of(item: str | LossSpec) -> LossSpec:
        if isinstance(item, LossSpec):
            return item
        return (registry or default_registry()).get_spec(item)

    cases = []
    for item in [losses] if isinstance(losses, str | LossSpec | LossCase) else losses:
        if isinstance(item, LossCase):
            cases.append(item)
        elif isinstance(item, tuple):
            name, params = item
            # a composite's flags (semi_supervised, per_sample) follow the members it is given
            spec = effective_spec(spec_of(name), params)
            cases.append(LossCase(spec, dict(params or {})))
        else:
            cases.append(LossCase(spec_of(item)))
    return cases


def _run_one(case: LossCase, name: str) -> CheckResult:
    reason = not_applicable_reason(name, case.spec)
    if reason is not None:
        return CheckResult(case.id, name, "skipped", reason)
    start = time.perf_counter()
    try:
        with _one_thread():
            LOSS_CHECKS[name](case)
    except SkipCheck as exc:
        return CheckResult(case.id, name, "skipped", str(exc), time.perf_counter() - start)
    except Exception as exc:
        kind = "" if isinstance(exc, AssertionError) else f"{type(exc).__name__}: "
        message = f"{kind}{exc}".strip() or type(exc).__name__
        return CheckResult(case.id, name, "failed", message, time.perf_counter() - start)
    return CheckResult(case.id, name, "passed", "", time.perf_counter() - start)


def check_loss(
    loss: str | LossSpec,
    params: Mapping[str, Any] | None = None,
    *,
    checks: Iterable[str | Callable[..., Any]] | None = None,
    registry: Registry | None = None,
    raise_on_failure: bool = True,
    verbose: bool = False,
) -> list[CheckResult]:
    """Run the conformance checks on one loss, without pytest.

    Parameters
    ----------
    loss : str or LossSpec
        A registered name or alias (looked up in ``registry``), or a spec.
    params : mapping, optional
        Hyperparameters to check the loss with; the others keep their defaults.
    checks : iterable of str or check functions, optional
        The checks to run (default: every one in :data:`LOSS_CHECKS`). A check that does not
        apply to the loss (by its spec's flags) is reported as ``skipped`` with the reason.
    registry : Registry, optional
        Where names are looked up; default: the process-wide registry.
    raise_on_failure : bool, default=True
        Raise :class:`LossCheckError` listing the failures after running every check.
    verbose : bool, default=False
        Print one line per check as it finishes.

    Returns
    -------
    list of CheckResult
        One per check, in :data:`LOSS_CHECKS` order.

    Examples
    --------
    >>> from lossreg.testing import check_loss
    >>> results = check_loss("mse", checks=["check_gradcheck", "check_sample_weight_equivalence"])
    >>> [(r.check, r.status) for r in results]
    [('check_gradcheck', 'passed'), ('check_sample_weight_equivalence', 'passed')]
    """
    (case,) = resolve_cases([(loss, params or {})], registry)
    names = _check_names(checks) or list(LOSS_CHECKS)
    results = []
    for name in names:
        result = _run_one(case, name)
        if verbose:
            extra = f": {result.message}" if result.message else ""
            print(f"{case.id} {name} {result.status.upper()}{extra}")
        results.append(result)
    failed = [r for r in results if r.status == "failed"]
    if failed and raise_on_failure:
        lines = "\n".join(f"  {r.check}: {r.message}" for r in failed)
        raise LossCheckError(f"{len(failed)} check(s) failed for {case.id}:\n{lines}", results)
    return results


class _PytestCheck:
    """A check bound for pytest: SkipCheck becomes pytest.skip."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.__name__ = name
        self.__doc__ = LOSS_CHECKS[name].__doc__

    def __call__(self, case: LossCase) -> None:
        import pytest

        try:
            with _one_thread():
                LOSS_CHECKS[self.name](case)
        except SkipCheck as exc:
            pytest.skip(str(exc))

    def __repr__(self) -> str:
        return self.name


def parametrize_with_loss_checks(
    losses: Iterable[LossLike],
    *,
    checks: Iterable[str | Callable[..., Any]] | None = None,
    expected_failed_checks: ExpectedFailures = None,
    registry: Registry | None = None,
) -> Any:
    """Pytest decorator that runs every applicable check on every loss, one test each.

    Modelled on scikit-learn's ``parametrize_with_checks``. The decorated test takes the
    arguments ``loss`` (a :class:`LossCase`) and ``check`` and calls ``check(loss)``. Test ids
    read ``focal(gamma=0.0)-check_gradcheck``. Checks that do not apply to a loss (by its
    spec's flags: per_sample, stochastic, tasks ...) are not generated.

    Parameters
    ----------
    losses : iterable
        Registered names or aliases, ``(name, params)`` pairs, LossSpecs or LossCases.
    checks : iterable of str or check functions, optional
        Restrict to these checks (default: all of :data:`LOSS_CHECKS`).
    expected_failed_checks : mapping or callable, optional
        ``{check_name: reason}`` for every loss, or ``f(case) -> {check_name: reason}``;
        those tests are marked ``xfail(strict=True)``.
    registry : Registry, optional
        Where names are looked up; default: the process-wide registry.

    Examples
    --------
    >>> from lossreg.testing import parametrize_with_loss_checks
    >>> @parametrize_with_loss_checks(["focal", ("focal", {"gamma": 0.0})])
    ... def test_conformance(loss, check):
    ...     check(loss)
    """
    import pytest

    names = _check_names(checks)
    cases = resolve_cases(losses, registry)
    parameters = []
    for case in cases:
        expected = (
            expected_failed_checks(case)
            if callable(expected_failed_checks)
            else expected_failed_checks
        ) or {}
        _check_names(expected)
        for name in applicable_checks(case.spec, names):
            marks = []
            if name in expected:
                marks.append(pytest.mark.xfail(strict=True, reason=expected[name]))
            parameters.append(
                pytest.param(case, _PytestCheck(name), id=f"{case.id}-{name}", marks=marks)
            )
    return pytest.mark.parametrize(("loss", "check"), parameters)
