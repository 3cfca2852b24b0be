"""Generated data for semi-supervised comparisons: an unlabeled pool, a shifted target domain."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["covariate_shift", "shifted_gaussians"]


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


def covariate_shift(
    n_samples: int = 2000,
    n_features: int = 10,
    n_classes: int = 3,
    target_share: float = 0.5,
    scale: float = 1.5,
    offset: float = 1.0,
    noise: float = 0.5,
    random_state: int = 0,
    weights: list[float] | None = None,
) -> pd.DataFrame:
    """Gaussian class clusters (``make_classification``) with a covariate-shifted target domain.

    A share ``target_share`` of the rows, drawn at random, is the target domain (``domain``
    column ``"target"``, the others ``"source"``): their features become
    ``scale · x + offset + noise · ε`` (the same ``P(y | x)`` before the shift, a stretched,
    moved and noisier input after it). Use it with ``target_domain="domain=target"``.
    ``weights``: the class proportions (``make_classification``'s; balanced when None),
    the same in both domains, so the source frequencies are the target's known prior.
    """
    from sklearn.datasets import make_classification

    if not 0 < target_share < 1:
        raise ValueError(f"target_share must be in (0, 1). Got {target_share!r}.")
    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_features,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        flip_y=0.0,
        weights=None if weights is None else list(weights),
        random_state=random_state,
    )
    rng = np.random.default_rng(random_state)
    target = rng.random(n_samples) < target_share
    shifted = scale * X[target] + offset + noise * rng.standard_normal((target.sum(), n_features))
    X[target] = shifted
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    frame["target"] = y.astype(np.int64)
    frame["domain"] = np.where(target, "target", "source")
    return frame
