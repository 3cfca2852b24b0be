"""Built-in plugin: metric-learning, contrastive and self-supervised embedding losses.

Conventions shared by the family: the network outputs embeddings (N, D); supervised losses
take int labels (N,); two-view losses take a (2N, D) batch whose rows i and i+N are two views
of row i (the estimator stacks the outputs on two augmented copies of the batch). Losses whose
terms are in-batch pairs, triplets, proxies or batch statistics are batch-level
(``per_sample=False``); per-anchor losses return one value per (original) row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lossreg import LossSpec, Param, hookimpl

from ._classes import CLASS_LOGITS_LINK
from .alignment import TripletAlignment
from .amcl import AMCLInfoNCE
from .anchors import Circle, MultiSimilarity
from .compatible import BackwardCompatible, HarmonicTriplet
from .csd import CSDContrastive, even_width
from .cwcl import CWCL, KERNELS
from .global_contrastive import ISogCLR, SogCLR
from .hard_nce import HardInfoNCE, HardnessWeightedInfoNCE
from .hashing import NLSHTriplet
from .hyperbolic import HyperbolicSupConHybrid
from .look import LeaveOneOutKNN
from .margin import ArcFace, CosFace, NormalizedSoftmax, SphereFace
from .metrix import MetrixContrastive
from .multiview import MultiviewContrastive
from .nce import ClipInfoNCE, InfoNCE, SupCon
from .pairs import Contrastive, Triplet
from .palm import PALM
from .prototypes import ICNN, ProtoTriplet
from .proxies import Center, ProxyAnchor, ProxyNCA, SoftTriple
from .sliced import PRIORS, SlicedWasserstein
from .ssl import AlignUniform, BarlowTwins
from .structured import Angular, LiftedStructure, NPair
from .tcm import TCM_BASES, ThresholdConsistentMargin

__all__ = [
    "CWCL",
    "ICNN",
    "NOT_REGISTERED",
    "PALM",
    "AMCLInfoNCE",
    "AlignUniform",
    "Angular",
    "ArcFace",
    "BackwardCompatible",
    "BarlowTwins",
    "CSDContrastive",
    "Center",
    "Circle",
    "ClipInfoNCE",
    "Contrastive",
    "CosFace",
    "HardInfoNCE",
    "HardnessWeightedInfoNCE",
    "HarmonicTriplet",
    "HyperbolicSupConHybrid",
    "ISogCLR",
    "InfoNCE",
    "LeaveOneOutKNN",
    "LiftedStructure",
    "MetrixContrastive",
    "MultiSimilarity",
    "MultiviewContrastive",
    "NLSHTriplet",
    "NPair",
    "NormalizedSoftmax",
    "ProtoTriplet",
    "ProxyAnchor",
    "ProxyNCA",
    "SlicedWasserstein",
    "SoftTriple",
    "SogCLR",
    "SphereFace",
    "SupCon",
    "ThresholdConsistentMargin",
    "Triplet",
    "TripletAlignment",
    "register_losses",
]

#: Catalogue entries that cannot be a training criterion for an MLP on tabular data, and why.
NOT_REGISTERED: dict[str, str] = {
    "mixed_barlow_twins": (
        "Its regulariser needs the embeddings of mixed inputs, i.e. a second forward pass of the "
        "model on x_M = m x_A + (1-m) x_B[perm] inside the loss; a criterion only sees outputs."
    ),
    "energy_confusion": (
        "Trained adversarially against the metric objective (alternating updates or a "
        "gradient-sign split between parts of the network): an outer training-loop feature, "
        "and its formula is unverified."
    ),
    "wasserstein_predictive_coding": (
        "The objective is unbounded below unless the encoder is 1-Lipschitz (spectral "
        "normalisation in the architecture or a gradient penalty on input gradients); neither "
        "lives in a criterion."
    ),
    "hyperbolic_pairwise_confusion": (
        "A regulariser of hyperbolic_mlr_ce (pulls the two halves of a positives-only batch "
        "together): on its own every embedding collapses to one point, and its companion "
        "needs a feature-space pseudo-negative sampler, so it is not a criterion by itself."
    ),
    "hyperbolic_mlr_ce": (
        "Needs pseudo-negatives sampled in feature space from a running feature mean and "
        "gradient clipping during training: estimator features, not a loss on (output, target)."
    ),
    # --- part B (session 2) ---
    "adaptive_margin_triplet": (
        "The M2FNet paper's equations could not be read and there is no official code; the only "
        "source, a third-party reimplementation (the catalogue's formula), puts Euclidean "
        "distances into the adaptive margins, m_sim = 1 + 2/(e^{4 D_ap} + eps) and m_dis = 1 + "
        "2/(e^{4 - 4 D_an} + eps), with no hinge. Its anchor-positive part D_ap + m_sim is "
        "minimised at D_ap = ln(8)/4 = 0.52 and its anchor-negative part -D_an/2 + m_dis at "
        "D_an = 1 - ln(16)/4 = 0.31: it pulls negatives closer than positives, so it is not a "
        "metric-learning criterion; the margins only make sense on similarities, a reading no "
        "source confirms."
    ),
    "attract_repel": (
        "The LOGIN paper's Attract & Repel equations could not be read and the official "
        "repository (sangminwoo/Local-to-Global-Interaction-Networks-SGG) has the loss only as "
        "commented-out code of another form: a cosine loss to running per-predicate anchors "
        "plus a margin between the two directions of the same subject/object pair, which has "
        "no tabular counterpart. The catalogue's reconstruction (CE + centre attraction + "
        "squared-hinge repulsion of learnable centres) is unverified and gives no delta, "
        "lambda_a, lambda_r; its attraction part is the registered 'center' loss."
    ),
}

_EMBEDDING = {"embedding"}
_CLASSIFIES = {"embedding", "multiclass"}
_LEARNED = ("n_classes", "embedding_dim")


def _as_wide_as_output(context: Mapping[str, Any]) -> int:
    """The output width: the old (or other-view) embeddings are as wide as the new ones."""
    return int(context["width"])


#: ``teacher_logits`` holds embeddings compared with the output, so it is the output's width.
_OLD_EMBEDDINGS_WIDTH = {"teacher_logits": _as_wide_as_output}


def _heads_multiple(context: Mapping[str, Any]) -> int:
    """The requested width rounded up to a multiple of ``num_heads`` (heads of equal width)."""
    heads = int(context["num_heads"])
    return heads * -(-int(context["n_outputs"]) // heads)


def _temperature(default: float, grid: tuple[float, ...]) -> Param:
    return Param(
        "temperature",
        "float",
        default,
        low=0,
        closed="neither",
        grid=grid,
        doc="softmax temperature",
    )


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="triplet",
            sampler="class_balanced",  # in-batch positives per class
            factory=Triplet,
            tasks=_EMBEDDING,
            link="identity",
            per_sample=False,
            params=(
                Param(
                    "margin",
                    "float",
                    0.2,
                    low=0,
                    closed="neither",
                    grid=(0.1, 0.2, 0.5),
                    doc="triplet margin alpha",
                ),
                Param(
                    "miner",
                    "choice",
                    "semi_hard",
                    options=("semi_hard", "hard", "all"),
                    grid=("semi_hard", "hard", "all"),
                    doc="which in-batch triplets are used",
                ),
                Param(
                    "distance",
                    "choice",
                    "squared_euclidean",
                    options=("squared_euclidean", "euclidean", "cosine"),
                    doc="distance between embeddings",
                ),
                Param("normalize", "bool", True, doc="L2-normalise embeddings first"),
            ),
            summary="Triplet margin loss over mined in-batch triplets (semi-hard, hard, all).",
            reference=(
                'Schroff et al., "FaceNet: A Unified Embedding for Face Recognition and '
                'Clustering", CVPR 2015, arXiv:1503.03832'
            ),
        ),
        LossSpec(
            name="contrastive",
            sampler="class_balanced",  # in-batch positives per class
            factory=Contrastive,
            tasks=_EMBEDDING,
            link="identity",
            per_sample=False,
            params=(
                Param(
                    "neg_margin",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.5, 1.0, 2.0),
                    doc="distance beyond which negative pairs stop contributing",
                ),
                Param("pos_margin", "float", 0.0, low=0, doc="slack for positive pairs"),
                Param(
                    "distance",
                    "choice",
                    "euclidean",
                    options=("euclidean", "squared_euclidean", "cosine"),
                    doc="distance between embeddings",
                ),
                Param("normalize", "bool", False, doc="L2-normalise embeddings first"),
            ),
            summary="Contrastive pair loss: squared distance, squared hinge on negatives.",
            reference=(
                'Hadsell et al., "Dimensionality Reduction by Learning an Invariant Mapping", '
                "CVPR 2006, doi:10.1109/CVPR.2006.100"
            ),
        ),
        LossSpec(
            name="multi_similarity",
            sampler="class_balanced",  # in-batch positives per class
            factory=MultiSimilarity,
            tasks=_EMBEDDING,
            link="identity",
            params=(
                Param(
                    "alpha",
                    "float",
                    2.0,
                    low=0,
                    closed="neither",
                    grid=(1.0, 2.0),
                    doc="positive scale",
                ),
                Param(
                    "beta",
                    "float",
                    50.0,
                    low=0,
                    closed="neither",
                    grid=(20.0, 50.0),
                    doc="negative scale",
                ),
                Param("base", "float", 1.0, grid=(0.5, 1.0), doc="similarity margin lambda"),
                Param(
                    "epsilon",
                    "float",
                    0.1,
                    low=0,
                    nullable=True,
                    grid=(0.1, None),
                    doc="pair-mining margin; None disables mining",
                ),
            ),
            summary="Multi-similarity loss with its pair mining, one value per anchor.",
            reference=(
                'Wang et al., "Multi-Similarity Loss with General Pair Weighting for Deep Metric '
                'Learning", CVPR 2019, arXiv:1904.06627'
            ),
        ),
        LossSpec(
            name="circle",
            sampler="class_balanced",  # in-batch positives per class
            factory=Circle,
            tasks=_EMBEDDING,
            link="identity",
            params=(
                Param("m", "float", 0.25, low=0, high=1, grid=(0.25, 0.4), doc="relaxation margin"),
                Param(
                    "gamma",
                    "float",
                    256.0,
                    low=0,
                    closed="neither",
                    grid=(32.0, 80.0, 256.0),
                    doc="scale factor",
                ),
            ),
            summary="Circle loss: self-paced weighted pair similarities, one value per anchor.",
            reference=(
                'Sun et al., "Circle Loss: A Unified Perspective of Pair Similarity Optimization", '
                "CVPR 2020, arXiv:2002.10857"
            ),
        ),
        LossSpec(
            name="supcon",
            sampler="class_balanced",  # in-batch positives per class
            factory=SupCon,
            tasks=_EMBEDDING,
            link="identity",
            params=(_temperature(0.1, (0.07, 0.1, 0.2)),),
            summary="Supervised contrastive loss over same-label positives (one or two views).",
            reference=(
                'Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020, arXiv:2004.11362'
            ),
        ),
        LossSpec(
            name="info_nce",
            views=2,  # (2N, D): rows i and i+N are two augmented views of row i
            aliases=("nt_xent",),
            factory=InfoNCE,
            tasks=_EMBEDDING,
            link="identity",
            params=(_temperature(0.5, (0.1, 0.2, 0.5, 1.0)),),
            summary="InfoNCE / NT-Xent over a (2N, D) batch of two views (SimCLR).",
            reference=(
                'Chen et al., "A Simple Framework for Contrastive Learning of Visual '
                'Representations", ICML 2020, arXiv:2002.05709'
            ),
        ),
        LossSpec(
            name="cosface",
            factory=CosFace,
            tasks=_CLASSIFIES,
            link=CLASS_LOGITS_LINK,
            data_params=_LEARNED,
            learnable=True,
            params=(
                Param(
                    "scale",
                    "float",
                    64.0,
                    low=0,
                    closed="neither",
                    grid=(16.0, 32.0, 64.0),
                    doc="logit scale s",
                ),
                Param(
                    "margin",
                    "float",
                    0.35,
                    low=0,
                    high=1,
                    closed="left",
                    grid=(0.25, 0.35, 0.45),
                    doc="additive cosine margin",
                ),
            ),
            summary="CosFace: softmax on scaled cosines with an additive cosine margin.",
            reference=(
                'Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition", '
                "CVPR 2018, arXiv:1801.09414"
            ),
        ),
        LossSpec(
            name="arcface",
            factory=ArcFace,
            tasks=_CLASSIFIES,
            link=CLASS_LOGITS_LINK,
            data_params=_LEARNED,
            learnable=True,
            params=(
                Param(
                    "scale",
                    "float",
                    64.0,
                    low=0,
                    closed="neither",
                    grid=(16.0, 32.0, 64.0),
                    doc="logit scale s",
                ),
                Param(
                    "margin",
                    "float",
                    0.5,
                    low=0,
                    high=1.5707963267948966,
                    closed="left",
                    grid=(0.3, 0.5),
                    doc="additive angular margin in radians",
                ),
            ),
            summary="ArcFace: softmax on scaled cosines with an additive angular margin.",
            reference=(
                'Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition", '
                "CVPR 2019, arXiv:1801.07698"
            ),
        ),
        LossSpec(
            name="sphereface",
            factory=SphereFace,
            tasks=_CLASSIFIES,
            link=CLASS_LOGITS_LINK,
            data_params=_LEARNED,
            learnable=True,
            params=(
                Param("margin", "int", 4, low=1, grid=(2, 4), doc="multiplicative angular margin"),
            ),
            summary="SphereFace (A-Softmax): multiplicative angular margin, normalised weights.",
            reference=(
                'Liu et al., "SphereFace: Deep Hypersphere Embedding for Face Recognition", '
                "CVPR 2017, arXiv:1704.08063"
            ),
        ),
        LossSpec(
            name="normalized_softmax",
            factory=NormalizedSoftmax,
            tasks=_CLASSIFIES,
            link=CLASS_LOGITS_LINK,
            data_params=_LEARNED,
            learnable=True,
            params=(_temperature(0.05, (0.05, 0.1, 0.5)),),
            summary="Normalized softmax: cross-entropy on cosine logits over a temperature.",
            reference=(
                'Zhai and Wu, "Classification is a Strong Baseline for Deep Metric Learning", '
                "BMVC 2019, arXiv:1811.12649"
            ),
        ),
        LossSpec(
            name="proxy_nca",
            factory=ProxyNCA,
            tasks=_CLASSIFIES,
            link=CLASS_LOGITS_LINK,
            data_params=_LEARNED,
            learnable=True,
            params=(
                Param(
                    "softmax_scale",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(1.0, 3.0, 10.0),
                    doc="scale of the negative distances",
                ),
            ),
            summary="Proxy-NCA: NCA against one learnable proxy per class.",
            reference=(
                'Movshovitz-Attias et al., "No Fuss Distance Metric Learning using Proxies", '
                "ICCV 2017, arXiv:1703.07464"
            ),
        ),
        LossSpec(
            name="proxy_anchor",
            factory=ProxyAnchor,
            tasks=_CLASSIFIES,
            link=CLASS_LOGITS_LINK,
            data_params=_LEARNED,
            learnable=True,
            per_sample=False,
            params=(
                Param(
                    "alpha", "float", 32.0, low=0, closed="neither", grid=(16.0, 32.0), doc="scale"
                ),
                Param("margin", "float", 0.1, low=0, grid=(0.0, 0.1, 0.2), doc="margin delta"),
            ),
            summary="Proxy-Anchor: each class proxy anchors the batch's positives and negatives.",
            reference=(
                'Kim et al., "Proxy Anchor Loss for Deep Metric Learning", CVPR 2020, '
                "arXiv:2003.13911"
            ),
        ),
        LossSpec(
            name="center",
            factory=Center,
            tasks=_CLASSIFIES,
            link=CLASS_LOGITS_LINK,
            data_params=_LEARNED,
            learnable=True,
            params=(
                Param(
                    "center_weight",
                    "float",
                    0.003,
                    low=0,
                    grid=(0.003, 0.01, 0.1),
                    doc="weight lambda of the centre term",
                ),
                Param(
                    "update",
                    "choice",
                    "learnable",
                    options=("learnable", "rule"),
                    doc="centres as parameters or moved by the paper's rule",
                ),
                Param(
                    "alpha",
                    "float",
                    0.5,
                    low=0,
                    high=1,
                    closed="right",
                    doc="centre rate of the rule update",
                ),
            ),
            summary="Softmax cross-entropy plus the centre loss on the deep features.",
            reference=(
                'Wen et al., "A Discriminative Feature Learning Approach for Deep Face '
                'Recognition", ECCV 2016, doi:10.1007/978-3-319-46478-7_31'
            ),
        ),
        LossSpec(
            name="align_uniform",
            views=2,  # (2N, D): rows i and i+N are two augmented views of row i
            factory=AlignUniform,
            tasks=_EMBEDDING,
            link="identity",
            per_sample=False,
            params=(
                Param("alpha", "float", 2.0, low=0, closed="neither", doc="alignment exponent"),
                Param("t", "float", 2.0, low=0, closed="neither", doc="uniformity kernel scale"),
                Param(
                    "uniform_weight",
                    "float",
                    1.0,
                    low=0,
                    grid=(0.5, 1.0, 2.0),
                    doc="weight of the uniformity term",
                ),
            ),
            summary="Alignment of two views plus uniformity on the hypersphere.",
            reference=(
                'Wang and Isola, "Understanding Contrastive Representation Learning through '
                'Alignment and Uniformity on the Hypersphere", ICML 2020, arXiv:2005.10242'
            ),
        ),
        LossSpec(
            name="barlow_twins",
            views=2,  # (2N, D): rows i and i+N are two augmented views of row i
            factory=BarlowTwins,
            tasks=_EMBEDDING,
            link="identity",
            per_sample=False,
            params=(
                Param(
                    "lambda_offdiag",
                    "float",
                    0.0051,
                    low=0,
                    grid=(0.0051, 0.01, 0.05),
                    doc="weight of the off-diagonal (redundancy) term",
                ),
            ),
            summary="Barlow Twins: cross-correlation of two views pushed to the identity.",
            reference=(
                'Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy '
                'Reduction", ICML 2021, arXiv:2103.03230'
            ),
        ),
        LossSpec(
            name="npair",
            sampler="class_balanced",  # in-batch positives per class
            aliases=("n_pairs",),
            factory=NPair,
            tasks=_EMBEDDING,
            link="identity",
            per_sample=False,
            params=(
                Param(
                    "l2_reg",
                    "float",
                    0.002,
                    low=0,
                    grid=(0.0, 0.002, 0.02),
                    doc="weight of the embedding-norm penalty",
                ),
            ),
            summary="Multi-class N-pair loss: one positive pair per class, others as negatives.",
            reference=(
                'Sohn, "Improved Deep Metric Learning with Multi-class N-pair Loss Objective", '
                "NeurIPS 2016"
            ),
        ),
        LossSpec(
            name="lifted_structure",
            sampler="class_balanced",  # in-batch positives per class
            factory=LiftedStructure,
            tasks=_EMBEDDING,
            link="identity",
            per_sample=False,
            params=(
                Param(
                    "margin",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.5, 1.0),
                    doc="margin alpha",
                ),
                Param("normalize", "bool", True, doc="L2-normalise embeddings first"),
            ),
            summary="Lifted structured loss: each positive pair against all its negatives.",
            reference=(
                'Song et al., "Deep Metric Learning via Lifted Structured Feature Embedding", '
                "CVPR 2016, arXiv:1511.06452"
            ),
        ),
        LossSpec(
            name="angular",
            sampler="class_balanced",  # in-batch positives per class
            factory=Angular,
            tasks=_EMBEDDING,
            link="identity",
            per_sample=False,
            params=(
                Param(
                    "alpha",
                    "float",
                    40.0,
                    low=0,
                    high=90,
                    closed="neither",
                    grid=(36.0, 40.0, 45.0),
                    doc="angle bound in degrees",
                ),
            ),
            summary="Angular loss (N-pair form): bounds the angle at the negative.",
            reference=(
                'Wang et al., "Deep Metric Learning with Angular Loss", ICCV 2017, arXiv:1708.01682'
            ),
        ),
        LossSpec(
            name="soft_triple",
            factory=SoftTriple,
            tasks=_CLASSIFIES,
            link=CLASS_LOGITS_LINK,
            data_params=_LEARNED,
            learnable=True,
            params=(
                Param("centers_per_class", "int", 10, low=1, grid=(2, 10), doc="centres K"),
                Param("la", "float", 20.0, low=0, closed="neither", doc="logit scale lambda"),
                Param(
                    "gamma",
                    "float",
                    0.1,
                    low=0,
                    closed="neither",
                    doc="soft-assignment temperature",
                ),
                Param("margin", "float", 0.01, low=0, doc="margin delta"),
                Param("tau", "float", 0.2, low=0, doc="weight of the centre regulariser"),
            ),
            summary="SoftTriple: softmax over classes with several learnable centres each.",
            reference=(
                'Qian et al., "SoftTriple Loss: Deep Metric Learning Without Triplet Sampling", '
                "ICCV 2019, arXiv:1909.05235"
            ),
        ),
        LossSpec(
            name="tcm",
            sampler="class_balanced",  # in-batch positives per class
            factory=ThresholdConsistentMargin,
            tasks=_EMBEDDING,
            link="identity",
            per_sample=False,
            params=(
                Param(
                    "base",
                    "choice",
                    "none",
                    options=TCM_BASES,
                    grid=("none", "multi_similarity", "supcon"),
                    doc="base metric loss",
                ),
                Param("lambda_plus", "float", 1.0, low=0, doc="weight of the positive penalty"),
                Param("lambda_minus", "float", 1.0, low=0, doc="weight of the negative penalty"),
                Param("margin_plus", "float", 0.9, low=-1, high=1, doc="positive cosine threshold"),
                Param(
                    "margin_minus", "float", 0.5, low=-1, high=1, doc="negative cosine threshold"
                ),
            ),
            summary="Threshold-consistent margin: cosine-threshold penalties on pairs (+ base).",
            reference=(
                'Zhang et al., "Threshold-Consistent Margin Loss for Open-World Deep Metric '
                'Learning", ICLR 2024, arXiv:2307.04047'
            ),
        ),
        LossSpec(
            name="proto_triplet",
            sampler="class_balanced",  # in-batch positives per class
            factory=ProtoTriplet,
            tasks=_EMBEDDING,
            link="identity",
            params=(Param("margin", "float", 0.5, low=0, grid=(0.2, 0.5, 1.0), doc="margin m"),),
            summary="Prototype triplet: own in-batch class mean against the nearest other mean.",
            reference=(
                '"SuSana Distancia is all you need: Enforcing class separability in metric '
                "learning via two novel distance-based loss functions for few-shot image "
                'classification", 2023'
            ),
        ),
        LossSpec(
            name="clip_info_nce",
            views=2,  # (2N, D): rows i and i+N are two augmented views of row i
            factory=ClipInfoNCE,
            tasks=_EMBEDDING,
            link="identity",
            learnable=True,
            params=(
                _temperature(0.07, ()),
                Param("max_logit_scale", "float", 100.0, low=1, doc="upper bound of 1/tau"),
                Param("learn_temperature", "bool", True, doc="train the temperature"),
            ),
            summary="CLIP symmetric InfoNCE between two towers, learnable temperature.",
            reference=(
                'Fini et al., "Improved baselines for vision-language pre-training", TMLR 2023, '
                "arXiv:2305.08675"
            ),
        ),
        LossSpec(
            name="sogclr",
            views=2,  # (2N, D): rows i and i+N are two augmented views of row i
            factory=SogCLR,
            tasks=_EMBEDDING,
            link="identity",
            data_params=("n_samples",),
            fit_extras=("sample_index",),
            params=(
                _temperature(0.1, (0.1, 0.2, 0.5)),
                Param(
                    "gamma",
                    "float",
                    0.9,
                    low=0,
                    high=1,
                    closed="right",
                    grid=(0.5, 0.9),
                    doc="weight of the current batch in the moving average",
                ),
            ),
            summary="SogCLR: global contrastive loss with a per-row moving-average estimator.",
            reference=(
                'Yuan et al., "Provable Stochastic Optimization for Global Contrastive Learning: '
                'Small Batch Does Not Harm Performance", ICML 2022, arXiv:2202.12387'
            ),
        ),
        LossSpec(
            name="isogclr",
            views=2,  # (2N, D): rows i and i+N are two augmented views of row i
            factory=ISogCLR,
            tasks=_EMBEDDING,
            link="identity",
            data_params=("n_samples",),
            fit_extras=("sample_index",),
            stochastic=True,
            params=(
                _temperature(0.1, ()),
                Param(
                    "gamma",
                    "float",
                    0.9,
                    low=0,
                    high=1,
                    closed="right",
                    doc="weight of the current batch in the moving average",
                ),
                Param(
                    "rho",
                    "float",
                    0.3,
                    low=0,
                    grid=(0.1, 0.3, 0.5),
                    doc="temperature regularisation rho",
                ),
                Param(
                    "eta",
                    "float",
                    0.01,
                    low=0,
                    closed="neither",
                    doc="step size of the temperature update",
                ),
                Param(
                    "beta",
                    "float",
                    0.9,
                    low=0,
                    high=1,
                    closed="right",
                    doc="momentum weight of the temperature gradient",
                ),
                Param(
                    "tau_min",
                    "float",
                    0.05,
                    low=0,
                    closed="neither",
                    doc="lower bound of the temperatures",
                ),
                Param(
                    "tau_max",
                    "float",
                    0.7,
                    low=0,
                    closed="neither",
                    doc="upper bound of the temperatures",
                ),
            ),
            summary="iSogCLR: SogCLR with an individual, automatically tuned temperature per row.",
            reference=(
                'Qiu et al., "Not All Semantics are Created Equal: Contrastive Self-supervised '
                'Learning with Automatic Temperature Individualization", ICML 2023, '
                "arXiv:2305.11965"
            ),
        ),
        LossSpec(
            name="triplet_alignment",
            sampler="class_balanced",  # in-batch positives per class
            aliases=("tal",),
            factory=TripletAlignment,
            tasks=_EMBEDDING,
            link="identity",
            params=(
                Param(
                    "tau",
                    "float",
                    0.02,
                    low=0,
                    closed="neither",
                    grid=(0.02, 0.05),
                    doc="temperature of the negative log-sum-exp",
                ),
                Param("margin", "float", 0.1, low=0, grid=(0.1, 0.2), doc="margin m"),
            ),
            summary="Triplet alignment: log-sum-exp over all negatives, both directions.",
            reference=(
                'Qin et al., "Noisy-Correspondence Learning for Text-to-Image Person '
                'Re-identification", CVPR 2024'
            ),
        ),
        LossSpec(
            name="amcl_info_nce",
            views=2,  # (2N, D): rows i and i+N are two augmented views of row i
            factory=AMCLInfoNCE,
            tasks=_EMBEDDING,
            link="identity",
            data_params=("embedding_dim",),
            output_size=_heads_multiple,
            learnable=True,
            params=(
                Param("num_heads", "int", 3, low=1, grid=(1, 3), doc="projection heads H"),
                Param(
                    "beta",
                    "float",
                    0.01,
                    low=0,
                    grid=(0.001, 0.01),
                    doc="weight of the temperature regularisers",
                ),
                Param(
                    "tau_min", "float", 1e-5, low=0, closed="neither", doc="smallest temperature"
                ),
                Param("tau_max", "float", 2.0, low=0, closed="neither", doc="largest temperature"),
                Param("topk", "int", 100, low=1, doc="hardest negatives kept per anchor"),
            ),
            summary="AMCL: NT-Xent with learned pair temperatures, top-k negatives, H heads.",
            reference=(
                'Wang et al., "Adaptive Multi-head Contrastive Learning", ECCV 2024, '
                "arXiv:2310.05615"
            ),
        ),
        LossSpec(
            name="palm",
            factory=PALM,
            tasks=_EMBEDDING,
            link="identity",
            data_params=_LEARNED,
            stochastic=True,
            params=(
                Param("n_protos_per_class", "int", 6, low=1, grid=(1, 6), doc="prototypes M"),
                Param(
                    "proto_m",
                    "float",
                    0.99,
                    low=0,
                    high=1,
                    closed="left",
                    doc="EMA momentum of the prototypes",
                ),
                _temperature(0.1, (0.1, 0.5)),
                Param(
                    "lambda_pcon",
                    "float",
                    1.0,
                    low=0,
                    grid=(0.0, 1.0),
                    doc="weight of the prototype contrastive loss",
                ),
                Param(
                    "epsilon", "float", 0.05, low=0, closed="neither", doc="Sinkhorn temperature"
                ),
                Param("k", "int", 0, low=0, grid=(0, 5), doc="top-k assignment, 0 = off"),
            ),
            summary="PALM: likelihood against a mixture of EMA prototypes per class.",
            reference=(
                'Lu et al., "Learning with Mixture of Prototypes for Out-of-Distribution '
                'Detection", ICLR 2024'
            ),
        ),
        LossSpec(
            name="icnn",
            sampler="class_balanced",  # in-batch positives per class
            factory=ICNN,
            tasks=_EMBEDDING,
            link="identity",
            per_sample=False,
            params=(
                Param("k", "int", 4, low=1, grid=(2, 4, 8), doc="neighbours scored"),
                Param(
                    "neighbors",
                    "int",
                    None,
                    low=1,
                    nullable=True,
                    doc="neighbours searched; None = k + 1",
                ),
            ),
            summary="ICNN: -log of a neighbourhood class-separability score of the batch.",
            reference=(
                '"SuSana Distancia is all you need: Enforcing class separability in metric '
                "learning via two novel distance-based loss functions for few-shot image "
                'classification", 2023'
            ),
        ),  # --- part B (session 2) ---
        LossSpec(
            name="harmonic_triplet",
            sampler="class_balanced",  # in-batch positives per class
            factory=HarmonicTriplet,
            tasks=_EMBEDDING,
            link="identity",
            per_sample=False,
            fit_extras=("teacher_logits",),  # the old model's embeddings (N, D)
            extra_widths=_OLD_EMBEDDINGS_WIDTH,
            params=(
                Param(
                    "margin",
                    "float",
                    0.2,
                    low=0,
                    closed="neither",
                    grid=(0.1, 0.2, 0.5),
                    doc="triplet margin alpha",
                ),
                Param(
                    "miner",
                    "choice",
                    "semi_hard",
                    options=("semi_hard", "hard", "all"),
                    grid=("semi_hard", "hard", "all"),
                    doc="which triplets of the new+old union are used",
                ),
                Param(
                    "distance",
                    "choice",
                    "squared_euclidean",
                    options=("squared_euclidean", "euclidean", "cosine"),
                    doc="distance between embeddings",
                ),
                Param("normalize", "bool", True, doc="L2-normalise embeddings first"),
            ),
            summary="Harmonic triplet: triplets mixing new and fixed old-model embeddings.",
            reference=(
                'Schroff et al., "FaceNet: A Unified Embedding for Face Recognition and '
                'Clustering", CVPR 2015, arXiv:1503.03832'
            ),
        ),
        LossSpec(
            name="nlsh_triplet",
            sampler="class_balanced",  # in-batch matches per entity
            factory=NLSHTriplet,
            tasks=_EMBEDDING,
            link="identity",
            per_sample=False,
            params=(
                Param(
                    "radius",
                    "float",
                    0.5,
                    low=0,
                    closed="neither",
                    grid=(0.25, 0.5, 0.75),
                    doc="collision radius R of matches (lossreg's default, not the paper's)",
                ),
                Param(
                    "c",
                    "float",
                    2.0,
                    low=1,
                    closed="neither",
                    grid=(1.5, 2.0, 3.0),
                    doc="approximation ratio: non-matches beyond c R",
                ),
                Param(
                    "distance",
                    "choice",
                    "euclidean",
                    options=("euclidean", "cosine"),
                    doc="distance between codes",
                ),
                Param("normalize", "bool", True, doc="L2-normalise embeddings first"),
            ),
            summary="Neural-LSH triplet: max(R, d(a,p)) - min(cR, d(a,n)) over batch triplets.",
            reference=(
                'Wang et al., "Neural Locality Sensitive Hashing for Entity Blocking", '
                "2024, arXiv:2401.18064"
            ),
        ),
        LossSpec(
            name="hyperbolic_supcon_hybrid",
            views=2,  # (2N, D): rows i and i+N are two augmented views of row i
            factory=HyperbolicSupConHybrid,
            tasks=_EMBEDDING,
            link="identity",
            per_sample=False,
            params=(
                Param(
                    "c",
                    "float",
                    0.1,
                    low=0,
                    closed="neither",
                    grid=(0.05, 0.1, 0.2),
                    doc="curvature magnitude of the Poincare ball",
                ),
                Param(
                    "clip_r",
                    "float",
                    2.3,
                    low=0,
                    closed="neither",
                    doc="feature-clipping radius before the exponential map",
                ),
                _temperature(1.0, ()),
                Param(
                    "sup_temperature",
                    "float",
                    0.07,
                    low=0,
                    closed="neither",
                    doc="temperature of the SupCon terms",
                ),
                Param(
                    "sup_con_weight",
                    "float",
                    0.5,
                    low=0,
                    high=1,
                    grid=(0.35, 0.5),
                    doc="weight w of SupCon against InfoNCE",
                ),
                Param(
                    "hyper_start_epoch",
                    "int",
                    0,
                    low=0,
                    doc="epoch at which the distance-loss weight starts to grow",
                ),
                Param(
                    "hyper_end_epoch",
                    "int",
                    200,
                    low=1,
                    doc="epoch at which the distance-loss weight reaches its maximum",
                ),
                Param(
                    "hyper_max_weight",
                    "float",
                    1.0,
                    low=0,
                    high=1,
                    grid=(0.5, 1.0),
                    doc="largest weight of the distance loss (0: angle only)",
                ),
            ),
            summary="HypCD: Poincare-distance and cosine SupCon+InfoNCE, blended by epoch.",
            reference=('Liu et al., "Hyperbolic Category Discovery", CVPR 2025, arXiv:2504.06120'),
        ),
        LossSpec(
            name="backward_compatible",
            aliases=("bct",),
            factory=BackwardCompatible,
            tasks=_CLASSIFIES,
            link=CLASS_LOGITS_LINK,
            data_params=_LEARNED,
            fit_extras=("teacher_logits",),  # the old model's embeddings (N, D)
            extra_widths=_OLD_EMBEDDINGS_WIDTH,
            learnable=True,
            params=(
                Param(
                    "lam",
                    "float",
                    1.0,
                    low=0,
                    grid=(0.5, 1.0, 2.0),
                    doc="weight lambda of the old-classifier influence loss",
                ),
            ),
            summary="BCT: cross-entropy plus CE under an old classifier from old embeddings.",
            reference=(
                'Shen et al., "Towards Backward-Compatible Representation Learning", '
                "CVPR 2020, arXiv:2003.11942"
            ),
        ),
        # --- part A (session 2) ---
        LossSpec(
            name="hard_info_nce",
            views=2,  # (2N, D): rows i and i+N are two augmented views of row i
            factory=HardInfoNCE,
            tasks=_EMBEDDING,
            link="identity",
            params=(
                Param(
                    "alpha",
                    "float",
                    0.0819,
                    low=0,
                    high=1,
                    closed="right",
                    grid=(0.05, 0.0819, 0.2),
                    doc="fraction of the negatives kept (upper similarity quantile)",
                ),
                _temperature(0.5, (0.2, 0.5, 1.0)),
            ),
            summary="Hard contrastive loss: InfoNCE over the top-alpha most similar negatives.",
            reference=(
                'Wang & Liu, "Understanding the Behaviour of Contrastive Loss", CVPR 2021, '
                "arXiv:2012.09740"
            ),
        ),
        LossSpec(
            name="hardness_weighted_info_nce",
            views=2,  # (2N, D): rows 0..N-1 queries, N..2N-1 their targets (two views)
            factory=HardnessWeightedInfoNCE,
            tasks=_EMBEDDING,
            link="identity",
            params=(
                Param(
                    "alpha",
                    "float",
                    0.5,
                    low=0,
                    grid=(0.0, 0.5, 3.0, 9.0),
                    doc="hardness strength: negatives weighted by exp(alpha * sg(cos))",
                ),
                _temperature(0.02, (0.02, 0.05, 0.1)),
            ),
            summary="LLaVE hardness-weighted symmetric InfoNCE (detached cosine weights).",
            reference=(
                'Lan et al., "LLaVE: Large Language and Vision Embedding Models with '
                'Hardness-Weighted Contrastive Learning", 2025, arXiv:2503.04812'
            ),
        ),
        LossSpec(
            name="cwcl",
            factory=CWCL,
            tasks=_EMBEDDING,
            link="identity",
            fit_extras=("teacher_logits",),  # frozen (N, D) embeddings of the other view
            extra_widths=_OLD_EMBEDDINGS_WIDTH,
            params=(
                _temperature(0.07, (0.05, 0.07, 0.1)),
                Param(
                    "kernel",
                    "choice",
                    "none",
                    options=KERNELS,
                    doc="pair weights: 'none' (frozen embeddings q) or 'laplace' (kernel on y)",
                ),
                Param(
                    "sigma",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.5, 1.0, 2.0),
                    doc="target-kernel bandwidth (kernel='laplace'), in target units",
                ),
            ),
            summary="Continuously weighted contrastive alignment (frozen embeddings or y kernel).",
            reference=(
                'Srinivasa et al., "CWCL: Cross-Modal Transfer with Continuously Weighted '
                'Contrastive Loss", NeurIPS 2023, arXiv:2309.14580'
            ),
        ),
        LossSpec(
            name="loo_knn",
            sampler="class_balanced",  # in-batch neighbours of the same class
            aliases=("look",),
            factory=LeaveOneOutKNN,
            tasks=_EMBEDDING,
            link="identity",
            params=(
                Param("k", "int", 10, low=1, grid=(5, 10, 20), doc="neighbours k"),
                _temperature(0.07, (0.07, 0.1)),
            ),
            summary="LOOK: leave-one-out weighted kNN loss over in-batch neighbours.",
            reference=(
                'Feng et al., "Rethinking Supervised Pre-training for Better Downstream '
                'Transferring", 2021, arXiv:2110.06014'
            ),
        ),
        LossSpec(
            name="csd_contrastive",
            sampler="class_balanced",  # same-class pairs are the matches
            factory=CSDContrastive,
            tasks=_EMBEDDING,
            link="identity",
            per_sample=False,
            learnable=True,
            output_size=even_width,  # D means followed by D log-variances
            params=(
                Param(
                    "init_negative_scale",
                    "float",
                    5.0,
                    low=0,
                    closed="neither",
                    doc="initial scale a of the distance (learnable)",
                ),
                Param("init_shift", "float", 5.0, doc="initial shift b (learnable)"),
                Param(
                    "vib_beta",
                    "float",
                    0.0001,
                    low=0,
                    grid=(0.0, 0.0001, 0.001),
                    doc="weight of the KL term to N(0, I)",
                ),
                Param("normalize", "bool", True, doc="L2-normalise the means"),
            ),
            summary="PCME++ probabilistic matching: BCE on the closed-form sampled distance.",
            reference=(
                'Chun, "Improved Probabilistic Image-Text Representations", ICLR 2024, '
                "arXiv:2305.18171"
            ),
        ),
        LossSpec(
            name="metrix_contrastive",
            sampler="class_balanced",  # in-batch positives per class
            factory=MetrixContrastive,
            tasks=_EMBEDDING,
            link="identity",
            per_sample=False,
            stochastic=True,
            params=(
                Param(
                    "neg_margin",
                    "float",
                    0.5,
                    low=0,
                    closed="neither",
                    grid=(0.5, 1.0),
                    doc="margin of the negative pairs",
                ),
                Param(
                    "mix_alpha",
                    "float",
                    2.0,
                    low=0,
                    closed="neither",
                    doc="Beta(alpha, alpha) of the mixing coefficient",
                ),
                Param(
                    "pos_neg_weight",
                    "float",
                    0.4,
                    low=0,
                    grid=(0.2, 0.4),
                    doc="weight of the positive-negative mixing loss",
                ),
                Param(
                    "anchor_neg_weight",
                    "float",
                    0.3,
                    low=0,
                    doc="weight of the anchor-negative mixing loss",
                ),
            ),
            summary="Metrix: contrastive loss plus embedding mixup with interpolated labels.",
            reference=(
                'Venkataramanan et al., "It Takes Two to Tango: Mixup for Deep Metric '
                'Learning", ICLR 2022, arXiv:2106.04990'
            ),
        ),
        LossSpec(
            name="multiview_contrastive",
            sampler="whole_groups",  # time-aligned rows (one group) share a batch
            factory=MultiviewContrastive,
            tasks=_EMBEDDING,
            link="identity",
            fit_extras=("group", "features"),  # time ids; inputs compare the devices
            stochastic=True,
            params=(
                _temperature(0.05, (0.05, 0.1, 0.5)),
                Param("weighted", "bool", True, doc="weight negative devices by 1 / MMD"),
            ),
            summary="ColloSSL: time-aligned rows of the closest device as positives (y = device).",
            reference=(
                'Jain et al., "ColloSSL: Collaborative Self-Supervised Learning for Human '
                'Activity Recognition", IMWUT 2022, doi:10.1145/3517246'
            ),
        ),
        LossSpec(
            name="sliced_wasserstein",
            factory=SlicedWasserstein,
            tasks=_EMBEDDING,
            link="identity",
            per_sample=False,
            stochastic=True,
            params=(
                Param(
                    "n_projections",
                    "int",
                    50,
                    low=1,
                    grid=(10, 50),
                    doc="random projection directions L",
                ),
                Param(
                    "prior",
                    "choice",
                    "uniform",
                    options=PRIORS,
                    grid=PRIORS,
                    doc="distribution the embeddings are matched to",
                ),
            ),
            summary="Sliced-Wasserstein distance of the embeddings to a prior (SWAE).",
            reference=(
                'Kolouri et al., "Sliced-Wasserstein Autoencoder: An Embarrassingly Simple '
                'Generative Model", 2018, arXiv:1804.01947'
            ),
        ),
    ]
