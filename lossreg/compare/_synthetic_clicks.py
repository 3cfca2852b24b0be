"""Click-through data: ``synthetic:clicks``, rare clicks from many weak categorical features.

The setting of click-through-rate (CTR) prediction: each row is an impression described by a
few categorical fields (site, ad, device, hour ...; one-hot encoded, with a few popular levels
and a long tail) and some dense features; the target is a click, rare (a few per cent) and
noisy (drawn from the click probability, so even a perfect model is far from certain). No
single feature is strong: each level moves the click log-odds a little, and crosses of some
field pairs (an ad on a site) add effects no additive model sees. Registered in
:data:`lossreg.compare._synthetic.GENERATORS`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lossreg.compare._synthetic_churn import intercept_for_rate

__all__ = ["clicks"]


def clicks(
    n_samples: int = 3000,
    n_fields: int = 8,
    n_levels: int = 10,
    n_dense: int = 10,
    n_crosses: int = 4,
    positive_rate: float = 0.05,
    effect_scale: float = 0.4,
    cross_scale: float = 0.8,
    concept_state: int = 0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Rare, noisy clicks from one-hot categorical fields, their crosses and dense features.

    ``concept_state`` draws the click model: per field, level frequencies ``~ Dirichlet(0.7)``
    (popular levels and a tail) and level effects ``~ N(0, effect_scale²)``; ``n_crosses``
    distinct field pairs, each with an effect ``~ N(0, cross_scale²)`` per level pair; dense
    weights ``~ N(0, (effect_scale / 2)²)``. ``random_state`` draws the rows: levels from
    the frequencies, dense features ``~ N(0, 1)``, the intercept set so that the mean click
    probability is ``positive_rate``, then ``target ~ Bernoulli(sigmoid(log-odds))``.
    Columns: ``n_fields · n_levels`` one-hot columns (field by field), then ``n_dense`` dense
    ones, named ``x0 ..``.
    """
    problems = []
    if not 0 < positive_rate < 0.5:
        problems.append(
            f"positive_rate must be in (0, 0.5) (clicks are rare). Got {positive_rate!r}."
        )
    if n_fields < 2 or n_levels < 2 or n_dense < 0:
        problems.append(
            f"clicks needs n_fields >= 2, n_levels >= 2 and n_dense >= 0; got "
            f"n_fields={n_fields!r}, n_levels={n_levels!r}, n_dense={n_dense!r}."
        )
    pairs = [(a, b) for a in range(n_fields) for b in range(a + 1, n_fields)]
    if not 0 <= n_crosses <= len(pairs):
        problems.append(
            f"n_crosses must be in [0, {len(pairs)}] (the field pairs of {n_fields} fields). "
            f"Got {n_crosses!r}."
        )
    if problems:
        raise ValueError(" ".join(problems))
    concept = np.random.default_rng(concept_state)
    freqs = concept.dirichlet(np.full(n_levels, 0.7), size=n_fields)
    effects = concept.normal(scale=effect_scale, size=(n_fields, n_levels))
    chosen = concept.choice(len(pairs), size=n_crosses, replace=False)
    crosses = [pairs[i] for i in chosen]
    cross_effects = concept.normal(scale=cross_scale, size=(n_crosses, n_levels, n_levels))
    dense_weights = concept.normal(scale=effect_scale / 2, size=n_dense)

    rng = np.random.default_rng(random_state)
    levels = np.stack([rng.choice(n_levels, size=n_samples, p=f) for f in freqs], axis=1)
    dense = rng.standard_normal((n_samples, n_dense))
    logit = effects[np.arange(n_fields), levels].sum(axis=1) + dense @ dense_weights
    for k, (a, b) in enumerate(crosses):
        logit += cross_effects[k, levels[:, a], levels[:, b]]
    logit += intercept_for_rate(logit, positive_rate)
    y = (rng.random(n_samples) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    one_hot = np.zeros((n_samples, n_fields * n_levels))
    one_hot[np.arange(n_samples)[:, None], np.arange(n_fields) * n_levels + levels] = 1.0
    X = np.hstack([one_hot, dense])
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    frame["target"] = y
    return frame
