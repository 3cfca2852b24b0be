"""Structure metrics of embeddings on a test fold: compactness, threshold consistency, novelty.

``lossreg compare`` scores an embedding task with a kNN and a linear probe
(:func:`lossreg.compare._metrics.embedding_metrics`); the metrics here ask what those two
cannot: how tight the classes are, whether one similarity threshold serves every class,
whether rows of classes never trained on stand out, and whether a finer grouping inside the
classes (``group`` ids) survives in the embedding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "EMBEDDING_PROBE_METRICS",
    "GREATER_IS_BETTER_PROBES",
    "embedding_probe_metrics",
    "group_probe_accuracy",
    "intra_class_variance",
    "novelty_auroc",
    "opis",
    "recall_at_1",
]

#: metric -> greater is better
GREATER_IS_BETTER_PROBES: dict[str, bool] = {
    "recall_at_1": True,
    "intra_class_variance": False,
    "opis": False,
    "novelty_auroc": True,
    "group_probe_accuracy": True,
}
EMBEDDING_PROBE_METRICS = tuple(GREATER_IS_BETTER_PROBES)

#: thresholds over which :func:`opis` averages the per-class utility gaps
OPIS_THRESHOLDS = 21

#: pairwise metrics (recall_at_1, opis) use at most this many test rows (a seeded sample):
#: their cost grows with the square of the rows
MAX_PAIR_ROWS = 2000

#: ridge added to the shared covariance of :func:`novelty_auroc` (relative to its trace / D)
_RIDGE = 1e-6


def recall_at_1(emb: np.ndarray, y: np.ndarray) -> float:
    """Share of rows whose nearest other row (Euclidean) has the same class."""
    from lossreg.compare._blocking import nearest_others

    nearest = nearest_others(np.asarray(emb, dtype=np.float64), 1)[:, 0]
    return float(np.mean(np.asarray(y)[nearest] == np.asarray(y)))


def intra_class_variance(emb: np.ndarray, y: np.ndarray) -> float:
    """Share of the embeddings' total variance that lies within classes (0: points).

    A ratio, so scaling the embedding (which some losses do freely) does not change it.
    """
    emb = np.asarray(emb, dtype=np.float64)
    y = np.asarray(y)
    total = float(((emb - emb.mean(axis=0)) ** 2).sum())
    if total == 0.0:
        return float("nan")
    within = sum(float(((emb[y == c] - emb[y == c].mean(axis=0)) ** 2).sum()) for c in set(y))
    return within / total


def _utility(false_reject: np.ndarray, false_accept: np.ndarray) -> np.ndarray:
    """Harmonic mean of 1 - FRR and 1 - FAR (0 where both are 0)."""
    a, b = 1.0 - false_reject, 1.0 - false_accept
    return np.divide(2.0 * a * b, a + b, out=np.zeros_like(a), where=(a + b) > 0)


def opis(emb: np.ndarray, y: np.ndarray, n_thresholds: int = OPIS_THRESHOLDS) -> float:
    """Threshold inconsistency across classes (OPIS of Zhang et al., 2023); lower is better.

    Every pair of rows is a verification trial at cosine similarity ``s``: accepted when
    ``s >= t``. At a threshold ``t``, a class's utility is the harmonic mean of
    ``1 - FRR`` (its same-class pairs accepted) and ``1 - FAR`` (its pairs with other
    classes rejected); OPIS is the mean squared gap between each class's utility and the
    utility of all pairs together, averaged over ``n_thresholds`` thresholds spread evenly
    between the 5th and 95th percentile of all pairs' similarities. Classes with fewer than
    two rows are skipped (no same-class pair). NaN without a same-class and an other-class
    pair.

    References
    ----------
    Q. Zhang, L. Xu, Q. Tang, J. Fang, Y. N. Wu, J. Tighe, Y. Xing. "Threshold-Consistent
    Margin Loss for Open-World Deep Metric Learning." ICLR 2024, arXiv:2307.04047.
    """
    emb = np.asarray(emb, dtype=np.float64)
    y = np.asarray(y)
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    upper = np.triu_indices(len(y), k=1)
    similarity = (unit @ unit.T)[upper]
    first, second = y[upper[0]], y[upper[1]]
    same = first == second
    if same.all() or not same.any():
        return float("nan")
    thresholds = np.quantile(similarity, np.linspace(0.05, 0.95, n_thresholds))

    def utility(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
        # sorted similarities and searchsorted: memory linear in the number of pairs
        pos, neg = np.sort(similarity[positive]), np.sort(similarity[negative])
        frr = np.searchsorted(pos, thresholds, side="left") / len(pos)
        far = 1.0 - np.searchsorted(neg, thresholds, side="left") / len(neg)
        return _utility(frr, far)

    overall = utility(same, ~same)
    gaps = []
    for c in np.unique(y):
        involved = (first == c) | (second == c)
        positive, negative = same & involved, ~same & involved
        if positive.any() and negative.any():
            gaps.append((utility(positive, negative) - overall) ** 2)
    return float(np.mean(gaps))


def novelty_auroc(
    train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray
) -> float:
    """ROC-AUC of the Mahalanobis novelty score for test rows of classes absent in training.

    The score of a row is its smallest Mahalanobis distance to a training class mean, under
    the covariance shared by the training classes (Lee et al., 2018): the usual detector on
    top of a network's embeddings. NaN when the test fold has no row, or only rows, of
    unseen classes.
    """
    train = np.asarray(train, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    y_train = np.asarray(y_train)
    seen = np.unique(y_train)
    novel = ~np.isin(np.asarray(y_test), seen)
    if novel.all() or not novel.any():
        return float("nan")
    from sklearn.metrics import roc_auc_score

    means = np.stack([train[y_train == c].mean(axis=0) for c in seen])
    centred = train - means[np.searchsorted(seen, y_train)]
    covariance = centred.T @ centred / max(len(train) - len(seen), 1)
    # a collapsed direction (embeddings often live on fewer dimensions than they have)
    # makes the covariance singular
    ridge = _RIDGE * max(float(np.trace(covariance)) / len(covariance), 1e-12)
    precision = np.linalg.pinv(covariance + ridge * np.eye(len(covariance)))
    diff = test[:, None, :] - means[None, :, :]
    distance = np.einsum("nkd,de,nke->nk", diff, precision, diff)
    return float(roc_auc_score(novel, distance.min(axis=1)))


def group_probe_accuracy(
    train: np.ndarray, g_train: np.ndarray, test: np.ndarray, g_test: np.ndarray
) -> float:
    """Accuracy of a logistic-regression probe predicting the ``group`` id from embeddings.

    Fitted on the training fold, scored on the test fold: with groups that split classes into
    sub-clusters, it measures how much of the finer structure the embedding kept.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scale = StandardScaler().fit(train)
    probe = LogisticRegression(max_iter=2000).fit(scale.transform(train), g_train)
    return float(np.mean(probe.predict(scale.transform(test)) == np.asarray(g_test)))


def embedding_probe_metrics(
    train: np.ndarray,
    y_train: np.ndarray,
    test: np.ndarray,
    y_test: np.ndarray,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Every metric of this module that the fold allows.

    ``groups`` holds the group ids of the training rows and of the test rows; without it
    there is no ``group_probe_accuracy``; without unseen test classes no ``novelty_auroc``.
    ``recall_at_1`` and ``opis`` use a seeded sample of :data:`MAX_PAIR_ROWS` test rows
    when the fold is larger.
    """
    rows = np.arange(len(y_test))
    if len(rows) > MAX_PAIR_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, MAX_PAIR_ROWS, replace=False))
    pair_emb, pair_y = np.asarray(test)[rows], np.asarray(y_test)[rows]
    out = {
        "recall_at_1": recall_at_1(pair_emb, pair_y),
        "intra_class_variance": intra_class_variance(test, y_test),
        "opis": opis(pair_emb, pair_y),
        "novelty_auroc": novelty_auroc(train, y_train, test, y_test),
    }
    if groups is not None:
        out["group_probe_accuracy"] = group_probe_accuracy(train, groups[0], test, groups[1])
    return {k: v for k, v in out.items() if not np.isnan(v)}
