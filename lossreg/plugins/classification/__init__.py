"""Built-in plugin: classification losses (cross-entropy, BCE, focal, poly, margin, square ...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lossreg import LossSpec, Param, hookimpl

from .bias import BiasCE
from .binary import BinaryCrossEntropy, BinaryFocal
from .confidence import DCO, EntropyRegularizedCE
from .cross_entropy import CrossEntropy
from .ebv import EBV, EBV_LINK
from .ensloss import EnsLoss
from .focal import Focal
from .hrr import HRR_LINK, HRRCode
from .legendretron import LEGENDRETRON_LINK, LegendreTron
from .margin import Exponential, Hinge, Perceptron, SquaredHinge
from .multiclass_margin import CrammerSinger, WestonWatkins
from .penalties import SoftmaxNormPenalty, ZLossPenalty
from .poly import Poly1, Poly1BCE, Poly1Focal, PolyN
from .profit import PnOChurnRegret
from .soft_target import KLDiv
from .square import OneHotMSE, RescaledSquare, Squentropy
from .stablemax import STABLEMAX_LINK, StablemaxCrossEntropy
from .z_loss import Z_SCORE_LINK, ZLossSpherical

__all__ = [
    "DCO",
    "EBV",
    "NOT_REGISTERED",
    "BiasCE",
    "BinaryCrossEntropy",
    "BinaryFocal",
    "CrammerSinger",
    "CrossEntropy",
    "EnsLoss",
    "EntropyRegularizedCE",
    "Exponential",
    "Focal",
    "HRRCode",
    "Hinge",
    "KLDiv",
    "LegendreTron",
    "OneHotMSE",
    "Perceptron",
    "PnOChurnRegret",
    "Poly1",
    "Poly1BCE",
    "Poly1Focal",
    "PolyN",
    "RescaledSquare",
    "SoftmaxNormPenalty",
    "SquaredHinge",
    "Squentropy",
    "StablemaxCrossEntropy",
    "WestonWatkins",
    "ZLossPenalty",
    "ZLossSpherical",
    "register_losses",
]

#: Catalogue entries that cannot be a training criterion here, with the reason. Empty: every
#: entry of classification.md can be one.
NOT_REGISTERED: dict[str, str] = {}

_FOCAL_PAPER = 'Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, arXiv:1708.02002'
_GAMMA = Param("gamma", "float", 2.0, low=0, grid=(0.5, 1.0, 2.0, 3.0), doc="focusing parameter")
_POLY_PAPER = (
    'Leng et al., "PolyLoss: A Polynomial Expansion Perspective of Classification Loss '
    'Functions", ICLR 2022, arXiv:2204.12511'
)
_TERVEN = 'Terven et al., "Loss Functions and Metrics in Deep Learning", arXiv:2307.02694'
_LDR = (
    'baseline in Zhu et al., "Label Distributionally Robust Losses for Multi-class '
    'Classification: Consistency, Robustness and Adaptivity", ICML 2023'
)
_EPSILON = Param(
    "epsilon",
    "float",
    1.0,
    low=-1,
    grid=(-1.0, 0.0, 1.0, 2.0),
    doc="extra weight of the first polynomial term (1 - p_t); 0 is the base loss",
)
_MARGIN = Param(
    "margin", "float", 1.0, low=0, closed="neither", grid=(0.5, 1.0, 2.0), doc="the margin c"
)


def _one_score(context: Mapping[str, Any]) -> int:
    """One decision score per row for binary targets."""
    return 1


def _ebv_output_size(context: Mapping[str, Any]) -> int:
    """The embedding size D."""
    return int(context["dim"])


def _legendretron_output_size(context: Mapping[str, Any]) -> int:
    """C - 1 scores; the link appends the implicit 0."""
    return int(context["n_classes"]) - 1


def _code_output_size(context: Mapping[str, Any]) -> int:
    """The code (embedding) size D."""
    return int(context["dim"])


def _binary_margin_spec(name: str, factory: Any, summary: str, reference: str) -> LossSpec:
    return LossSpec(
        name=name,
        factory=factory,
        tasks={"binary"},
        link="score",
        output_size=_one_score,
        summary=summary,
        reference=reference,
    )


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
        LossSpec(
            name="poly1",
            factory=Poly1,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(
                _EPSILON,
                Param(
                    "label_smoothing",
                    "float",
                    0.0,
                    low=0,
                    high=1,
                    closed="left",
                    grid=(0.0, 0.1),
                    doc="smoothed target; p_t becomes <q, p>",
                ),
            ),
            summary="Poly-1: cross-entropy + epsilon * (1 - p_t).",
            reference=_POLY_PAPER,
        ),
        LossSpec(
            name="poly_n",
            factory=PolyN,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(
                Param(
                    "epsilons",
                    "vector",
                    (1.0,),
                    grid=((1.0,), (1.0, 0.5), (2.0, 1.0)),
                    doc="weights of (1 - p_t)^j for j = 1..n",
                ),
            ),
            summary="Poly-N: cross-entropy + sum_j epsilon_j * (1 - p_t)^j.",
            reference=_POLY_PAPER,
        ),
        LossSpec(
            name="poly1_focal",
            factory=Poly1Focal,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(
                _EPSILON,
                _GAMMA,
                Param(
                    "alpha",
                    "vector",
                    None,
                    low=0,
                    nullable=True,
                    doc="per-class weight of the focal term, one value per class",
                ),
            ),
            summary="Poly-1 focal: softmax focal loss + epsilon * (1 - p_t)^(gamma + 1).",
            reference=_POLY_PAPER,
        ),
        LossSpec(
            name="poly1_bce",
            factory=Poly1BCE,
            tasks={"binary", "multilabel"},
            link="sigmoid",
            params=(_EPSILON,),
            summary="Poly-1 BCE: binary cross-entropy + epsilon * (1 - p_t), per label.",
            reference=_POLY_PAPER,
        ),
        _binary_margin_spec(
            "hinge", Hinge, "Hinge loss max(0, 1 - y f) on one score; no probabilities.", _TERVEN
        ),
        _binary_margin_spec(
            "squared_hinge",
            SquaredHinge,
            "Squared hinge loss max(0, 1 - y f)^2 on one score; no probabilities.",
            _TERVEN,
        ),
        _binary_margin_spec(
            "exponential",
            Exponential,
            "Exponential (AdaBoost) loss exp(-y f) on one score; no probabilities.",
            'Dai, "EnsLoss: Stochastic Calibrated Loss Ensembles for Preventing Overfitting in '
            'Classification", ICML 2025, arXiv:2409.00908 (baseline)',
        ),
        _binary_margin_spec(
            "perceptron",
            Perceptron,
            "Perceptron loss max(0, -y f) on one score; no probabilities.",
            'Tyurin, "From Logistic Regression to the Perceptron Algorithm: Exploring Gradient '
            'Descent with Large Step Sizes", arXiv:2412.08424',
        ),
        LossSpec(
            name="weston_watkins",
            factory=WestonWatkins,
            tasks={"binary", "multiclass"},
            link="score",
            params=(_MARGIN,),
            summary="Weston-Watkins multiclass hinge (torch MultiMarginLoss); argmax, no proba.",
            reference=_LDR,
        ),
        LossSpec(
            name="crammer_singer",
            factory=CrammerSinger,
            tasks={"binary", "multiclass"},
            link="score",
            params=(_MARGIN,),
            summary="Crammer-Singer multiclass hinge on the hardest wrong class; no proba.",
            reference=_LDR,
        ),
        LossSpec(
            name="kl_div",
            aliases=("soft_target_cross_entropy",),
            factory=KLDiv,
            tasks={"multiclass"},
            link="softmax",
            summary="KL divergence from probability targets (N, C) to softmax(z).",
            reference=_TERVEN,
        ),
        LossSpec(
            name="one_hot_mse",
            factory=OneHotMSE,
            tasks={"binary", "multiclass"},
            link="score",
            params=(
                Param(
                    "scale",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(1.0, 5.0),
                    doc="target value of the true class",
                ),
            ),
            summary="Half squared error to a one-hot target on raw scores; argmax, no proba.",
            reference=(
                'Dang et al., "Neural Collapse in Deep Linear Networks: From Balanced to '
                'Imbalanced Data", ICML 2023, arXiv:2301.00437'
            ),
        ),
        LossSpec(
            name="rescaled_square",
            factory=RescaledSquare,
            tasks={"binary", "multiclass"},
            link="score",
            params=(
                Param(
                    "k",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(1.0, 5.0),
                    doc="weight of the true-class term",
                ),
                Param(
                    "m",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(1.0, 5.0, 15.0),
                    doc="target value M of the true class",
                ),
            ),
            summary="Rescaled square loss (k (z_y - M)^2 + sum_j z_j^2) / C; no proba.",
            reference=(
                'Hui, Belkin, "Evaluation of Neural Architectures Trained with Square Loss vs '
                'Cross-Entropy in Classification Tasks", ICLR 2021, arXiv:2006.07322'
            ),
        ),
        LossSpec(
            name="squentropy",
            factory=Squentropy,
            tasks={"binary", "multiclass"},
            link="softmax",
            summary="Cross-entropy + mean squared wrong-class logit.",
            reference=(
                'Hui, Belkin, Wright, "Cut your Losses with Squentropy", ICML 2023, '
                "arXiv:2302.03952"
            ),
        ),
        LossSpec(
            name="stablemax_cross_entropy",
            aliases=("stablemax_ce",),
            factory=StablemaxCrossEntropy,
            tasks={"binary", "multiclass"},
            link=STABLEMAX_LINK,
            params=(
                Param(
                    "dtype",
                    "choice",
                    None,
                    options=("float32", "float64"),
                    nullable=True,
                    doc="precision of the loss computation; None keeps the input's",
                ),
            ),
            summary="Cross-entropy on stablemax probabilities (predict with stablemax).",
            reference=(
                'Prieto et al., "Grokking at the Edge of Numerical Stability", ICLR 2025, '
                "arXiv:2501.04697"
            ),
        ),
        LossSpec(
            name="z_loss_spherical",
            aliases=("spherical_z",),
            factory=ZLossSpherical,
            tasks={"multiclass"},
            link=Z_SCORE_LINK,
            params=(
                Param(
                    "a",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.1, 0.5, 1.0, 5.0),
                    doc="sharpness of the softplus",
                ),
                Param(
                    "b",
                    "float",
                    1.0,
                    grid=(1.0, 2.0, 3.0),
                    doc="target margin in standard deviations (keep b < sqrt(C - 1))",
                ),
            ),
            summary="Z-loss: softplus of the target's z-score; shift/scale invariant, C >= 3.",
            reference=(
                'de Brébisson, Vincent, "The Z-loss: a shift and scale invariant classification '
                'loss belonging to the Spherical Family", arXiv:1604.08859'
            ),
        ),
        LossSpec(
            name="z_loss_penalty",
            aliases=("logsumexp_sq_penalty",),
            factory=ZLossPenalty,
            tasks={"binary", "multiclass"},
            link="softmax",
            summary="(logsumexp z)^2 regulariser; add 1e-4 of it to cross_entropy.",
            reference=(
                'Wortsman et al., "Small-scale proxies for large-scale Transformer training '
                'instabilities", ICLR 2024, arXiv:2309.14322'
            ),
        ),
        LossSpec(
            name="softmax_norm_penalty",
            aliases=("marginal_log",),
            factory=SoftmaxNormPenalty,
            tasks={"binary", "multiclass"},
            link="softmax",
            per_sample=False,
            params=(
                Param(
                    "per_sample",
                    "bool",
                    False,
                    doc="per-row log(1 + |p_i|^2) instead of the batch log(1 + |P|_F^2)",
                ),
            ),
            summary="log(1 + |softmax|^2) regulariser (FedLD); add 0.03 of it to cross_entropy.",
            reference=(
                'Zeng et al., "Tackling Data Heterogeneity in Federated Learning via Loss '
                'Decomposition", arXiv:2408.12300'
            ),
        ),
        LossSpec(
            name="entropy_regularized_ce",
            factory=EntropyRegularizedCE,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(
                Param(
                    "beta",
                    "float",
                    0.1,
                    low=-1,
                    high=1,
                    grid=(-0.1, 0.0, 0.1, 0.3),
                    doc="entropy weight: > 0 penalises confidence, < 0 sharpens",
                ),
            ),
            summary="Cross-entropy - beta * entropy (confidence penalty for beta > 0).",
            reference=(
                'Cubuk et al., "Intriguing Properties of Adversarial Examples", '
                'arXiv:1711.02846; Pereyra et al., "Regularizing Neural Networks by Penalizing '
                'Confident Output Distributions", 2017'
            ),
        ),
        LossSpec(
            name="dco",
            aliases=("pass_at_n",),
            factory=DCO,
            tasks={"binary", "multiclass"},
            link="softmax",
            params=(
                Param(
                    "n",
                    "float",
                    1.0,
                    low=1,
                    grid=(1.0, 4.0, 16.0, 64.0),
                    doc="number of sampled guesses N; 1 is cross-entropy",
                ),
            ),
            summary="-log(1 - (1 - p_t)^N): limits confidence for pass@N coverage.",
            reference=(
                'Chen et al., "Rethinking Fine-Tuning when Scaling Test-Time Compute: Limiting '
                'Confidence Improves Mathematical Reasoning", NeurIPS 2025, arXiv:2502.07154'
            ),
        ),
        LossSpec(
            name="ensloss",
            factory=EnsLoss,
            tasks={"binary"},
            link="score",
            output_size=_one_score,
            per_sample=False,
            stochastic=True,
            params=(
                Param(
                    "lam",
                    "float",
                    0.0,
                    low=0,
                    grid=(0.0, 0.5, 1.0),
                    doc="Box-Cox lambda of the random loss-derivatives",
                ),
                Param(
                    "seed",
                    "int",
                    None,
                    nullable=True,
                    doc="seed of the derivative draws; None uses torch's global generator",
                ),
            ),
            summary="Stochastic ensemble of calibrated losses via random derivatives; binary.",
            reference=(
                'Dai, "EnsLoss: Stochastic Calibrated Loss Ensembles for Preventing Overfitting '
                'in Classification", ICML 2025, arXiv:2409.00908'
            ),
        ),
        LossSpec(
            name="ebv",
            factory=EBV,
            tasks={"binary", "multiclass"},
            link=EBV_LINK,
            data_params=("n_classes",),
            output_size=_ebv_output_size,
            params=(
                Param(
                    "dim",
                    "int",
                    1000,
                    low=2,  # D >= C >= 2: an orthonormal basis of at least two classes
                    grid=(32, 128, 1000),
                    doc="embedding size D (>= number of classes)",
                ),
                Param(
                    "tau",
                    "float",
                    0.07,
                    low=0,
                    closed="neither",
                    grid=(0.05, 0.07, 0.1),
                    doc="temperature of the cosine logits",
                ),
                Param("seed", "int", 0, doc="seed of the fixed class basis"),
            ),
            summary="Cross-entropy on cosines to a fixed orthonormal class basis (D outputs).",
            reference='Shen, Sun, Wei, "Equiangular Basis Vectors", CVPR 2023, arXiv:2303.11637',
        ),
        LossSpec(
            name="legendretron",
            factory=LegendreTron,
            tasks={"binary", "multiclass"},
            link=LEGENDRETRON_LINK,
            data_params=("n_classes",),
            output_size=_legendretron_output_size,
            learnable=True,
            params=(
                Param("n_blocks", "int", 2, low=1, grid=(1, 2, 3), doc="gradient maps composed"),
                Param("hidden", "int", 4, low=2, grid=(2, 4, 8), doc="width of each ICNN"),
                Param("depth", "int", 4, low=1, grid=(2, 4), doc="layers of each ICNN"),
                Param("seed", "int", 0, doc="seed of the link's initial parameters"),
            ),
            summary="Log loss through a learned monotone link on C - 1 scores (learnable).",
            reference=(
                'Lam, Walder, Penev, Nock, "LegendreTron: Uprising Proper Multiclass Loss '
                'Learning", ICML 2023, arXiv:2301.11695'
            ),
        ),
        LossSpec(
            name="hrr_code",
            factory=HRRCode,
            tasks={"binary", "multiclass"},
            link=HRR_LINK,
            data_params=("n_classes",),
            output_size=_code_output_size,
            params=(
                Param("dim", "int", 64, low=2, grid=(64, 256, 1024), doc="code size D"),
                Param("seed", "int", 0, doc="seed of the HRR keys and values"),
            ),
            summary="Distance to the class's HRR code key (*) value; decode by unbinding.",
            reference=(
                'Alam, Raff, Oates, "Towards Generalization in Subitizing with Neuro-Symbolic '
                'Loss using Holographic Reduced Representations", arXiv:2312.15310'
            ),
        ),
        LossSpec(
            name="bias_ce",
            factory=BiasCE,
            tasks={"binary", "multiclass"},
            link="softmax",
            outputs="logits+features",
            params=(
                Param("alpha", "float", 0.3, low=0, grid=(0.1, 0.3, 0.5), doc="weight floor"),
                Param(
                    "beta",
                    "float",
                    0.3,
                    low=0,
                    grid=(0.1, 0.3, 1.0),
                    doc="sharpness of the feature-variance weight",
                ),
                Param(
                    "mode",
                    "choice",
                    "global",
                    options=("global", "local"),
                    doc="normalise variances by the running (global) or batch (local) minimum",
                ),
            ),
            summary="CE weighted by hidden-feature variance; needs (logits, features) output.",
            reference=(
                'Abrahamyan, Ziatchin, Chen, Deligiannis, "Bias Loss for Mobile Neural '
                'Networks", ICCV 2021, arXiv:2107.11170'
            ),
        ),
        LossSpec(
            name="pno_churn_regret",
            aliases=("profit_regret",),
            factory=PnOChurnRegret,
            tasks={"binary"},
            link="score",
            output_size=_one_score,
            fit_extras=("value",),
            params=(
                Param(
                    "gamma",
                    "float",
                    0.3,
                    low=0,
                    high=1,
                    closed="right",
                    grid=(0.1, 0.3, 0.5),
                    doc="probability that a targeted churner accepts the offer and stays",
                ),
                Param(
                    "delta",
                    "float",
                    10.0,
                    low=0,
                    grid=(5.0, 10.0, 20.0),
                    doc="incentive cost, paid by every targeted customer who accepts it",
                ),
                Param(
                    "contact_cost",
                    "float",
                    1.0,
                    low=0,
                    grid=(0.5, 1.0, 2.0),
                    doc="cost f of contacting a customer",
                ),
            ),
            summary=(
                "Regret of soft retention-targeting decisions weighted by each customer's "
                "lifetime value (fit extra value); reconstruction."
            ),
            reference=(
                'Gómez-Vargas, Maldonado, Vairetti, "A predict-and-optimize approach to '
                'profit-driven churn prevention", EJOR 324(2), 2025, arXiv:2310.07047'
            ),
        ),
    ]
