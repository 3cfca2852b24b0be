"""Generated data for linear-model experiments: separable classes, Gaussian class-conditionals."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["gaussian_classes", "separable"]


def separable(
    n_samples: int = 1000, n_features: int = 10, margin: float = 0.1, random_state: int = 0
) -> pd.DataFrame:
    """Linearly separable binary labels: ``y = [w·x > 0]``, no row within ``margin`` of the plane.

    ``x ~ N(0, I)`` and ``w`` is a random unit vector; rows closer than ``margin`` to the plane
    ``w·x = 0`` are redrawn, so a linear model can reach zero training error (the setting
    of gradient descent on separable data: the perceptron, large-step logistic regression).
    """
    if n_samples < 2 or n_features < 1 or margin < 0:
        raise ValueError(
            "separable needs n_samples >= 2, n_features >= 1 and margin >= 0. Got "
            f"n_samples={n_samples!r}, n_features={n_features!r}, margin={margin!r}."
        )
    rng = np.random.default_rng(random_state)
    w = rng.normal(size=n_features)
    w /= np.linalg.norm(w)
    rows: list[np.ndarray] = []
    kept = 0
    while kept < n_samples:
        # w·x ~ N(0, 1): a batch of 2n keeps about 2n·P(|z| >= margin) rows
        batch = rng.normal(size=(2 * n_samples, n_features))
        batch = batch[np.abs(batch @ w) >= margin]
        rows.append(batch)
        kept += len(batch)
    X = np.concatenate(rows)[:n_samples]
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    frame["target"] = (X @ w > 0).astype(np.int64)
    return frame


def gaussian_classes(
    n_samples: int = 1000, n_features: int = 50, separation: float = 2.0, random_state: int = 0
) -> pd.DataFrame:
    """Two equally likely classes with ``x | y ~ N(±μ/2, I)``: naive Bayes' own model.

    ``μ`` spreads ``separation`` (the distance between the class means) evenly over the
    features, ``μ_j = separation / sqrt(n_features)``: many weakly informative, conditionally
    independent features, the setting where generative naive Bayes needs fewer rows than
    logistic regression to reach the Bayes error ``Φ(-separation / 2)``.
    """
    if n_samples < 2 or n_features < 1 or separation < 0:
        raise ValueError(
            "gaussian_classes needs n_samples >= 2, n_features >= 1 and separation >= 0. Got "
            f"n_samples={n_samples!r}, n_features={n_features!r}, separation={separation!r}."
        )
    rng = np.random.default_rng(random_state)
    y = rng.integers(0, 2, size=n_samples)
    mean = np.full(n_features, separation / np.sqrt(n_features))
    X = rng.normal(size=(n_samples, n_features)) + np.outer(y - 0.5, mean)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    frame["target"] = y.astype(np.int64)
    return frame
