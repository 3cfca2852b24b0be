"""Built-in plugin: post-hoc calibration losses that fit a temperature (or affine map) on logits."""

from __future__ import annotations

from lossreg import LossSpec, Param, hookimpl

from ._private import calibrated_softmax_link
from .correctness import CorrectnessAware
from .h_calibration import HCalibration
from .temperature import TemperatureScaling

__all__ = [
    "NOT_REGISTERED",
    "CorrectnessAware",
    "HCalibration",
    "TemperatureScaling",
    "calibrated_softmax_link",
    "register_losses",
]

#: Catalogue entries of this family that are deliberately not registered, with the reason.
NOT_REGISTERED: dict[str, str] = {}

_CLASS_TASKS = frozenset({"binary", "multiclass"})


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="temperature_scaling",
            factory=TemperatureScaling,
            tasks=_CLASS_TASKS,
            link=calibrated_softmax_link,
            params=(
                Param(
                    "affine",
                    "bool",
                    False,
                    grid=(False, True),
                    doc="fit a per-class scale and bias (vector scaling) instead of one T",
                ),
            ),
            data_params=("n_classes",),
            learnable=True,
            summary="Post-hoc calibrator: NLL of logits / T with a learned temperature T.",
            reference=(
                'Guo et al., "On Calibration of Modern Neural Networks", ICML 2017, '
                "arXiv:1706.04599"
            ),
        ),
        LossSpec(
            name="correctness_aware",
            factory=CorrectnessAware,
            tasks=_CLASS_TASKS,
            link=calibrated_softmax_link,
            params=(
                Param(
                    "balanced",
                    "bool",
                    True,
                    grid=(True, False),
                    doc="weigh correct rows by 1 - accuracy and wrong rows by accuracy",
                ),
            ),
            per_sample=False,
            learnable=True,
            summary="Post-hoc calibrator: balanced squared gap of confidence and correctness.",
            reference=(
                'Liu et al., "Optimizing Calibration by Gaining Aware of Prediction '
                'Correctness", arXiv:2404.13016'
            ),
        ),
        LossSpec(
            name="h_calibration",
            factory=HCalibration,
            tasks=_CLASS_TASKS,
            link=calibrated_softmax_link,
            params=(
                Param(
                    "veclen",
                    "int",
                    200,
                    low=2,
                    grid=(100, 200),
                    doc="moving-average window over the sorted (row, class) events",
                ),
                Param("epsilon", "float", 1e-20, low=0, doc="tolerance of the local gap"),
                Param(
                    "weighting",
                    "choice",
                    "equal_mass",
                    options=("equal_mass", "unweighted"),
                    doc="mean over 15 equal-mass bins of sorted events, or over all events",
                ),
                Param(
                    "leave_one_out",
                    "bool",
                    True,
                    doc="average over the leave-one-class-out subsets",
                ),
                Param(
                    "lossweight",
                    "float",
                    1e5,
                    low=0,
                    closed="neither",
                    doc="scale of the loss",
                ),
            ),
            per_sample=False,
            learnable=True,
            summary="Post-hoc calibrator: bounded local calibration error of sorted events.",
            reference=(
                'Huang et al., "h-calibration: Rethinking Classifier Recalibration with '
                'Probabilistic Error-Bounded Objective", IEEE TPAMI 2025, '
                "doi:10.1109/TPAMI.2025.3582796, arXiv:2506.17968"
            ),
        ),
    ]
