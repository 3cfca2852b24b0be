"""Teachers of ``lossreg compare``: classical or neural, for classes or regression, one or two.

``teacher="hist_gradient_boosting"`` (one name) or ``teacher=["hist_gradient_boosting",
"mlp(hidden_units=(256, 32))"]`` (several, in order) fits each teacher on every (stressed)
training fold and gives the distillation losses its out-of-fold outputs on the training rows
(3 folds inside the training fold: stratified for classes as in ``cross_val_predict``,
shuffled with the fit's seed for regression, like compare's own folds, so that rows stored in
target or time order do not give each inner teacher one end of the target range; no row's
signal comes from a teacher that saw it):

- class targets: logits (``log`` of the predicted probabilities);
- regression: predictions, in the target's units (compare's target scaling maps them with the
  target, see ``TargetScaled``);
- the ``mlp`` teacher (a :class:`~lossreg.LossClassifier` / :class:`~lossreg.LossRegressor`
  trained with ``cross_entropy`` / ``mse``) also gives its penultimate features, the
  ``teacher_features`` extra of ``norm_direction``.

A loss takes as many teachers as its ``teacher_logits`` width says (the spec's
``extra_widths``: ``kd_assistive_regression`` and ``kd_data_partition`` take two models'
outputs side by side, every other loss one): the first teachers, in the order given.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from lossreg.compare._losses import LossChoice, parse_losses

__all__ = [
    "CLASS_TEACHERS",
    "MLP_DEFAULTS",
    "REGRESSION_TEACHERS",
    "FoldTeachers",
    "check_teachers",
    "models_taken",
    "parse_teachers",
]

#: teachers of class targets (classifiers) and of regression targets (regressors)
CLASS_TEACHERS = (
    "hist_gradient_boosting",
    "random_forest",
    "logistic_regression",
    "mlp",
    "pretrained",  # with pretrain: the network every loss continues (``_pretrain``)
)
REGRESSION_TEACHERS = ("hist_gradient_boosting", "random_forest", "ridge", "mlp")
TEACHER_TASKS = ("binary", "multiclass", "regression")

#: the ``mlp`` teacher's settings: wider than compare's default student (128, 64), whose last
#: hidden layer it matches, so its features fit a default student's (``norm_direction``)
MLP_DEFAULTS: dict[str, Any] = {"hidden_units": (256, 64), "max_iter": 100}
_MLP_MODULE = ("hidden_units", "activation", "dropout", "batch_norm")
_MLP_ESTIMATOR = ("max_iter", "lr", "weight_decay", "batch_size")

#: folds inside the training fold for the out-of-fold signals (as ``lossreg.teacher_logits``)
TEACHER_CV = 3


def parse_teachers(teacher: Any) -> list[LossChoice]:
    """``"a"``, ``"a,b(param=value)"`` or a list of such names, as choices (empty for None)."""
    if teacher is None:
        return []
    choices = parse_losses(teacher)
    for choice in choices:
        if choice.name == "old_embedder":  # embeddings; its settings: ``_old_embedder``
            continue
        if choice.params and choice.name != "mlp":
            raise ValueError(
                f"Teacher {choice.label!r} takes no parameters; only 'mlp' does "
                f"({', '.join(_MLP_MODULE + _MLP_ESTIMATOR)})."
            )
        unknown = sorted(set(choice.params) - set(_MLP_MODULE + _MLP_ESTIMATOR))
        if unknown:
            raise ValueError(
                f"Unknown parameter(s) {', '.join(map(repr, unknown))} of teacher "
                f"{choice.label!r}; it takes {', '.join(_MLP_MODULE + _MLP_ESTIMATOR)}."
            )
    return choices


def models_taken(loss: str, params: dict[str, Any] | None, task: str) -> int:
    """How many models' outputs ``loss`` takes side by side in its ``teacher_logits``.

    Read from the spec's ``extra_widths`` rule at a nominal output width: a rule giving k times
    the output width takes k models; a loss without a rule (or a composite) takes one.
    """
    from lossreg.registry import default_registry
    from lossreg.targets import extra_widths

    spec = default_registry().get_spec(loss)
    if "teacher_logits" not in spec.extra_widths:
        return 1
    nominal = 5  # odd and not 2: no binary special case, and k * 5 is unambiguous
    try:
        widths = extra_widths(
            spec, task, width=nominal, n_classes=nominal, n_outputs=nominal, params=params
        )
    except (KeyError, TypeError, ValueError):
        return 1
    first = widths.get("teacher_logits", (nominal,))[0]
    return max(1, first // nominal) if first % nominal == 0 else 1


def check_teachers(choices: list[LossChoice], task: str, teacher: Any) -> None:
    """Refuse, with the fix, teachers that cannot serve this comparison's losses."""
    from lossreg.compare._extras import declared_extras
    from lossreg.registry import default_registry

    registry = default_registry()
    teachers = parse_teachers(teacher)
    known = REGRESSION_TEACHERS if task == "regression" else CLASS_TEACHERS
    takes = [c for c in choices if "teacher_logits" in declared_extras(c.name, c.params)]
    if not teachers:
        if takes:
            raise ValueError(
                f"{', '.join(c.label for c in takes)} distil(s) a teacher's logits: name the "
                f"teacher with teacher=... (--teacher), one of {', '.join(known)}."
            )
        return
    for t in teachers:
        if t.name not in known:
            raise ValueError(f"Unknown teacher {t.name!r}; teachers: {', '.join(known)}.")
    if task not in TEACHER_TASKS:
        raise ValueError(
            f"A teacher is fitted for class targets only (a classifier), regression (a "
            f"regressor) or ranking (a regressor on the relevance); this task is {task!r}."
        )
    for choice in takes:
        needed = models_taken(choice.name, choice.params, task)
        if needed > len(teachers):
            example = (
                "teacher=['hist_gradient_boosting', 'mlp']"
                if task == "regression"
                else "teacher=['hist_gradient_boosting', 'pretrained'] with "
                "pretrain='cross_entropy' (the initial student of kd_data_partition)"
            )
            raise ValueError(
                f"{choice.label} takes {needed} models' outputs side by side (teacher_logits "
                f"{needed} x the output width) but teacher= names {len(teachers)}: name "
                f"{needed}, e.g. {example}."
            )
        spec = registry.get_spec(choice.name)
        if "teacher_features" in spec.fit_extras and not any(
            t.name == "mlp" for t in teachers[:needed]
        ):
            raise ValueError(
                f"{choice.label} needs the teacher's penultimate features (teacher_features): "
                "only a neural teacher has them; use teacher='mlp' (its last hidden layer "
                "must be as wide as the student's)."
            )


