"""The built-in loss families, each an ordinary plugin module that registers through the hook."""

__all__ = ["BUILTIN_PLUGINS"]

#: Module paths of the built-in plugins, loaded through the same hook path as third parties.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "lossreg.plugins.calibration",
    "lossreg.plugins.classification",
    "lossreg.plugins.composite",
    "lossreg.plugins.distillation",
    "lossreg.plugins.imbalance",
    "lossreg.plugins.multilabel",
    "lossreg.plugins.regression",
    "lossreg.plugins.robust",
)
