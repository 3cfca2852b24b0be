"""Blocking recall of embeddings: are a record's duplicates among its k nearest neighbours?

Entity resolution compares record pairs, and blocking keeps only a few candidate pairs per
record so that the comparison stays affordable. ``compare(..., task="embedding",
blocking_k=K)`` (``--blocking-k K``) scores every embedding (and the blockers among the
reference models) as a blocker on the test fold, where the target is the entity id:

- the candidate set ``C`` holds the unordered pairs ``{i, j}`` of test rows where ``j`` is one
  of the ``K`` nearest other test rows of ``i`` (so at most ``K * n`` pairs; a fixed
  candidate-set size per record, the budget under which blockers are compared);
- ``blocking_recall`` is the pairs completeness of ``C``: the share of the test fold's
  matching pairs (two rows of one entity) that are in ``C``;
- ``blocking_reduction_ratio`` is ``1 - |C| / (n (n - 1) / 2)``: the share of all pairs that
  blocking spares the matcher.

Split the rows by entity (``split="group"`` with the entity ids as groups) so that the test
entities were never trained on, as in a real deduplication run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "BLOCKING_DIRECTIONS",
    "BLOCKING_METRICS",
    "blocking_metrics",
    "blocking_scores",
    "check_blocking_k",
    "euclidean_distances",
    "nearest_others",
]

#: metric -> greater is better
BLOCKING_DIRECTIONS: dict[str, bool] = {
    "blocking_recall": True,
    "blocking_reduction_ratio": True,
}
BLOCKING_METRICS = tuple(BLOCKING_DIRECTIONS)

#: query rows per block of the distance matrix (bounds memory on large test folds)
_CHUNK = 256


def check_blocking_k(value: Any, task: str, model_labels: list[str]) -> int | None:
    """``blocking_k`` as an int, or None; ``ValueError`` for an unusable one.

    The blocker reference models (``model:minhash_lsh``) are scored only by the blocking
    metrics, so they need ``blocking_k``.
    """
    from lossreg.compare._minhash import BLOCKER_MODELS

    blockers = [label for label in model_labels if label.split(":", 1)[-1] in BLOCKER_MODELS]
    if value is None:
        if blockers:
            raise ValueError(
                f"{', '.join(blockers)} is scored only by blocking recall: set the candidate "
                "budget per record with blocking_k=K (--blocking-k K), e.g. blocking_k=5."
            )
        return None
    if task != "embedding":
        raise ValueError(
            f"blocking_k={value!r} scores embeddings as blockers (task='embedding'); this task "
            f"is {task!r}. Drop blocking_k."
        )
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"blocking_k must be an integer >= 1, the number of nearest neighbours each test "
            f"record keeps as candidates (e.g. 5). Got {value!r}."
        )
    return value


def euclidean_distances(queries: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(q, n) Euclidean distances (float64)."""
    queries = np.asarray(queries, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    squared = (
        (queries**2).sum(axis=1)[:, None]
        + (points**2).sum(axis=1)[None, :]
        - 2.0 * queries @ points.T
    )
    return np.sqrt(np.maximum(squared, 0.0))


def nearest_others(
    points: np.ndarray,
    k: int,
    distance: Callable[[np.ndarray, np.ndarray], np.ndarray] = euclidean_distances,
) -> np.ndarray:
    """(n, min(k, n - 1)) indices of each row's ``k`` nearest other rows, in no order.

    ``distance(queries, points)`` gives a (q, n) block; the row itself is never its own
    neighbour, even when duplicates sit at distance 0.
    """
    points = np.asarray(points)
    n = len(points)
    kk = min(k, n - 1)
    out = np.empty((n, kk), dtype=np.int64)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        block = np.array(distance(points[start:stop], points), dtype=np.float64)
        block[np.arange(stop - start), np.arange(start, stop)] = np.inf
        out[start:stop] = np.argpartition(block, kk - 1, axis=1)[:, :kk]
    return out


def blocking_scores(neighbours: np.ndarray, entity: np.ndarray) -> dict[str, float]:
    """``blocking_recall`` and ``blocking_reduction_ratio`` of the kNN candidate pairs.

    ``neighbours``: (n, k) indices from :func:`nearest_others`; ``entity``: (n,) entity ids.
    The recall is NaN when no entity has two test rows (nothing to find).
    """
    entity = np.asarray(entity)
    n = len(entity)
    rows = np.repeat(np.arange(n), neighbours.shape[1])
    cols = np.asarray(neighbours).ravel()
    # a pair found from both ends counts once: unordered pairs as one integer code
    low, high = np.minimum(rows, cols), np.maximum(rows, cols)
    codes = np.unique(low * n + high)
    found = int(np.sum(entity[codes // n] == entity[codes % n]))
    _, sizes = np.unique(entity, return_counts=True)
    matching = int(np.sum(sizes * (sizes - 1) // 2))
    all_pairs = n * (n - 1) // 2
    return {
        "blocking_recall": found / matching if matching else float("nan"),
        "blocking_reduction_ratio": 1.0 - len(codes) / all_pairs if all_pairs else float("nan"),
    }


def blocking_metrics(
    points: np.ndarray,
    entity: Any,
    k: int | None,
    distance: Callable[[np.ndarray, np.ndarray], np.ndarray] = euclidean_distances,
) -> dict[str, float]:
    """The blocking metrics of a test fold's embeddings (nothing when ``k`` is None)."""
    if k is None or len(points) < 2:
        return {}
    return blocking_scores(nearest_others(points, k, distance), np.asarray(entity))
