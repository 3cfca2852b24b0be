"""The ``novel_classes:K`` scenario: novel-class discovery, scored by clustering the novel rows.

Novel-class discovery (NCD) learns from labelled rows of *known* classes and unlabeled rows of
*novel* classes, then partitions the novel rows into classes nobody labelled. In each training
fold this scenario draws ``K`` classes (from the fold's noise seed, so every loss of a fold
gets the same ones) and sets their rows' labels to -1: a semi-supervised loss
(``pbn_ce_recon``) trains on them as unlabeled rows, any other loss without them, on the
known classes alone. The test fold stays whole and is scored in two parts:

- its rows of the novel classes are clustered by k-means in the model's latent space (the
  last hidden layer of the network; the preprocessed features for the reference model
  ``raw_features``), and the clusters are matched to the true classes one to one (Hungarian
  matching): ``novel_cluster_accuracy`` with ``K`` clusters (the number of novel classes
  given, the usual NCD protocol), ``novel_cluster_accuracy_est`` with the number estimated
  by the silhouette score over 2..:data:`MAX_CLUSTERS` clusters, ``novel_n_clusters`` that
  estimate and ``novel_k_error`` its distance to ``K``;
- its rows of the known classes give the usual classification metrics (``accuracy`` ...),
  since no classifier can name a class it never saw.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "MAX_CLUSTERS",
    "NOVEL_DIRECTIONS",
    "NOVEL_METRICS",
    "check_novel",
    "check_novel_count",
    "cluster_accuracy",
    "estimate_n_clusters",
    "hide_novel_classes",
    "known_test_rows",
    "novel_cluster_metrics",
    "score_novel_model",
    "score_novel_network",
]

#: the largest number of clusters the silhouette search tries (it starts at 2)
MAX_CLUSTERS = 10

#: metric -> greater is better
NOVEL_DIRECTIONS: dict[str, bool] = {
    "novel_cluster_accuracy": True,
    "novel_cluster_accuracy_est": True,
    "novel_k_error": False,
    # the estimate itself has no better side; it is ranked like the error it feeds
    "novel_n_clusters": False,
}
NOVEL_METRICS = tuple(NOVEL_DIRECTIONS)

#: the reference model whose latent space is the preprocessed features themselves
RAW_MODEL = "model:raw_features"


def check_novel_count(label: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a whole number of novel classes >= 2."""
    if value < 2 or value != int(value):
        raise ValueError(
            f"Scenario {label!r}: the number of novel classes must be a whole number >= 2 "
            f"(one novel class is a single cluster, nothing to discover; e.g. "
            f"novel_classes:3). Got {value:g}."
        )


def check_novel(scenarios: list[Any], models: list[str], y: Any, task: str) -> None:
    """Plan-time checks of novel-class comparisons; ``ValueError`` names each problem.

    ``scenarios``: the parsed scenarios; ``models``: the reference models' labels
    (``model:NAME``); ``y``: the data set's target.
    """
    novel = [s for s in scenarios if s.kind == "novel_classes"]
    if task != "multiclass" or (RAW_MODEL not in models and not novel):
        return
    others = [s.label for s in scenarios if s.kind != "novel_classes"]
    if RAW_MODEL in models and others:
        raise ValueError(
            f"The reference model 'raw_features' of a {task} comparison only clusters the "
            f"novel classes of novel_classes:K scenarios; it cannot be scored in "
            f"{', '.join(map(repr, others))}. Run those scenarios without it."
        )
    n_classes = len(np.unique(np.asarray(y.dropna() if hasattr(y, "dropna") else y)))
    for scenario in novel:
        if int(scenario.value) > n_classes - 2:
            raise ValueError(
                f"Scenario {scenario.label!r} would leave fewer than 2 of the {n_classes} "
                f"classes known; make at most {max(n_classes - 2, 0)} classes novel."
            )


def hide_novel_classes(
    y: np.ndarray, n_novel: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, Any]]:
    """Set the labels of ``n_novel`` classes drawn by ``rng`` to -1; return them and a record.

    The record holds ``novel_classes`` (sorted) and ``n_corrupted`` (rows made unlabeled).
    """
    from lossreg.compare._holdout import draw_classes, plain_names
    from lossreg.compare._unlabeled import UNLABELED, _check_marker_free

    y = np.asarray(y)
    _check_marker_free(y)
    novel = draw_classes(
        y, n_novel, rng, "novel_classes", ("known", "make at most {k} classes novel")
    )
    hidden = np.isin(y, novel)
    # class names become an object array, so that the int -1 can sit among them
    out = y.astype(object) if y.dtype.kind not in "iuf" else y.copy()
    out[hidden] = UNLABELED
    return out, {"novel_classes": plain_names(novel), "n_corrupted": int(hidden.sum())}


def known_test_rows(test: np.ndarray, y: Any, info: dict[str, Any]) -> np.ndarray:
    """The test rows (indices into ``y``) whose class is not one of ``info["novel_classes"]``."""
    test = np.asarray(test)
    values = np.asarray(y)[test]
    return test[~_is_novel(values, info["novel_classes"])]


