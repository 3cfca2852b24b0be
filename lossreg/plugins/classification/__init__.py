"""Built-in plugin: standard classification losses (cross-entropy, BCE, focal)."""

from __future__ import annotations

from lossreg import LossSpec, Param, hookimpl

from .binary import BinaryCrossEntropy, BinaryFocal
from .cross_entropy import CrossEntropy
from .focal import Focal

__all__ = ["BinaryCrossEntropy", "BinaryFocal", "CrossEntropy", "Focal", "register_losses"]

_FOCAL_PAPER = 'Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, arXiv:1708.02002'
_GAMMA = Param("gamma", "float", 2.0, low=0, grid=(0.5, 1.0, 2.0, 3.0), doc="focusing parameter")


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="cross_entropy",
            aliases=("ce",),
            factory=CrossEntropy,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(
                Param(
                    "label_smoothing",
                    "float",
                    0.0,
                    low=0,
                    high=1,
                    closed="left",
                    grid=(0.0, 0.1),
                    doc="mass spread uniformly over the classes",
                ),
            ),
            summary="Softmax cross-entropy (log loss), optionally label-smoothed.",
            reference=(
                'Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", '
                "CVPR 2016, arXiv:1512.00567"
            ),
        ),
        LossSpec(
            name="bce",
            aliases=("binary_cross_entropy", "logistic"),
            factory=BinaryCrossEntropy,
            tasks={"binary", "multilabel"},
            link="sigmoid",
            params=(
                Param(
                    "pos_weight",
                    "vector",
                    None,
                    low=0,
                    nullable=True,
                    doc="weight of the positive term, one value per label",
                ),
            ),
            summary="Binary cross-entropy on logits (logistic loss); per-label mean.",
            reference=(
                'Terven et al., "Loss Functions and Metrics in Deep Learning", arXiv:2307.02694'
            ),
        ),
        LossSpec(
            name="focal",
            factory=Focal,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(
                _GAMMA,
                Param(
                    "alpha",
                    "vector",
                    None,
                    low=0,
                    nullable=True,
                    doc="per-class weight, one value per class",
                ),
            ),
            summary="Softmax focal loss: cross-entropy scaled by (1 - p_t)^gamma.",
            reference=_FOCAL_PAPER,
        ),
        LossSpec(
            name="binary_focal",
            aliases=("sigmoid_focal",),
            factory=BinaryFocal,
            tasks={"binary", "multilabel"},
            link="sigmoid",
            params=(
                _GAMMA,
                Param(
                    "alpha",
                    "float",
                    0.25,
                    low=0,
                    high=1,
                    nullable=True,
                    grid=(0.25, 0.5, None),
                    doc="weight of the positive class; None switches it off",
                ),
            ),
            summary="Sigmoid focal loss for binary and multilabel targets.",
            reference=_FOCAL_PAPER,
        ),
    ]
