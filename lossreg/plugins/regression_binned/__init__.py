"""Built-in plugin: binned regression losses (regression as classification over target bins)."""

from __future__ import annotations

from lossreg import LossSpec, Param, hookimpl

from ._bins import EXPECTED_VALUE
from .histogram_ce import HistogramCE
from .hl_gauss import HLGauss
from .r2ccp import R2CCP
from .regression_plus_bin_ce import FIRST_COLUMN, RegressionPlusBinCE
from .two_hot import TwoHot

__all__ = [
    "NOT_REGISTERED",
    "R2CCP",
    "HLGauss",
    "HistogramCE",
    "RegressionPlusBinCE",
    "TwoHot",
    "register_losses",
]

#: Catalogue entries of this family that cannot be a criterion for an MLP on tabular data.
NOT_REGISTERED: dict[str, str] = {
    "decoding_regression": (
        "The paper's loss trains an autoregressive token decoder (teacher-forced, with its own "
        "transformer layers) on top of the network and predicts by sampling digits from it; "
        "that second model and its decode loop are not a criterion on an MLP's outputs."
    ),
}

_RANGE = ("target_min", "target_max")
_STOP = (
    'Farebrother et al., "Stop Regressing: Training Value Functions via Classification for '
    'Scalable Deep RL", ICML 2024'
)


def _n_bins(default: int, low: int, grid: tuple[int, ...]) -> Param:
    return Param("n_bins", "int", default, low=low, grid=grid, doc="number of bins (outputs)")


_MARGIN = Param(
    "margin", "float", 0.0, low=0, grid=(0.0, 0.1), doc="fraction of the range added on each side"
)


def _bins(context: dict) -> int:
    # One block of n_bins logits per target column.
    return int(context["n_bins"]) * int(context["n_outputs"])


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="hl_gauss",
            factory=HLGauss,
            tasks={"regression"},
            link=EXPECTED_VALUE,
            params=(
                _n_bins(51, 3, (21, 51, 101)),
                Param(
                    "sigma_ratio",
                    "float",
                    0.75,
                    low=0,
                    closed="right",
                    grid=(0.5, 0.75, 1.5),
                    doc="Gaussian width in bin widths",
                ),
                _MARGIN,
            ),
            data_params=_RANGE,
            output_size=_bins,
            summary="Cross-entropy against a truncated-Gaussian histogram of the target.",
            reference=_STOP,
        ),
        LossSpec(
            name="two_hot",
            aliases=("categorical_projection",),
            factory=TwoHot,
            tasks={"regression"},
            link=EXPECTED_VALUE,
            params=(
                _n_bins(51, 2, (21, 51, 101)),
                Param(
                    "support",
                    "choice",
                    "atoms",
                    options=("atoms", "centers"),
                    doc="support points: C51 atoms (ends included) or bin centres",
                ),
                _MARGIN,
            ),
            data_params=_RANGE,
            output_size=_bins,
            summary="Cross-entropy against the target split between its two support points.",
            reference=_STOP,
        ),
        LossSpec(
            name="histogram_ce",
            factory=HistogramCE,
            tasks={"regression"},
            link=EXPECTED_VALUE,
            params=(_n_bins(51, 2, (21, 51, 101)), _MARGIN),
            data_params=_RANGE,
            output_size=_bins,
            summary="Cross-entropy on the equal-width target bin; predicts the expected centre.",
            reference=(
                'Song and Bahri, "Decoding-based Regression", TMLR 2025, arXiv:2501.19383 '
                "(histogram baseline)"
            ),
        ),
        LossSpec(
            name="r2ccp",
            factory=R2CCP,
            tasks={"regression"},
            link=EXPECTED_VALUE,
            params=(
                _n_bins(50, 2, (25, 50, 100)),
                Param(
                    "q", "float", 0.5, low=0, closed="right", grid=(0.5, 1.0), doc="distance power"
                ),
                Param("tau", "float", 0.2, low=0, grid=(0.0, 0.2, 1.0), doc="entropy weight"),
                Param(
                    "anneal_epochs",
                    "int",
                    None,
                    low=1,
                    nullable=True,
                    doc="epochs over which tau decays linearly to 0; None keeps it fixed",
                ),
                _MARGIN,
            ),
            data_params=_RANGE,
            output_size=_bins,
            summary="Expected |y - midpoint|^q over bins minus tau x entropy; conformal intervals.",
            reference=(
                'Guha et al., "Conformal Prediction via Regression-as-Classification", ICLR 2024'
            ),
        ),
        LossSpec(
            name="regression_plus_bin_ce",
            factory=RegressionPlusBinCE,
            tasks={"regression"},
            link=FIRST_COLUMN,
            params=(
                _n_bins(10, 2, (10, 50)),
                Param("lam", "float", 1.0, low=0, grid=(0.0, 0.1, 1.0), doc="weight of the bin CE"),
            ),
            data_params=_RANGE,
            output_size=lambda context: (1 + int(context["n_bins"])) * int(context["n_outputs"]),
            summary="Squared error plus lambda x cross-entropy of an auxiliary target-bin head.",
            reference=(
                'Pintea et al., "A step towards understanding why classification helps '
                'regression", ICCV 2023, arXiv:2308.10603'
            ),
        ),
    ]
