"""The ``holdout_classes:K`` scenario: whole classes left out of a training fold, as novelties.

Open-set and novelty-detection claims need test rows of classes the model never saw;
cross-validating rows cannot give them, since every class is in every training fold. This
scenario drops every training row of ``K`` classes drawn per fold (from the fold's noise
seed, so each loss of a comparison loses the same classes), and leaves the test fold whole:
its rows of those classes are the novelties that ``novelty_auroc`` scores.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_holdout", "draw_classes", "holdout_rows", "plain_names"]


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
    held = draw_classes(y, n_held, rng, "holdout_classes", ("for training", "hold out at most {k}"))
    keep = np.flatnonzero(~np.isin(y, held))
    return keep, plain_names(held)


def draw_classes(
    y: np.ndarray, n: int, rng: np.random.Generator, scenario: str, wording: tuple[str, str]
) -> np.ndarray:
    """``n`` of ``y``'s classes drawn by ``rng`` (sorted), leaving at least two others.

    ``wording``: what the remaining classes are for, and the fix (``{k}`` stands for the most
    classes it may take), in the message of a scenario (``scenario:n``) that would leave
    fewer than two.
    """
    classes = np.unique(y)
    if n > len(classes) - 2:
        left, fix = wording
        raise ValueError(
            f"{scenario}:{n} would leave fewer than 2 of the {len(classes)} classes {left}; "
            f"{fix.format(k=max(len(classes) - 2, 0))}."
        )
    return np.sort(rng.choice(classes, size=n, replace=False))


def plain_names(classes: np.ndarray) -> list:
    """Class names as Python values (numpy scalars become int, float or str) for a record."""
    return [c.item() if hasattr(c, "item") else c for c in classes]