def _classical(name: str, task: str, seed: int) -> Any:
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "regression":
        return {
            "hist_gradient_boosting": lambda: HistGradientBoostingRegressor(random_state=seed),
            "random_forest": lambda: RandomForestRegressor(n_estimators=200, random_state=seed),
            "ridge": lambda: Ridge(),
        }[name]()
    return {
        "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(random_state=seed),
        "random_forest": lambda: RandomForestClassifier(n_estimators=200, random_state=seed),
        "logistic_regression": lambda: LogisticRegression(max_iter=1000),
    }[name]()


def _mlp(params: dict[str, Any], task: str, seed: int) -> Any:
    from lossreg.compare._fit import TargetScaled
    from lossreg.estimators import LossClassifier, LossRegressor

    settings = {**MLP_DEFAULTS, **params}
    kwargs = {k: v for k, v in settings.items() if k in _MLP_ESTIMATOR}
    kwargs.update({f"module__{k}": v for k, v in settings.items() if k in _MLP_MODULE})
    if task == "regression":
        # trained on standardised targets, as compare's students are; predictions come back
        return TargetScaled(LossRegressor(loss="mse", random_state=seed, **kwargs))
    return LossClassifier(loss="cross_entropy", random_state=seed, **kwargs)


def make_teacher(choice: LossChoice, task: str, seed: int) -> Any:
    """One teacher, after compare's per-fold preprocessing."""
    from sklearn.pipeline import Pipeline

    from lossreg.compare._fit import preprocessing

    model = (
        _mlp(choice.params, task, seed)
        if choice.name == "mlp"
        else _classical(choice.name, task, seed)
    )
    return Pipeline([("prep", preprocessing()), ("model", model)])


def _outputs(pipe: Any, X: Any, task: str, features: bool) -> tuple[np.ndarray, Any]:
    """A fitted teacher's logits (classes) or predictions (regression), and its features."""
    from lossreg.compare._geometry import hidden_features
    from lossreg.estimators.distill import as_logits

    if task == "regression":
        values = np.asarray(pipe.predict(X), dtype=np.float64).reshape(len(X), -1)
    else:
        values = as_logits(pipe.predict_proba(X), "predict_proba")
    if not features:
        return values, None
    model = pipe[-1]
    net = getattr(model, "regressor_", model)  # a regression mlp sits in TargetScaled
    return values, hidden_features(net, pipe[:-1].transform(X))


