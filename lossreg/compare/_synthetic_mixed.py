"""Generated mixed targets: a numeric column and a class column of the same features."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["mixed_targets"]


def mixed_targets(
    n_samples: int = 2000,
    n_features: int = 8,
    n_factors: int = 3,
    n_classes: int = 3,
    value_noise: float = 0.5,
    class_noise: float = 1.0,
    value_scale: float = 1.0,
    random_state: int = 0,
) -> pd.DataFrame:
    """A numeric ``target_0`` and a class ``target_1`` driven by shared factors of x.

    ``n_factors`` smooth factors ``f = tanh(2 x W)`` of ``x ~ N(0, I)`` feed both targets:
    ``target_0 = value_scale (f a + 0.5 x0 x1 + value_noise ε)`` and ``target_1 =
    argmax(f B + class_noise g)`` with standard Gumbel noise g (a softmax draw at temperature
    ``class_noise``): learning the factors helps both heads, so the two tasks share a
    representation, as in multi-task learning. ``value_scale`` sets the value's units.
    Compare poses it as ``task="mixed"``.
    """
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2. Got {n_classes!r}.")
    if n_features < 2 or n_factors < 1:
        raise ValueError(
            f"mixed_targets needs n_features >= 2 and n_factors >= 1. Got n_features="
            f"{n_features!r}, n_factors={n_factors!r}."
        )
    rng = np.random.default_rng(random_state)
    # the model first, the rows after: more rows draw more of the same relation
    mixing = rng.standard_normal((n_features, n_factors)) / np.sqrt(n_features)
    value_weights = rng.uniform(0.5, 1.5, n_factors) * rng.choice([-1.0, 1.0], n_factors)
    class_weights = 2.0 * rng.standard_normal((n_factors, n_classes))
    X = rng.standard_normal((n_samples, n_features))
    factors = np.tanh(2.0 * X @ mixing)
    value = factors @ value_weights + 0.5 * X[:, 0] * X[:, 1]
    value = value_scale * (value + value_noise * rng.standard_normal(n_samples))
    gumbel = -np.log(-np.log(rng.uniform(1e-12, 1.0, (n_samples, n_classes))))
    label = np.argmax(factors @ class_weights + class_noise * gumbel, axis=1)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    # target_0, target_1: the names every generator of several target columns uses
    frame["target_0"] = value
    frame["target_1"] = label.astype(np.int64)
    frame.attrs["task"] = "mixed"
    return frame
