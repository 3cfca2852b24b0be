"""``synthetic:scenes(...)``: groups ("scenes") dominated by a background class whose share varies.

Registered in :data:`lossreg.compare._synthetic.GENERATORS`. It stands in for scene-graph
edge classification: each scene holds candidate relations of which most are "none"
(class 0), and how many are "none" differs from scene to scene.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["scenes"]


def scenes(
    n_samples: int = 2500,
    rows_per_group: int = 25,
    n_classes: int = 6,
    n_features: int = 10,
    background_min: float = 0.5,
    background_max: float = 0.97,
    tail: float = 10.0,
    class_sep: float = 1.5,
    random_state: int = 0,
) -> pd.DataFrame:
    """Scenes of ``rows_per_group`` rows; class 0 is the background, 1..``n_classes`` foreground.

    ``n_samples`` rows make ``ceil(n_samples / rows_per_group)`` scenes (the last one is cut
    short when ``rows_per_group`` does not divide ``n_samples``).
    Each scene draws its background share uniformly in ``[background_min, background_max]``;
    its other rows take a foreground class with frequencies falling geometrically from the
    most common to the rarest foreground class by the factor ``tail`` (few-shot classes).
    Every class is a Gaussian blob with unit noise around a centre drawn at distance
    ``class_sep`` from the origin; the background's centre is the origin and its spread is
    doubled, so it overlaps every foreground class. ``group`` (the scene id) is not a feature.
    """
    if not 0.0 <= background_min <= background_max < 1.0:
        raise ValueError(
            "Need 0 <= background_min <= background_max < 1. Got "
            f"background_min={background_min!r}, background_max={background_max!r}."
        )
    if n_classes < 1 or rows_per_group < 2 or n_samples < 2 * rows_per_group:
        raise ValueError(
            f"Need n_classes >= 1, rows_per_group >= 2 and n_samples >= 2 * rows_per_group "
            f"(two scenes). Got n_classes={n_classes!r}, rows_per_group={rows_per_group!r}, "
            f"n_samples={n_samples!r}."
        )
    n_groups = -(-n_samples // rows_per_group)
    if tail < 1.0:
        raise ValueError(f"tail must be >= 1 (1: equal foreground classes). Got {tail!r}.")
    rng = np.random.default_rng(random_state)
    directions = rng.standard_normal((n_classes, n_features))
    centres = class_sep * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    freq = tail ** (-np.arange(n_classes) / max(n_classes - 1, 1))
    freq /= freq.sum()
    shares = rng.uniform(background_min, background_max, size=n_groups)
    labels = []
    for share in shares:
        background = rng.random(rows_per_group) < share
        foreground = 1 + rng.choice(n_classes, size=rows_per_group, p=freq)
        labels.append(np.where(background, 0, foreground))
    y = np.concatenate(labels)
    noise = rng.standard_normal((y.size, n_features))
    X = np.where(y[:, None] == 0, 2.0 * noise, noise)
    X[y > 0] += centres[y[y > 0] - 1]
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    frame["target"] = y
    frame["group"] = np.repeat(np.arange(n_groups), rows_per_group)
    return frame.iloc[:n_samples]
