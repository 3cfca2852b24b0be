"""Stress scenarios: corrupt a fold's training rows in ``fit``, never the rows it is scored on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils.metaestimators import available_if

from lossreg.compare._bags import BAG_SCENARIOS, make_bags
from lossreg.compare._data import TASKS
from lossreg.compare._holdout import check_holdout, holdout_rows
from lossreg.compare._novel import check_novel_count, hide_novel_classes
from lossreg.compare._unlabeled import add_unlabeled, hide_labels, split_off_pool
from lossreg.compare._votes import expand_votes

__all__ = ["SCENARIOS", "Scenario", "StressedEstimator", "corrupt", "parse_scenario"]

#: kind -> (tasks it applies to, what its value means)
SCENARIOS: dict[str, tuple[tuple[str, ...], str]] = {
    "clean": (TASKS, "no corruption"),
    "symmetric_noise": (
        ("binary", "multiclass", "ordinal", "embedding"),
        "fraction of training labels replaced by a uniformly drawn other class",
    ),
    "class_noise": (
        ("binary", "multiclass", "ordinal", "embedding"),
        "class-dependent flips: each class k becomes class k+1 (mod C) with this probability; "
        "with two classes only the second class is flipped",
    ),
    "imbalance": (
        ("binary", "multiclass", "ordinal", "embedding"),
        "subsample classes with an exponential profile to this ratio n_max/n_min",
    ),
    "subsample": (
        ("binary", "multiclass", "regression", "multilabel", "embedding"),
        "fraction of the training rows kept (a random subset): a learning-curve point",
    ),
    "holdout_classes": (
        ("embedding",),
        "number of classes whose rows are all dropped from each training fold (drawn per fold); "
        "their test rows are novelties, scored by novelty_auroc",
    ),
    # see lossreg.compare._novel: novel-class discovery
    "novel_classes": (
        ("multiclass",),
        "number of classes whose training labels are hidden (-1, drawn per fold): "
        "semi-supervised losses train on those rows as unlabeled; their test rows are "
        "clustered in the model's latent space (novel_cluster_accuracy)",
    ),
    "missing_labels": (
        ("multilabel",),
        "fraction of the positive training labels hidden (set to 0), as when annotators mark "
        "only some of a row's labels",
    ),
    "unlabeled": (
        ("binary", "multiclass"),
        "fraction of each class's training labels hidden: semi-supervised losses get those "
        "rows as unlabeled (-1), the others are fitted without them",
    ),
    "target_noise": (
        ("regression", "multioutput"),
        "Gaussian noise of this many target standard deviations added to every training target",
    ),
    "outliers": (
        ("regression", "multioutput"),
        "fraction of training targets moved 5-10 target standard deviations away",
    ),
    # see lossreg.compare._bags: bag losses get bag targets, the others the true labels
    "bags": (
        ("binary", "multiclass", "ordinal", "regression"),
        "random bags of this many training rows; bag losses see only each bag's label "
        "proportions (mean response), the other losses the true labels",
    ),
    "sorted_bags": (
        ("binary", "multiclass", "ordinal", "regression"),
        "bags of this many training rows adjacent along a random feature direction (their "
        "proportions vary more); bag losses see only bag targets, the others the true labels",
    ),
    # see lossreg.compare._votes; needs vote columns; its value is not used
    "votes": (
        ("binary", "multiclass", "ordinal"),
        "train on every annotator vote (each row once per voted class, weighted by its vote "
        "share) instead of the majority label",
    ),
    "vote_noise": (
        ("ranking",),
        "soft pairwise preferences (queries of two rows) replaced by the share of this many "
        "Bernoulli votes",
    ),
}


#: scenario kinds written without a value
_VALUELESS = ("clean", "votes")


@dataclass(frozen=True)
class Scenario:
    """One stress scenario: a kind from :data:`SCENARIOS` and its strength."""

    kind: str = "clean"
    value: float = 0.0

    @property
    def label(self) -> str:
        return self.kind if self.kind in _VALUELESS else f"{self.kind}:{self.value:g}"

    def check(self, task: str) -> None:
        tasks, meaning = SCENARIOS[self.kind]
        if task not in tasks:
            raise ValueError(
                f"Scenario {self.label!r} does not apply to {task} targets (it applies to: "
                f"{', '.join(tasks)})."
            )
        rates = ("symmetric_noise", "class_noise", "outliers", "missing_labels", "unlabeled")
        if self.kind in rates and not 0 <= self.value < 1:
            raise ValueError(f"Scenario {self.label!r}: the rate must be in [0, 1) ({meaning}).")
        if self.kind == "subsample" and not 0 < self.value <= 1:
            raise ValueError(
                f"Scenario {self.label!r}: the fraction must be in (0, 1] ({meaning})."
            )
        if self.kind == "imbalance" and self.value < 1:
            raise ValueError(f"Scenario {self.label!r}: the ratio must be >= 1 ({meaning}).")
        if self.kind in BAG_SCENARIOS and (self.value < 2 or self.value != int(self.value)):
            raise ValueError(f"Scenario {self.label!r}: the bag size must be an integer >= 2.")
        if self.kind == "holdout_classes":
            check_holdout(self.label, self.value)
        if self.kind == "novel_classes":
            check_novel_count(self.label, self.value)
        if self.kind == "vote_noise" and (self.value < 1 or self.value != int(self.value)):
            raise ValueError(f"Scenario {self.label!r}: votes must be an integer >= 1.")
        if self.kind == "target_noise" and self.value < 0:
            raise ValueError(f"Scenario {self.label!r}: the scale must be >= 0 ({meaning}).")


def parse_scenario(text: str | Scenario) -> Scenario:
    """``"clean"``, ``"symmetric_noise:0.3"``, ``"imbalance:10"``, ``"outliers:0.1"`` ..."""
    if isinstance(text, Scenario):
        return text
    match = re.fullmatch(r"\s*([a-z_]+)\s*(?::\s*([0-9.eE+-]+))?\s*", text)
    kind = match.group(1) if match else None
    if kind not in SCENARIOS:
        raise ValueError(
            f"Unknown scenario {text!r}. Use KIND:VALUE with KIND one of: "
            f"{', '.join(SCENARIOS)} (e.g. symmetric_noise:0.3, imbalance:10)."
        )
    if kind in _VALUELESS:
        if match.group(2) is not None:
            raise ValueError(f"Scenario {kind!r} takes no value; write {kind!r}. Got {text!r}.")
        return Scenario(kind)
    if match.group(2) is None:
        raise ValueError(f"Scenario {text!r} needs a value: {kind}:VALUE ({SCENARIOS[kind][1]}).")
    return Scenario(kind, float(match.group(2)))


def corrupt(
    X: Any, y: Any, scenario: Scenario, random_state: int, groups: Any = None
) -> tuple[Any, np.ndarray, dict[str, Any]]:
    """Return the corrupted training rows ``(X, y)`` and what was done to them.

    Deterministic in ``random_state``; the input arrays are not modified. ``groups`` (query
    ids) pair the rows of ``vote_noise``.
    """
    rng = np.random.default_rng(random_state)
    y = np.asarray(y)
    info: dict[str, Any] = {"n_train": len(y)}
    kind, value = scenario.kind, scenario.value
    if kind == "clean":
        return X, y, info
    if kind in BAG_SCENARIOS or kind == "votes":
        raise ValueError(
            f"Scenario {scenario.label!r} replaces labels per loss (bags) or by votes; fit it "
            "through StressedEstimator, not corrupt()."
        )
    if kind in ("symmetric_noise", "class_noise"):
        classes, codes = np.unique(y, return_inverse=True)
        c = len(classes)
        flip = rng.random(len(y)) < value
        if kind == "symmetric_noise":
            # uniform over the *other* classes
            new = (codes + rng.integers(1, c, size=len(y))) % c
        else:
            new = (codes + 1) % c
            if c == 2:
                flip &= codes == 1
        codes = np.where(flip, new, codes)
        info["n_corrupted"] = int(flip.sum())
        return X, classes[codes], info
    if kind == "vote_noise":
        from lossreg.compare._ranksurv import vote_noise

        y, info["n_corrupted"] = vote_noise(y, int(value), groups, rng)
        return X, y, info
    if kind == "missing_labels":
        hide = (y == 1) & (rng.random(y.shape) < value)
        info["n_corrupted"] = int(hide.sum())
        return X, np.where(hide, 0, y), info
    if kind == "unlabeled":
        y_hidden, hidden = hide_labels(y, value, rng)
        return X, y_hidden, {**info, **hidden}
    if kind == "novel_classes":
        y_hidden, hidden = hide_novel_classes(y, int(value), rng)
        return X, y_hidden, {**info, **hidden}
    if kind == "subsample":
        n_keep = max(1, round(value * len(y)))
        index = np.sort(rng.choice(len(y), size=n_keep, replace=False))
        info["n_train"] = n_keep
        info["n_removed"] = len(y) - n_keep
        info["kept_rows"] = index
        return _take(X, index), y[index], info
    if kind == "imbalance":
        classes, codes = np.unique(y, return_inverse=True)
        counts = np.bincount(codes)
        order = np.argsort(-counts, kind="stable")
        head = counts[order[0]]
        c = len(classes)
        keep = []
        for rank, k in enumerate(order):
            share = value ** (-rank / (c - 1)) if c > 1 else 1.0
            n_k = int(min(counts[k], max(1, round(head * share))))
            rows = np.flatnonzero(codes == k)
            keep.append(np.sort(rng.choice(rows, size=n_k, replace=False)))
        index = np.sort(np.concatenate(keep))
        info["n_train"] = len(index)
        info["n_removed"] = len(y) - len(index)
        info["kept_rows"] = index  # for per-row fit parameters; not part of the record
        return _take(X, index), y[index], info
    if kind == "holdout_classes":
        index, info["held_out_classes"] = holdout_rows(y, int(value), rng)
        info["n_train"], info["n_removed"] = len(index), len(y) - len(index)
        info["kept_rows"] = index
        return _take(X, index), y[index], info
    values = y.astype(np.float64)
    # per target column: outputs in different units each get noise of their own scale
    spread = values.std(axis=0)
    scale = np.where(spread > 0, spread, 1.0)
    if kind == "target_noise":
        info["n_corrupted"] = len(values)
        return X, values + rng.normal(0.0, value * scale, size=values.shape), info
    # outliers
    hit = rng.random(values.shape) < value
    shift = rng.uniform(5.0, 10.0, size=values.shape) * rng.choice([-1.0, 1.0], size=values.shape)
    info["n_corrupted"] = int(hit.sum())
    return X, np.where(hit, values + shift * scale, values), info


def _take(X: Any, index: np.ndarray) -> Any:
    return X.iloc[index] if isinstance(X, (pd.DataFrame, pd.Series)) else X[index]


def _inner_has(name: str):  # type: ignore[no-untyped-def]
    def check(self: StressedEstimator) -> bool:
        inner = getattr(self, "estimator_", self.estimator)
        return hasattr(inner, name)

    return check


class StressedEstimator(BaseEstimator):
    """Fit a clone of ``estimator`` on training rows corrupted by ``scenario``; predict with it.

    Only ``fit`` sees corrupted rows, so cross-validation scores it on untouched folds.

    Parameters
    ----------
    estimator : estimator
        What to fit (a Pipeline of preprocessing and a lossreg estimator, typically).
    scenario : str
        A scenario label, e.g. ``"symmetric_noise:0.3"`` (see :data:`SCENARIOS`).
    random_state : int, default=0
        Seeds the corruption only; the estimator keeps its own seed.
    """

    def __init__(
        self,
        estimator: Any,
        scenario: str = "clean",
        random_state: int = 0,
        teacher: Any = None,
        teacher_cv: int = 3,
        bag_extras: tuple[str, ...] = (),
        regression: bool = False,
    ) -> None:
        self.estimator = estimator
        self.scenario = scenario
        self.random_state = random_state
        self.teacher = teacher
        self.teacher_cv = teacher_cv
        self.bag_extras = bag_extras
        self.regression = regression

    def fit(self, X: Any, y: Any, **fit_params: Any) -> StressedEstimator:
        """Fit on the corrupted rows; per-row ``fit_params`` follow the rows that are kept.

        With a ``teacher`` (a scikit-learn pipeline), its out-of-fold logits on the corrupted
        rows (``teacher_cv`` folds) reach the estimator as ``model__teacher_logits``: the
        teacher learns from the same stressed labels as the student, and no row's teacher
        logits come from a teacher that saw it. ``teacher_`` is the teacher refitted on every
        corrupted row, for scoring it.
        """
        # rows without a target (an unlabeled pool) are not corrupted; they join after
        X, y, fit_params, pool_X, pool_params = split_off_pool(X, np.asarray(y), fit_params)
        scenario = parse_scenario(self.scenario)
        votes = fit_params.pop("votes", None)  # the rows' vote counts, columns named by class
        if scenario.kind in BAG_SCENARIOS:
            return self._fit_bags(X, y, scenario, fit_params)
        if scenario.kind == "votes":
            if votes is None:
                raise ValueError("Scenario 'votes' needs fit(..., votes=<vote counts per row>).")
            X_c, y_c, vote_params = expand_votes(X, votes.to_numpy(), votes.columns.to_numpy())
            # per-row fit parameters (groups ...) follow their row into its copies
            rows = vote_params.pop("rows")
            fit_params = {k: _take(np.asarray(v), rows) for k, v in fit_params.items()}
            fit_params.update(vote_params)
            info = {"n_train": len(y), "n_vote_rows": len(y_c)}
        else:
            X_c, y_c, info = corrupt(
                X, y, scenario, self.random_state, groups=fit_params.get("model__group")
            )
        kept = info.pop("kept_rows", None)
        if kept is not None:
            fit_params = {k: _take(np.asarray(v), kept) for k, v in fit_params.items()}
        X_c, y_c, fit_params = add_unlabeled(
            self.estimator,
            X_c,
            y_c,
            fit_params,
            info,
            pool_X,
            pool_params,
            marked=scenario.kind in ("unlabeled", "novel_classes"),
        )
        if hasattr(self.teacher, "fit_params"):  # compare's teachers (``_teachers``)
            fit_params.update(self.teacher.fit_params(X_c, y_c))
            self.teacher_ = self.teacher
        elif self.teacher is not None:
            from lossreg import teacher_logits

            fit_params["model__teacher_logits"] = teacher_logits(
                clone(self.teacher), X_c, y_c, cv=self.teacher_cv
            ).astype(np.float32)
            self.teacher_ = clone(self.teacher).fit(X_c, y_c)
        self.corruption_ = info
        self.kept_rows_ = kept  # which training rows survived (None: all), for per-row data
        # what the model was fitted on, for probes trained on its outputs (embeddings)
        self.fit_rows_ = (X_c, y_c)
        self.estimator_ = clone(self.estimator).fit(X_c, y_c, **fit_params)
        return self

    def _fit_bags(self, X: Any, y: Any, scenario: Scenario, fit_params: dict) -> StressedEstimator:
        """A bag scenario: ``bag_extras`` (the loss's) get bag ids / targets, ``y`` what they
        hold; a loss without them is fitted on the true labels (the supervised reference)."""
        if self.teacher is not None:
            raise ValueError(
                f"Scenario {scenario.label!r} fits no teacher: a teacher would need labels the "
                "bag losses do not see. Drop the teacher or the bag scenario."
            )
        bag, target, y_seen = make_bags(
            X,
            y,
            int(scenario.value),
            sort=scenario.kind == "sorted_bags",
            regression=self.regression,
            random_state=self.random_state,
        )
        info: dict[str, Any] = {"n_train": len(bag), "n_bags": int(bag.max()) + 1}
        if self.bag_extras:
            values = {"bag": bag, "bag_target": target.astype(np.float32)}
            fit_params = {**fit_params, **{f"model__{e}": values[e] for e in self.bag_extras}}
            y = y_seen
        self.corruption_ = info
        self.fit_rows_ = (X, np.asarray(y))
        self.estimator_ = clone(self.estimator).fit(X, np.asarray(y), **fit_params)
        return self

    @property
    def classes_(self) -> np.ndarray:
        return self.estimator_.classes_

    def predict(self, X: Any) -> Any:
        return self.estimator_.predict(X)

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        return self.estimator_.predict_proba(X)
