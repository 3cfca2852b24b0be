"""lossreg's conformance kit over every loss this plugin registers."""

import lossreg
from lossreg.testing import LOSS_CHECKS, parametrize_with_loss_checks

#: Checks not run, with the reason.
SKIPPED = {}


@parametrize_with_loss_checks(
    lossreg.list_losses(plugin="example"),
    checks=[name for name in LOSS_CHECKS if name not in SKIPPED],
)
def test_conformance(loss, check):
    check(loss)
