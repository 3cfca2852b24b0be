"""Stress scenarios: corrupt a fold's training rows in ``fit``, never the rows it is scored on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils.metaestimators import available_if

__all__ = ["SCENARIOS", "Scenario", "StressedEstimator", "corrupt", "parse_scenario"]

#: kind -> (tasks it applies to, what its value means)
SCENARIOS: dict[str, tuple[tuple[str, ...], str]] = {
    "clean": (
        ("binary", "multiclass", "regression", "multilabel", "embedding", "ranking", "survival"),
        "no corruption",
    ),
    "symmetric_noise": (
        ("binary", "multiclass", "embedding"),
        "fraction of training labels replaced by a uniformly drawn other class",
    ),
    "class_noise": (
        ("binary", "multiclass", "embedding"),
        "class-dependent flips: each class k becomes class k+1 (mod C) with this probability; "
        "with two classes only the second class is flipped",
    ),
    "imbalance": (
        ("binary", "multiclass", "embedding"),
        "subsample classes with an exponential profile to this ratio n_max/n_min",
    ),
    "missing_labels": (
        ("multilabel",),
        "fraction of the positive training labels hidden (set to 0), as when annotators mark "
        "only some of a row's labels",
    ),
    "target_noise": (
        ("regression",),
        "Gaussian noise of this many target standard deviations added to every training target",
    ),
    "outliers": (
        ("regression",),
        "fraction of training targets moved 5-10 target standard deviations away",
    ),
    "vote_noise": (
        ("ranking",),
        "soft pairwise preferences (queries of two rows) replaced by the share of this many "
        "Bernoulli votes",
    ),
}


@dataclass(frozen=True)
class Scenario:
    """One stress scenario: a kind from :data:`SCENARIOS` and its strength."""

    kind: str = "clean"
    value: float = 0.0

    @property
    def label(self) -> str:
        return "clean" if self.kind == "clean" else f"{self.kind}:{self.value:g}"

    def check(self, task: str) -> None:
        tasks, meaning = SCENARIOS[self.kind]
        if task not in tasks:
            raise ValueError(
                f"Scenario {self.label!r} does not apply to {task} targets (it applies to: "
                f"{', '.join(tasks)})."
            )
        rates = ("symmetric_noise", "class_noise", "outliers", "missing_labels")
        if self.kind in rates and not 0 <= self.value < 1:
            raise ValueError(f"Scenario {self.label!r}: the rate must be in [0, 1) ({meaning}).")
        if self.kind == "imbalance" and self.value < 1:
            raise ValueError(f"Scenario {self.label!r}: the ratio must be >= 1 ({meaning}).")
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
    if kind == "clean":
        return Scenario()
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
    values = y.astype(np.float64)
    scale = float(values.std()) or 1.0
    if kind == "target_noise":
        info["n_corrupted"] = len(values)
        return X, values + rng.normal(0.0, value * scale, size=values.shape), info
    # outliers
    hit = rng.random(len(values)) < value
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
    ) -> None:
        self.estimator = estimator
        self.scenario = scenario
        self.random_state = random_state
        self.teacher = teacher
        self.teacher_cv = teacher_cv

    def fit(self, X: Any, y: Any, **fit_params: Any) -> StressedEstimator:
        """Fit on the corrupted rows; per-row ``fit_params`` follow the rows that are kept.

        With a ``teacher`` (a scikit-learn pipeline), its out-of-fold logits on the corrupted
        rows (``teacher_cv`` folds) reach the estimator as ``model__teacher_logits``: the
        teacher learns from the same stressed labels as the student, and no row's teacher
        logits come from a teacher that saw it. ``teacher_`` is the teacher refitted on every
        corrupted row, for scoring it.
        """
        X_c, y_c, info = corrupt(
            X,
            y,
            parse_scenario(self.scenario),
            self.random_state,
            groups=fit_params.get("model__group"),
        )
        kept = info.pop("kept_rows", None)
        if kept is not None:
            fit_params = {k: _take(np.asarray(v), kept) for k, v in fit_params.items()}
        if self.teacher is not None:
            from lossreg import teacher_logits

            fit_params["model__teacher_logits"] = teacher_logits(
                clone(self.teacher), X_c, y_c, cv=self.teacher_cv
            ).astype(np.float32)
            self.teacher_ = clone(self.teacher).fit(X_c, y_c)
        self.corruption_ = info
        # what the model was fitted on, for probes trained on its outputs (embeddings)
        self.fit_rows_ = (X_c, y_c)
        self.estimator_ = clone(self.estimator).fit(X_c, y_c, **fit_params)
        return self

    @property
    def classes_(self) -> np.ndarray:
        return self.estimator_.classes_

    def predict(self, X: Any) -> Any:
        return self.estimator_.predict(X)

    @available_if(_inner_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        return self.estimator_.predict_proba(X)
