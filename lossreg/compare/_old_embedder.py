"""An earlier embedder as teacher of compare's embedding task, and cross-model retrieval scores.

Backward-compatible training (BCT) updates an embedding model without re-embedding the
gallery: the new model's queries must retrieve the right items among the *old* model's
embeddings. ``compare(..., task="embedding", teacher="old_embedder(...)")`` sets that up in
every fold:

- an old :class:`~lossreg.LossEmbedder` (own preprocessing, the comparison's estimator
  settings, a seed of its own) is trained first on part of the (stressed) training fold:
  a random share ``classes`` of its classes and, of those, a stratified share ``rows`` of the
  rows, with the loss ``loss`` (default ``center(center_weight=0.0)``: softmax cross-entropy
  on the embedding, BCT's old model);
- its embeddings of every training row are the gallery, and reach the losses that take a
  fixed earlier embedding (``teacher_logits``: ``backward_compatible``, ``harmonic_triplet``,
  ``cwcl``) as that extra;
- every loss of the comparison, whether or not it takes the extra, is scored by
  ``cross_model_knn_accuracy``: new-model embeddings of the test fold queried against the old
  gallery (a kNN classifier on cosine similarity), beside ``old_knn_accuracy`` (old queries,
  old gallery: the accuracy before the update) and ``cross_model_gain`` (the first minus the
  second; BCT calls a new model compatible when it is above 0).

The old model and its class subset depend on the fold and the fit's seed only, so every loss
of a fold shares one old model.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np

__all__ = [
    "COMPATIBILITY_DIRECTIONS",
    "COMPATIBILITY_METRICS",
    "OLD_EMBEDDER",
    "OldEmbedder",
    "check_old_embedder",
    "cosine_knn_accuracy",
    "old_rows",
    "old_settings",
]

#: the teacher name of the earlier embedder
OLD_EMBEDDER = "old_embedder"

#: its parameters and their defaults (``max_iter`` None: the comparison's own)
OLD_DEFAULTS: dict[str, Any] = {
    "loss": "center(center_weight=0.0)",
    "classes": 1.0,
    "rows": 1.0,
    "max_iter": None,
}

#: metric -> greater is better
COMPATIBILITY_DIRECTIONS: dict[str, bool] = {
    "cross_model_knn_accuracy": True,
    "old_knn_accuracy": True,
    "cross_model_gain": True,
}
COMPATIBILITY_METRICS = tuple(COMPATIBILITY_DIRECTIONS)

#: estimator settings that belong to compare, not to a LossEmbedder
_COMPARE_ONLY = ("target_scaling", "whole_group_batches", "callbacks")


def old_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The old embedder's settings: ``params`` over :data:`OLD_DEFAULTS`, checked.

    Raises ``ValueError`` naming the value and the fix for an unknown parameter, a share
    outside (0, 1], a loss that is not an embedding loss or needs fit extras itself.
    """
    from lossreg.compare._losses import parse_losses
    from lossreg.registry import default_registry

    unknown = sorted(set(params) - set(OLD_DEFAULTS))
    if unknown:
        raise ValueError(
            f"Unknown parameter(s) {', '.join(map(repr, unknown))} of teacher {OLD_EMBEDDER!r}; "
            f"it takes {', '.join(OLD_DEFAULTS)}."
        )
    settings = {**OLD_DEFAULTS, **params}
    for share in ("classes", "rows"):
        value = settings[share]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise ValueError(
                f"{OLD_EMBEDDER}({share}=...) is the share of the training fold's {share} the "
                f"old model is trained on: a number in (0, 1], e.g. {share}=0.5. Got {value!r}."
            )
        settings[share] = float(value)
    max_iter = settings["max_iter"]
    if max_iter is not None and (
        isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1
    ):
        raise ValueError(
            f"{OLD_EMBEDDER}(max_iter=...) must be a positive int (epochs of the old model). "
            f"Got {max_iter!r}."
        )
    if not isinstance(settings["loss"], str):
        raise ValueError(
            f"{OLD_EMBEDDER}(loss=...) names the old model's loss as text, e.g. "
            f"loss='normalized_softmax'. Got {settings['loss']!r}."
        )
    choices = parse_losses(settings["loss"])
    if len(choices) != 1:
        raise ValueError(f"{OLD_EMBEDDER}(loss=...) takes one loss. Got {settings['loss']!r}.")
    spec = default_registry().get_spec(choices[0].name)  # unknown names get a suggestion
    if "embedding" not in spec.tasks or spec.fit_extras:
        raise ValueError(
            f"The old model's loss {spec.name!r} must be an embedding loss that learns from "
            f"the labels alone (its tasks: {', '.join(sorted(spec.tasks))}; fit extras: "
            f"{', '.join(spec.fit_extras) or 'none'}), e.g. loss='center(center_weight=0.0)' "
            "or loss='normalized_softmax'."
        )
    return settings