class FoldTeachers:
    """The teachers of one fit: out-of-fold signals on the training rows, scores on the test.

    Parameters
    ----------
    teacher : str or list
        What :func:`parse_teachers` reads.
    task : {"binary", "multiclass", "regression"}
    seed : int
        Seeds the teachers (the fit's model seed).
    loss, params : the student's loss and its parameters
        Decide how many teachers' outputs it takes and whether it gets features.
    """

    def __init__(
        self, teacher: Any, task: str, seed: int, loss: str, params: dict[str, Any]
    ) -> None:
        from lossreg.registry import default_registry

        self.choices = parse_teachers(teacher)
        self.task = task
        self.seed = seed
        self.n_models = models_taken(loss, params, task)
        self.used = self.choices[: self.n_models]
        self.wants_features = "teacher_features" in default_registry().get_spec(loss).fit_extras

    def fit_params(self, X: Any, y: Any) -> dict[str, Any]:
        """Fit the teachers on ``(X, y)``; return the student's ``model__teacher_*`` params."""
        blocks, features = [], None
        self.fitted_ = []
        for choice in self.used:
            if choice.name == "pretrained":
                continue  # its logits exist only once pretrained (``_pretrain.Pretrained``)
            oof, feats, fitted = _cached_signals(choice, self.task, self.seed, X, y)
            blocks.append(oof)
            if self.wants_features and features is None:
                features = feats  # the first neural teacher's
            self.fitted_.append(fitted)
        out = {}
        if blocks:
            out["model__teacher_logits"] = np.hstack(blocks).astype(np.float32)
        if features is not None:
            out["model__teacher_features"] = features.astype(np.float32)
        return out

    def scores(self, X_test: Any, y_test: Any) -> dict[str, float]:
        """The teachers' own test scores: ``teacher_accuracy`` (classes) or ``teacher_mae``
        and ``teacher_rmse`` (regression); with several, ``teacher_1_...``, ``teacher_2_...``."""
        out: dict[str, float] = {}
        y_test = np.asarray(y_test)
        for i, fitted in enumerate(self.fitted_, start=1):
            prefix = "teacher" if len(self.fitted_) == 1 else f"teacher_{i}"
            pred = np.asarray(fitted.predict(X_test))
            if self.task == "regression":
                error = pred.reshape(y_test.shape) - y_test
                out[f"{prefix}_mae"] = float(np.mean(np.abs(error)))
                out[f"{prefix}_rmse"] = float(np.sqrt(np.mean(error**2)))
            else:
                out[f"{prefix}_accuracy"] = float(np.mean(pred == y_test))
        return out


#: the last few teachers' signals in this process: every loss of a comparison distils the
#: same teachers on the same fold, and a teacher's fit is deterministic given its seed
_CACHE: OrderedDict[tuple, tuple[np.ndarray, Any, Any]] = OrderedDict()
_CACHE_SIZE = 8


def _cached_signals(
    choice: LossChoice, task: str, seed: int, X: Any, y: Any
) -> tuple[np.ndarray, Any, Any]:
    import hashlib

    from pandas.util import hash_pandas_object

    rows = hash_pandas_object(X, index=True).to_numpy() if hasattr(X, "columns") else X
    digest = hashlib.sha256(np.ascontiguousarray(rows).tobytes())
    digest.update(np.ascontiguousarray(np.asarray(y).astype(str)).tobytes())
    key = (choice.label, task, seed, digest.hexdigest())
    if key not in _CACHE:
        # a neural teacher's features come with its logits, whether this loss wants them
        _CACHE[key] = _signals(choice, task, seed, X, y, choice.name == "mlp")
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return _CACHE[key]


def _signals(
    choice: LossChoice, task: str, seed: int, X: Any, y: Any, features: bool
) -> tuple[np.ndarray, Any, Any]:
    """Out-of-fold outputs (and features) on ``X``, and the teacher refitted on every row."""
    from sklearn.base import clone
    from sklearn.model_selection import KFold, check_cv
    from threadpoolctl import threadpool_limits

    import lossreg

    teacher = make_teacher(choice, task, seed)
    y = np.asarray(y)
    # OpenMP teachers (gradient boosting) would take every core of a shared machine
    with threadpool_limits(1):
        if task != "regression" and not features:
            # the classical class teachers as before: lossreg.teacher_logits (cv=3)
            oof = lossreg.teacher_logits(clone(teacher), X, y, cv=TEACHER_CV)
            return oof, None, clone(teacher).fit(X, y)
        if task == "regression":
            folds = KFold(TEACHER_CV, shuffle=True, random_state=seed)
        else:
            folds = check_cv(TEACHER_CV, y, classifier=True)
        oof = feats = None
        for inner, held in folds.split(X, y):
            part = clone(teacher).fit(_rows(X, inner), y[inner])
            values, hidden = _outputs(part, _rows(X, held), task, features)
            if oof is None:
                oof = np.zeros((len(y), values.shape[1]))
            oof[held] = values
            if hidden is not None:
                if feats is None:
                    feats = np.zeros((len(y), hidden.shape[1]))
                feats[held] = hidden
        return oof, feats, clone(teacher).fit(X, y)


def _rows(X: Any, index: np.ndarray) -> Any:
    return X.iloc[index] if hasattr(X, "iloc") else np.asarray(X)[index]
