"""Built-in plugin: class-imbalance losses (re-weighting, margins, logit adjustment, links)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lossreg import Link, LossSpec, Param, hookimpl

from .adaptive import AdaptiveLogitAdjusted
from .collapse import NC_BASES, NeuralCollapseReg
from .density import DensityNormalizedCE
from .links import GUMBEL_LINK, PROBIT_LINK, GumbelBCE, ProbitBCE
from .margins import LDAM, LDAMDRW, LDAMMultilabel, LogitAdjusted, VectorScaling
from .ride import RIDE, RIDE_LINK
from .weighted import CB_BASES, ClassBalanced, WeightedCrossEntropy

__all__ = [
    "LDAM",
    "LDAMDRW",
    "NOT_REGISTERED",
    "RIDE",
    "AdaptiveLogitAdjusted",
    "ClassBalanced",
    "DensityNormalizedCE",
    "GumbelBCE",
    "LDAMMultilabel",
    "LogitAdjusted",
    "NeuralCollapseReg",
    "ProbitBCE",
    "VectorScaling",
    "WeightedCrossEntropy",
    "register_losses",
]

#: Catalogue entries that are deliberately not registered as losses, with the reason.
NOT_REGISTERED: dict[str, str] = {
    "sampling_free_bce": (
        "As a criterion it is exactly `bce`; the method's contributions are a prior-based "
        "output-bias initialisation, guided scaling between two loss terms and an adaptive "
        "decision threshold, which are estimator features (bias-init hook, composite losses, "
        "threshold link), not a loss."
    ),
}

_LDAM_PAPER = (
    'Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware Margin Loss", '
    "NeurIPS 2019, arXiv:1906.07413"
)
_GOL_PAPER = (
    'Alexandridis et al., "Long-tailed Instance Segmentation using Gumbel Optimized Loss", '
    "ECCV 2022, arXiv:2207.10936"
)


def _positive(name: str, default: float, grid: tuple[float, ...], doc: str) -> Param:
    return Param(name, "float", default, low=0, closed="neither", grid=grid, doc=doc)


def _nonnegative(name: str, default: float, grid: tuple[float, ...], doc: str) -> Param:
    return Param(name, "float", default, low=0, grid=grid, doc=doc)


_MAX_M = _positive("max_m", 0.5, (0.3, 0.5), "largest class margin (the rarest class)")
_S = _positive("s", 30.0, (1.0, 10.0, 30.0), "logit scale; 30 assumes cosine logits, use 1 raw")
_BETA = Param(
    "beta",
    "float",
    0.9999,
    low=0,
    high=1,
    closed="left",
    grid=(0.9, 0.99, 0.999, 0.9999),
    doc="effective-number parameter: 0 no re-weighting, towards 1 inverse frequency",
)
_DRW = Param(
    "drw_fraction",
    "float",
    0.8,
    low=0,
    high=1,
    grid=(0.6, 0.8),
    doc="deferred re-weighting starts at this fraction of max_epochs",
)


def _base_link(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    base = getattr(criterion, "base", "focal")
    if CB_BASES[base] == "sigmoid":
        return output.sigmoid()
    return output.softmax(dim=-1)


_CB_LINK = Link(
    "base",
    _base_link,
    "proba",
    "the base loss's link: softmax for cross_entropy/focal, sigmoid for bce/binary_focal",
)


def _cb_output_size(ctx: Mapping[str, Any]) -> int:
    if ctx["task"] == "multilabel":
        return int(ctx["n_outputs"])
    if CB_BASES[ctx["base"]] == "sigmoid":
        return 1
    return int(ctx["n_classes"])


def _binary_or_labels(ctx: Mapping[str, Any]) -> int:
    return 1 if ctx["task"] == "binary" else int(ctx["n_outputs"])


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="weighted_cross_entropy",
            factory=WeightedCrossEntropy,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(
                Param(
                    "class_weight",
                    "vector",
                    None,
                    low=0,
                    nullable=True,
                    doc="per-class weights; None = balanced N / (C n_c)",
                ),
            ),
            data_params=("class_counts",),
            summary="Cross-entropy with per-class weights (balanced by default), torch mean.",
            reference=(
                'Terven et al., "Loss Functions and Metrics in Deep Learning", arXiv:2307.02694'
            ),
        ),
        LossSpec(
            name="class_balanced",
            aliases=("cb",),
            factory=ClassBalanced,
            tasks={"binary", "multiclass", "multilabel"},
            link=_CB_LINK,
            params=(
                Param(
                    "base",
                    "choice",
                    "focal",
                    options=tuple(CB_BASES),
                    grid=("focal", "cross_entropy"),
                    doc="registered base loss, called with reduction='none'",
                ),
                _BETA,
                Param(
                    "gamma",
                    "float",
                    None,
                    low=0,
                    nullable=True,
                    grid=(None, 1.0),
                    doc="focusing parameter of a focal base; None keeps the base default",
                ),
            ),
            data_params=("class_counts",),
            output_size=_cb_output_size,
            summary="A base loss weighted by the inverse effective number of samples per class.",
            reference=(
                'Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", '
                "CVPR 2019, arXiv:1901.05555"
            ),
        ),
        LossSpec(
            name="ldam",
            factory=LDAM,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(_MAX_M, _S),
            data_params=("class_counts",),
            summary="Cross-entropy with class margins proportional to n_c^(-1/4) (training only).",
            reference=_LDAM_PAPER,
        ),
        LossSpec(
            name="ldam_drw",
            factory=LDAMDRW,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(_MAX_M, _S, _BETA, _DRW),
            data_params=("class_counts",),
            summary="LDAM with deferred class re-weighting late in training (set_epoch).",
            reference=_LDAM_PAPER,
        ),
        LossSpec(
            name="ldam_multilabel",
            factory=LDAMMultilabel,
            tasks={"multilabel"},
            link="sigmoid",
            params=(
                _nonnegative("c_m", 3.0, (1.0, 3.0, 5.0), "margin scale C_m of positive logits"),
            ),
            data_params=("class_counts",),
            summary="BCE with margins C_m / n_c^(1/4) subtracted from positive logits.",
            reference=(
                'Biswas et al., "TransICD: Transformer Based Code-wise Attention Model for '
                'Explainable ICD Coding", AIME 2021, arXiv:2104.10652'
            ),
        ),
        LossSpec(
            name="vector_scaling",
            aliases=("vs",),
            factory=VectorScaling,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(
                _nonnegative("gamma", 0.3, (0.1, 0.2, 0.3), "exponent of (n_c / n_max)"),
                _nonnegative("tau", 1.0, (0.5, 1.0, 1.5), "strength of the additive tau log pi"),
            ),
            data_params=("class_counts",),
            summary="Cross-entropy on (n_c/n_max)^gamma z + tau log pi (training only).",
            reference=(
                'Kini et al., "Label-Imbalanced and Group-Sensitive Classification under '
                'Overparameterization", NeurIPS 2021, arXiv:2103.01550'
            ),
        ),
        LossSpec(
            name="logit_adjusted",
            aliases=("la", "balanced_softmax"),
            factory=LogitAdjusted,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(_nonnegative("tau", 1.0, (0.5, 1.0, 1.5, 2.0), "adjustment strength"),),
            data_params=("class_priors",),
            summary="Cross-entropy on z + tau log(prior); balanced softmax at tau=1.",
            reference=(
                'Menon et al., "Long-tail learning via logit adjustment", ICLR 2021, '
                "arXiv:2007.07314"
            ),
        ),
        LossSpec(
            name="neural_collapse_reg",
            factory=NeuralCollapseReg,
            tasks={"binary", "multiclass"},
            link="softmax",
            outputs="logits+features",
            params=(
                _nonnegative(
                    "within_weight", 0.1, (0.01, 0.1, 1.0), "weight of the within-class term"
                ),
                _nonnegative(
                    "between_weight", 1.0, (0.1, 1.0), "weight of the equiangular class-mean term"
                ),
                Param(
                    "momentum",
                    "float",
                    0.9,
                    low=0,
                    high=1,
                    closed="left",
                    grid=(0.0, 0.9),
                    doc="moving-average factor of the class centres (0: batch means only)",
                ),
                Param(
                    "base",
                    "choice",
                    "cross_entropy",
                    options=NC_BASES,
                    grid=NC_BASES,
                    doc="loss the feature terms are added to",
                ),
                _nonnegative("tau", 1.0, (), "logit-adjustment strength (base='logit_adjusted')"),
            ),
            data_params=("n_classes", "class_priors", "feature_dim"),
            summary="CE (or logit-adjusted) + within-class and equiangular class-mean feature "
            "terms (unverified reconstruction).",
            reference=(
                'Liu, Zhang, Hu, Cao, Pan, Yao, "Inducing Neural Collapse in Deep Long-tailed '
                'Learning", AISTATS 2023, arXiv:2302.12453'
            ),
        ),
        LossSpec(
            name="adaptive_logit_adjusted",
            factory=AdaptiveLogitAdjusted,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(_nonnegative("tau", 1.0, (0.5, 1.0), "adjustment strength"),),
            data_params=("class_priors",),
            summary="Logit adjustment by each class's validation learning status (epoch-end).",
            reference=(
                'Jin et al., "PromptMRG: Diagnosis-Driven Prompts for Medical Report '
                'Generation", AAAI 2024, arXiv:2308.12604'
            ),
        ),
        LossSpec(
            name="gumbel_bce",
            aliases=("gol",),
            factory=GumbelBCE,
            tasks={"binary", "multilabel"},
            link=GUMBEL_LINK,
            output_size=_binary_or_labels,
            summary="Binary cross-entropy with the Gumbel CDF link, summed over labels.",
            reference=_GOL_PAPER,
        ),
        LossSpec(
            name="probit_bce",
            factory=ProbitBCE,
            tasks={"binary", "multilabel"},
            link=PROBIT_LINK,
            output_size=_binary_or_labels,
            summary="Binary cross-entropy with the probit (normal CDF) link, summed over labels.",
            reference=_GOL_PAPER,
        ),
        LossSpec(
            name="density_normalized_ce",
            aliases=("dnorm",),
            factory=DensityNormalizedCE,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(
                _nonnegative("alpha", 1.0, (), "weight of foreground rows"),
                _nonnegative("beta", 1.0, (0.5, 1.0, 2.0), "weight of background rows"),
                _nonnegative("gamma", 1.0, (), "overall scale"),
                Param("background_class", "int", 0, low=0, doc="index of the background class"),
                Param(
                    "mode",
                    "choice",
                    "dnorm",
                    options=("dnorm", "dnorm_fgbg"),
                    grid=("dnorm", "dnorm_fgbg"),
                    doc="normalise background rows by M_FG (dnorm) or M_BG (dnorm_fgbg)",
                ),
            ),
            per_sample=False,
            summary="Cross-entropy normalised by the batch's foreground count (batch-level).",
            reference=(
                'Knyazev et al., "Graph Density-Aware Losses for Novel Compositions in Scene '
                'Graph Generation", BMVC 2020, arXiv:2005.08230'
            ),
        ),
        LossSpec(
            name="ride",
            factory=RIDE,
            tasks={"multiclass"},
            link=RIDE_LINK,
            params=(
                Param("num_experts", "int", 3, low=1, grid=(2, 3, 4), doc="number of experts E"),
                _MAX_M,
                _S,
                Param(
                    "diversity_factor",
                    "float",
                    -0.2,
                    grid=(-0.2, 0.0),
                    doc="weight of the expert-diversity KL (negative maximises diversity)",
                ),
                _positive("diversity_temperature", 1.0, (), "base diversity temperature T0"),
                Param(
                    "reweight_factor",
                    "float",
                    0.05,
                    low=0,
                    high=1,
                    closed="left",
                    doc="r of the per-class diversity temperatures",
                ),
                _BETA,
                _DRW,
            ),
            data_params=("class_counts",),
            per_sample=False,
            output_size=lambda ctx: int(ctx["num_experts"]) * int(ctx["n_classes"]),
            summary="LDAM-DRW per expert plus a diversity KL; predicts the experts' mean.",
            reference=(
                'Wang et al., "Long-tailed Recognition by Routing Diverse Distribution-Aware '
                'Experts", ICLR 2021, arXiv:2010.01809'
            ),
        ),
    ]
