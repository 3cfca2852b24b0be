"""QuantileAggregator: quantile regressors combined with per-level weights from held-out rows."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin, clone
from sklearn.model_selection import train_test_split
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import _num_samples, check_is_fitted, column_or_1d

__all__ = ["COMBINE", "QuantileAggregator", "pinball_per_level", "simplex_pinball_weights"]

#: how the members' quantiles are combined, per level
COMBINE = ("weighted", "best_single", "mean")


def pinball_per_level(y: np.ndarray, quantiles: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Mean pinball loss of each level's column: ``(n, Q)`` predictions -> ``(Q,)``."""
    residual = np.asarray(y, dtype=np.float64)[:, None] - np.asarray(quantiles, dtype=np.float64)
    tau = np.asarray(levels, dtype=np.float64)[None, :]
    return np.maximum(tau * residual, (tau - 1.0) * residual).mean(axis=0)


def simplex_pinball_weights(y: np.ndarray, predictions: np.ndarray, level: float) -> np.ndarray:
    """Non-negative weights summing to 1 that minimise the pinball loss of ``predictions @ w``.

    ``predictions`` is ``(n, M)``: the M members' quantiles at ``level`` for n rows. The
    problem is a linear program (the pinball loss is piecewise linear, the simplex a
    polytope), solved exactly by HiGHS: minimise ``level * sum(u+) + (1 - level) * sum(u-)``
    subject to ``predictions @ w + u+ - u- = y``, ``sum(w) = 1``, ``w, u+, u- >= 0``.
    """
    from scipy import sparse
    from scipy.optimize import linprog

    y = np.asarray(y, dtype=np.float64)
    predictions = np.asarray(predictions, dtype=np.float64)
    n, m = predictions.shape
    identity = sparse.identity(n, format="csr")
    equalities = sparse.vstack(
        [
            sparse.hstack([sparse.csr_matrix(predictions), identity, -identity]),
            sparse.hstack([np.ones((1, m)), sparse.csr_matrix((1, 2 * n))]),
        ],
        format="csr",
    )
    cost = np.concatenate([np.zeros(m), np.full(n, level / n), np.full(n, (1.0 - level) / n)])
    solution = linprog(
        cost, A_eq=equalities, b_eq=np.append(y, 1.0), bounds=(0, None), method="highs"
    )
    if solution.status != 0:
        raise RuntimeError(
            f"The weights of level {level:g} could not be learned: {solution.message}"
        )
    # the solver may return -1e-12 for a zero weight: clip, then restore the sum of 1
    weights = np.clip(solution.x[:m], 0.0, None)
    return weights / weights.sum()


def _member_levels(member: Any) -> np.ndarray | None:
    """The quantile levels a fitted member says it predicts (a LossRegressor's loss), if any."""
    levels = getattr(getattr(member, "criterion_", None), "levels_", None)
    if levels is None:
        return None
    return np.asarray(levels.detach().cpu().numpy(), dtype=np.float64).ravel()


