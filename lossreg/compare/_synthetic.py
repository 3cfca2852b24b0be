"""Generated data sets for ``lossreg compare``: ``synthetic:NAME(param=value, ...)``.

Each generator returns a frame of features ``x0 .. x{d-1}`` and a ``target`` column, fully
determined by its parameters (``random_state`` included), so a comparison on generated data
is as reproducible, and as resumable, as one on a file. They give the stress settings the
scikit-learn data sets lack: many classes, heteroscedastic or heavy-tailed noise, skewed
positive targets, several target modes.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from lossreg.compare._domains import DOMAIN_GENERATORS
from lossreg.compare._ordinal import ordinal
from lossreg.compare._regions import sparse_targets
from lossreg.compare._synthetic_auctions import auctions
from lossreg.compare._synthetic_churn import churn
from lossreg.compare._synthetic_clicks import clicks
from lossreg.compare._synthetic_devices import multidevice
from lossreg.compare._synthetic_interactions import interactions
from lossreg.compare._synthetic_linear import gaussian_classes, separable
from lossreg.compare._synthetic_mixed import mixed_targets
from lossreg.compare._synthetic_more import returns, subclusters
from lossreg.compare._synthetic_multioutput import MULTIOUTPUT_GENERATORS
from lossreg.compare._synthetic_ranksurv import ranking, survival
from lossreg.compare._synthetic_records import duplicate_records
from lossreg.compare._synthetic_scenes import scenes
from lossreg.compare._synthetic_shift import shifted_positives
from lossreg.compare._synthetic_unlabeled import covariate_shift, shifted_gaussians

__all__ = ["GENERATORS", "PREFIX", "describe_generators", "make_synthetic"]

#: ``data`` strings starting with this name a generator
PREFIX = "synthetic:"


def _frame(X: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    frame["target"] = y
    return frame


def classification(
    n_samples: int = 2000,
    n_features: int = 20,
    n_informative: int = 10,
    n_classes: int = 5,
    class_sep: float = 1.0,
    random_state: int = 0,
    weights: list[float] | None = None,
) -> pd.DataFrame:
    """Gaussian clusters on hypercube vertices (scikit-learn's ``make_classification``).

    ``weights``: the class proportions (balanced when None), for natively imbalanced data.
    """
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        class_sep=class_sep,
        flip_y=0.0,
        weights=None if weights is None else list(weights),
        random_state=random_state,
    )
    return _frame(X, y.astype(np.int64))


def regression(
    n_samples: int = 2000,
    n_features: int = 10,
    n_informative: int = 5,
    noise: float = 10.0,
    random_state: int = 0,
) -> pd.DataFrame:
    """A linear target with Gaussian noise (scikit-learn's ``make_regression``)."""
    from sklearn.datasets import make_regression

    X, y = make_regression(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        noise=noise,
        random_state=random_state,
    )
    return _frame(X, y)


def friedman1(
    n_samples: int = 2000, n_features: int = 10, noise: float = 1.0, random_state: int = 0
) -> pd.DataFrame:
    """Friedman's nonlinear benchmark #1 (five informative features of ``n_features``)."""
    from sklearn.datasets import make_friedman1

    X, y = make_friedman1(
        n_samples=n_samples, n_features=n_features, noise=noise, random_state=random_state
    )
    return _frame(X, y)


def _signal(X: np.ndarray) -> np.ndarray:
    # A smooth nonlinear mean shared by the regression generators below.
    if X.shape[1] < 4:
        raise ValueError(
            f"This generator's mean reads the first 4 features (sin x0 + x1/2 + x2 x3/4), so "
            f"n_features must be at least 4. Got n_features={X.shape[1]}; pass n_features=4 or "
            "more."
        )
    return np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.25 * X[:, 2] * X[:, 3]


def heteroscedastic(
    n_samples: int = 2000, n_features: int = 5, random_state: int = 0
) -> pd.DataFrame:
    """``y = f(x) + σ(x) ε`` with ``σ(x) = 0.1 + 0.5 |x0|`` and ``x ~ U(-3, 3)^d``.

    The ``true_sigma`` column holds σ(x) of each row: compare keeps it out of the features and
    scores predicted standard deviations against it (``sigma_corr``).
    """
    rng = np.random.default_rng(random_state)
    X = rng.uniform(-3.0, 3.0, size=(n_samples, n_features))
    sigma = 0.1 + 0.5 * np.abs(X[:, 0])
    frame = _frame(X, _signal(X) + sigma * rng.standard_normal(n_samples))
    frame["true_sigma"] = sigma
    return frame


def heavy_tailed(
    n_samples: int = 2000, n_features: int = 5, df: float = 1.5, random_state: int = 0
) -> pd.DataFrame:
    """``y = f(x) + 0.3 t_df`` with Student-t noise (impulsive for ``df <= 2``); ``df=0``
    gives Gaussian noise of the same scale, the control setting."""
    rng = np.random.default_rng(random_state)
    X = rng.uniform(-3.0, 3.0, size=(n_samples, n_features))
    noise = rng.standard_t(df, n_samples) if df > 0 else rng.standard_normal(n_samples)
    return _frame(X, _signal(X) + 0.3 * noise)


def skewed(
    n_samples: int = 2000, n_features: int = 5, sigma: float = 0.5, random_state: int = 0
) -> pd.DataFrame:
    """A positive, right-skewed target: ``y = exp(f(x) + σ ε)`` (log-normal given x)."""
    rng = np.random.default_rng(random_state)
    X = rng.uniform(-2.0, 2.0, size=(n_samples, n_features))
    return _frame(X, np.exp(_signal(X) + sigma * rng.standard_normal(n_samples)))


def multimodal(
    n_samples: int = 2000, n_features: int = 5, gap: float = 2.0, random_state: int = 0
) -> pd.DataFrame:
    """Two target modes: ``y = f(x) ± gap`` with a fair coin per row, plus small noise."""
    rng = np.random.default_rng(random_state)
    X = rng.uniform(-3.0, 3.0, size=(n_samples, n_features))
    sign = rng.choice([-1.0, 1.0], size=n_samples)
    return _frame(X, _signal(X) + sign * gap + 0.1 * rng.standard_normal(n_samples))


def parity(
    n_samples: int = 1000, n_bits: int = 4, n_noise: int = 50, random_state: int = 0
) -> pd.DataFrame:
    """Sparse parity: the label is the XOR of the first ``n_bits`` of random ±1 bits."""
    rng = np.random.default_rng(random_state)
    X = rng.choice([-1.0, 1.0], size=(n_samples, n_bits + n_noise))
    y = (np.prod(X[:, :n_bits], axis=1) > 0).astype(np.int64)
    return _frame(X, y)


def spurious(
    n_samples: int = 2000,
    n_features: int = 5,
    agreement: float = 0.9,
    core_noise: float = 1.0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Binary labels with a spurious feature: ``x0`` equals the label in ``agreement`` of the
    rows and its opposite otherwise; the label depends on ``x1 .. x{d-1}`` through a noisy
    linear score. ``group = 2 y + x0`` names the four (label, spurious value) groups; the
    minority groups are where ``x0`` disagrees with the label."""
    rng = np.random.default_rng(random_state)
    core = rng.standard_normal((n_samples, n_features - 1))
    score = core @ np.linspace(1.0, 0.2, n_features - 1)
    y = (score + core_noise * rng.standard_normal(n_samples) > 0).astype(np.int64)
    agree = rng.random(n_samples) < agreement
    spurious_bit = np.where(agree, y, 1 - y)
    frame = _frame(np.column_stack([spurious_bit.astype(np.float64), core]), y)
    frame["group"] = 2 * y + spurious_bit
    return frame


def sampled_labels(
    n_samples: int = 2000,
    n_features: int = 10,
    n_classes: int = 10,
    temperature: float = 1.0,
    random_state: int = 0,
) -> pd.DataFrame:
    """Labels drawn from a known ``p(y|x) = softmax(W x / temperature)`` (``x ~ N(0, I)``,
    ``W ~ N(0, 4/d)``): the same x may carry different labels, as when several answers are
    plausible; a higher ``temperature`` makes p(y|x) flatter."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0. Got {temperature!r}.")
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((n_samples, n_features))
    weights = rng.normal(0.0, 2.0 / np.sqrt(n_features), size=(n_features, n_classes))
    logits = X @ weights / temperature
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    # inverse-CDF draw: one uniform per row
    y = (proba.cumsum(axis=1) < rng.random((n_samples, 1))).sum(axis=1)
    return _frame(X, np.minimum(y, n_classes - 1).astype(np.int64))


def multilabel(
    n_samples: int = 3000,
    n_features: int = 20,
    n_labels: int = 10,
    max_rate: float = 0.3,
    ratio: float = 100.0,
    noise: float = 0.5,
    random_state: int = 0,
) -> pd.DataFrame:
    """Multilabel rows with a long tail: label ``l`` is on where a noisy linear score of x
    passes its threshold; thresholds give label frequencies falling geometrically from
    ``max_rate`` to ``max_rate / ratio``. Label columns are ``target_0 .. target_{L-1}``."""
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((n_samples, n_features))
    weights = rng.standard_normal((n_features, n_labels)) / np.sqrt(n_features)
    score = X @ weights / np.sqrt((weights**2).sum(axis=0))
    score = score + noise * rng.standard_normal(score.shape)
    rates = max_rate * ratio ** (-np.arange(n_labels) / max(n_labels - 1, 1))
    # Every label keeps at least two positive rows, so each can appear in a training fold.
    thresholds = [
        np.sort(score[:, j])[::-1][max(2, round(r * n_samples)) - 1] for j, r in enumerate(rates)
    ]
    Y = (score >= np.asarray(thresholds)).astype(np.int64)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(n_features)])
    for j in range(n_labels):
        frame[f"target_{j}"] = Y[:, j]
    return frame