def _is_novel(values: np.ndarray, novel: list[Any]) -> np.ndarray:
    return np.isin(values.astype(object), np.asarray(novel, dtype=object))


def cluster_accuracy(y_true: np.ndarray, clusters: np.ndarray) -> float:
    """Share of rows whose cluster is matched to their class, with the best one-to-one matching.

    Clusters and classes are matched by the Hungarian algorithm on their contingency table;
    with more clusters than classes (or fewer) the unmatched ones count as wrong.
    """
    from scipy.optimize import linear_sum_assignment

    _, true_index = np.unique(np.asarray(y_true), return_inverse=True)
    _, cluster_index = np.unique(np.asarray(clusters), return_inverse=True)
    table = np.zeros((cluster_index.max() + 1, true_index.max() + 1), dtype=np.int64)
    np.add.at(table, (cluster_index, true_index), 1)
    rows, columns = linear_sum_assignment(table, maximize=True)
    return float(table[rows, columns].sum() / len(true_index))


def _kmeans(Z: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(Z)


def estimate_n_clusters(
    Z: np.ndarray, seed: int, max_clusters: int = MAX_CLUSTERS
) -> tuple[int, np.ndarray]:
    """The number of clusters in 2..``max_clusters`` with the highest silhouette score, and
    the k-means partition with that many clusters.

    The silhouette is one of the cluster validity indices the PBN paper applies in its latent
    space; ``max_clusters`` is capped at ``len(Z) - 1`` (the silhouette needs a row to spare).
    """
    from sklearn.metrics import silhouette_score

    Z = np.asarray(Z, dtype=np.float64)
    top = min(max_clusters, len(Z) - 1)
    if top < 2:
        raise ValueError(
            f"Estimating the number of novel classes needs at least 3 novel test rows; "
            f"got {len(Z)}. Use more rows or a smaller cv."
        )
    best: tuple[float, int, np.ndarray] | None = None
    for k in range(2, top + 1):
        labels = _kmeans(Z, k, seed)
        if len(np.unique(labels)) < 2:  # identical rows: k-means found one cluster
            continue
        score = float(silhouette_score(Z, labels))
        if best is None or score > best[0]:
            best = (score, k, labels)
    if best is None:
        return 1, np.zeros(len(Z), dtype=np.int64)
    return best[1], best[2]


def novel_cluster_metrics(Z: np.ndarray, y_novel: np.ndarray, seed: int) -> dict[str, float]:
    """The ``novel_*`` metrics of the novel rows' latent vectors ``Z`` (see module docstring)."""
    Z = np.asarray(Z, dtype=np.float64)
    y_novel = np.asarray(y_novel)
    n_true = len(np.unique(y_novel))
    if len(Z) < n_true:
        raise ValueError(
            f"The test fold has {len(Z)} rows of the {n_true} novel classes; clustering needs "
            "at least one per class. Use more rows or a smaller cv."
        )
    estimate, labels = estimate_n_clusters(Z, seed)
    return {
        "novel_cluster_accuracy": cluster_accuracy(y_novel, _kmeans(Z, n_true, seed)),
        "novel_cluster_accuracy_est": cluster_accuracy(y_novel, labels),
        "novel_n_clusters": float(estimate),
        "novel_k_error": float(abs(estimate - n_true)),
    }


def score_novel_network(
    est: Any, X_test: np.ndarray, y_test: np.ndarray, info: dict[str, Any], seed: int
) -> dict[str, float]:
    """The ``novel_*`` metrics of a fitted lossreg network: k-means in its last hidden layer.

    ``X_test``: the preprocessed test fold; ``info``: the scenario's record
    (``novel_classes``).
    """
    from lossreg.compare._geometry import hidden_features

    novel = _is_novel(np.asarray(y_test), info["novel_classes"])
    latent = hidden_features(est, np.asarray(X_test)[novel])
    if latent is None:
        raise ValueError(
            "novel_classes clusters the novel rows in the network's last hidden layer, but "
            "this network has none; give it one (e.g. module__hidden_units=[64])."
        )
    return novel_cluster_metrics(latent, np.asarray(y_test)[novel], seed)


def score_novel_model(
    spec: dict[str, Any], model: Any, X: Any, y: Any, test: np.ndarray
) -> dict[str, Any]:
    """A reference model's scores in a novel_classes scenario.

    ``raw_features`` clusters the novel test rows in the preprocessed feature space (the
    k-means baseline); a classifier is scored on the known-class test rows.
    """
    from lossreg.compare._metrics import classification_metrics

    info = model.corruption_
    fitted = model.estimator_
    if spec["loss"] == RAW_MODEL:
        y_test = np.asarray(y)[test]
        novel = _is_novel(y_test, info["novel_classes"])
        features = fitted.transform(X.iloc[np.asarray(test)[novel]])
        return novel_cluster_metrics(features, y_test[novel], spec["model_seed"])
    known = known_test_rows(test, y, info)
    scores, bins = classification_metrics(
        np.asarray(y)[known],
        fitted.predict(X.iloc[known]),
        fitted.predict_proba(X.iloc[known]),
        fitted.classes_,
        spec["minority"],
    )
    return {**scores, "reliability": bins}
