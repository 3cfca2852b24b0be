"""A warning for fits that the default stopping rule ended before they learned anything.

The estimators stop, as scikit-learn's MLP does, once the monitored loss has not fallen by more
than the absolute ``tol`` for ``n_iter_no_change`` epochs. ``tol`` is absolute because losses
are compared with themselves, but the registry's losses live on very different scales (a
cross-entropy starts near ``log C``, a regression loss on small targets near ``1e-6``): on a
small-scaled loss the rule ends the fit after ``n_iter_no_change + 1`` epochs while the model is
still improving, and nothing in the result says so. This module says so.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from lossreg.errors import StalledTrainingWarning

__all__ = ["warn_if_stalled"]


def warn_if_stalled(
    history: Any, *, loss_name: str, monitor: str, max_iter: int, patience: int, tol: float
) -> None:
    """Warn when early stopping ended the fit at the first epoch it could.

    Parameters
    ----------
    history : skorch.History
        The net's history after ``fit``; one entry per epoch.
    loss_name : str
        The loss, named in the message.
    monitor : str
        The history key the stopping rule watched (``"train_loss"`` or ``"valid_loss"``).
    max_iter, patience : int
        The estimator's ``max_iter`` and ``n_iter_no_change``.
    tol : float
        The estimator's ``tol`` (absolute).

    Notes
    -----
    The rule keeps the first epoch's value as the best one; ``patience`` further epochs that
    each miss it by ``tol`` stop the fit. Stopping after exactly ``patience + 1`` epochs, before
    ``max_iter``, therefore means no epoch after the first improved by more than ``tol``:
    either the loss is flat (a learning rate that is too low, a broken model), its values are
    too small for ``tol``, or it rises by design (a loss that shifts its own weights toward a
    larger term). Each deserves a word; a later stop is ordinary convergence.
    """
    n_epochs = len(history)
    if n_epochs >= max_iter or n_epochs != patience + 1:
        return
    values = np.asarray(history[:, monitor], dtype=float)
    first, best = values[0], np.nanmin(values)
    warnings.warn(
        StalledTrainingWarning(
            f"{loss_name!r}: training stopped after {n_epochs} of max_iter={max_iter} epochs "
            f"because {monitor} never fell by more than tol={tol:g} in n_iter_no_change="
            f"{patience} epochs (first epoch {first:.3g}, best {best:.3g}). A loss whose "
            f"values are small stops this way while still improving: pass a smaller tol "
            f"(tol=0 counts any fall). A loss that rises while the model improves (one that "
            f"learns its own weighting) stops this way whatever tol is: pass "
            f"n_iter_no_change={max_iter} or more to train all max_iter epochs. A flat loss may "
            f"instead need a larger lr."
        ),
        stacklevel=3,
    )