def check_old_embedder(choices: list[Any], teacher: Any) -> None:
    """Refuse, with the fix, teachers that cannot serve an embedding comparison."""
    from lossreg.compare._extras import declared_extras
    from lossreg.compare._losses import parse_losses

    takes = [c.label for c in choices if "teacher_logits" in declared_extras(c.name, c.params)]
    if teacher is None:
        if takes:
            raise ValueError(
                f"{', '.join(takes)} take(s) an earlier model's embedding of each row "
                f"(teacher_logits): name it with teacher='{OLD_EMBEDDER}(classes=0.5)' "
                "(--teacher), an old embedder trained first on part of each training fold."
            )
        return
    teachers = parse_losses(teacher)
    if len(teachers) != 1 or teachers[0].name != OLD_EMBEDDER:
        raise ValueError(
            f"The teacher of an embedding comparison is one earlier embedder, "
            f"'{OLD_EMBEDDER}(loss=..., classes=..., rows=..., max_iter=...)'. "
            f"Got {teacher!r}."
        )
    old_settings(teachers[0].params)


def old_rows(y: Any, classes: float, rows: float, seed: int) -> np.ndarray:
    """Sorted indices of the rows the old model is trained on.

    A random ``classes`` share of the labels (at least two, so that it learns to separate
    something), then a stratified ``rows`` share of their rows (at least one per class).
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    labels = np.unique(y)
    if classes < 1:
        n_kept = min(len(labels), max(2, round(classes * len(labels))))
        labels = np.sort(rng.choice(labels, size=n_kept, replace=False))
    chosen = []
    for label in labels:
        members = np.flatnonzero(y == label)
        take = len(members) if rows >= 1 else max(1, round(rows * len(members)))
        chosen.append(rng.choice(members, size=take, replace=False))
    return np.sort(np.concatenate(chosen))


def cosine_knn_accuracy(
    gallery: np.ndarray, y_gallery: np.ndarray, queries: np.ndarray, y_queries: np.ndarray
) -> float:
    """Accuracy of a kNN classifier (compare's ``KNN_NEIGHBORS``) on cosine similarity.

    Two models' embeddings need not share a scale, so retrieval across them compares
    directions: rows are L2-normalised (a zero row stays zero) before Euclidean neighbours,
    which ranks them as cosine similarity does.
    """
    from sklearn.neighbors import KNeighborsClassifier

    from lossreg.compare._metrics import KNN_NEIGHBORS

    def unit(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        norms = np.linalg.norm(values, axis=1, keepdims=True)
        return values / np.where(norms > 0, norms, 1.0)

    knn = KNeighborsClassifier(n_neighbors=min(KNN_NEIGHBORS, len(y_gallery)))
    knn.fit(unit(gallery), np.asarray(y_gallery))
    return float(np.mean(knn.predict(unit(queries)) == np.asarray(y_queries)))


class OldEmbedder:
    """The earlier embedder of one fit: its gallery, its extra for the loss, its scores.

    Parameters
    ----------
    teacher : str
        ``"old_embedder(...)"`` (see :func:`old_settings`).
    seed : int
        The fit's model seed; the old model's seed and class subset are derived from it, so
        it starts from other weights than the new model.
    loss, params : the compared loss and its parameters
        The gallery reaches it as ``teacher_logits`` only if it takes that extra.
    estimator_params : dict
        The comparison's estimator settings, which the old model shares (same width).
    """

    def __init__(
        self,
        teacher: str,
        seed: int,
        loss: str,
        params: dict[str, Any],
        estimator_params: dict[str, Any],
    ) -> None:
        from lossreg.compare._extras import declared_extras
        from lossreg.compare._losses import parse_losses

        self.label = parse_losses(teacher)[0].label
        self.settings = old_settings(parse_losses(teacher)[0].params)
        digest = hashlib.sha256(repr((OLD_EMBEDDER, int(seed))).encode()).digest()
        self.seed = int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
        self.estimator_params = {
            k: v for k, v in estimator_params.items() if k not in _COMPARE_ONLY
        }
        self.passes = "teacher_logits" in declared_extras(loss, params)

    def fit_params(self, X: Any, y: Any) -> dict[str, Any]:
        """Train (or reuse) the old model on its share of ``(X, y)``; keep its gallery.

        Returns the student's ``model__teacher_logits`` (the old embeddings of every row of
        ``X``) when the loss takes them, else nothing.
        """
        self.fitted_, self.gallery_, self.n_old_rows_, self.n_old_classes_ = _cached(self, X, y)
        self.y_gallery_ = np.asarray(y)
        if not self.passes:
            return {}
        return {"model__teacher_logits": self.gallery_.astype(np.float32)}

    def scores(self, X_test: Any, y_test: Any) -> dict[str, float]:
        """Nothing: the old model's scores need the new embeddings (:meth:`compatibility`)."""
        return {}

    def compatibility(self, X_test: Any, y_test: Any, new_test: np.ndarray) -> dict[str, Any]:
        """``old_knn_accuracy``, ``cross_model_knn_accuracy``, ``cross_model_gain`` on the
        test fold (``X_test`` raw rows for the old model, ``new_test`` the new model's
        embeddings of them), and the size of the old model's training share."""
        old_test = np.asarray(self.fitted_.transform(X_test), dtype=np.float64)
        old = cosine_knn_accuracy(self.gallery_, self.y_gallery_, old_test, y_test)
        cross = cosine_knn_accuracy(self.gallery_, self.y_gallery_, new_test, y_test)
        return {
            "old_knn_accuracy": old,
            "cross_model_knn_accuracy": cross,
            "cross_model_gain": cross - old,
            "n_old_rows": self.n_old_rows_,
            "n_old_classes": self.n_old_classes_,
        }


