"""A non-learned blocker for ``lossreg compare``: MinHash signatures of the records' tokens.

``models=["minhash_lsh"]`` (``--model minhash_lsh``, ``task="embedding"`` with
``blocking_k``) is the classical Jaccard-LSH blocker that learned hash embeddings are measured
against. It reads the raw records (no imputation, scaling or one-hot encoding) as sets of
tokens:

- a text or categorical field gives one token per whitespace-separated word, prefixed by its
  column (``"brand=acme"``), so equal words in different columns do not collide;
- a numeric field gives the token of its bin, ``floor(value / width)`` with ``width`` =
  ``numeric_width`` standard deviations of the column on the training fold (a perturbed
  number stays in its bin unless it crosses an edge, as rounding would);
- a missing field gives no token.

Each record's signature holds ``n_hashes`` MinHash values ``min_t (a_h * id(t) + b_h) mod p``
(``p = 2^31 - 1``, seeded ``a_h, b_h``): two records agree on a signature component with
probability equal to the Jaccard similarity of their token sets, so the share of agreeing
components estimates it. Banded LSH would give each record a candidate set of varying size;
to compare blockers at a fixed candidate-set size the blocker instead ranks all records by the
estimated Jaccard similarity and keeps the ``blocking_k`` best (ties broken by a seeded random
order of the records): the top-k that banded LSH approximates, so no weaker than banding at the
same budget.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["BLOCKER_MODELS", "MinHashBlocker", "score_blocker"]

#: reference models that read the raw records and are scored only by blocking metrics
BLOCKER_MODELS = ("minhash_lsh",)

#: the Mersenne prime of the universal hash family
_PRIME = (1 << 31) - 1


class MinHashBlocker(TransformerMixin, BaseEstimator):
    """MinHash signatures of records' token sets; ``distance`` is 1 - estimated Jaccard.

    Parameters
    ----------
    n_hashes : int, default=128
        Signature length: the Jaccard estimate's standard error is at most
        ``0.5 / sqrt(n_hashes)``.
    numeric_width : float, default=0.5
        Width of a numeric column's bins, in standard deviations of the training fold.
    random_state : int, default=0
        Seeds the hash functions and the order that breaks ties.
    """

    def __init__(self, n_hashes: int = 128, numeric_width: float = 0.5, random_state: int = 0):
        self.n_hashes = n_hashes
        self.numeric_width = numeric_width
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: Any = None) -> MinHashBlocker:
        """Learn the numeric bin widths from the training rows and draw the hash functions."""
        if isinstance(self.n_hashes, bool) or not isinstance(self.n_hashes, int):
            raise ValueError(f"n_hashes must be an integer >= 1. Got {self.n_hashes!r}.")
        if self.n_hashes < 1:
            raise ValueError(f"n_hashes must be an integer >= 1. Got {self.n_hashes!r}.")
        if not self.numeric_width > 0:
            raise ValueError(f"numeric_width must be > 0. Got {self.numeric_width!r}.")
        frame = pd.DataFrame(X)
        numeric = frame.select_dtypes(include=np.number)
        spread = numeric.std(ddof=0).fillna(0.0)
        self.widths_ = {
            str(col): self.numeric_width * (float(s) if s > 0 else 1.0) for col, s in spread.items()
        }
        self.columns_ = [str(col) for col in frame.columns]
        rng = np.random.default_rng(self.random_state)
        self.a_ = rng.integers(1, _PRIME, size=self.n_hashes, dtype=np.int64)
        self.b_ = rng.integers(0, _PRIME, size=self.n_hashes, dtype=np.int64)
        return self

    def tokens(self, X: pd.DataFrame) -> list[set[str]]:
        """Each record's token set (see the module docstring)."""
        frame = pd.DataFrame(X)
        frame.columns = [str(col) for col in frame.columns]
        out: list[set[str]] = [set() for _ in range(len(frame))]
        for col in self.columns_:
            values = frame[col].to_numpy()
            width = self.widths_.get(col)
            for row, value in enumerate(values):
                if value is None or (isinstance(value, float) and np.isnan(value)):
                    continue
                if width is not None:
                    out[row].add(f"{col}#{int(np.floor(float(value) / width))}")
                else:
                    out[row].update(f"{col}={word}" for word in str(value).split())
        return out

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """(n, n_hashes) int64 signatures; a record without tokens gets a signature that
        agrees with no other (negative values of its own)."""
        sets = self.tokens(X)
        out = np.empty((len(sets), self.n_hashes), dtype=np.int64)
        for row, tokens in enumerate(sets):
            if not tokens:
                out[row] = -(row + 1)
                continue
            # crc32 is stable across processes (Python's hash() of str is salted)
            ids = np.array([zlib.crc32(t.encode()) for t in tokens], dtype=np.int64) % _PRIME
            out[row] = ((self.a_[:, None] * ids[None, :] + self.b_[:, None]) % _PRIME).min(axis=1)
        return out

    def distance(self, queries: np.ndarray, points: np.ndarray) -> np.ndarray:
        """(q, n) 1 - estimated Jaccard similarity, plus a tie-breaking offset per point.

        The offset (under half a signature component) orders records of equal estimate by
        a seeded random priority, so ties are not decided by row order.
        """
        agree = np.zeros((len(queries), len(points)))
        for h in range(self.n_hashes):  # one component at a time: (q, n) memory only
            agree += queries[:, h, None] == points[None, :, h]
        priority = np.random.default_rng(self.random_state).random(len(points))
        return 1.0 - agree / self.n_hashes + (0.5 / self.n_hashes) * priority[None, :]


def score_blocker(
    spec: dict[str, Any], fitted: Any, X: pd.DataFrame, y: pd.Series, test: np.ndarray
) -> dict[str, float]:
    """The blocking metrics of a fitted blocker pipeline on the test fold's records."""
    from lossreg.compare._blocking import blocking_metrics

    blocker = fitted[-1]
    signatures = fitted.transform(X.iloc[test])
    entity = y.iloc[test].to_numpy()
    return blocking_metrics(signatures, entity, spec.get("blocking_k"), blocker.distance)