def outliers(
    n_samples: int = 2000,
    n_features: int = 12,
    latent: int = 3,
    contamination: float = 0.05,
    shuffled: float = 0.3,
    random_state: int = 0,
) -> pd.DataFrame:
    """Outlier detection: inliers on a smooth ``latent``-dimensional manifold, with noise
    whose scale differs by column (0.02 to 1); an outlier (``target`` 1, ``contamination`` of
    the rows) has a ``shuffled`` share of its columns replaced by other rows' values, so that
    every value is in range and only the dependence between columns gives it away."""
    rng = np.random.default_rng(random_state)
    z = rng.standard_normal((n_samples, latent))
    mixing = rng.standard_normal((latent, n_features))
    noise_scale = np.geomspace(0.02, 1.0, n_features)
    X = np.tanh(z @ mixing) + noise_scale * rng.standard_normal((n_samples, n_features))
    y = np.zeros(n_samples, dtype=np.int64)
    bad = rng.choice(n_samples, size=max(1, round(contamination * n_samples)), replace=False)
    y[bad] = 1
    n_cols = max(1, round(shuffled * n_features))
    donors = rng.integers(0, n_samples, size=(len(bad), n_cols))
    for row, donor_rows in zip(bad, donors, strict=True):
        columns = rng.choice(n_features, size=n_cols, replace=False)
        X[row, columns] = X[donor_rows, columns]
    return _frame(X, y)


