"""Generated ranking and survival data for ``lossreg compare``: ``synthetic:ranking(...)``,
``synthetic:survival(...)``.

Both share the other generators' contract (features ``x0 .. x{d-1}``, a ``target`` column,
everything fixed by the parameters) and add the column their task needs: ``group`` (query
ids) for ranking, ``event`` (1 observed, 0 censored) for survival. ``load_data`` picks both
up by name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["ranking", "survival"]


def _latent(X: np.ndarray) -> np.ndarray:
    # A smooth nonlinear score: a linear model cannot rank it perfectly, a small MLP can.
    return np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.25 * X[:, 2] * X[:, 3]


def _features(X: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])


def ranking(
    n_samples: int = 2000,
    query_size: int = 10,
    n_features: int = 10,
    n_levels: int = 5,
    noise: float = 0.5,
    random_state: int = 0,
) -> pd.DataFrame:
    """Queries (``group``) of rows with graded relevance from a noisy latent score.

    ``query_size`` rows per query; relevance ``0 .. n_levels-1`` cuts ``f(x) + noise * ε`` at
    global quantiles, and each query has its own feature offset (queries differ, as in web
    search), so a query may lack some levels. With ``n_levels=0`` the target is instead the
    soft preference ``σ(f(x_a) - f(x_b))`` of each row over its partner in queries of two
    rows (``query_size`` must be 2): pairwise comparisons, whose training targets the
    ``vote_noise`` scenario replaces by empirical vote shares.
    """
    if query_size < 2:
        raise ValueError(f"query_size must be >= 2 rows per query. Got {query_size}.")
    if n_levels == 1 or n_levels < 0:
        raise ValueError(
            f"n_levels must be >= 2 relevance levels, or 0 for soft pairwise preferences. "
            f"Got {n_levels}."
        )
    if n_levels == 0 and query_size != 2:
        raise ValueError(
            f"n_levels=0 (soft pairwise preferences) needs query_size=2. Got {query_size}."
        )
    rng = np.random.default_rng(random_state)
    query = np.arange(n_samples) // query_size  # the last query may be shorter
    offset = rng.normal(0.0, 0.5, size=(int(query[-1]) + 1, n_features))
    X = rng.standard_normal((n_samples, n_features)) + offset[query]
    score = _latent(X)
    if n_levels == 0:
        # the other row of its pair (a lone last row is its own partner: preference 1/2)
        partner = np.arange(n_samples) ^ 1
        partner = np.where(partner < n_samples, partner, np.arange(n_samples))
        target = 1.0 / (1.0 + np.exp(-(score - score[partner])))
    else:
        noisy = score + noise * rng.standard_normal(n_samples)
        cuts = np.quantile(noisy, np.linspace(0, 1, n_levels + 1)[1:-1])
        target = np.digitize(noisy, cuts).astype(np.float64)
    frame = _features(X)
    frame["target"] = target
    frame["group"] = query
    return frame


def _censoring_scale(latent_times: np.ndarray, draws: np.ndarray, rate: float) -> float:
    """Scale ``s`` of censoring times ``s * draws`` that censors ``rate`` of the rows."""
    if rate <= 0:
        return np.inf
    low, high = 1e-6, 1e6
    for _ in range(100):  # bisection in log space: the censored share falls as s grows
        mid = np.sqrt(low * high)
        if np.mean(mid * draws < latent_times) > rate:
            low = mid
        else:
            high = mid
    return float(np.sqrt(low * high))


def survival(
    n_samples: int = 2000,
    n_features: int = 5,
    shape: float = 1.5,
    hazards: str = "proportional",
    censoring: float = 0.3,
    random_state: int = 0,
) -> pd.DataFrame:
    """Right-censored Weibull times (``target``) with an ``event`` column (1 observed).

    ``hazards="proportional"``: hazard ``h(t|x) = k t^(k-1) exp(f(x))`` with shape
    ``k = shape``, a Weibull proportional-hazards model. ``"nonproportional"``: the shape
    varies with the row, ``k(x) = shape * exp(0.6 x1)``, so hazard ratios change over time
    and survival curves cross (the setting the APGW family is made for).
    Censoring times are exponential, scaled so that ``censoring`` of the rows are censored.
    """
    if hazards not in ("proportional", "nonproportional"):
        raise ValueError(f"hazards must be 'proportional' or 'nonproportional'. Got {hazards!r}.")
    if not 0 <= censoring < 1:
        raise ValueError(f"censoring must be a share in [0, 1). Got {censoring!r}.")
    if shape <= 0:
        raise ValueError(f"shape must be > 0. Got {shape!r}.")
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((n_samples, n_features))
    risk = _latent(X)
    k = np.full(n_samples, float(shape))
    if hazards == "nonproportional":
        k = shape * np.exp(0.6 * X[:, 1])
    # S(t) = exp(-t^k e^risk): invert a uniform draw
    latent = (-np.log(rng.uniform(size=n_samples)) * np.exp(-risk)) ** (1.0 / k)
    draws = rng.exponential(size=n_samples)
    censor = _censoring_scale(latent, draws, censoring) * draws
    frame = _features(X)
    frame["target"] = np.minimum(latent, censor)
    frame["event"] = (latent <= censor).astype(np.int64)
    return frame
