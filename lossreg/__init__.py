"""lossreg: a registry of PyTorch losses and scikit-learn estimators that take a loss by name.

Importing this package loads no plugin and no heavy dependency: every public name is imported
on first use (PEP 562), and the registry loads plugins on its first lookup.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lossreg._version import __version__

if TYPE_CHECKING:
    from lossreg.errors import (
        DuplicateLossError,
        InvalidLossParameterError,
        InvalidLossSpecError,
        InvalidReductionError,
        LossPluginWarning,
        LossregError,
        MissingFitExtraError,
        PluginLoadError,
        TrainingDivergedError,
        UnknownLossError,
        UnsupportedTaskError,
    )
    from lossreg.estimators import (
        DistilledClassifier,
        LossCalibratedClassifier,
        LossClassifier,
        LossEmbedder,
        LossMixedEstimator,
        LossRanker,
        LossRecommender,
        LossRegressor,
        LossSurvivalRegressor,
        QuantileAggregator,
        loss_grid,
        teacher_logits,
    )
    from lossreg.hookspecs import hookimpl
    from lossreg.links import Link
    from lossreg.module import LossModule, as_class_target, as_float_target
    from lossreg.params import Param
    from lossreg.reduction import check_batch_reduction, reduce, row_weights
    from lossreg.registry import (
        PluginInfo,
        Registry,
        create_loss,
        default_registry,
        get_spec,
        list_losses,
        list_plugins,
    )
    from lossreg.spec import LossSpec

__all__ = [
    "DistilledClassifier",
    "DuplicateLossError",
    "InvalidLossParameterError",
    "InvalidLossSpecError",
    "InvalidReductionError",
    "Link",
    "LossCalibratedClassifier",
    "LossClassifier",
    "LossEmbedder",
    "LossMixedEstimator",
    "LossModule",
    "LossPluginWarning",
    "LossRanker",
    "LossRecommender",
    "LossRegressor",
    "LossSpec",
    "LossSurvivalRegressor",
    "LossregError",
    "MissingFitExtraError",
    "Param",
    "PluginInfo",
    "PluginLoadError",
    "QuantileAggregator",
    "Registry",
    "TrainingDivergedError",
    "UnknownLossError",
    "UnsupportedTaskError",
    "__version__",
    "as_class_target",
    "as_float_target",
    "check_batch_reduction",
    "create_loss",
    "default_registry",
    "get_spec",
    "hookimpl",
    "list_losses",
    "list_plugins",
    "loss_grid",
    "reduce",
    "row_weights",
    "teacher_logits",
]

_ERRORS = [
    "DuplicateLossError",
    "InvalidLossParameterError",
    "InvalidLossSpecError",
    "InvalidReductionError",
    "LossPluginWarning",
    "LossregError",
    "MissingFitExtraError",
    "PluginLoadError",
    "TrainingDivergedError",
    "UnknownLossError",
    "UnsupportedTaskError",
]

#: public name -> module that defines it
_LAZY: dict[str, str] = {
    **dict.fromkeys(_ERRORS, "lossreg.errors"),
    "hookimpl": "lossreg.hookspecs",
    "LossClassifier": "lossreg.estimators",
    "LossCalibratedClassifier": "lossreg.estimators",
    "DistilledClassifier": "lossreg.estimators",
    "teacher_logits": "lossreg.estimators",
    "LossEmbedder": "lossreg.estimators",
    "LossRegressor": "lossreg.estimators",
    "LossRanker": "lossreg.estimators",
    "LossRecommender": "lossreg.estimators",
    "LossMixedEstimator": "lossreg.estimators",
    "LossSurvivalRegressor": "lossreg.estimators",
    "QuantileAggregator": "lossreg.estimators",
    "loss_grid": "lossreg.estimators",
    "Link": "lossreg.links",
    "LossModule": "lossreg.module",
    "as_class_target": "lossreg.module",
    "as_float_target": "lossreg.module",
    "Param": "lossreg.params",
    "reduce": "lossreg.reduction",
    "check_batch_reduction": "lossreg.reduction",
    "row_weights": "lossreg.reduction",
    "LossSpec": "lossreg.spec",
    **dict.fromkeys(
        [
            "PluginInfo",
            "Registry",
            "create_loss",
            "default_registry",
            "get_spec",
            "list_losses",
            "list_plugins",
        ],
        "lossreg.registry",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lossreg' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
