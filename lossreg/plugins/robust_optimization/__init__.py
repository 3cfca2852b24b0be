"""Built-in plugin: distributionally robust and invariance objectives wrapping a base loss."""

from __future__ import annotations

from lossreg import LossSpec, Param, hookimpl

from ._private import ALL_TASKS, base_link, base_output_size, base_param
from .domain_penalised import DomainPenalised
from .group_cvar import GroupCVaR
from .group_dro import GroupDRO
from .holistic import HolisticRobust
from .invariance import IRM, VREx
from .metrics import worst_group_accuracy
from .reweighting import LossReweighting
from .spectral import SpectralRisk
from .tilted import KLDRO

__all__ = [
    "IRM",
    "KLDRO",
    "NOT_REGISTERED",
    "DomainPenalised",
    "GroupCVaR",
    "GroupDRO",
    "HolisticRobust",
    "LossReweighting",
    "SpectralRisk",
    "VREx",
    "register_losses",
    "worst_group_accuracy",
]

#: Catalogue entries that cannot be a criterion for an MLP on tabular data, with the reason.
NOT_REGISTERED: dict[str, str] = {
    "fishr": (
        "Needs the penultimate features of every row next to the logits (per-row head "
        "gradients (p - y) x [h, 1]); the estimator's module returns logits only. Needs a "
        "multi-head output mechanism (logits, features)."
    ),
    "hessian_alignment_hgp": (
        "Needs the penultimate features h to form the head's gradient and Hessian in closed "
        "form (or parameter autograd through the head); the criterion sees logits only. Needs "
        "a multi-head output mechanism (logits, features)."
    ),
    "hessian_alignment_hutchinson": (
        "As hessian_alignment_hgp: Hessian diagonals of the head need the features h (or the "
        "head's parameters), which a criterion given only logits does not have."
    ),
    "deep_coral": (
        "Aligns the means and covariances of the penultimate embeddings across groups; on "
        "logits it would be a different method. Needs a multi-head output mechanism "
        "(logits, embeddings)."
    ),
    "cad_bottleneck": (
        "A contrastive bottleneck on the representation z (N, D) across domains; needs a "
        "multi-head output mechanism (embeddings, logits)."
    ),
    "cond_cad_bottleneck": (
        "As cad_bottleneck, restricted to same-label rows: needs the representation z, i.e. a "
        "multi-head output mechanism (embeddings, logits)."
    ),
}

_GROUP_DRO_PAPER = (
    'Sagawa et al., "Distributionally Robust Neural Networks for Group Shifts: On the Importance '
    'of Regularization for Worst-Case Generalization", ICLR 2020, arXiv:1911.08731'
)


def _wrapper(**fields) -> LossSpec:
    """A spec of a batch-level wrapper: inherits the base's link and output size."""
    fields.setdefault("tasks", ALL_TASKS)
    fields.setdefault("per_sample", False)
    return LossSpec(link=base_link, output_size=base_output_size, **fields)


