"""The built-in loss families, each an ordinary plugin module that registers through the hook."""

__all__ = ["BUILTIN_PLUGINS"]

#: Module paths of the built-in plugins, loaded through the same hook path as third parties.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "lossreg.plugins.bags",
    "lossreg.plugins.calibration",
    "lossreg.plugins.classification",
    "lossreg.plugins.composite",
    "lossreg.plugins.distillation",
    "lossreg.plugins.imbalance",
    "lossreg.plugins.metric",
    "lossreg.plugins.multilabel",
    "lossreg.plugins.ranking_ordinal",
    "lossreg.plugins.regression",
    "lossreg.plugins.regression_binned",
    "lossreg.plugins.regression_misc",
    "lossreg.plugins.robust",
    "lossreg.plugins.robust_optimization",
    "lossreg.plugins.survival",
    "lossreg.plugins.uncertainty",
    "lossreg.plugins.unlabeled",
)