#: name -> generator; every parameter has a default
GENERATORS: dict[str, Callable[..., pd.DataFrame]] = {
    "classification": classification,
    "regression": regression,
    "friedman1": friedman1,
    "heteroscedastic": heteroscedastic,
    "heavy_tailed": heavy_tailed,
    "skewed": skewed,
    "multimodal": multimodal,
    "parity": parity,
    "spurious": spurious,
    "multilabel": multilabel,
    "shifted_gaussians": shifted_gaussians,
    "covariate_shift": covariate_shift,
    **MULTIOUTPUT_GENERATORS,
    "sampled_labels": sampled_labels,
    "outliers": outliers,
    "ordinal": ordinal,
    "separable": separable,
    "gaussian_classes": gaussian_classes,
    "returns": returns,
    "subclusters": subclusters,
    "ranking": ranking,
    "survival": survival,
}
GENERATORS.update(DOMAIN_GENERATORS)  # domains and environments, with group ids
GENERATORS["sparse_targets"] = sparse_targets  # few-shot target regions
GENERATORS["scenes"] = scenes  # a background class whose share varies by group
GENERATORS["mixed_targets"] = mixed_targets  # a value and a class column (task "mixed")
GENERATORS["shifted_positives"] = shifted_positives  # rare positives; a shifted version
GENERATORS["multidevice"] = multidevice  # time-aligned rows of several devices
GENERATORS["auctions"] = auctions  # ads in auctions: bids, clicks (see _welfare)
GENERATORS["duplicate_records"] = duplicate_records  # noisy records of entities (blocking)
GENERATORS["churn"] = churn  # churn labels with customer lifetime values (clv)
GENERATORS["clicks"] = clicks  # rare, noisy clicks from weak categorical fields (CTR)
GENERATORS["interactions"] = interactions  # user-item interactions (task "recommendation")


def describe_generators() -> str:
    """One line per generator: its call with default parameters and its summary."""
    lines = []
    for name, function in GENERATORS.items():
        signature = ", ".join(
            f"{p.name}={p.default!r}" for p in inspect.signature(function).parameters.values()
        )
        summary = (function.__doc__ or "").strip().splitlines()[0]
        lines.append(f"{PREFIX}{name}({signature}): {summary}")
    return "\n".join(lines)


def make_synthetic(text: str) -> tuple[str, pd.DataFrame]:
    """Parse ``synthetic:NAME(param=value, ...)`` and return ``(label, frame)``."""
    from lossreg.compare._losses import parse_losses

    body = text[len(PREFIX) :].strip()
    try:
        (choice,) = parse_losses(body)
    except ValueError:
        raise ValueError(
            f"Cannot read data {text!r}: write {PREFIX}NAME or {PREFIX}NAME(param=value, ...), "
            f"e.g. {PREFIX}classification(n_classes=10)."
        ) from None
    function = GENERATORS.get(choice.name)
    if function is None:
        raise ValueError(
            f"Unknown generator {choice.name!r} in {text!r}; generators: {', '.join(GENERATORS)}."
        )
    allowed = inspect.signature(function).parameters
    unknown = sorted(set(choice.params) - set(allowed))
    if unknown:
        raise ValueError(
            f"{PREFIX}{choice.name} has no parameter {', '.join(map(repr, unknown))}; its "
            f"parameters: {', '.join(allowed)}."
        )
    params: dict[str, Any] = dict(choice.params)
    return f"{PREFIX}{choice.label}", function(**params)
