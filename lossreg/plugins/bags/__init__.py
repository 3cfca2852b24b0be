"""Built-in plugin: bag-level losses (learning from label proportions and aggregate responses)."""

from __future__ import annotations

from lossreg import LossSpec, Param, hookimpl

from .aggregate import AggregateInterpolating, BagMSE, InstanceAggregateMSE
from .proportion import DLLP, BagProportionMSE, ProportionKL

__all__ = [
    "DLLP",
    "NOT_REGISTERED",
    "AggregateInterpolating",
    "BagMSE",
    "BagProportionMSE",
    "InstanceAggregateMSE",
    "ProportionKL",
    "register_losses",
]

#: Catalogue entries that cannot be a criterion for an MLP on tabular data, with the reason.
NOT_REGISTERED: dict[str, str] = {
    "llp_bp": (
        "A procedure, not a criterion: belief propagation on a k-NN graph of the covariates "
        "produces pseudo-labels, an MLP is trained on them plus DLLP, the graph is rebuilt on "
        "its embeddings and the loop repeats; it needs an estimator-level outer loop."
    ),
}

_LLP_BP = (
    'Havaldar et al., "Learning from Label Proportions: Bootstrapping Supervised Learners via '
    'Belief Propagation", ICLR 2024, arXiv:2310.08056'
)
_AGGREGATE = (
    'Javanmard et al., "Learning from Aggregate responses: Instance Level versus Bag Level Loss '
    'Functions", ICLR 2024, arXiv:2401.11081'
)
_CLASS_TASKS = frozenset({"bag", "binary", "multiclass"})
_VALUE_TASKS = frozenset({"bag", "regression"})
_EXTRAS = ("bag", "bag_target")


def _bag_weight(default: str) -> Param:
    return Param(
        "bag_weight",
        "choice",
        default,
        options=("uniform", "size"),
        grid=("uniform", "size"),
        doc="average bag losses uniformly or weighted by bag size",
    )


@hookimpl
def register_losses() -> list[LossSpec]:
    return [
        LossSpec(
            name="dllp",
            aliases=("bag_proportion_ce",),
            factory=DLLP,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(_bag_weight("uniform"),),
            fit_extras=_EXTRAS,
            sampler="whole_bags",  # bag aggregates need every row of a bag in the batch
            per_sample=False,
            summary="DLLP: cross-entropy between bag label proportions and mean predictions.",
            reference=(
                'Ardehaly & Culotta, "Co-Training for Demographic Classification Using Deep '
                'Learning from Label Proportions", ICDM Workshops 2017, arXiv:1709.04108'
            ),
        ),
        LossSpec(
            name="bag_proportion_mse",
            factory=BagProportionMSE,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(_bag_weight("uniform"),),
            fit_extras=_EXTRAS,
            sampler="whole_bags",  # bag aggregates need every row of a bag in the batch
            per_sample=False,
            summary="Squared error between bag label proportions and mean predictions.",
            reference=_LLP_BP,
        ),
        LossSpec(
            name="proportion_kl",
            factory=ProportionKL,
            tasks=_CLASS_TASKS,
            link="softmax",
            params=(
                Param(
                    "direction",
                    "choice",
                    "pred_first",
                    options=("pred_first", "target_first"),
                    doc="KL(mean prediction || proportion) or KL(proportion || mean prediction)",
                ),
                _bag_weight("uniform"),
            ),
            fit_extras=_EXTRAS,
            sampler="whole_bags",  # bag aggregates need every row of a bag in the batch
            per_sample=False,
            summary="KL divergence between a bag's mean predicted and given class proportions.",
            reference=(
                'Bateson et al., "Source-Free Domain Adaptation for Image Segmentation", '
                "arXiv:2108.03152"
            ),
        ),
        LossSpec(
            name="bag_mse",
            factory=BagMSE,
            tasks=_VALUE_TASKS,
            link="identity",
            params=(_bag_weight("size"),),
            fit_extras=_EXTRAS,
            sampler="whole_bags",  # bag aggregates need every row of a bag in the batch
            per_sample=False,
            summary="Bag-level squared loss between bag mean responses and mean predictions.",
            reference=_AGGREGATE,
        ),
        LossSpec(
            name="instance_aggregate_mse",
            factory=InstanceAggregateMSE,
            tasks=_VALUE_TASKS,
            link="identity",
            fit_extras=("bag_target",),
            summary="Instance-level aggregate loss: each prediction against its bag's mean.",
            reference=_AGGREGATE,
        ),
        LossSpec(
            name="aggregate_interpolating",
            factory=AggregateInterpolating,
            tasks=_VALUE_TASKS,
            link="identity",
            params=(
                Param(
                    "rho",
                    "float",
                    0.5,
                    low=0,
                    high=1,
                    grid=(0.0, 0.25, 0.5, 1.0),
                    doc="weight of the within-bag prediction variance (0 bag-level, 1 instance)",
                ),
            ),
            fit_extras=_EXTRAS,
            sampler="whole_bags",  # bag aggregates need every row of a bag in the batch
            per_sample=False,
            summary="Bag-level squared loss plus rho times the within-bag prediction variance.",
            reference=_AGGREGATE,
        ),
    ]
