"""Generated data with an unlabeled pool for ``lossreg compare``: rows whose target is missing."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["shifted_gaussians"]


def shifted_gaussians(
    n_samples: int = 2040,
    n_labeled: int = 40,
    n_features: int = 100,
    distance: float = 1.5,
    shift: float = 0.5,
    random_state: int = 0,
) -> pd.DataFrame:
    """Two Gaussian classes ``x ~ N(±μ, I)`` and an unlabeled pool drawn around shifted means.

    The first ``n_labeled`` rows (classes 0 / 1, balanced in expectation) have means ``±μ``
    with ``|μ| = distance`` along a random direction (Bayes error ``Φ(-distance)``); the other
    ``n_samples - n_labeled`` rows, with a missing target, come from the same mixture with
    means ``±(μ + shift·v)``, ``v`` a unit vector orthogonal to ``μ``: slightly shifted,
    out-of-domain unlabeled data. Compare splits the labelled rows into folds and adds the
    pool to every training fold, so scores are on the unshifted distribution.
    """
    if not 2 <= n_labeled <= n_samples or n_features < 2:
        raise ValueError(
            "shifted_gaussians needs 2 <= n_labeled <= n_samples and n_features >= 2; got "
            f"n_samples={n_samples!r}, n_labeled={n_labeled!r}, n_features={n_features!r}."
        )
    n_unlabeled = n_samples - n_labeled
    rng = np.random.default_rng(random_state)
    direction = rng.standard_normal(n_features)
    direction /= np.linalg.norm(direction)
    other = rng.standard_normal(n_features)
    other -= (other @ direction) * direction  # Gram-Schmidt: orthogonal to the mean
    other /= np.linalg.norm(other)
    mean = distance * direction
    shifted = mean + shift * other

    def draw(n: int, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 2, size=n)
        signs = 2.0 * labels - 1.0
        return signs[:, None] * centre + rng.standard_normal((n, n_features)), labels

    X_lab, y_lab = draw(n_labeled, mean)
    X_unl, _ = draw(n_unlabeled, shifted)
    frame = pd.DataFrame(np.vstack([X_lab, X_unl]), columns=[f"x{j}" for j in range(n_features)])
    # a float column: NaN marks the pool's missing targets
    frame["target"] = np.concatenate([y_lab.astype(np.float64), np.full(n_unlabeled, np.nan)])
    return frame
