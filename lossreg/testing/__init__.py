"""The conformance kit: the checks every loss plugin (built-in or third-party) must pass.

With pytest::

    from lossreg.testing import parametrize_with_loss_checks

    @parametrize_with_loss_checks(["my_loss", ("my_loss", {"gamma": 0.0})])
    def test_conformance(loss, check):
        check(loss)

Without it: ``check_loss("my_loss")``, or ``lossreg check my_loss`` on the command line.
"""

from __future__ import annotations

from lossreg.testing._case import LossCase
from lossreg.testing._checks import (
    LOSS_CHECKS,
    SkipCheck,
    applicable_checks,
    invalid_values,
    not_applicable_reason,
)
from lossreg.testing._runner import (
    CheckResult,
    LossCheckError,
    check_loss,
    parametrize_with_loss_checks,
    resolve_cases,
)
from lossreg.testing._toy import FEATURE_DIM, Toy, make_toy, primary_task

__all__ = [
    "FEATURE_DIM",
    "LOSS_CHECKS",
    "CheckResult",
    "LossCase",
    "LossCheckError",
    "SkipCheck",
    "Toy",
    "applicable_checks",
    "check_loss",
    "invalid_values",
    "make_toy",
    "not_applicable_reason",
    "parametrize_with_loss_checks",
    "primary_task",
    "resolve_cases",
]
