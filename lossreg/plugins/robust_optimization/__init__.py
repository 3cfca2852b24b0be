"""Built-in plugin: distributionally robust and invariance objectives wrapping a base loss."""

from __future__ import annotations

from lossreg import LossSpec, Param, hookimpl

from ._private import ALL_TASKS, base_data_params, base_link, base_output_size, base_param
from .bottleneck import CADBottleneck, CondCADBottleneck
from .domain_penalised import DomainPenalised
from .group_cvar import GroupCVaR
from .group_dro import GroupDRO
from .hessian import HessianAlignmentHGP, HessianAlignmentHutchinson
from .holistic import HolisticRobust
from .invariance import IRM, VREx
from .metrics import worst_group_accuracy
from .representation import DeepCORAL, Fishr
from .reweighting import LossReweighting
from .spectral import SpectralRisk
from .tilted import KLDRO

__all__ = [
    "IRM",
    "KLDRO",
    "NOT_REGISTERED",
    "CADBottleneck",
    "CondCADBottleneck",
    "DeepCORAL",
    "DomainPenalised",
    "Fishr",
    "GroupCVaR",
    "GroupDRO",
    "HessianAlignmentHGP",
    "HessianAlignmentHutchinson",
    "HolisticRobust",
    "LossReweighting",
    "SpectralRisk",
    "VREx",
    "register_losses",
    "worst_group_accuracy",
]

#: Catalogue entries that cannot be a criterion for an MLP on tabular data, with the reason.
NOT_REGISTERED: dict[str, str] = {}

_GROUP_DRO_PAPER = (
    'Sagawa et al., "Distributionally Robust Neural Networks for Group Shifts: On the Importance '
    'of Regularization for Worst-Case Generalization", ICLR 2020, arXiv:1911.08731'
)


def _wrapper(**fields) -> LossSpec:
    """A spec of a batch-level wrapper: inherits the base's link and output size."""
    fields.setdefault("tasks", ALL_TASKS)
    fields.setdefault("per_sample", False)
    # The base's data params (class_counts for base="ldam" ...) are computed per fold too.
    fields.setdefault("data_params_of", base_data_params)
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
            sampler="group_balanced",  # uniform over groups (group_DRO --reweight_groups)
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
            sampler="group_stratified",  # pi_g are the shares of the rows seen in training
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
            name="deep_coral",
            aliases=("coral",),
            factory=DeepCORAL,
            params=(
                *base_param(),
                Param(
                    "coral_weight",
                    "float",
                    1.0,
                    low=0,
                    grid=(0.1, 1.0, 10.0),
                    doc="weight of the CORAL penalty (DomainBed's mmd_gamma)",
                ),
            ),
            fit_extras=("group",),
            sampler="group_balanced",  # one equal minibatch per domain (DomainBed, WILDS)
            outputs="logits+features",
            summary="Deep CORAL: base loss plus group mismatch of feature means and covariances.",
            reference=(
                'Sun & Saenko, "Deep CORAL: Correlation Alignment for Deep Domain Adaptation", '
                'ECCV 2016 Workshops, arXiv:1607.01719; Koh et al., "WILDS: A Benchmark of '
                'in-the-Wild Distribution Shifts", ICML 2021, arXiv:2012.07421'
            ),
        ),
        LossSpec(
            name="fishr",
            factory=Fishr,
            tasks=frozenset({"binary", "multiclass"}),
            link="softmax",
            per_sample=False,
            params=(
                Param(
                    "penalty_weight",
                    "float",
                    1000.0,
                    low=0,
                    grid=(10.0, 100.0, 1000.0),
                    doc="weight of the penalty after the warm-up",
                ),
                Param(
                    "anneal_iters",
                    "int",
                    1500,
                    low=0,
                    grid=(0, 500, 1500),
                    doc="training steps without the penalty first",
                ),
                Param(
                    "ema",
                    "float",
                    0.95,
                    low=0,
                    high=1,
                    closed="left",
                    grid=(0.9, 0.95, 0.99),
                    doc="decay of the per-environment moving averages of gradient variances",
                ),
            ),
            fit_extras=("group",),
            sampler="group_balanced",  # one equal minibatch per environment (DomainBed)
            outputs="logits+features",
            summary="Fishr: CE plus the spread of per-environment variances of head gradients.",
            reference=(
                'Rame, Dancette, Cord, "Fishr: Invariant Gradient Variances for '
                'Out-of-Distribution Generalization", ICML 2022, arXiv:2109.02934'
            ),
        ),
        _cad_spec(
            "cad_bottleneck",
            "cad",
            CADBottleneck,
            "CAD: CE plus a contrastive bottleneck pulling rows towards other domains' rows.",
        ),
        _cad_spec(
            "cond_cad_bottleneck",
            "cond_cad",
            CondCADBottleneck,
            "Conditional CAD: the contrastive domain bottleneck among rows of the same label.",
        ),
        _hessian_spec(
            "hessian_alignment_hgp",
            HessianAlignmentHGP,
            (),
            "Hessian alignment (HGP): match head gradients and Hessian-gradient products.",
        ),
        _hessian_spec(
            "hessian_alignment_hutchinson",
            HessianAlignmentHutchinson,
            (
                Param(
                    "n_probes",
                    "int",
                    150,
                    low=1,
                    grid=(10, 150),
                    doc="Rademacher probes per Hessian-diagonal estimate",
                ),
            ),
            "Hessian alignment (Hutchinson): match head gradients and Hessian diagonals.",
            stochastic=True,
        ),
        _wrapper(
            name="irm",
            aliases=("irm_v1", "irm_penalty"),
            factory=IRM,
            tasks=frozenset({"binary", "multiclass"}),
            params=(*base_param(), *_annealing(100.0, (1.0, 100.0, 1e4)), _IRM_PENALTY),
            fit_extras=("group",),
            sampler="group_balanced",  # one equal minibatch per environment (DomainBed)
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
            sampler="group_balanced",  # one equal minibatch per environment (DomainBed)
            summary="V-REx: mean environment risk plus the variance of environment risks.",
            reference=(
                'Krueger et al., "Out-of-Distribution Generalization via Risk Extrapolation '
                '(REx)", ICML 2021, arXiv:2003.00688'
            ),
        ),
    ]


