"""Built-in plugin: distributionally robust and invariance objectives wrapping a base loss."""

from __future__ import annotations

from lossreg import LossSpec, Param, hookimpl

from ._private import ALL_TASKS, base_link, base_output_size, base_param
from .group_dro import GroupDRO
from .metrics import worst_group_accuracy

__all__ = ["NOT_REGISTERED", "GroupDRO", "register_losses", "worst_group_accuracy"]

#: Catalogue entries that cannot be a criterion for an MLP on tabular data, with the reason.
NOT_REGISTERED: dict[str, str] = {}

_GROUP_DRO_PAPER = (
    'Sagawa et al., "Distributionally Robust Neural Networks for Group Shifts: On the Importance '
    'of Regularization for Worst-Case Generalization", ICLR 2020, arXiv:1911.08731'
)


def _wrapper(**fields) -> LossSpec:
    """A spec of a batch-level wrapper: inherits the base's link and output size."""
    fields.setdefault("tasks", ALL_TASKS)
    return LossSpec(link=base_link, output_size=base_output_size, per_sample=False, **fields)


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
                    grid=(0.0, 1.0, 3.0),
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
    ]
