"""Built-in plugin: point regression losses (squared, absolute, Huber)."""

from __future__ import annotations

from lossreg import LossSpec, Param, hookimpl

from .point import AbsoluteError, Huber, SquaredError

__all__ = ["AbsoluteError", "Huber", "SquaredError", "register_losses"]

_SURVEY = (
    'Jadon et al., "A Comprehensive Survey of Regression Based Loss Functions for Time Series '
    'Forecasting", arXiv:2211.02989'
)


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="mse",
            aliases=("l2",),
            factory=SquaredError,
            tasks={"regression"},
            link="identity",
            summary="Mean squared error; predicts the conditional mean.",
            reference=_SURVEY,
        ),
        LossSpec(
            name="mae",
            aliases=("l1",),
            factory=AbsoluteError,
            tasks={"regression"},
            link="identity",
            summary="Mean absolute error; predicts the conditional median.",
            reference=_SURVEY,
        ),
        LossSpec(
            name="huber",
            factory=Huber,
            tasks={"regression"},
            link="identity",
            params=(
                Param(
                    "delta",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.5, 1.0, 2.0),
                    doc="residual where the loss turns linear (target units)",
                ),
            ),
            summary="Huber loss: squared near zero, absolute in the tails.",
            reference=(
                'Huber, "Robust Estimation of a Location Parameter", Ann. Math. Statist. 1964, '
                "doi:10.1214/aoms/1177703732"
            ),
        ),
    ]
