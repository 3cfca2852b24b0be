"""Few-label probes of embeddings (``probe_labels=FRACTION``) and the raw-feature reference.

Self-supervised embedding losses are judged in the low-label regime: the network learns from
every training row, but the probe that reads classes off its embeddings is fitted on a small
labelled share of them. ``compare(..., task="embedding", probe_labels=0.05)``
(``--probe-labels 0.05``) adds ``few_label_probe_accuracy`` and ``few_label_probe_f1`` (macro F1
over the classes): a logistic-regression probe fitted on a stratified ``FRACTION`` of the
training fold's rows (at least one per class; the same rows for every loss of a fold) and
scored on the whole test fold. The reference model
``raw_features`` (``models=["raw_features"]``) takes the preprocessed features themselves as
its embedding, so its probes are linear models on the raw features: the baseline a learned
representation has to beat.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "FEW_LABEL_DIRECTIONS",
    "FEW_LABEL_METRICS",
    "check_probe_labels",
    "few_label_metrics",
    "labelled_share",
    "score_raw_features",
]

#: metric -> greater is better
FEW_LABEL_DIRECTIONS: dict[str, bool] = {
    "few_label_probe_accuracy": True,
    "few_label_probe_f1": True,
}
FEW_LABEL_METRICS = tuple(FEW_LABEL_DIRECTIONS)


def check_probe_labels(value: Any, task: str) -> float | None:
    """The labelled fraction as a float, or None; ``ValueError`` for an unusable one."""
    if value is None:
        return None
    if task != "embedding":
        raise ValueError(
            f"probe_labels={value!r} sets the labelled share of the probes of embedding "
            f"comparisons (task='embedding'); this task is {task!r}. Drop probe_labels."
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(
            f"probe_labels must be a fraction in (0, 1), the share of training rows whose "
            f"labels the few-label probe sees (e.g. 0.1). Got {value!r}."
        )
    return float(value)


def labelled_share(y: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of a stratified random ``fraction`` of ``y`` (at least one per class).

    Each class keeps ``round(fraction * count)`` of its rows, at least one, so a probe can
    predict every class even when the share rounds to nothing.
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        take = max(1, round(fraction * len(rows)))
        chosen.append(rng.choice(rows, size=take, replace=False))
    return np.sort(np.concatenate(chosen))


def few_label_metrics(
    train: np.ndarray,
    y_train: np.ndarray,
    test: np.ndarray,
    y_test: np.ndarray,
    fraction: float | None,
    seed: int,
) -> dict[str, Any]:
    """``few_label_probe_accuracy``, ``few_label_probe_f1`` (macro) and ``n_probe_labels``
    (nothing when ``fraction`` is None).

    The probe (standardised embeddings, logistic regression) is fitted on the training rows
    that :func:`labelled_share` picks; ``seed`` fixes them, so the losses of one fold are
    probed with the same labels.
    """
    if fraction is None:
        return {}
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import StandardScaler

    rows = labelled_share(y_train, fraction, seed)
    labelled = np.asarray(train)[rows]
    scale = StandardScaler().fit(labelled)
    probe = LogisticRegression(max_iter=2000).fit(
        scale.transform(labelled), np.asarray(y_train)[rows]
    )
    predicted = probe.predict(scale.transform(np.asarray(test)))
    y_test = np.asarray(y_test)
    return {
        "few_label_probe_accuracy": float(np.mean(predicted == y_test)),
        # macro over the classes of the test fold and of the probe's predictions
        "few_label_probe_f1": float(f1_score(y_test, predicted, average="macro")),
        "n_probe_labels": len(rows),
    }


def score_raw_features(
    spec: dict[str, Any],
    model: Any,
    X: Any,
    y_test: np.ndarray,
    test: np.ndarray,
    groups: Any = None,
) -> dict[str, Any]:
    """Every embedding metric of the reference model ``raw_features``, fitted in ``model``.

    ``model`` is the fitted ``StressedEstimator`` around compare's preprocessing (whose
    output, the scaled and one-hot encoded features, is the embedding); ``X`` the whole
    feature table and ``test`` the test fold's rows.
    """
    from lossreg.compare._embedding_probes import embedding_probe_metrics
    from lossreg.compare._metrics import embedding_metrics
    from lossreg.compare._probe_target import probe_view

    # the probe column's labels when there is one (see _probe_target)
    X_fit, y_fit, y_test, probe_groups = probe_view(spec, model, X, groups, y_test)
    emb_fit = np.asarray(model.estimator_.transform(X_fit), dtype=np.float64)
    emb_test = np.asarray(model.estimator_.transform(X.iloc[test]), dtype=np.float64)
    out = embedding_metrics(emb_fit, y_fit, emb_test, y_test)
    out.update(embedding_probe_metrics(emb_fit, y_fit, emb_test, y_test, probe_groups))
    out.update(
        few_label_metrics(
            emb_fit, y_fit, emb_test, y_test, spec.get("probe_labels"), spec["model_seed"]
        )
    )
    return out
