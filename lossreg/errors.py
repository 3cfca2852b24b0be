"""The lossreg exception and warning hierarchy.

Every exception inherits from :class:`LossregError` and from the built-in exception a caller
would already catch (``KeyError`` for an unknown name, ``ValueError`` for a bad value ...), so
code written against plain Python or scikit-learn keeps working.
"""

from __future__ import annotations

from sklearn.exceptions import ConvergenceWarning

__all__ = [
    "DuplicateLossError",
    "InvalidLossParameterError",
    "InvalidLossSpecError",
    "InvalidReductionError",
    "LossPluginWarning",
    "LossregError",
    "MissingFitExtraError",
    "PluginLoadError",
    "StalledTrainingWarning",
    "TrainingDivergedError",
    "UnknownLossError",
    "UnsupportedTaskError",
]


class LossregError(Exception):
    """Base class of every error lossreg raises on purpose."""


class UnknownLossError(LossregError, KeyError):
    """A loss name or alias that no loaded plugin registered."""

    def __str__(self) -> str:
        # KeyError.__str__ wraps the message in quotes; show it as written.
        return str(self.args[0]) if self.args else ""


class InvalidLossParameterError(LossregError, ValueError):
    """A hyperparameter that a loss does not have, or a value outside its valid range."""


class InvalidReductionError(LossregError, ValueError):
    """A reduction other than ``"mean"``, ``"sum"`` or ``"none"``."""


class InvalidLossSpecError(LossregError, ValueError):
    """A :class:`~lossreg.LossSpec` that breaks a registration rule."""


class DuplicateLossError(LossregError, ValueError):
    """Two plugins claim the same loss name or alias."""


class PluginLoadError(LossregError, ImportError):
    """A plugin failed to import or register while ``LOSSREG_STRICT_PLUGINS=1`` was set."""


class UnsupportedTaskError(LossregError, ValueError):
    """A loss used on a target type that it does not support."""


class MissingFitExtraError(LossregError, ValueError):
    """A loss needs a per-row array at fit time (``group``, ``bag`` ...) that was not passed."""


class TrainingDivergedError(LossregError, FloatingPointError):
    """The training loss became NaN or infinite."""


class LossPluginWarning(UserWarning):
    """A plugin was skipped because it failed to import or to register its losses."""


class StalledTrainingWarning(ConvergenceWarning):
    """Training stopped as early as it could: the monitored loss never improved by ``tol``.

    A :class:`sklearn.exceptions.ConvergenceWarning`, so the filters scikit-learn users already
    write for ``MLPClassifier`` also silence it.
    """