def make_old_model(settings: dict[str, Any], estimator_params: dict[str, Any], seed: int) -> Any:
    """The old model: compare's preprocessing and a LossEmbedder with the old loss."""
    from sklearn.pipeline import Pipeline

    from lossreg.compare._fit import preprocessing
    from lossreg.compare._losses import parse_losses
    from lossreg.estimators import LossEmbedder

    choice = parse_losses(settings["loss"])[0]
    kwargs = dict(estimator_params)
    if settings["max_iter"] is not None:
        kwargs["max_iter"] = settings["max_iter"]
    model = LossEmbedder(
        loss=choice.name,
        random_state=seed,
        **kwargs,
        **{f"loss__{k}": v for k, v in choice.params.items()},
    )
    return Pipeline([("prep", preprocessing()), ("model", model)])


#: the last few old models in this process: every loss of a fold shares one, and its fit is
#: deterministic given its seed
_CACHE: OrderedDict[tuple, tuple[Any, np.ndarray, int, int]] = OrderedDict()
_CACHE_SIZE = 4


def _cached(old: OldEmbedder, X: Any, y: Any) -> tuple[Any, np.ndarray, int, int]:
    from pandas.util import hash_pandas_object

    rows = hash_pandas_object(X, index=True).to_numpy() if hasattr(X, "columns") else X
    digest = hashlib.sha256(np.ascontiguousarray(rows).tobytes())
    digest.update(np.ascontiguousarray(np.asarray(y).astype(str)).tobytes())
    settings = repr((sorted(old.settings.items()), sorted(old.estimator_params.items())))
    key = (old.label, old.seed, settings, digest.hexdigest())
    if key not in _CACHE:
        y = np.asarray(y)
        chosen = old_rows(y, old.settings["classes"], old.settings["rows"], old.seed)
        pipe = make_old_model(old.settings, old.estimator_params, old.seed)
        subset = X.iloc[chosen] if hasattr(X, "iloc") else np.asarray(X)[chosen]
        pipe.fit(subset, y[chosen])
        gallery = np.asarray(pipe.transform(X), dtype=np.float64)
        _CACHE[key] = (pipe, gallery, len(chosen), len(np.unique(y[chosen])))
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return _CACHE[key]
