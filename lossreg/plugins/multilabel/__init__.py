"""Built-in plugin: multilabel losses (asymmetric, distribution-balanced, PU, overlap losses)."""

from __future__ import annotations

from lossreg import LossSpec, Param, hookimpl

from .asymmetric import Asymmetric, AsymmetricSingleLabel, MultiFocalModifier
from .distribution_balanced import DistributionBalanced
from .lovasz import LovaszHinge
from .overlap import Dice, FocalTversky, GeneralizedDice, Jaccard, Tversky
from .prior_focal import PriorFocalModifier
from .pu import PUMLC

__all__ = [
    "NOT_REGISTERED",
    "PUMLC",
    "Asymmetric",
    "AsymmetricSingleLabel",
    "Dice",
    "DistributionBalanced",
    "FocalTversky",
    "GeneralizedDice",
    "Jaccard",
    "LovaszHinge",
    "MultiFocalModifier",
    "PriorFocalModifier",
    "Tversky",
    "register_losses",
]

#: Catalogue entries that are deliberately not registered as losses, with the reason.
NOT_REGISTERED: dict[str, str] = {
    "class_margin_embedding_hinge": (
        "Not a classifier criterion on its own: it scores row embeddings against learnable "
        "class prototypes and has no predict link; the paper uses it only as "
        "0.5 * distribution_balanced(logits) + 0.5 * hinge(embeddings), which needs "
        "multi-head outputs (logits + embeddings) and composite losses."
    ),
}

_ASL_PAPER = (
    'Ben-Baruch et al., "Asymmetric Loss For Multi-Label Classification", ICCV 2021, '
    "arXiv:2009.14119"
)
_COMIC_PAPER = (
    'Zhang et al., "Learning in Imperfect Environment: Multi-Label Classification with '
    'Long-Tailed Distribution and Partial Labels", ICCV 2023, arXiv:2304.10539'
)
_OVERLAP_TASKS = {"binary", "multilabel"}


def _gamma(name: str, default: float, grid: tuple[float, ...], doc: str) -> Param:
    return Param(name, "float", default, low=0, grid=grid, doc=doc)


