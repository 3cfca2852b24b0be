"""``lossreg compare --pretrain BASE_LOSS``: every loss continues one pretrained network.

Transfer claims start from a trained student (``kd_data_partition``: knowledge transfer into a
model that already knows the task, as continual learning). With ``pretrain``, each fit first
trains compare's network with ``BASE_LOSS`` on the (stressed) training fold, with the fit's
seed and estimator settings, so every loss of a fold starts from the same network; then the
compared loss trains a copy of it (its weights; a fresh optimizer) for ``max_iter`` more
epochs. The record keeps the pretrained network's own test ``pretrained_accuracy`` and the
change the loss made, ``accuracy_change`` (accuracy minus pretrained_accuracy).

The teacher name ``pretrained`` stands for that network itself: a loss that takes two models'
logits (``kd_data_partition``: the teacher's, then the initial student's) with
``teacher=["hist_gradient_boosting", "pretrained"]`` gets the pretrained network's logits on
the training rows in that place.

``BASE_LOSS`` may also be an embedding loss (``supcon``, ``triplet`` ...): a LossEmbedder is
pretrained, and each loss starts from its hidden layers with a new output layer
(:class:`~lossreg.estimators.HiddenLayersFrom`); such a network has no accuracy of its own,
so these records have no ``pretrained_accuracy``. ``pretrain_data`` pretrains on another set
than the training fold (see :mod:`lossreg.compare._pretrain_data`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone

__all__ = [
    "PRETRAIN_DIRECTIONS",
    "Pretrained",
    "WarmStart",
    "check_pretrain",
    "embeds",
    "pretrain_base",
    "pretrain_metrics",
    "pretrain_scores",
]

#: direction of the metrics a pretrained comparison adds (registered into GREATER_IS_BETTER)
PRETRAIN_DIRECTIONS = {"pretrained_accuracy": True, "accuracy_change": True}

#: the teacher name of the pretrained network itself
OWN = "pretrained"


def pretrain_metrics(pretrain: str | None) -> tuple[str, ...]:
    """The metrics a comparison with ``pretrain`` adds (none without it or for an embedding)."""
    return tuple(PRETRAIN_DIRECTIONS) if pretrain is not None and not embeds(pretrain) else ()


def embeds(pretrain: str) -> bool:
    """Whether ``pretrain`` is an embedding loss (pretrained as a LossEmbedder)."""
    from lossreg.registry import default_registry

    tasks = default_registry().get_spec(str(pretrain)).tasks
    return "embedding" in tasks and not tasks & {"binary", "multiclass"}


def check_pretrain(pretrain: Any, task: str, teacher: Any) -> str | None:
    """Return the canonical base loss name (None without ``pretrain``); refuse misuse."""
    from lossreg.compare._teachers import parse_teachers
    from lossreg.registry import default_registry

    named = [c.name for c in parse_teachers(teacher)] if teacher is not None else []
    if pretrain is None:
        if OWN in named:
            raise ValueError(
                "Teacher 'pretrained' is the network every loss continues: it needs "
                "pretrain=BASE_LOSS (--pretrain), e.g. pretrain='cross_entropy'."
            )
        return None
    if task not in ("binary", "multiclass"):
        raise ValueError(
            f"pretrain is for class targets (a LossClassifier); this task is {task!r}."
        )
    spec = default_registry().get_spec(str(pretrain))  # unknown names fail with a suggestion
    if spec.fit_extras:
        raise ValueError(
            f"The pretraining loss {spec.name!r} needs fit extras ({', '.join(spec.fit_extras)}); "
            "pretrain with a loss that learns from the labels alone, e.g. 'cross_entropy'."
        )
    if embeds(spec.name) and OWN in named:
        raise ValueError(
            f"Teacher 'pretrained' gives the pretrained network's logits; an embedding loss "
            f"({spec.name!r}) pretrains a network without any. Pretrain with a classification "
            "loss, or drop 'pretrained' from the teachers."
        )
    if not embeds(spec.name) and task not in spec.tasks and "multiclass" not in spec.tasks:
        raise ValueError(
            f"The pretraining loss {spec.name!r} supports {', '.join(sorted(spec.tasks))}, not "
            f"{task!r}: pretrain with a classification loss (e.g. 'cross_entropy') or an "
            "embedding loss (e.g. 'supcon')."
        )
    return spec.name


def pretrain_base(Model: Any, pretrain: str, settings: dict[str, Any], seed: int) -> Any:
    """The unfitted estimator that pretrains: ``Model`` (the task's), or a LossEmbedder.

    A LossEmbedder takes the shared network and training settings; the classifier-only ones
    (``class_weight``, ``output_bias``) concern the compared losses' heads, not the embedding.
    """
    if not embeds(pretrain):
        return Model(loss=pretrain, random_state=seed, **settings)
    from lossreg.estimators import LossEmbedder

    allowed = set(LossEmbedder().get_params())
    kept = {
        k: v
        for k, v in settings.items()
        if k in allowed or k.startswith(("module__", "optimizer__"))
    }
    return LossEmbedder(loss=pretrain, random_state=seed, **kept)


class WarmStart:
    """A module factory that builds compare's MLP and copies a pretrained network's weights.

    Passed as an estimator's ``module``: it receives the sizes and ``module__`` settings the
    estimator would give the MLP, which therefore has the pretrained network's shapes.
    """

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = {k: v.detach().clone() for k, v in state.items()}

    def __call__(
        self, n_features: int, n_outputs: int, return_features: bool = False, **params: Any
    ) -> Any:
        from lossreg.estimators import MLP

        module = MLP(n_features, n_outputs, return_features=return_features, **params)
        try:
            module.load_state_dict(self.state)
        except RuntimeError as exc:
            raise ValueError(
                "The loss cannot continue the pretrained network: its output width differs "
                f"from the pretraining loss's ({exc}). Pretrain with a loss of the same "
                "output width (one logit per class)."
            ) from None
        return module


class Pretrained(ClassifierMixin, BaseEstimator):
    """Train ``base`` (the pretraining loss), then ``student`` from a copy of its network.

    Parameters
    ----------
    base, student : LossClassifier
        Unfitted; ``student`` has the compared loss and no ``module`` of its own.
    own_position : int, optional
        Where the pretrained network's logits on the training rows go among the models'
        blocks of the student's ``teacher_logits`` (the teacher name ``pretrained``).
    """

    def __init__(self, base: Any, student: Any, own_position: int | None = None) -> None:
        self.base = base
        self.student = student
        self.own_position = own_position

    def fit(
        self, X: Any, y: Any, pretrain_rows: tuple[Any, Any] | None = None, **fit_params: Any
    ) -> Pretrained:
        """Pretrain on ``(X, y)``, then continue with the student's loss and ``fit_params``.

        ``pretrain_rows``: ``(X_pre, y_pre)``, a pretraining set (preprocessed like ``X``)
        to pretrain on instead of ``(X, y)``.
        """
        from lossreg.estimators import HiddenLayersFrom, LossEmbedder

        if self.student.module is not None:
            raise ValueError("pretrain continues compare's MLP; a custom module is not supported.")
        weights = {k: v for k, v in fit_params.items() if k == "sample_weight"}
        if pretrain_rows is None:
            self.pretrained_ = clone(self.base).fit(X, y, **weights)
        else:  # another set: the training rows' weights are not its weights
            self.pretrained_ = clone(self.base).fit(*pretrain_rows)
        if self.own_position is not None:
            fit_params = self._with_own_logits(X, fit_params)
        if isinstance(self.pretrained_, LossEmbedder):  # its hidden layers, a new output layer
            module: Any = HiddenLayersFrom(self.pretrained_)
        else:
            module = WarmStart(self.pretrained_.module_.state_dict())
        self.student_ = clone(self.student).set_params(module=module).fit(X, y, **fit_params)
        return self

    def _with_own_logits(self, X: Any, fit_params: dict[str, Any]) -> dict[str, Any]:
        from lossreg.estimators.distill import as_logits

        own = as_logits(self.pretrained_.predict_proba(X), "predict_proba")
        others = fit_params.get("teacher_logits")
        blocks = (
            []
            if others is None
            else np.split(np.asarray(others), others.shape[1] // own.shape[1], axis=1)
        )
        blocks.insert(int(self.own_position), own)
        return {**fit_params, "teacher_logits": np.hstack(blocks).astype(np.float32)}

    @property
    def classes_(self) -> np.ndarray:
        return self.student_.classes_

    def predict(self, X: Any) -> np.ndarray:
        return self.student_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.student_.predict_proba(X)

    def __getattr__(self, name: str) -> Any:
        # the continued network's fitted attributes (net_, history_, criterion_ ...) for the
        # metrics that read them
        if name.endswith("_") and not name.startswith("_") and "student_" in self.__dict__:
            return getattr(self.__dict__["student_"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def pretrain_scores(est: Any, X_test: Any, y_test: Any, accuracy: float) -> dict[str, float]:
    """``pretrained_accuracy`` of the pretrained network and the loss's ``accuracy_change``
    (none for a pretrained embedding, which predicts no class)."""
    if not hasattr(est.pretrained_, "predict"):
        return {}
    before = float(np.mean(est.pretrained_.predict(X_test) == np.asarray(y_test)))
    return {"pretrained_accuracy": before, "accuracy_change": float(accuracy) - before}


def own_position(teacher: Any, loss: str, params: dict[str, Any], task: str) -> int | None:
    """The place of ``pretrained`` among the models the loss takes (None: not among them)."""
    from lossreg.compare._teachers import models_taken, parse_teachers

    taken = parse_teachers(teacher)[: models_taken(loss, params, task)]
    names = [c.name for c in taken]
    return names.index(OWN) if OWN in names else None
