"""Built-in plugin: pairwise ranking losses within groups and ordinal losses over ordered levels."""

from __future__ import annotations

from lossreg import LossSpec, Param, hookimpl

from .cosine import CosineContrastive
from .empirical import PairwiseLogitRegression
from .ordinal import (
    DistanceSmoothedCE,
    NTLMeanSquared,
    NTLWasserstein,
    OrdinalEMD,
    expected_level,
)
from .pairwise import PairwiseLogistic
from .preference import RegularizedPreference
from .soft_label import EXPECTED_SCORE_LINK, GaussianSoftLabel, ThurstoneFidelity
from .welfare import WelfareRank

__all__ = [
    "EXPECTED_SCORE_LINK",
    "NOT_REGISTERED",
    "CosineContrastive",
    "DistanceSmoothedCE",
    "GaussianSoftLabel",
    "NTLMeanSquared",
    "NTLWasserstein",
    "OrdinalEMD",
    "PairwiseLogistic",
    "PairwiseLogitRegression",
    "RegularizedPreference",
    "ThurstoneFidelity",
    "WelfareRank",
    "expected_level",
    "register_losses",
]

#: Catalogue entries that are deliberately not training criteria, with the reason.
NOT_REGISTERED: dict[str, str] = {}

_NTL_PAPER = (
    "Zausinger et al., \"Regress, Don't Guess -- A Regression-like Loss on Number Tokens for "
    'Language Models", ICML 2025, arXiv:2411.02083'
)
_DEQA = (
    'You et al., "Teaching Large Language Models to Regress Accurate Image Quality Scores '
    'using Score Distribution", CVPR 2025'
)
_N_LEVELS = Param(
    "n_levels",
    "int",
    5,
    low=2,
    grid=(5, 9),
    doc="number of score levels K (the network gets K outputs)",
)
_PIGEON = 'Haas et al., "PIGEON: Predicting Image Geolocations", CVPR 2024'
_ORDINAL_TASKS = {"ordinal", "multiclass"}
_LEVELS = Param(
    "levels",
    "vector",
    None,
    nullable=True,
    doc="numeric value of each level (class); None uses 0, 1, ..., K-1",
)


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="bpr",
            sampler="whole_groups",  # pairs are formed inside a group
            aliases=("pairwise_logistic", "ranknet"),
            factory=PairwiseLogistic,
            tasks={"ranking"},
            link="identity",
            params=(
                Param(
                    "sigma",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.5, 1.0, 2.0),
                    doc="score scale inside the logistic (RankNet sigma)",
                ),
            ),
            fit_extras=("group",),
            per_sample=False,
            summary="Pairwise logistic loss softplus(s_b - s_a) over ordered pairs in a group.",
            reference=(
                'Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", '
                'UAI 2009, arXiv:1205.2618; Burges et al., "Learning to Rank using Gradient '
                'Descent", ICML 2005'
            ),
        ),
        LossSpec(
            name="cosine_contrastive",
            aliases=("ccl",),
            factory=CosineContrastive,
            # Not "ranking": that task gives one score per row with graded relevance; this
            # loss takes a row of C cosines and the positive column (the recommender layout
            # (N, 1 + M) is class targets 0).
            tasks={"multiclass"},
            link="score",
            params=(
                Param(
                    "margin",
                    "float",
                    0.5,
                    low=-1,
                    high=1,
                    closed="neither",
                    grid=(0.4, 0.5, 0.7, 0.9),
                    doc="negatives with cosine below it cost nothing",
                ),
                Param(
                    "negative_weight",
                    "float",
                    10.0,
                    low=0,
                    grid=(1.0, 10.0, 50.0),
                    doc="weight of the mean negative hinge term",
                ),
            ),
            summary="SimpleX cosine contrastive loss [1-s_pos]_+ + w mean_neg [s_neg-m]_+.",
            reference=(
                'Mao et al., "SimpleX: A Simple and Strong Baseline for Collaborative '
                'Filtering", CIKM 2021, arXiv:2109.12613'
            ),
        ),
        LossSpec(
            name="pairwise_logit_regression",
            sampler="whole_groups",  # pairs are formed inside a group
            aliases=("irepo",),
            factory=PairwiseLogitRegression,
            tasks={"ranking"},
            link="identity",
            params=(
                Param(
                    "beta",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.5, 1.0, 2.0),
                    doc="scale of the score difference",
                ),
                Param(
                    "clip",
                    "float",
                    1e-3,
                    low=0,
                    high=0.5,
                    closed="neither",
                    doc="clip the empirical preference into [clip, 1 - clip]",
                ),
            ),
            fit_extras=("group",),
            per_sample=False,
            summary="iREPO: (beta * score difference - logit(empirical preference))^2 per pair.",
            reference=(
                'Le et al., "iREPO: implicit Reward Pairwise Difference based Empirical '
                'Preference Optimization", arXiv:2405.15230'
            ),
        ),
        LossSpec(
            name="rpo_preference",
            factory=RegularizedPreference,
            tasks={"multiclass"},
            link="softmax",
            params=(
                Param(
                    "beta",
                    "float",
                    0.1,
                    low=0,
                    closed="neither",
                    grid=(0.1, 0.5, 1.0),
                    doc="DPO inverse temperature",
                ),
                Param(
                    "eta",
                    "float",
                    1.0,
                    low=0,
                    grid=(0.0, 0.5, 1.0),
                    doc="weight of the NLL (SFT) term on the chosen class",
                ),
            ),
            fit_extras=("rejected_label",),
            summary="DPO on chosen vs rejected class log-probabilities + eta * NLL(chosen).",
            reference=(
                'Liu et al., "Provably Mitigating Overoptimization in RLHF: Your SFT Loss is '
                'Implicitly an Adversarial Regularizer", NeurIPS 2024, arXiv:2405.16436'
            ),
        ),
        LossSpec(
            name="ordinal_emd",
            aliases=("squared_emd",),
            factory=OrdinalEMD,
            tasks=_ORDINAL_TASKS,
            link="softmax",
            params=(
                Param("r", "choice", 2, options=(1, 2), grid=(1, 2), doc="power of |CDF gap|"),
            ),
            summary="Squared earth mover's distance between CDFs over ordered levels.",
            reference=(
                "Hou et al., \"Squared Earth Mover's Distance-based Loss for Training Deep "
                'Neural Networks", 2016'
            ),
        ),
        LossSpec(
            name="ntl_wasserstein",
            aliases=("ntl",),
            factory=NTLWasserstein,
            tasks=_ORDINAL_TASKS,
            link="softmax",
            params=(_LEVELS,),
            summary="Number-token loss: expected |level value - target value| under softmax.",
            reference=_NTL_PAPER,
        ),
        LossSpec(
            name="ntl_mse",
            factory=NTLMeanSquared,
            tasks=_ORDINAL_TASKS,
            link="softmax",
            params=(_LEVELS,),
            summary="Number-token loss: squared error of the expected level value.",
            reference=_NTL_PAPER,
        ),
        LossSpec(
            name="distance_smoothed_ce",
            factory=DistanceSmoothedCE,
            tasks=_ORDINAL_TASKS,
            link="softmax",
            params=(
                Param(
                    "tau",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.5, 1.0, 2.0),
                    doc="smoothing temperature in distance units",
                ),
                Param("normalize", "bool", False, grid=(False, True), doc="normalise q to sum 1"),
                _LEVELS,
                Param(
                    "distance",
                    "vector",
                    None,
                    low=0,
                    nullable=True,
                    doc="C*C class-distance matrix, row-major; overrides levels",
                ),
            ),
            summary="Cross-entropy against exp(-distance/tau) smoothed labels (PIGEON, SORD).",
            reference=_PIGEON,
        ),
        LossSpec(
            name="gaussian_soft_label",
            factory=GaussianSoftLabel,
            tasks={"regression"},
            link=EXPECTED_SCORE_LINK,
            params=(
                _N_LEVELS,
                Param(
                    "mode",
                    "choice",
                    "pdf",
                    options=("pdf", "cdf"),
                    grid=("pdf", "cdf"),
                    doc="Gaussian density at each level or mass of its unit interval",
                ),
                Param(
                    "sigma",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.5, 1.0, 1.5),
                    doc="target std in level units (no per-row std available)",
                ),
                Param(
                    "std_threshold",
                    "float",
                    0.2,
                    low=0,
                    doc="below this std (levels) use the two-level label",
                ),
                Param(
                    "fit_threshold",
                    "float",
                    0.1,
                    low=0,
                    doc="largest mean error of the fixed label before the two-level fallback",
                ),
            ),
            data_params=("target_min", "target_max"),
            output_size=lambda ctx: ctx["n_levels"],
            summary="KL(discretised-Gaussian soft label || softmax) over K score levels.",
            reference=_DEQA,
        ),
        LossSpec(
            name="thurstone_fidelity",
            factory=ThurstoneFidelity,
            tasks={"regression", "ranking"},
            link=EXPECTED_SCORE_LINK,
            params=(
                _N_LEVELS,
                Param(
                    "variant",
                    "choice",
                    "continuous",
                    options=("continuous", "binary"),
                    grid=("continuous", "binary"),
                    doc="pair probabilities from means and stds, or binary preferences",
                ),
                Param(
                    "sigma",
                    "float",
                    1.0,
                    low=0,
                    grid=(0.5, 1.0),
                    doc="target std in level units (no per-row std available)",
                ),
                Param("fix_std", "bool", False, doc="use a predicted std of 1 for every row"),
                Param("detach_std", "bool", False, doc="no gradient through the predicted std"),
            ),
            data_params=("target_min", "target_max"),
            per_sample=False,
            output_size=lambda ctx: ctx["n_levels"],
            summary="Fidelity loss between Thurstone pair probabilities over all batch pairs.",
            reference=_DEQA,
        ),
        LossSpec(
            name="welfare_rank",
            sampler="whole_groups",  # pairs are formed inside an auction
            factory=WelfareRank,
            tasks={"binary"},
            link="sigmoid",
            params=(
                Param(
                    "weighting",
                    "choice",
                    "welfare",
                    options=("welfare", "none"),
                    grid=("welfare", "none"),
                    doc="pair weight: welfare gap (b_i y_i - b_j y_j)_+, or 1 per ordered pair",
                ),
                Param(
                    "scale",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(1.0, 5.0),
                    doc="scale of the eCPM difference inside the logistic",
                ),
                Param(
                    "bce_weight",
                    "float",
                    0.0,
                    low=0,
                    grid=(0.0, 1.0),
                    doc="weight of a binary cross-entropy term on the clicks",
                ),
            ),
            fit_extras=("group", "bid"),
            per_sample=False,
            summary="Logistic loss on eCPM differences in auctions, pairs weighted by welfare gap.",
            reference=(
                'Lyu et al., "Pairwise Ranking Losses of Click-Through Rates Prediction for '
                'Welfare Maximization in Ad Auctions", ICML 2023, arXiv:2306.01799'
            ),
        ),
    ]