def _hessian_spec(
    name: str, factory: type, extra: tuple[Param, ...], summary: str, stochastic: bool = False
) -> LossSpec:
    return LossSpec(
        name=name,
        factory=factory,
        tasks=frozenset({"binary", "multiclass"}),
        link="softmax",
        per_sample=False,
        stochastic=stochastic,
        params=(
            Param(
                "penalty_weight",
                "float",
                91257.18613115903,
                low=0,
                grid=(1e2, 1e4, 91257.18613115903),
                doc="penalty weight after the warm-up (the colored-MNIST script's value)",
            ),
            Param(
                "anneal_iters",
                "int",
                190,
                low=0,
                grid=(0, 190, 500),
                doc="training steps with penalty weight 1 first",
            ),
            *extra,
        ),
        fit_extras=("group",),
        sampler="group_balanced",  # one equal minibatch per environment (DomainBed)
        outputs="logits+features",
        summary=summary,
        reference=(
            'Hemati, Zhang, Estiri, Chen, "Understanding Hessian Alignment for Domain '
            'Generalization", ICCV 2023, arXiv:2308.11778'
        ),
    )


def _cad_spec(name: str, alias: str, factory: type, summary: str) -> LossSpec:
    return LossSpec(
        name=name,
        aliases=(alias,),
        factory=factory,
        tasks=frozenset({"binary", "multiclass"}),
        link="softmax",
        per_sample=False,
        params=(
            Param(
                "bottleneck_weight",
                "float",
                0.1,
                low=0,
                grid=(0.01, 0.1, 1.0),
                doc="weight of the bottleneck term (DomainBed's lmbda)",
            ),
            Param(
                "temperature",
                "float",
                0.1,
                low=0,
                closed="neither",
                grid=(0.05, 0.1),
                doc="temperature of the feature similarities",
            ),
            Param("flipped", "bool", True, doc="maximise other-domain mass (the stable form)"),
            Param("normalized", "bool", False, doc="L2-normalise the features first"),
        ),
        fit_extras=("group",),
        sampler="group_balanced",  # one equal minibatch per domain (DomainBed)
        outputs="logits+features",
        summary=summary,
        reference=(
            'Ruan, Dubois, Maddison, "Optimal Representations for Covariate Shift", ICLR 2022, '
            "arXiv:2201.00057"
        ),
    )


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
