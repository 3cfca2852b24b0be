"""Generated multi-output regression data: ``target_0 .. target_{K-1}`` numeric target columns.

Each generator returns features ``x0 .. x{d-1}`` and K target columns, fully determined by
its parameters. They give the settings of multi-output losses: forecasting horizons whose
noise grows with the horizon, correlated outputs of different difficulty (and scale), count
histograms, and coordinate-to-colour fields (neural-field style).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = [
    "MULTIOUTPUT_GENERATORS",
    "colour_field",
    "correlated_outputs",
    "count_histogram",
    "multi_horizon",
]


def _frame(X: np.ndarray, Y: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    for k in range(Y.shape[1]):
        frame[f"target_{k}"] = Y[:, k]
    return frame


def multi_horizon(
    n_samples: int = 2000,
    n_features: int = 6,
    n_horizons: int = 6,
    noise: float = 0.2,
    noise_growth: float = 0.4,
    random_state: int = 0,
) -> pd.DataFrame:
    """Forecast horizons ``h = 0 .. H-1`` of one signal, noise growing with the horizon:
    ``y_h = f(x) + 0.3 h x4 + (noise + noise_growth h) ε_h``."""
    rng = np.random.default_rng(random_state)
    X = rng.uniform(-2.0, 2.0, size=(n_samples, max(n_features, 5)))
    base = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.25 * X[:, 2] * X[:, 3]
    horizons = np.arange(n_horizons)
    # the drift term makes the horizons differ, so a model has something per horizon to learn
    mean = base[:, None] + 0.3 * horizons[None, :] * X[:, 4:5]
    sigma = noise + noise_growth * horizons
    return _frame(X, mean + sigma * rng.standard_normal((n_samples, n_horizons)))


def correlated_outputs(
    n_samples: int = 2000,
    n_features: int = 8,
    n_outputs: int = 8,
    n_factors: int = 2,
    hardness: float = 1.0,
    scale_spread: float = 0.0,
    noise: float = 0.1,
    random_state: int = 0,
) -> pd.DataFrame:
    """Outputs sharing ``n_factors`` smooth factors of x, plus a sparse off-factor term of x
    (``3 max(x_j - 1, 0)``) whose weight grows from 0 (first output) to ``hardness`` (last):
    the later outputs are the hard ones, far from a low-rank (PCA) reconstruction. Output k
    is multiplied by ``10 ** (scale_spread * (k / (K-1) - 1/2))``, so ``scale_spread``
    orders of magnitude separate the first and last output's scales."""
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((n_samples, n_features))
    mixing = rng.standard_normal((n_features, n_factors)) / np.sqrt(n_features)
    factors = np.tanh(2.0 * X @ mixing)
    # loadings of magnitude 0.5 .. 1.5: every output follows the factors visibly
    loadings = rng.choice([-1.0, 1.0], (n_factors, n_outputs)) * rng.uniform(
        0.5, 1.5, (n_factors, n_outputs)
    )
    weight = hardness * np.linspace(0.0, 1.0, n_outputs)
    # each output's own term, sparse in x (rows where one feature passes 1, about 16%):
    # predictable, but rare enough that the shared factors keep most of the variance
    own = 3.0 * np.maximum(X[:, np.arange(n_outputs) % n_features] - 1.0, 0.0)
    Y = factors @ loadings + weight * own + noise * rng.standard_normal((n_samples, n_outputs))
    position = np.linspace(0.0, 1.0, n_outputs) - 0.5 if n_outputs > 1 else np.zeros(1)
    return _frame(X, Y * 10.0 ** (scale_spread * position))


def count_histogram(
    n_samples: int = 2000,
    n_features: int = 6,
    n_bins: int = 8,
    mean_total: float = 30.0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Histograms of counts over ``n_bins`` bins: the total intensity ``exp(a + w·x)`` (mean
    about ``mean_total``) spread over the bins by a softmax of x; each bin a Poisson draw."""
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((n_samples, n_features))
    w_total = rng.standard_normal(n_features) * 0.4 / np.sqrt(n_features)
    intensity = mean_total * np.exp(X @ w_total - 0.5 * float(w_total @ w_total))
    logits = X @ rng.standard_normal((n_features, n_bins)) / np.sqrt(n_features)
    shares = np.exp(logits - logits.max(axis=1, keepdims=True))
    shares /= shares.sum(axis=1, keepdims=True)
    Y = rng.poisson(intensity[:, None] * shares).astype(np.float64)
    return _frame(X, Y)


def colour_field(
    n_samples: int = 3000, frequency: float = 3.0, noise: float = 0.02, random_state: int = 0
) -> pd.DataFrame:
    """A neural-field task: pixel coordinates ``(x0, x1)`` in [0, 1]² to an RGB colour in
    [0, 1]³, each channel a logistic of sinusoids of the coordinates, plus small noise."""
    rng = np.random.default_rng(random_state)
    X = rng.uniform(0.0, 1.0, size=(n_samples, 2))
    directions = rng.standard_normal((3, 2, 2))
    phases = rng.uniform(0.0, 2 * np.pi, size=(3, 2))
    channels = []
    for c in range(3):
        waves = np.sin(2 * np.pi * frequency * X @ directions[c] + phases[c]).sum(axis=1)
        channels.append(1.0 / (1.0 + np.exp(-1.5 * waves)))
    Y = np.column_stack(channels) + noise * rng.standard_normal((n_samples, 3))
    return _frame(X, np.clip(Y, 0.0, 1.0))


#: registered into :data:`lossreg.compare._synthetic.GENERATORS`
MULTIOUTPUT_GENERATORS: dict[str, Callable[..., pd.DataFrame]] = {
    "multi_horizon": multi_horizon,
    "correlated_outputs": correlated_outputs,
    "count_histogram": count_histogram,
    "colour_field": colour_field,
}
