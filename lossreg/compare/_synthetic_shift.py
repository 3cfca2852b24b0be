"""Rare positives and a plentiful, shifted version of them: ``synthetic:shifted_positives``.

The setting of two-phase training (bug detectors: a few real bugs among much correct code,
and many synthetic bugs injected into correct code, which resemble real bugs only in part).
One *concept* (``concept_state``) fixes where negatives and positives lie; each set drawn from
it (``random_state``) has its own size, positive rate and shift, so a large balanced set with
``shift > 0`` (the synthetic one, for ``pretrain_data``) and a small rare-positive set with
``shift = 0`` (the real one, the compared ``data``) share their negatives' distribution and
differ in their positives'. Registered in :data:`lossreg.compare._synthetic.GENERATORS`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["shifted_positives"]


def shifted_positives(
    n_samples: int = 2000,
    n_features: int = 10,
    n_informative: int = 5,
    positive_rate: float = 0.1,
    per_class: int = 3,
    class_sep: float = 1.5,
    shift: float = 0.0,
    concept_state: int = 0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Rare positives among negatives, classes made of sub-clusters; ``shift`` moves the positives.

    ``concept_state`` draws ``per_class`` negative and ``per_class`` positive sub-cluster
    centres ``~ N(0, class_sep² I)`` in the first ``n_informative`` features, and one unit
    direction per positive sub-cluster. ``random_state`` draws the rows: exactly
    ``round(positive_rate · n_samples)`` positives (target 1), a sub-cluster per row, unit
    Gaussian noise around its centre, and ``n_features - n_informative`` pure-noise features.
    With ``shift`` each positive centre moves ``shift`` along its direction: the same concept
    under a shift of the positives only (negatives keep their distribution).
    """
    if not 0 < positive_rate < 1:
        raise ValueError(f"positive_rate must be in (0, 1). Got {positive_rate!r}.")
    if not 1 <= n_informative <= n_features or per_class < 1:
        raise ValueError(
            "shifted_positives needs 1 <= n_informative <= n_features and per_class >= 1; got "
            f"n_informative={n_informative!r}, n_features={n_features!r}, "
            f"per_class={per_class!r}."
        )
    n_positive = round(positive_rate * n_samples)
    if not 0 < n_positive < n_samples:
        raise ValueError(
            f"positive_rate={positive_rate!r} of n_samples={n_samples!r} leaves a class empty; "
            "draw more rows or a rate further from 0 and 1."
        )
    concept = np.random.default_rng(concept_state)
    centres = concept.normal(scale=class_sep, size=(2 * per_class, n_informative))
    directions = concept.standard_normal((per_class, n_informative))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    rng = np.random.default_rng(random_state)
    y = rng.permutation(np.r_[np.zeros(n_samples - n_positive), np.ones(n_positive)])
    y = y.astype(np.int64)
    cluster = rng.integers(0, per_class, size=n_samples)
    centre = centres[y * per_class + cluster] + shift * y[:, None] * directions[cluster]
    informative = centre + rng.standard_normal((n_samples, n_informative))
    noise = rng.standard_normal((n_samples, n_features - n_informative))
    frame = pd.DataFrame(
        np.hstack([informative, noise]), columns=[f"x{j}" for j in range(n_features)]
    )
    frame["target"] = y
    return frame
