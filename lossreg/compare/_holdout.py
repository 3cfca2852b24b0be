"""The ``holdout_classes:K`` scenario: whole classes left out of a training fold, as novelties.

Open-set and novelty-detection claims need test rows of classes the model never saw;
cross-validating rows cannot give them, since every class is in every training fold. This
scenario drops every training row of ``K`` classes drawn per fold (from the fold's noise
seed, so each loss of a comparison loses the same classes), and leaves the test fold whole:
its rows of those classes are the novelties that ``novelty_auroc`` scores.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_holdout", "holdout_rows"]


def check_holdout(label: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a whole number of classes >= 1."""
    if value < 1 or value != int(value):
        raise ValueError(
            f"Scenario {label!r}: the number of held-out classes must be a whole number >= 1 "
            f"(e.g. holdout_classes:2). Got {value:g}."
        )


def holdout_rows(y: np.ndarray, n_held: int, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """Indices of the rows kept for training, and the held-out classes (sorted).

    At least two classes must stay, or nothing is left to learn from.
    """
    classes = np.unique(y)
    if n_held > len(classes) - 2:
        raise ValueError(
            f"holdout_classes:{n_held} would leave fewer than 2 of the {len(classes)} classes "
            f"for training; hold out at most {len(classes) - 2}."
        )
    held = np.sort(rng.choice(classes, size=n_held, replace=False))
    keep = np.flatnonzero(~np.isin(y, held))
    return keep, [c.item() if hasattr(c, "item") else c for c in held]
