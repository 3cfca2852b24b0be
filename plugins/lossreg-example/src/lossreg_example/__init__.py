"""lossreg-example: a lossreg plugin registering the brier loss."""

from __future__ import annotations

from lossreg import LossSpec, hookimpl

from .brier import Brier

__all__ = ["Brier", "register_losses"]


@hookimpl
def register_losses() -> list[LossSpec]:
    """Return this plugin's losses; lossreg calls it on its first lookup."""
    return [
        LossSpec(
            name="brier",
            factory=Brier,
            tasks={"binary", "multiclass"},
            link="softmax",
            summary="Multiclass Brier score on softmax probabilities.",
            reference=(
                'Brier, "Verification of Forecasts Expressed in Terms of Probability", '
                "Monthly Weather Review 1950, doi:10.1175/1520-0493(1950)078<0001:VOFEIT>2.0.CO;2"
            ),
        )
    ]
