"""The conformance kit over every registered built-in loss, plus extra parameterisations.

The list comes from the registry, so loss families merged later are checked without editing
this file. Every check runs, the estimator smoke fit included.
"""

from __future__ import annotations

import lossreg
from lossreg.testing import LOSS_CHECKS, parametrize_with_loss_checks

REGISTRY = lossreg.Registry(entry_points=False, load="", block=())

#: Checks not run here, with the reason.
EXCLUDED: dict[str, str] = {}

#: Known, explained failures: {loss name: {check: reason}}, run as strict xfails. A loss
#: family adds an entry only for a deliberate departure from a contract (a gradient stopped
#: on purpose by the paper, a batch layout the kit cannot build), never to hide a bug.
EXPECTED_FAILURES: dict[str, dict[str, str]] = {}

#: Parameterisations beyond the defaults: the corners where formulas change form.
EXTRA_CASES = [
    ("focal", {"gamma": 0.0}),
    ("focal", {"gamma": 0.5, "alpha": [1.0, 2.0, 0.5]}),
    ("cross_entropy", {"label_smoothing": 0.1}),
    ("binary_focal", {"alpha": None}),
    ("bce", {"pos_weight": [3.0]}),
    ("huber", {"delta": 0.1}),
]


@parametrize_with_loss_checks(
    [*REGISTRY.list_losses(), *EXTRA_CASES],
    checks=[name for name in LOSS_CHECKS if name not in EXCLUDED],
    expected_failed_checks=lambda case: EXPECTED_FAILURES.get(case.spec.name, {}),
    registry=REGISTRY,
)
def test_conformance(loss, check):
    check(loss)


def test_extra_cases_and_expected_failures_name_registered_losses():
    names = {name for name, _ in EXTRA_CASES} | set(EXPECTED_FAILURES)
    assert names <= set(REGISTRY.list_losses())
