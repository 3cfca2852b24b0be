"""Generated data with domains and environments: ``synthetic:domains(...)``,
``synthetic:environments(...)``.

Each frame has features ``x0 .. x{d-1}``, a ``target`` and a ``group`` column naming the row's
domain or environment, which ``lossreg compare`` takes as its group column. Use them with
``split="group"`` (test on domains never trained on) or ``test_groups=[...]`` (a fixed shifted
test environment); see :mod:`lossreg.compare._splits`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

__all__ = ["DOMAIN_GENERATORS", "domains", "environments"]


def environments(
    n_samples: int = 3000,
    n_features: int = 5,
    agreements: Sequence[float] = (0.8, 0.9),
    test_agreement: float = 0.1,
    label_noise: float = 0.25,
    random_state: int = 0,
) -> pd.DataFrame:
    """Training environments whose spurious feature agrees with the label at different
    rates, and a last environment where the agreement is reversed (IRM's colored MNIST).

    The rows are shared equally by ``len(agreements) + 1`` environments, ids ``0, 1, ...``
    in ``group``; the last id is the test environment (``test_agreement``). A clean label is
    the sign of a linear score of ``x1 .. x{d-1}``; the label ``target`` is that flipped in a
    ``label_noise`` share of the rows, so the invariant features predict it with accuracy
    ``1 - label_noise`` at best. The binary ``x0`` equals the label in an ``agreements[e]``
    share of environment ``e``'s rows and its opposite otherwise: in training it predicts
    the label better than the invariant features do (0.85 against 0.75 by default), at test
    it is reversed, so a model that relies on it falls below chance there.
    """
    agreements = [float(a) for a in np.atleast_1d(np.asarray(agreements, dtype=np.float64))]
    rates = [*agreements, float(test_agreement)]
    problems = [r for r in [*rates, float(label_noise)] if not 0.0 <= r <= 1.0]
    if problems or n_features < 2:
        raise ValueError(
            "environments() needs agreements, test_agreement and label_noise in [0, 1] and "
            f"n_features >= 2. Got agreements={agreements!r}, test_agreement="
            f"{test_agreement!r}, label_noise={label_noise!r}, n_features={n_features!r}."
        )
    rng = np.random.default_rng(random_state)
    env = np.arange(n_samples) % len(rates)
    core = rng.standard_normal((n_samples, n_features - 1))
    clean = (core @ np.linspace(1.0, 0.2, n_features - 1) > 0).astype(np.int64)
    y = np.where(rng.random(n_samples) < label_noise, 1 - clean, clean)
    agree = rng.random(n_samples) < np.asarray(rates)[env]
    spurious = np.where(agree, y, 1 - y).astype(np.float64)
    return _frame(np.column_stack([spurious, core]), y, env)


def domains(
    n_samples: int = 3000,
    n_domains: int = 4,
    n_features: int = 6,
    n_classes: int = 3,
    shift: float = 1.0,
    mechanism: float = 0.0,
    n_style: int = 2,
    style: float = 1.0,
    noise: float = 0.5,
    random_state: int = 0,
) -> pd.DataFrame:
    """Domains with shifted feature distributions, optionally shifted mechanisms, and
    domain-specific "style" features (a shortcut that does not transfer).

    Domain ``d`` (id in ``group``; rows shared equally) draws its ``n_features`` core
    features from ``N(mu_d, I)`` with ``mu_d ~ N(0, shift^2 I)`` (covariate shift). The label
    is the argmax of ``x W_d + noise * e`` over ``n_classes``, with ``W_d = W + mechanism *
    Z_d`` (``mechanism=0``: one labelling rule for all domains). The ``n_style`` last features
    are ``S_d[y] + N(0, 1)`` with a class-to-mean table ``S_d ~ N(0, style^2)`` drawn per
    domain: inside a domain they predict the label, in a new domain their meaning is new.
    """
    if n_domains < 2 or n_classes < 2 or n_features < 1 or n_style < 0:
        raise ValueError(
            "domains() needs n_domains >= 2, n_classes >= 2, n_features >= 1 and "
            f"n_style >= 0. Got n_domains={n_domains!r}, n_classes={n_classes!r}, "
            f"n_features={n_features!r}, n_style={n_style!r}."
        )
    rng = np.random.default_rng(random_state)
    weights = rng.standard_normal((n_features, n_classes))
    domain = np.arange(n_samples) % n_domains
    X = np.empty((n_samples, n_features + n_style))
    y = np.empty(n_samples, dtype=np.int64)
    for d in range(n_domains):
        rows = np.flatnonzero(domain == d)
        centre = shift * rng.standard_normal(n_features)
        rule = weights + mechanism * rng.standard_normal(weights.shape)
        table = style * rng.standard_normal((n_classes, n_style))
        core = centre + rng.standard_normal((len(rows), n_features))
        scores = core @ rule + noise * rng.standard_normal((len(rows), n_classes))
        labels = scores.argmax(axis=1)
        X[rows, :n_features] = core
        X[rows, n_features:] = table[labels] + rng.standard_normal((len(rows), n_style))
        y[rows] = labels
    return _frame(X, y, domain)


def _frame(X: np.ndarray, y: np.ndarray, group: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    frame["target"] = y
    frame["group"] = group.astype(np.int64)
    return frame


#: registered into :data:`lossreg.compare._synthetic.GENERATORS`
DOMAIN_GENERATORS: dict[str, Callable[..., pd.DataFrame]] = {
    "domains": domains,
    "environments": environments,
}
