"""Built-in plugin: label-noise-robust losses (comp-sum, GCE, SCE, active-passive, LDR ...)."""

from __future__ import annotations

from lossreg import LossSpec, Param, hookimpl

from .comp_sum import CompSum, GeneralizedCrossEntropy, MAEProb, TruncatedGCE
from .flip import ConservativeBCE, RobustDPO
from .gate import DynamicLossGate, base_data_params
from .jensen_shannon import JensenShannon
from .ldr import ALDRKL, LDRKL
from .rll import RobustLogLoss
from .symmetric import NCEAndAGCE, NCEAndAUL, NCEAndRCE, SymmetricCrossEntropy
from .tempnet import TempNetDROCE, learned_temperature_link
from .truncation import ErrorNormTruncation, LossTruncation, TaiLr

__all__ = [
    "ALDRKL",
    "LDRKL",
    "NOT_REGISTERED",
    "CompSum",
    "ConservativeBCE",
    "DynamicLossGate",
    "ErrorNormTruncation",
    "GeneralizedCrossEntropy",
    "JensenShannon",
    "LossTruncation",
    "MAEProb",
    "NCEAndAGCE",
    "NCEAndAUL",
    "NCEAndRCE",
    "RobustDPO",
    "RobustLogLoss",
    "SymmetricCrossEntropy",
    "TaiLr",
    "TempNetDROCE",
    "TruncatedGCE",
    "register_losses",
]

#: Catalogue entries of this family that are deliberately not registered, with the reason.
NOT_REGISTERED: dict[str, str] = {}

_CLASS_TASKS = frozenset({"binary", "multiclass"})
_GCE_PAPER = (
    'Zhang & Sabuncu, "Generalized Cross Entropy Loss for Training Deep Neural Networks with '
    'Noisy Labels", NeurIPS 2018, arXiv:1805.07836'
)
_ALF_PAPER = (
    'Zhou et al., "Asymmetric Loss Functions for Learning with Noisy Labels", ICML 2021, '
    "arXiv:2106.03110"
)
_LDR_PAPER = (
    'Zhu et al., "Label Distributionally Robust Losses for Multi-class Classification: '
    'Consistency, Robustness and Adaptivity", ICML 2023, arXiv:2112.14869'
)
_RDPO_PAPER = (
    'Chowdhury et al., "Provably Robust DPO: Aligning Language Models with Noisy Feedback", '
    "ICML 2024, arXiv:2403.00409"
)


def _weight(name: str, default: float, doc: str, grid: tuple[float, ...] = ()) -> Param:
    return Param(name, "float", default, low=0, grid=grid, doc=doc)