class QuantileAggregator(RegressorMixin, _BaseComposition):
    """Combine several quantile regressors with non-negative weights per quantile level.

    Each member is fitted on ``1 - holdout`` of the rows; on the held-out rest, every member's
    mean pinball loss is measured per level and, with ``combine="weighted"``, the weights
    :math:`w_{m\\tau} \\ge 0`, :math:`\\sum_m w_{m\\tau} = 1` of each level :math:`\\tau` are
    those minimising the held-out pinball loss of :math:`\\sum_m w_{m\\tau} \\hat q_{m\\tau}(x)`
    (a linear program, solved exactly). The aggregate quantiles are sorted per row, which can
    only lower the pinball loss and the weighted interval score of crossing quantiles.

    The member with the lowest held-out pinball loss (averaged over the levels) is kept as
    ``best_member_`` whatever ``combine`` is: ``combine="best_single"`` predicts with it
    alone, the model selection the aggregation is measured against; ``combine="mean"`` gives
    every member the same weight.

    Parameters
    ----------
    members : list of (str, estimator), optional
        Named regressors with ``predict_quantiles(X)`` returning ``(n_samples, n_levels)`` at
        ``quantiles`` (e.g. :class:`~lossreg.LossRegressor` with ``loss="pinball"`` and
        ``loss__quantiles=quantiles``, or ``"quantile_huber"`` / ``"weighted_interval_score"``
        at the same levels). Default: three pinball LossRegressors at ``quantiles`` of
        different capacity, ``module__hidden_units`` (128, 64), (32,) and () (linear).
    quantiles : sequence of float in (0, 1), strictly increasing, default=(0.1, 0.5, 0.9)
        The levels. A member whose loss reports other levels is refused.
    combine : {"weighted", "best_single", "mean"}, default="weighted"
    holdout : float in (0, 1), default=0.25
        Share of the rows held out to measure the members and learn the weights.
    refit : bool, default=False
        Refit every member on all the rows once the weights are learned. The default keeps
        the members fitted on ``1 - holdout`` of the rows: the weights (and the choice of the
        best member) were learned for the errors of exactly these models, and a refitted
        network errs differently (a different number of optimisation steps and rows), so the
        held-out evidence would no longer describe what is predicted; keeping them also halves
        the cost. ``refit=True`` trades that for members trained on every row.
    random_state : int, RandomState or None, default=None
        Seeds the held-out split (members keep their own ``random_state``; default members
        get one drawn from it).

    Attributes
    ----------
    members_ : list of (str, estimator)
        The fitted members.
    levels_ : ndarray of shape (n_levels,)
    weights_ : ndarray of shape (n_members, n_levels)
        The weights used by ``predict_quantiles``; each column sums to 1.
    learned_weights_ : ndarray of shape (n_members, n_levels)
        The held-out pinball-optimal weights (computed with every ``combine``).
    member_pinball_ : ndarray of shape (n_members, n_levels)
        Each member's held-out mean pinball loss per level.
    best_member_ : str
        The name of the member with the lowest held-out pinball loss.
    best_index_ : int
    holdout_pinball_ : dict
        Held-out mean pinball loss of ``"weighted"``, ``"best_single"`` and ``"mean"``
        (in-sample for ``"weighted"``, whose weights were learned on these rows).
    n_features_in_ : int

    References
    ----------
    R. Fakoor, T. Kim, J. Mueller, A. J. Smola, R. J. Tibshirani. "Flexible Model
    Aggregation for Quantile Regression." Journal of Machine Learning Research 24, 2023,
    arXiv:2103.00083. (Weights per model and quantile level; the paper also lets them vary
    with the features, which is not implemented here.)

    Examples
    --------
    >>> import numpy as np
    >>> from lossreg import LossRegressor
    >>> from lossreg.estimators import QuantileAggregator
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, size=(200, 2))
    >>> y = X[:, 0] + (0.2 + 0.5 * np.abs(X[:, 1])) * rng.standard_normal(200)
    >>> levels = (0.1, 0.5, 0.9)
    >>> members = [
    ...     (name, LossRegressor(loss="pinball", loss__quantiles=levels, max_iter=5,
    ...                          module__hidden_units=units, random_state=0))
    ...     for name, units in [("mlp", (32,)), ("linear", ())]
    ... ]
    >>> model = QuantileAggregator(members, quantiles=levels, random_state=0).fit(X, y)
    >>> model.predict_quantiles(X[:3]).shape, model.weights_.sum(axis=0).round(6).tolist()
    ((3, 3), [1.0, 1.0, 1.0])
    """

    def __init__(
        self,
        members: list[tuple[str, Any]] | None = None,
        *,
        quantiles: Any = (0.1, 0.5, 0.9),
        combine: str = "weighted",
        holdout: float = 0.25,
        refit: bool = False,
        random_state: Any = None,
    ) -> None:
        self.members = members
        self.quantiles = quantiles
        self.combine = combine
        self.holdout = holdout
        self.refit = refit
        self.random_state = random_state

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters, and with ``deep`` every member's as ``NAME__param``."""
        return self._get_params("members", deep=deep)

    def set_params(self, **params: Any) -> QuantileAggregator:
        """Set parameters, a member (``NAME=estimator``) or a member's (``NAME__param``)."""
        self._set_params("members", **params)
        return self

    def _checked(self) -> tuple[np.ndarray, list[tuple[str, Any]]]:
        """The levels and the named members; every problem in one ``ValueError``."""
        problems = []
        try:
            levels = np.asarray(self.quantiles, dtype=np.float64).ravel()
        except (TypeError, ValueError):  # strings, None, ragged lists: reported below
            levels = np.array([], dtype=np.float64)
        if (
            levels.size == 0
            or not np.all(np.isfinite(levels))
            or np.any((levels <= 0) | (levels >= 1))
            or np.any(np.diff(levels) <= 0)
        ):
            problems.append(
                f"quantiles must be strictly increasing levels in (0, 1), e.g. (0.1, 0.5, 0.9). "
                f"Got {self.quantiles!r}"
            )
        if self.combine not in COMBINE:
            problems.append(f"combine must be one of {', '.join(COMBINE)}. Got {self.combine!r}")
        if not (isinstance(self.holdout, float) and 0 < self.holdout < 1):
            problems.append(f"holdout must be a float in (0, 1), e.g. 0.25. Got {self.holdout!r}")
        members = self.members if self.members is not None else self._default_members(levels)
        if not isinstance(members, (list, tuple)) or not members:
            problems.append(
                f"members must be a non-empty list of (name, estimator) pairs. Got {members!r}"
            )
        else:
            malformed = [
                m
                for m in members
                if not (isinstance(m, tuple) and len(m) == 2 and isinstance(m[0], str))
            ]
            names = [m[0] for m in members if m not in malformed]
            if malformed:
                problems.append(f"every member must be a (name, estimator) pair; got {malformed!r}")
            elif len(set(names)) != len(names) or any("__" in n for n in names):
                problems.append(f"member names must be distinct and without '__'. Got {names!r}")
        if problems:
            raise ValueError("QuantileAggregator: " + "; ".join(problems) + ".")
        return levels, list(members)

    def _default_members(self, levels: np.ndarray) -> list[tuple[str, Any]]:
        from lossreg.estimators.regressor import LossRegressor

        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        return [
            (
                name,
                LossRegressor(
                    loss="pinball",
                    loss__quantiles=tuple(float(v) for v in levels),
                    module__hidden_units=units,
                    random_state=seed,
                ),
            )
            for name, units in (("mlp_128_64", (128, 64)), ("mlp_32", (32,)), ("linear", ()))
        ]

    def fit(self, X: Any, y: Any) -> QuantileAggregator:
        """Fit the members on part of the rows, learn the weights on the held-out rest."""
        levels, members = self._checked()
        y = column_or_1d(np.asarray(y, dtype=np.float64), warn=True)
        n = _num_samples(X)
        if n != len(y):
            raise ValueError(f"X has {n} rows and y has {len(y)}; they must match.")
        fit_rows, held_rows = train_test_split(
            np.arange(n), test_size=self.holdout, random_state=self.random_state
        )
        X_fit, X_held = _safe_indexing(X, fit_rows), _safe_indexing(X, held_rows)
        fitted = [(name, clone(member).fit(X_fit, y[fit_rows])) for name, member in members]
        held = np.stack(
            [self._member_quantiles(name, m, X_held, levels) for name, m in fitted]
        )  # (M, n_held, Q)
        y_held = y[held_rows]
        self.levels_ = levels
        self.member_pinball_ = np.stack([pinball_per_level(y_held, q, levels) for q in held])
        self.best_index_ = int(np.argmin(self.member_pinball_.mean(axis=1)))
        self.best_member_ = fitted[self.best_index_][0]
        self.learned_weights_ = np.stack(
            [
                simplex_pinball_weights(y_held, held[:, :, j].T, levels[j])
                for j in range(len(levels))
            ],
            axis=1,
        )
        n_members = len(fitted)
        best = np.zeros((n_members, len(levels)))
        best[self.best_index_] = 1.0
        candidates = {
            "weighted": self.learned_weights_,
            "best_single": best,
            "mean": np.full((n_members, len(levels)), 1.0 / n_members),
        }
        self.weights_ = candidates[self.combine]
        self.holdout_pinball_ = {
            name: float(pinball_per_level(y_held, self._combine(held, w), levels).mean())
            for name, w in candidates.items()
        }
        if self.refit:
            fitted = [(name, clone(member).fit(X, y)) for name, member in members]
        self.members_ = fitted
        n_features = getattr(fitted[0][1], "n_features_in_", None)
        if n_features is not None:
            self.n_features_in_ = n_features
        return self

    def _member_quantiles(self, name: str, member: Any, X: Any, levels: np.ndarray) -> np.ndarray:
        """A member's ``(n, Q)`` quantiles; a ``ValueError`` names a member that has others."""
        own = _member_levels(member)
        if own is not None and (own.shape != levels.shape or not np.allclose(own, levels)):
            raise ValueError(
                f"Member {name!r} predicts the levels {own.round(6).tolist()}, the aggregator "
                f"{levels.round(6).tolist()}. Fit it at the same levels (loss__quantiles=...) or "
                "set quantiles= to its levels."
            )
        if not hasattr(member, "predict_quantiles"):
            raise ValueError(
                f"Member {name!r} ({type(member).__name__}) has no predict_quantiles; use a "
                "quantile regressor, e.g. LossRegressor(loss='pinball', loss__quantiles=...)."
            )
        values = np.asarray(member.predict_quantiles(X), dtype=np.float64)
        if values.shape != (_num_samples(X), len(levels)):
            raise ValueError(
                f"Member {name!r} predicts quantiles of shape {values.shape}; the aggregator "
                f"needs (n_samples, {len(levels)}) for its levels {levels.tolist()} (one target)."
            )
        return values

    @staticmethod
    def _combine(quantiles: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """``(M, n, Q)`` member quantiles, ``(M, Q)`` weights -> ``(n, Q)``, sorted per row."""
        return np.sort(np.einsum("mnq,mq->nq", quantiles, weights), axis=1)

    def predict_quantiles(self, X: Any) -> np.ndarray:
        """Aggregated quantiles at ``levels_``: (n_samples, n_levels), sorted per row."""
        check_is_fitted(self, "weights_")
        stacked = np.stack(
            [self._member_quantiles(name, m, X, self.levels_) for name, m in self.members_]
        )
        return self._combine(stacked, self.weights_)

    def predict(self, X: Any) -> np.ndarray:
        """The aggregated quantile at the level closest to 0.5."""
        j = int(np.argmin(np.abs(self.levels_ - 0.5))) if hasattr(self, "levels_") else 0
        return self.predict_quantiles(X)[:, j]

    def predict_interval(self, X: Any, alpha: float = 0.1) -> np.ndarray:
        """Central ``1 - alpha`` intervals (n_samples, 2) from the levels ``alpha / 2`` and
        ``1 - alpha / 2``, which must be among ``levels_`` (they are not interpolated)."""
        check_is_fitted(self, "weights_")
        wanted = (alpha / 2, 1 - alpha / 2)
        found = [int(np.argmin(np.abs(self.levels_ - w))) for w in wanted]
        if any(abs(self.levels_[j] - w) > 1e-9 for j, w in zip(found, wanted, strict=True)):
            raise ValueError(
                f"A {1 - alpha:g} interval needs the levels {wanted[0]:g} and {wanted[1]:g}; "
                f"this aggregator has {self.levels_.round(6).tolist()}. Pass alpha = 2 * (a "
                "lower level), or fit with quantiles including both."
            )
        return self.predict_quantiles(X)[:, found]