_CLIP = Param(
    "clip",
    "float",
    0.05,
    low=0,
    high=1,
    closed="left",
    grid=(0.0, 0.05, 0.2),
    doc="probability margin m discarding easy negatives",
)
_SMOOTH = Param("smooth", "float", 1.0, low=0, grid=(1e-6, 1.0), doc="smoothing epsilon")
_SKIP_EMPTY = Param(
    "skip_empty", "bool", False, doc="zero the term of labels without positives in the batch"
)
_ALPHA_T = Param("alpha", "float", 0.3, low=0, grid=(0.3, 0.5), doc="weight of false positives")
_BETA_T = Param("beta", "float", 0.7, low=0, grid=(0.5, 0.7), doc="weight of false negatives")


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="asymmetric",
            aliases=("asl",),
            factory=Asymmetric,
            tasks={"multilabel"},
            link="sigmoid",
            params=(
                _gamma("gamma_neg", 4.0, (2.0, 4.0), "focusing of negatives"),
                _gamma("gamma_pos", 0.0, (0.0, 1.0), "focusing of positives"),
                _CLIP,
                Param("disable_grad_focal", "bool", False, doc="no gradient through weights"),
            ),
            summary="Asymmetric loss: focusing and probability shifting on negatives; label sum.",
            reference=_ASL_PAPER,
        ),
        LossSpec(
            name="asymmetric_single_label",
            aliases=("asl_single_label",),
            factory=AsymmetricSingleLabel,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(
                _gamma("gamma_pos", 0.0, (0.0, 1.0), "focusing of the target class"),
                _gamma("gamma_neg", 4.0, (2.0, 4.0), "focusing of the other classes"),
                Param(
                    "eps",
                    "float",
                    0.1,
                    low=0,
                    high=1,
                    closed="left",
                    grid=(0.0, 0.1),
                    doc="label smoothing",
                ),
            ),
            summary="Softmax asymmetric loss with label smoothing.",
            reference=_ASL_PAPER,
        ),
        LossSpec(
            name="distribution_balanced",
            factory=DistributionBalanced,
            tasks={"multilabel"},
            link="sigmoid",
            params=(
                Param("map_alpha", "float", 0.1, low=0, doc="offset of the weight map"),
                Param("map_beta", "float", 10.0, low=0, doc="slope of the weight map"),
                Param("map_mu", "float", 0.2, grid=(0.2, 0.3), doc="centre of the weight map"),
                _gamma("init_bias", 0.05, (0.0, 0.05, 0.1), "kappa of the class-specific bias"),
                Param(
                    "neg_scale",
                    "float",
                    2.0,
                    low=0,
                    closed="neither",
                    grid=(2.0, 5.0),
                    doc="lambda scaling negative logits",
                ),
                _gamma("gamma", 2.0, (0.0, 2.0), "focusing parameter"),
                Param("balance", "float", 2.0, low=0, closed="neither", doc="constant factor"),
            ),
            data_params=("class_counts", "n_samples"),
            summary="Re-balanced weights plus negative-tolerant regularisation (long-tail BCE).",
            reference=(
                'Wu et al., "Distribution-Balanced Loss for Multi-Label Classification in '
                'Long-Tailed Datasets", ECCV 2020, arXiv:2007.09654'
            ),
        ),
        LossSpec(
            name="multi_focal_modifier",
            factory=MultiFocalModifier,
            tasks={"multilabel"},
            link="sigmoid",
            params=(
                _gamma("gamma_neg", 4.0, (3.0, 4.0), "focusing of negatives"),
                _gamma("gamma_pos", 0.0, (), "focusing of positives"),
                _CLIP,
                Param(
                    "exponent",
                    "float",
                    1 / 6,
                    low=0,
                    closed="neither",
                    grid=(1 / 6, 1 / 3),
                    doc="exponent of the rarity weight",
                ),
                Param("disable_grad_focal", "bool", True, doc="no gradient through weights"),
            ),
            data_params=("class_counts",),
            summary="ASL with a rarity weight and rarity-dependent negative focusing.",
            reference=_COMIC_PAPER,
        ),
        LossSpec(
            name="prior_focal_modifier",
            factory=PriorFocalModifier,
            tasks={"multilabel"},
            link="sigmoid",
            params=(
                _gamma("gamma_neg", 3.0, (3.0, 4.0), "focusing of negatives"),
                _gamma("gamma_pos", 0.0, (), "focusing of positives"),
                _CLIP,
                Param(
                    "exponent",
                    "float",
                    1 / 3,
                    low=0,
                    closed="neither",
                    grid=(1 / 6, 1 / 3),
                    doc="exponent of the rarity weight",
                ),
                Param(
                    "gamma_ng",
                    "float",
                    1.2,
                    low=1,
                    grid=(1.0, 1.2),
                    doc="factor on negatives of rows with co-occurrence attention",
                ),
                Param("disable_grad_focal", "bool", True, doc="no gradient through weights"),
            ),
            data_params=("class_counts", "label_cooccurrence"),
            summary="Multi-focal modifier plus a label co-occurrence prior on each row.",
            reference=_COMIC_PAPER,
        ),
        LossSpec(
            name="pu_mlc",
            factory=PUMLC,
            tasks={"multilabel"},
            link="sigmoid",
            params=(
                _gamma("gamma", 0.0, (0.0, 1.0), "re-balance exponent"),
                Param(
                    "alpha",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.5, 1.0),
                    doc="temperature scale",
                ),
            ),
            per_sample=False,
            summary="Variational positive-unlabeled loss per label (targets 1 / 0 or -1).",
            reference=(
                'Yuan et al., "Positive Label Is All You Need for Multi-Label Classification", '
                "arXiv:2306.16016"
            ),
        ),
        LossSpec(
            name="dice",
            aliases=("soft_dice", "soft_f1"),
            factory=Dice,
            tasks=_OVERLAP_TASKS,
            link="sigmoid",
            params=(
                _SMOOTH,
                Param("squared_denominator", "bool", False, doc="sum p^2 + y^2 (V-Net)"),
                Param("log", "bool", False, doc="-log Dice instead of 1 - Dice"),
                Param(
                    "aggregate",
                    "choice",
                    "batch",
                    options=("batch", "sample"),
                    doc="Dice per label over the batch, or per row over its labels",
                ),
                _SKIP_EMPTY,
            ),
            per_sample=False,
            summary="Soft Dice / soft F1 per label over the batch (batch-level).",
            reference=(
                'Milletari et al., "V-Net: Fully Convolutional Neural Networks for Volumetric '
                'Medical Image Segmentation", 3DV 2016, arXiv:1606.04797'
            ),
        ),
        LossSpec(
            name="generalized_dice",
            factory=GeneralizedDice,
            tasks=_OVERLAP_TASKS,
            link="sigmoid",
            params=(Param("smooth", "float", 1e-5, low=0, doc="smoothing epsilon"),),
            per_sample=False,
            summary="Dice over all labels weighted by 1 / (positives)^2 (batch-level).",
            reference=(
                'Sudre et al., "Generalised Dice overlap as a deep learning loss function for '
                'highly unbalanced segmentations", DLMIA 2017, arXiv:1707.03237'
            ),
        ),
        LossSpec(
            name="tversky",
            factory=Tversky,
            tasks=_OVERLAP_TASKS,
            link="sigmoid",
            params=(_ALPHA_T, _BETA_T, _SMOOTH, _SKIP_EMPTY),
            per_sample=False,
            summary="Tversky index loss: Dice with weighted FP / FN (batch-level).",
            reference=(
                'Salehi et al., "Tversky loss function for image segmentation using 3D fully '
                'convolutional deep networks", MLMI 2017, arXiv:1706.05721'
            ),
        ),
        LossSpec(
            name="focal_tversky",
            factory=FocalTversky,
            tasks=_OVERLAP_TASKS,
            link="sigmoid",
            params=(
                _ALPHA_T,
                _BETA_T,
                Param(
                    "gamma",
                    "float",
                    4 / 3,
                    low=0,
                    closed="neither",
                    grid=(1.0, 4 / 3, 2.0),
                    doc="focal parameter; per-label exponent 1/gamma",
                ),
                _SMOOTH,
                _SKIP_EMPTY,
            ),
            per_sample=False,
            summary="Per-label Tversky loss raised to 1/gamma (batch-level).",
            reference=(
                'Abraham & Khan, "A Novel Focal Tversky loss function with improved Attention '
                'U-Net for lesion segmentation", ISBI 2019, arXiv:1810.07842'
            ),
        ),
        LossSpec(
            name="jaccard",
            aliases=("soft_iou",),
            factory=Jaccard,
            tasks=_OVERLAP_TASKS,
            link="sigmoid",
            params=(_SMOOTH, _SKIP_EMPTY),
            per_sample=False,
            summary="Soft Jaccard / IoU loss per label over the batch (batch-level).",
            reference=(
                'Terven et al., "Loss Functions and Metrics in Deep Learning", arXiv:2307.02694'
            ),
        ),
        LossSpec(
            name="lovasz_hinge",
            factory=LovaszHinge,
            tasks=_OVERLAP_TASKS,
            link="sigmoid",
            per_sample=False,
            summary="Lovász extension of the Jaccard loss on hinge errors (batch-level).",
            reference=(
                'Berman et al., "The Lovász-Softmax loss: A tractable surrogate for the '
                'optimization of the intersection-over-union measure in neural networks", '
                "CVPR 2018, arXiv:1705.08790"
            ),
        ),
    ]