_IRM_PENALTY = Param(
    "penalty",
    "choice",
    "squared",
    options=("squared", "split_product"),
    doc="squared full-environment gradient, or the product over two halves (unbiased)",
)


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        _wrapper(
            name="group_dro",
            factory=GroupDRO,
            params=(
                *base_param(),
                Param(
                    "step_size",
                    "float",
                    0.01,
                    low=0,
                    closed="neither",
                    grid=(0.001, 0.01, 0.1),
                    doc="step of the exponentiated-gradient update of the group weights",
                ),
                Param(
                    "adj",
                    "float",
                    0.0,
                    low=0,
                    # No grid: adj > 0 needs group_counts, which has no default.
                    doc="generalisation adjustment C/sqrt(n_g); needs group_counts",
                ),
                Param("normalize_loss", "bool", False, doc="normalise the adjusted group losses"),
                Param(
                    "n_groups",
                    "int",
                    None,
                    low=1,
                    nullable=True,
                    doc="number of groups; None grows the weights to the largest id seen + 1",
                ),
                Param(
                    "group_counts",
                    "vector",
                    None,
                    low=0,
                    nullable=True,
                    doc="training rows per group (for adj > 0)",
                ),
            ),
            fit_extras=("group",),
            summary="GroupDRO: online exponentiated weights on the worst groups' mean losses.",
            reference=_GROUP_DRO_PAPER,
        ),
        _wrapper(
            name="group_cvar",
            factory=GroupCVaR,
            params=(
                *base_param(),
                Param(
                    "alpha",
                    "float",
                    0.2,
                    low=0,
                    high=1,
                    closed="right",
                    grid=(0.1, 0.2, 0.5),
                    doc="CVaR level: the share of data the loss concentrates on",
                ),
                Param(
                    "gamma",
                    "float",
                    0.1,
                    low=0,
                    high=1,
                    closed="right",
                    doc="EMA rate of the group reference losses",
                ),
                Param(
                    "min_var_weight",
                    "float",
                    0.0,
                    low=0,
                    high=1,
                    doc="mixes the ERM group weights back in",
                ),
                Param("adj", "float", 0.0, low=0, doc="adjustment C/sqrt(n_g); needs group_counts"),
                Param(
                    "group_counts",
                    "vector",
                    None,
                    low=0,
                    nullable=True,
                    doc="training rows per group; None uses the running counts seen",
                ),
            ),
            fit_extras=("group",),
            summary="Greedy CVaR over groups ranked by an EMA of their losses.",
            reference=_GROUP_DRO_PAPER,
        ),
        _wrapper(
            name="kl_dro",
            aliases=("tilted",),
            factory=KLDRO,
            params=(
                *base_param(),
                Param(
                    "tau",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.1, 1.0, 10.0),
                    doc="temperature: small -> max loss, large -> mean (ERM)",
                ),
            ),
            summary="KL-DRO / tilted loss: tau * log mean exp(loss / tau) over the batch.",
            reference='Li et al., "Tilted Empirical Risk Minimization", ICLR 2021',
        ),
        _wrapper(
            name="spectral_risk",
            aliases=("superquantile", "cvar"),
            factory=SpectralRisk,
            params=(
                *base_param(),
                Param(
                    "spectrum",
                    "choice",
                    "superquantile",
                    options=("superquantile", "extremile", "esrm"),
                    doc="the spectrum weighing the sorted batch losses",
                ),
                Param(
                    "tail_fraction",
                    "float",
                    0.5,
                    low=0,
                    high=1,
                    closed="right",
                    grid=(0.1, 0.25, 0.5),
                    doc="superquantile: fraction of the highest losses kept",
                ),
                Param("r", "float", 2.0, low=1, grid=(1.5, 2.0, 5.0), doc="extremile order"),
                Param(
                    "rho",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(1.0, 5.0, 10.0),
                    doc="ESRM risk aversion",
                ),
                Param(
                    "penalty",
                    "choice",
                    "chi2",
                    options=("chi2", "kl"),
                    doc="divergence of the shift cost",
                ),
                Param(
                    "shift_cost",
                    "float",
                    0.0,
                    low=0,
                    grid=(0.0, 0.1, 1.0),
                    doc="dual regularisation; 0 uses the spectrum itself",
                ),
            ),
            summary="Spectral risk (superquantile/CVaR, extremile, ESRM) of the batch losses.",
            reference=(
                'Mehta et al., "Distributionally Robust Optimization with Bias and Variance '
                'Reduction", ICLR 2024, arXiv:2310.13863'
            ),
        ),
        _wrapper(
            name="holistic_robust",
            factory=HolisticRobust,
            params=(
                *base_param(),
                Param(
                    "alpha",
                    "float",
                    0.1,
                    low=0,
                    high=0.3,
                    grid=(0.0, 0.05, 0.1, 0.2),
                    doc="poisoning (total-variation) budget",
                ),
                Param(
                    "r",
                    "float",
                    0.01,
                    low=0,
                    high=1,
                    grid=(0.001, 0.01, 0.1),
                    doc="KL radius (statistical error)",
                ),
            ),
            summary="Holistic robust loss: KL-DRO around a poisoned batch (no evasion part).",
            reference=(
                'Bennouna et al., "Certified Robust Neural Networks: Generalization and '
                'Corruption Resistance", ICML 2023, arXiv:2303.02251'
            ),
        ),
        _wrapper(
            name="loss_reweighting",
            factory=LossReweighting,
            params=(
                *base_param(),
                Param(
                    "strategy",
                    "choice",
                    "linupper",
                    options=("linupper", "quadratic", "extremes", "uniform"),
                    grid=("linupper", "quadratic", "extremes"),
                    doc="function of the normalised losses that sets the weights",
                ),
                Param(
                    "delta",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    doc="half-width of the normalised loss range",
                ),
                Param(
                    "r",
                    "float",
                    1.0,
                    low=0,
                    closed="neither",
                    grid=(0.5, 1.0, 2.0),
                    doc="softmax temperature of the weights",
                ),
            ),
            summary="Softmax row weights from min-max normalised batch losses (LinUpper ...).",
            reference=(
                'Sow et al., "Dynamic Loss-Based Sample Reweighting for Improved Large Language '
                'Model Pretraining", ICLR 2025, arXiv:2502.06733'
            ),
        ),
        _wrapper(
            name="domain_penalised",
            factory=DomainPenalised,
            params=base_param(),
            fit_extras=("group",),
            per_sample=True,
            summary="Rows weighed by softmax of their domain's mean loss last epoch.",
            reference=(
                'Jena et al., "Domain penalisation for improved Out-of-Distribution '
                'Generalisation", arXiv:2408.01746'
            ),
        ),
        _wrapper(
            name="irm",
            aliases=("irm_v1", "irm_penalty"),
            factory=IRM,
            tasks=frozenset({"binary", "multiclass"}),
            params=(*base_param(), *_annealing(100.0, (1.0, 100.0, 1e4)), _IRM_PENALTY),
            fit_extras=("group",),
            summary="IRMv1: environment risks plus the squared gradient w.r.t. a dummy scale.",
            reference=(
                'Arjovsky et al., "Invariant Risk Minimization", 2019; Gulrajani & Lopez-Paz, '
                '"In Search of Lost Domain Generalization", ICLR 2021'
            ),
        ),
        _wrapper(
            name="vrex",
            aliases=("v_rex",),
            factory=VREx,
            params=(*base_param(), *_annealing(10.0, (1.0, 10.0, 1e3))),
            fit_extras=("group",),
            summary="V-REx: mean environment risk plus the variance of environment risks.",
            reference=(
                'Krueger et al., "Out-of-Distribution Generalization via Risk Extrapolation '
                '(REx)", ICML 2021, arXiv:2003.00688'
            ),
        ),
    ]


def _annealing(default: float, grid: tuple[float, ...]) -> tuple[Param, Param]:
    return (
        Param(
            "penalty_weight",
            "float",
            default,
            low=0,
            grid=grid,
            doc="penalty weight after annealing (1 before)",
        ),
        Param(
            "anneal_iters",
            "int",
            500,
            low=0,
            grid=(0, 100, 500),
            doc="training steps with penalty weight 1 first",
        ),
    )