_Q = Param(
    "q",
    "float",
    0.7,
    low=0,
    high=1,
    closed="right",
    grid=(0.3, 0.5, 0.7, 0.9),
    doc="GCE exponent: small q is CE-like, q = 1 is MAE-like",
)
_ALPHA = _weight("alpha", 1.0, "weight of the normalised CE (active) term", (1.0, 10.0))
_BETA = _weight("beta", 1.0, "weight of the passive term", (0.1, 1.0))


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="comp_sum",
            factory=CompSum,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                Param(
                    "tau",
                    "float",
                    1.0,
                    low=0,
                    grid=(0.0, 1.0, 1.5, 2.0),
                    doc="0 sum-exponential, 1 CE, 1+q GCE, 2 half MAE",
                ),
            ),
            summary="Comp-sum loss family: (1 - p_t^(tau-1)) / (tau-1), CE at tau = 1.",
            reference=(
                'Mao, Mohri & Zhong, "Cross-Entropy Loss Functions: Theoretical Analysis and '
                'Applications", ICML 2023, arXiv:2304.07288'
            ),
        ),
        LossSpec(
            name="generalized_cross_entropy",
            aliases=("gce",),
            factory=GeneralizedCrossEntropy,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(_Q,),
            summary="Generalized cross-entropy (Lq loss) (1 - p_t^q) / q for noisy labels.",
            reference=_GCE_PAPER,
        ),
        LossSpec(
            name="truncated_gce",
            factory=TruncatedGCE,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                _Q,
                Param(
                    "k",
                    "float",
                    0.5,
                    low=0,
                    high=1,
                    closed="left",
                    grid=(0.1, 0.3, 0.5),
                    doc="p_t threshold below which a row is truncated (clamp) or pruned",
                ),
                Param(
                    "mode",
                    "choice",
                    "clamp",
                    options=("clamp", "prune"),
                    doc="hold truncated rows at L_q(k), or drop them with a periodically "
                    "refreshed per-row mask",
                ),
                Param(
                    "prune_start",
                    "int",
                    40,
                    low=1,
                    doc="prune mode: first epoch (from 1) that may refresh the mask",
                ),
                Param(
                    "prune_every",
                    "int",
                    10,
                    low=1,
                    doc="prune mode: refresh the mask in epochs that are multiples of this",
                ),
            ),
            fit_extras=("sample_index",),
            summary="Truncated Lq loss: GCE clamped at L_q(k), or with rows p_t <= k pruned.",
            reference=_GCE_PAPER,
        ),
        LossSpec(
            name="mae_prob",
            factory=MAEProb,
            tasks=_CLASS_TASKS,
            link="softmax",
            summary="L1 distance between softmax probabilities and the one-hot label, 2(1 - p_t).",
            reference=(
                'Ghosh, Kumar & Sastry, "Robust Loss Functions under Label Noise for Deep '
                'Neural Networks", AAAI 2017'
            ),
        ),
        LossSpec(
            name="symmetric_cross_entropy",
            aliases=("sce",),
            factory=SymmetricCrossEntropy,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                _weight("alpha", 0.1, "weight of cross-entropy", (0.1, 1.0, 6.0)),
                _weight("beta", 1.0, "weight of reverse cross-entropy", (0.1, 1.0)),
                Param(
                    "log_zero",
                    "float",
                    -4.0,
                    high=0,
                    closed="neither",
                    doc="value A given to log 0 in reverse CE",
                ),
            ),
            summary="Symmetric cross-entropy: alpha CE + beta reverse CE (log 0 := A).",
            reference=(
                'Wang et al., "Symmetric Cross Entropy for Robust Learning with Noisy Labels", '
                "ICCV 2019, arXiv:1908.06112"
            ),
        ),
        LossSpec(
            name="nce_rce",
            factory=NCEAndRCE,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(_ALPHA, _BETA),
            summary="Active-passive loss: normalised CE + reverse CE.",
            reference=(
                'Ma et al., "Normalized Loss Functions for Deep Learning with Noisy Labels", '
                "ICML 2020, arXiv:2006.13554"
            ),
        ),
        LossSpec(
            name="nce_agce",
            factory=NCEAndAGCE,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                _ALPHA,
                _weight("beta", 4.0, "weight of the AGCE (passive) term", (0.1, 1.0, 4.0)),
                Param(
                    "a",
                    "float",
                    6.0,
                    low=0,
                    closed="neither",
                    grid=(1.8, 3.0, 6.0),
                    doc="AGCE shift a > 0",
                ),
                Param("q", "float", 1.5, low=0, grid=(1.5, 3.0), doc="AGCE exponent"),
            ),
            summary="Active-passive loss: normalised CE + asymmetric generalized CE.",
            reference=_ALF_PAPER,
        ),
        LossSpec(
            name="nce_aul",
            factory=NCEAndAUL,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                _ALPHA,
                _weight("beta", 4.0, "weight of the AUL (passive) term", (0.015, 1.0, 4.0)),
                Param(
                    "a",
                    "float",
                    6.3,
                    low=1,
                    closed="neither",
                    grid=(1.5, 3.0, 6.0),
                    doc="AUL shift a > 1",
                ),
                Param("q", "float", 1.5, low=0, grid=(0.9, 1.5, 3.0), doc="AUL exponent"),
            ),
            summary="Active-passive loss: normalised CE + asymmetric unhinged loss.",
            reference=_ALF_PAPER,
        ),
        LossSpec(
            name="jensen_shannon",
            aliases=("js",),
            factory=JensenShannon,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                Param(
                    "pi1",
                    "float",
                    0.7,
                    low=0,
                    high=1,
                    closed="neither",
                    grid=(0.1, 0.3, 0.5, 0.7, 0.9),
                    doc="weight of the label distribution in the mixture",
                ),
            ),
            summary="Scaled Jensen-Shannon divergence between one-hot label and prediction.",
            reference=(
                'Englesson & Azizpour, "Generalized Jensen-Shannon Divergence Loss for Learning '
                'with Noisy Labels", NeurIPS 2021, arXiv:2105.04522'
            ),
        ),
        LossSpec(
            name="rll",
            factory=RobustLogLoss,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                Param(
                    "alpha",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.1, 0.5, 1.0, 5.0),
                    doc="offset inside log(alpha + p); small is CE-like, large is linear in p",
                ),
            ),
            summary="Robust log loss: -log(alpha + p_t) + mean of log(alpha + p_k) over k != y.",
            reference=(
                'Robust log loss; origin from memory, not verified: Kumar & Sastry, "Robust '
                'Loss Functions for Learning Multi-class Classifiers", IEEE SMC 2018. Baseline '
                "in " + _LDR_PAPER
            ),
        ),
        LossSpec(
            name="ldr_kl",
            factory=LDRKL,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                Param(
                    "lam",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.1, 1.0, 10.0),
                    doc="DRO temperature lambda",
                ),
                Param(
                    "margin",
                    "float",
                    2.0,
                    low=0,
                    grid=(0.0, 1.0, 2.0, 5.0),
                    doc="margin c on the wrong classes",
                ),
                Param(
                    "normalize",
                    "choice",
                    "softplus_mean",
                    options=("softplus_mean", "none"),
                    doc="logit normalisation of the reference code, or none",
                ),
            ),
            summary="Label-distributionally robust loss (KL ball): lambda log-mean-exp of margins.",
            reference=_LDR_PAPER,
        ),
        LossSpec(
            name="aldr_kl",
            factory=ALDRKL,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                Param(
                    "lam0",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.1, 1.0, 10.0),
                    doc="reference temperature lambda_0",
                ),
                Param("margin", "float", 1.0, low=0, grid=(0.0, 1.0, 2.0), doc="margin c"),
                Param(
                    "alpha",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(1.0, 2.0, 5.0),
                    doc="strength of the KL regulariser on the label distribution",
                ),
                Param("softplus", "bool", False, doc="softplus the logits before normalising"),
            ),
            data_params=("n_samples",),
            fit_extras=("sample_index",),
            summary="Adaptive LDR-KL: a per-row temperature updated in closed form each step.",
            reference=_LDR_PAPER,
        ),
        LossSpec(
            name="tempnet_dro_ce",
            factory=TempNetDROCE,
            tasks=_CLASS_TASKS,
            link=learned_temperature_link,
            params=(
                Param("rho", "float", 0.0, low=0, grid=(0.0, 0.1, 1.0), doc="KL-ball radius"),
                Param(
                    "tau_min", "float", 0.01, low=0, closed="neither", doc="smallest temperature"
                ),
                Param("tau_max", "float", 1.2, low=0, closed="neither", doc="largest temperature"),
                Param("hidden", "int", 256, low=1, grid=(32, 256), doc="width of the TempNet"),
                Param(
                    "detach_input",
                    "bool",
                    True,
                    doc="feed TempNet detached logits (the model gets only the CE gradient)",
                ),
            ),
            data_params=("n_classes",),
            stochastic=True,
            learnable=True,
            summary="KL-DRO cross-entropy with per-row temperatures from a learned TempNet.",
            reference=(
                'Qiu et al., "To Cool or not to Cool? Temperature Network Meets Large Foundation '
                'Models via DRO" (code: zhqiu/TempNet)'
            ),
        ),
        LossSpec(
            name="dynamic_loss_gate",
            factory=DynamicLossGate,
            tasks=_CLASS_TASKS,
            link="softmax",
            # The base's data params (class_counts for base="ldam" ...) are computed per fold.
            data_params_of=base_data_params,
            params=(
                Param(
                    "base",
                    "str",
                    "cross_entropy",
                    doc="registered per-row class loss on softmax logits (no fit extras), "
                    "built with its defaults and the data params it declares",
                ),
                Param(
                    "confidence",
                    "float",
                    0.9,
                    low=0,
                    high=1,
                    closed="right",
                    grid=(0.5, 0.7, 0.9),
                    doc="a gated row is relabelled to its predicted class when max p reaches "
                    "this, else dropped",
                ),
                Param(
                    "warmup_epochs",
                    "int",
                    5,
                    low=0,
                    grid=(1, 5, 10),
                    doc="epochs of plain base loss before the first mixture fit",
                ),
                Param(
                    "refit_every",
                    "int",
                    1,
                    low=1,
                    doc="refit the two-component mixture every this many epochs",
                ),
            ),
            summary="Dynamic loss gate: a GMM on the row losses keeps, relabels or drops each row.",
            reference=(
                'Han, Chen & Qian, "Self-Supervised Speaker Verification Using Dynamic Loss-Gate '
                'and Label Correction", 2022, arXiv:2208.01928; catalogue entry: '
                '"Self-Supervised Learning with Cluster-Aware-DINO for High-Performance Robust '
                'Speaker Verification"'
            ),
        ),
        LossSpec(
            name="error_norm_truncation",
            aliases=("ent",),
            factory=ErrorNormTruncation,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                Param(
                    "mode",
                    "choice",
                    "threshold",
                    options=("threshold", "fraction"),
                    doc="drop rows above an error norm, or a fraction of each batch",
                ),
                Param(
                    "threshold",
                    "float",
                    1.2,
                    low=0,
                    high=2**0.5,
                    closed="right",
                    grid=(1.0, 1.2, 1.35),
                    doc="error-norm threshold (threshold mode)",
                ),
                Param(
                    "fraction",
                    "float",
                    0.1,
                    low=0,
                    high=1,
                    closed="left",
                    grid=(0.05, 0.1, 0.2),
                    doc="fraction of each batch dropped (fraction mode)",
                ),
                Param(
                    "start_iteration",
                    "int",
                    0,
                    low=0,
                    doc="training steps of plain CE before truncation",
                ),
            ),
            summary="Error norm truncation: CE on rows whose ||p - onehot||_2 is small.",
            reference=(
                'Li et al., "Error Norm Truncation: Robust Training in the Presence of Data Noise '
                'for Text Generation Models", ICLR 2024, arXiv:2310.00840'
            ),
        ),
        LossSpec(
            name="loss_truncation",
            factory=LossTruncation,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                Param(
                    "drop_c",
                    "float",
                    0.4,
                    low=0,
                    high=1,
                    closed="left",
                    grid=(0.1, 0.2, 0.4),
                    doc="fraction of rows dropped",
                ),
                Param("min_count", "int", 10000, low=0, doc="rows seen before truncation starts"),
                Param(
                    "window",
                    "int",
                    10000,
                    low=1,
                    doc="loss history size and rows between quantile updates",
                ),
            ),
            summary="Loss truncation: drop rows whose CE exceeds a running (1-c) quantile.",
            reference=(
                'Kang & Hashimoto, "Improved Natural Language Generation via Loss Truncation", '
                "ACL 2020, arXiv:2004.14589"
            ),
        ),
        LossSpec(
            name="tailr",
            factory=TaiLr,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                Param(
                    "gamma",
                    "float",
                    0.1,
                    low=0,
                    high=1,
                    grid=(0.1, 0.5, 1.0),
                    doc="mixing coefficient; 0 is plain CE",
                ),
                Param(
                    "min_weight",
                    "float",
                    0.3,
                    low=0,
                    high=1,
                    grid=(0.0, 0.3),
                    doc="floor of the detached row weight",
                ),
            ),
            summary="TaiLr: CE weighted by the detached p_t / (gamma + (1 - gamma) p_t).",
            reference=(
                'Ji et al., "Tailoring Language Generation Models under Total Variation '
                'Distance", ICLR 2023, arXiv:2302.13344'
            ),
        ),
        LossSpec(
            name="robust_dpo",
            aliases=("unbiased_flip_bce",),
            factory=RobustDPO,
            tasks={"binary"},
            link="sigmoid",
            params=(
                Param(
                    "epsilon",
                    "float",
                    0.1,
                    low=0,
                    high=0.5,
                    closed="left",
                    grid=(0.1, 0.2, 0.3, 0.4),
                    doc="label flip rate",
                ),
            ),
            summary="Unbiased logistic loss under label flips at rate epsilon (rDPO).",
            reference=_RDPO_PAPER,
        ),
        LossSpec(
            name="conservative_bce",
            aliases=("cdpo",),
            factory=ConservativeBCE,
            tasks={"binary"},
            link="sigmoid",
            params=(
                Param(
                    "epsilon",
                    "float",
                    0.1,
                    low=0,
                    high=0.5,
                    closed="left",
                    grid=(0.05, 0.1, 0.2),
                    doc="label smoothing",
                ),
            ),
            summary="Label-smoothed logistic loss (conservative DPO baseline).",
            reference=_RDPO_PAPER,
        ),
    ]
