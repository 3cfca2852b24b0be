"""Built-in plugin: distillation losses reading a teacher's logits per row (``teacher_logits``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lossreg import LossSpec, Param, hookimpl

from .assistive import KDAssistiveRegression
from .bdkd import BalancedDivergenceKD
from .binary_kl import BinaryKLKD
from .data_partition import KDDataPartition
from .divergences import GeneralizedJSDKD, SoftSymmetricCE
from .drw_hard import DRWHardDistillation, mean_heads_softmax_link
from .dual_head import DualHeadKD, first_head_softmax_link
from .kd import DefensiveDistillation, KnowledgeDistillation
from .margin import MarginMSE
from .norm_direction import NormDirection
from .ps_kd import PSKD
from .sinkhorn import SinkhornKD
from .tgeo import TGeoKD
from .top_kl import KLTop

__all__ = [
    "NOT_REGISTERED",
    "PSKD",
    "BalancedDivergenceKD",
    "BinaryKLKD",
    "DRWHardDistillation",
    "DefensiveDistillation",
    "DualHeadKD",
    "GeneralizedJSDKD",
    "KDAssistiveRegression",
    "KDDataPartition",
    "KLTop",
    "KnowledgeDistillation",
    "MarginMSE",
    "NormDirection",
    "SinkhornKD",
    "SoftSymmetricCE",
    "TGeoKD",
    "first_head_softmax_link",
    "mean_heads_softmax_link",
    "register_losses",
]


def _two_models(context: Mapping[str, Any]) -> Any:
    """2 x the output width: the teacher's logits, then the initial student's (2-class: 1 each)."""
    width = int(context["width"])
    return (2 * width, 2) if width == 2 else 2 * width


def _two_teachers(context: Mapping[str, Any]) -> int:
    """2 x the output width: the tough teacher's predictions, then the tolerant teacher's."""
    return 2 * int(context["width"])


#: Catalogue entries of this family that are deliberately not registered, with the reason.
NOT_REGISTERED: dict[str, str] = {
    "class_relation_kd": (
        "A term of a novel-class-discovery procedure, not a criterion the estimators can "
        "train: the student has C_known + C_novel outputs, the novel classes have no labels "
        "and so no place in classes_, and their head is trained by Sinkhorn self-labelling "
        "with swapped predictions over two views and several heads (UNO), which the term "
        "alone lacks. Verified against kleinzcy/Cr-KD-NCD (model/losses.py, KD): on "
        "unlabeled rows, T^2 * g_i * CE(softmax(t/(tau T)), softmax(z_known/(tau T))) with "
        "the undetached gate g_i = P(known | z_i/(tau T)) divided by its batch mean, T = 0.15; "
        "without novel outputs g_i = 1 and it is soft-label KD at temperature tau T."
    ),
    "dac_kl": (
        "Too vague to implement: in Liu et al. (arXiv:2407.10068) an MLP sub-network reads the "
        "teacher's output and predicts quantile bounds (u, l) that clip the teacher's "
        "distribution before the KL, trained end-to-end through the same loss; the paper does "
        "not give the sub-network's inputs, depth, width or how the clipping stays "
        "differentiable (reviewers of its ICLR 2025 submission point this out), no code was "
        "found, and bounds trained to minimise the KL they clip can pick whatever band the "
        "student already matches. It is also meant for vocabulary-sized distributions."
    ),
}

_CLASS_TASKS = frozenset({"binary", "multiclass"})
_DHKD_PAPER = (
    'Yang et al., "Dual-Head Knowledge Distillation: Enhancing Logits Utilization with an '
    'Auxiliary Head", arXiv:2411.08937'
)
_TEMPERATURE = "softening temperature T of both distributions"


def _weight(name: str, default: float, doc: str, grid: tuple[float, ...] = ()) -> Param:
    return Param(name, "float", default, low=0, grid=grid, doc=doc)


def _temperature(default: float, grid: tuple[float, ...]) -> Param:
    return Param(
        "temperature", "float", default, low=0, closed="neither", grid=grid, doc=_TEMPERATURE
    )


#: Hinton KD's mix, shared by the losses that keep its (1 - alpha) CE + alpha T^2 divergence
_KD_ALPHA = Param(
    "alpha",
    "float",
    0.9,
    low=0,
    high=1,
    grid=(0.5, 0.9),
    doc="weight of the distillation term (1 - alpha on the label CE)",
)


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="knowledge_distillation",
            aliases=("kd",),
            factory=KnowledgeDistillation,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                _temperature(4.0, (2.0, 4.0, 8.0)),
                _KD_ALPHA,
            ),
            fit_extras=("teacher_logits",),
            summary="Hinton KD: (1-alpha) CE on labels + alpha T^2 KL(teacher_T || student_T).",
            reference=(
                'Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network", '
                "NIPS 2014 Deep Learning Workshop, arXiv:1503.02531"
            ),
        ),
        LossSpec(
            name="bdkd",
            factory=BalancedDivergenceKD,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                _temperature(4.0, (2.0, 4.0, 8.0)),
                _KD_ALPHA,
                Param(
                    "balance",
                    "float",
                    0.75,
                    low=0,
                    high=1,
                    grid=(0.5, 0.75, 1.0),
                    doc="weight of the KL the entropy gap favours (the other gets 1 - balance)",
                ),
            ),
            fit_extras=("teacher_logits",),
            summary=(
                "BD-KD student loss: forward or reverse KL favoured per row by the "
                "student-teacher entropy gap (weighting rule reconstructed)."
            ),
            reference=(
                'Amara, Sepahvand, Meyer, Gross & Clark, "BD-KD: Balancing the Divergences '
                'for Online Knowledge Distillation", arXiv:2212.12965'
            ),
        ),
        LossSpec(
            name="tgeo_kd",
            factory=TGeoKD,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                _temperature(4.0, (2.0, 4.0, 8.0)),
                Param("hidden_units", "int", 32, low=1, grid=(16, 32), doc="width of g's layer"),
                Param(
                    "meta_lr",
                    "float",
                    1e-3,
                    low=0,
                    closed="neither",
                    grid=(1e-3, 1e-2),
                    doc="Adam learning rate of the fusion-ratio network g",
                ),
                Param(
                    "lookahead_lr",
                    "float",
                    0.1,
                    low=0,
                    closed="neither",
                    doc="step of the student's virtual SGD step in the look-ahead",
                ),
                Param(
                    "val_fraction",
                    "float",
                    0.1,
                    low=0,
                    high=1,
                    closed="left",
                    grid=(0.1, 0.2),
                    doc="share of training rows held out for the outer (meta) problem",
                ),
            ),
            data_params=("n_classes",),
            fit_extras=("teacher_logits", "sample_index"),
            summary="TGeo-KD: per-row CE/KD ratio from a net over student/teacher/label geometry.",
            reference=(
                'Hu et al., "Less or More From Teacher: Exploiting Trilateral Geometry For '
                'Knowledge Distillation", ICLR 2024, arXiv:2312.15112'
            ),
        ),
        LossSpec(
            name="norm_direction",
            aliases=("nd",),
            factory=NormDirection,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                _weight("nd_weight", 1.0, "weight of the norm-and-direction term", (0.5, 1.0, 2.0)),
                _weight("kd_weight", 1.0, "weight of the distillation term", (0.0, 1.0)),
                _temperature(4.0, (2.0, 4.0, 8.0)),
                Param(
                    "kd_warmup_epochs",
                    "int",
                    20,
                    low=0,
                    grid=(0, 20),
                    doc="epochs over which the distillation weight grows linearly",
                ),
            ),
            data_params=("n_classes", "feature_dim"),
            fit_extras=("teacher_logits", "teacher_features"),
            outputs="logits+features",
            summary="KD++: CE + KD + ND, student features along teacher class-mean directions.",
            reference=(
                'Wang, Cheng, Duan, Wang, Feng, Kong, "Improving Knowledge Distillation via '
                'Regularizing Feature Direction and Norm", ECCV 2024, arXiv:2305.17007'
            ),
        ),
        LossSpec(
            name="defensive_distillation",
            factory=DefensiveDistillation,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(_temperature(20.0, (20.0, 50.0, 100.0)),),
            fit_extras=("teacher_logits",),
            summary="Soft cross-entropy to a teacher's softmax at a high temperature T.",
            reference=(
                'Papernot et al., "Distillation as a Defense to Adversarial Perturbations against '
                'Deep Neural Networks", IEEE S&P 2016, arXiv:1511.04508'
            ),
        ),
        LossSpec(
            name="generalized_jsd_kd",
            aliases=("gkd",),
            factory=GeneralizedJSDKD,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                Param(
                    "beta",
                    "float",
                    0.5,
                    low=0,
                    high=1,
                    grid=(0.0, 0.5, 0.9),
                    doc="0 forward KL, 1 reverse KL, in between the generalized JSD",
                ),
                _temperature(1.0, (1.0, 2.0)),
                Param(
                    "ce_weight",
                    "float",
                    0.0,
                    low=0,
                    grid=(0.0, 0.5),
                    doc="weight of an added cross-entropy on the labels",
                ),
            ),
            fit_extras=("teacher_logits",),
            summary="Generalized Jensen-Shannon divergence to the teacher (GKD), optional CE.",
            reference=(
                'Agarwal et al., "On-Policy Distillation of Language Models: Learning from '
                'Self-Generated Mistakes", ICLR 2024, arXiv:2306.13649'
            ),
        ),
        LossSpec(
            name="ps_kd",
            factory=PSKD,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                Param(
                    "alpha_max",
                    "float",
                    0.8,
                    low=0,
                    high=1,
                    grid=(0.5, 0.8),
                    doc="weight of the model's own last-epoch predictions at the final epoch",
                ),
            ),
            data_params=("n_samples", "n_classes"),
            fit_extras=("sample_index",),
            summary="Self-distillation: targets mix labels with last epoch's own predictions.",
            reference=(
                'Kim et al., "Self-Knowledge Distillation with Progressive Refinement of '
                'Targets", ICCV 2021'
            ),
        ),
        LossSpec(
            name="soft_symmetric_ce",
            factory=SoftSymmetricCE,
            tasks=_CLASS_TASKS,
            link="softmax",
            fit_extras=("teacher_logits",),
            summary="Symmetric soft cross-entropy between the student and a fixed teacher.",
            reference=(
                'Döbler, Marsden & Yang, "Robust Mean Teacher for Continual and Gradual '
                'Test-Time Adaptation", CVPR 2023'
            ),
        ),
        LossSpec(
            name="binary_kl_kd",
            factory=BinaryKLKD,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                _temperature(2.0, (1.0, 2.0, 4.0)),
                Param(
                    "normalize",
                    "bool",
                    False,
                    grid=(False, True),
                    doc="z-score each row's logits before the sigmoid",
                ),
            ),
            fit_extras=("teacher_logits",),
            summary="Logit-level KD: per-class binary KL of sigmoid(t/T) and sigmoid(z/T).",
            reference=_DHKD_PAPER,
        ),
        LossSpec(
            name="dual_head_kd",
            factory=DualHeadKD,
            tasks=_CLASS_TASKS,
            link=first_head_softmax_link,
            params=(
                _temperature(4.0, (2.0, 4.0)),
                Param(
                    "dh_temperature",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(1.0, 2.0),
                    doc="temperature of the binary-KL term on head 2",
                ),
                Param("normalize", "bool", True, doc="z-score head 2 and teacher rows"),
                _weight("ce_weight", 1.0, "weight of the label CE on head 1"),
                _weight("kd_weight", 0.0, "weight of the T^2 KL term on head 1", (0.0, 1.0)),
                _weight("dh_weight", 1.0, "weight of the binary-KL term on head 2", (0.5, 1.0)),
            ),
            fit_extras=("teacher_logits",),
            output_size=lambda ctx: 2 * int(ctx["n_classes"]),
            summary="Two heads: CE (+KD) on head 1, normalised binary-KL on head 2.",
            reference=_DHKD_PAPER,
        ),
        LossSpec(
            name="sinkhorn_kd",
            factory=SinkhornKD,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                _temperature(2.0, (1.0, 2.0, 4.0)),
                Param(
                    "epsilon",
                    "float",
                    0.1,
                    low=0,
                    closed="neither",
                    grid=(0.05, 0.1, 0.5),
                    doc="entropic regularisation of the transport kernel",
                ),
                Param("n_iters", "int", 20, low=1, doc="Sinkhorn normalisation rounds"),
                _weight("weight", 0.002, "weight of the Sinkhorn term", (0.002, 0.02, 0.2)),
                _weight("ce_weight", 1.0, "weight of the label cross-entropy"),
            ),
            fit_extras=("teacher_logits",),
            per_sample=False,
            summary="Batch-level Sinkhorn distance between student and teacher predictions + CE.",
            reference=(
                'Cui et al., "Sinkhorn Distance Minimization for Knowledge Distillation", '
                "LREC-COLING 2024, arXiv:2402.17110"
            ),
        ),
        LossSpec(
            name="drw_hard_distillation",
            factory=DRWHardDistillation,
            tasks=_CLASS_TASKS,
            link=mean_heads_softmax_link,
            params=(
                Param(
                    "alpha",
                    "float",
                    0.5,
                    low=0,
                    high=1,
                    grid=(0.3, 0.5, 0.7),
                    doc="weight of the distillation (DIST head) term",
                ),
                Param(
                    "beta",
                    "float",
                    0.9999,
                    low=0,
                    high=1,
                    closed="left",
                    grid=(0.999, 0.9999),
                    doc="effective-number parameter of the DRW class weights",
                ),
                Param(
                    "drw_fraction",
                    "float",
                    0.8,
                    low=0,
                    high=1,
                    grid=(0.5, 0.8),
                    doc="DRW starts at epoch drw_fraction * max_epochs",
                ),
            ),
            data_params=("class_counts",),
            fit_extras=("teacher_logits",),
            per_sample=False,
            output_size=lambda ctx: 2 * int(ctx["n_classes"]),
            summary="DeiT-LT: CE on a CLS head + DRW-weighted CE to the teacher's argmax (DIST).",
            reference=(
                'Rangwani et al., "DeiT-LT: Distillation Strikes Back for Vision Transformer '
                'Training on Long-Tailed Datasets", CVPR 2024, arXiv:2404.02900'
            ),
        ),
        LossSpec(
            name="kl_top",
            factory=KLTop,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                Param(
                    "top_k",
                    "int",
                    1000,
                    low=1,
                    grid=(2, 5, 1000),
                    doc="number of the teacher's top classes kept per row (>= C: plain KL)",
                ),
                _temperature(1.0, (1.0, 2.0, 4.0)),
            ),
            fit_extras=("teacher_logits",),
            summary="KL to the teacher on the teacher's top-k classes, both renormalised there.",
            reference=(
                'Hu et al., "OstQuant: Refining Large Language Model Quantization with '
                'Orthogonal and Scaling Transformations for Better Distribution Fitting", '
                "ICLR 2025"
            ),
        ),
        LossSpec(
            name="kd_data_partition",
            factory=KDDataPartition,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                _temperature(1.0, (1.0, 2.0, 4.0)),
                Param(
                    "partition",
                    "choice",
                    "supervised",
                    options=("supervised", "unsupervised"),
                    grid=("supervised", "unsupervised"),
                    doc="compare the true-class probability, or the top probability",
                ),
            ),
            fit_extras=("teacher_logits",),
            extra_widths={"teacher_logits": _two_models},
            summary="KL+DP: per row, distil from the teacher or the initial student (N, 2C).",
            reference=(
                'Roth et al., "Fantastic Gains and Where to Find Them: On the Existence and '
                'Prospect of General Knowledge Transfer between Any Pretrained Model", '
                "ICLR 2024, arXiv:2310.17653"
            ),
        ),
        LossSpec(
            name="kd_assistive_regression",
            factory=KDAssistiveRegression,
            tasks={"regression"},
            link="identity",
            params=(
                Param(
                    "alpha_tough", "float", 1.9, doc="tough teacher: weight beyond its reflection"
                ),
                Param(
                    "alpha_tough_inner",
                    "float",
                    -0.45,
                    doc="tough teacher: weight between the inner bound and its reflection",
                ),
                Param("alpha_tol", "float", 1.8, doc="tolerant teacher: weight beyond it"),
                Param(
                    "alpha_tol_inner",
                    "float",
                    -0.4,
                    doc="tolerant teacher: weight between the inner bound and it",
                ),
                _weight("main_weight", 2.0, "weight of the main term", (1.0, 2.0)),
                _weight("tough_weight", 1.0, "weight of the tough teacher's term", (0.5, 1.0)),
                _weight("tol_weight", 1.0, "weight of the tolerant teacher's term", (0.5, 1.0)),
            ),
            fit_extras=("teacher_logits",),
            extra_widths={"teacher_logits": _two_teachers},
            summary="KD-Loss: regression guided by a tough and a tolerant teacher (N, 2K extra).",
            reference=(
                'Fard & Mahoor, "Facial Landmark Points Detection Using Knowledge '
                'Distillation-Based Neural Networks", arXiv:2111.07047'
            ),
        ),
        LossSpec(
            name="margin_mse",
            sampler="whole_groups",  # pairs are formed inside a query
            factory=MarginMSE,
            tasks={"ranking"},
            link="identity",
            fit_extras=("group", "teacher_logits"),
            per_sample=False,
            summary="Ranking KD: squared error of student vs teacher score margins per query.",
            reference=(
                'Hofstätter et al., "Improving Efficient Neural Ranking Models with '
                'Cross-Architecture Knowledge Distillation", arXiv:2010.02666'
            ),
        ),
    ]
