"""LossSurvivalRegressor: right-censored survival times with any registered survival loss."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_consistent_length

from lossreg.errors import MissingFitExtraError

from ._base import LossEstimatorBase, fit_extras_from

__all__ = ["LossSurvivalRegressor", "concordance_index"]

#: Event rows compared with all rows at once in :func:`concordance_index` (bounds memory).
_CHUNK = 1024


def concordance_index(time: Any, event: Any, risk: Any, sample_weight: Any = None) -> float:
    r"""Harrell's concordance index of risk scores for right-censored times.

    A pair :math:`(i, j)` is comparable when row :math:`i` had its event first:
    :math:`\delta_i = 1` and :math:`t_i < t_j`, or :math:`t_i = t_j` with :math:`j`
    censored (scikit-survival's ``concordance_index_censored`` convention). It is concordant
    when :math:`r_i > r_j` (the earlier event had the higher risk); tied risks count 1/2.

    .. math::

        C = \frac{\sum_{i,j\ \mathrm{comparable}} w_i w_j\,
                  (\mathbb 1[r_i > r_j] + \tfrac12\mathbb 1[r_i = r_j])}
                 {\sum_{i,j\ \mathrm{comparable}} w_i w_j}

    Parameters
    ----------
    time : array-like of shape (n_samples,)
        Observed times (event or censoring).
    event : array-like of shape (n_samples,)
        1 (or True) when the event was observed, 0 when censored.
    risk : array-like of shape (n_samples,)
        Higher means an earlier expected event (pass ``-predicted_time`` for times).
    sample_weight : array-like of shape (n_samples,), optional
        Row weights; a pair counts :math:`w_i w_j` (1 without weights).

    Returns
    -------
    float
        0.5 for a random ranking, 1 for a perfect one.

    Raises
    ------
    ValueError
        When no pair is comparable (no event, or every event at the largest time).

    Notes
    -----
    The comparable pairs follow scikit-survival's ``_get_comparable`` (checked in its
    source: an event is comparable with every later time and with censored rows at its own
    time; two events at the same time are not compared). Differences: risks tie only when
    exactly equal (scikit-survival uses a tolerance of 1e-8), and weights are row frequencies
    (pair weight :math:`w_iw_j`), not scikit-survival's inverse-probability-of-censoring
    weights on the earlier row only. The test compares it with a double loop over all pairs.

    Examples
    --------
    >>> concordance_index([1.0, 2.0, 3.0, 4.0], [1, 1, 0, 1], [4.0, 3.0, 2.0, 1.0])
    1.0
    >>> concordance_index([1.0, 2.0, 3.0, 4.0], [1, 0, 1, 0], [1.0, 1.0, 2.0, 1.0])
    0.5
    """
    time = np.asarray(time, dtype=np.float64).reshape(-1)
    event = np.asarray(event).reshape(-1).astype(bool)
    risk = np.asarray(risk, dtype=np.float64).reshape(-1)
    check_consistent_length(time, event, risk)
    weights = (
        np.ones_like(time)
        if sample_weight is None
        else np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    )
    check_consistent_length(time, weights)
    numerator = denominator = 0.0
    events = np.flatnonzero(event)
    for start in range(0, len(events), _CHUNK):
        rows = events[start : start + _CHUNK]
        t_i, r_i = time[rows, None], risk[rows, None]
        comparable = (time[None, :] > t_i) | ((time[None, :] == t_i) & ~event[None, :])
        pair_weight = comparable * (weights[rows, None] * weights[None, :])
        credit = (r_i > risk[None, :]) + 0.5 * (r_i == risk[None, :])
        numerator += float((pair_weight * credit).sum())
        denominator += float(pair_weight.sum())
    if denominator == 0:
        raise ValueError(
            "No comparable pair: the concordance index needs at least one observed event "
            "(event=1) before another row's time."
        )
    return numerator / denominator


def split_survival_target(y: Any, event: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (times, event) from ``y`` and ``event``, or from a structured ``y``.

    A structured array with two fields (scikit-survival's ``Surv.from_arrays``: a boolean
    event field and a float time field) carries both; ``event`` must then be None.
    """
    array = np.asarray(y)
    names = array.dtype.names
    if names is None:
        return array, None if event is None else np.asarray(event)
    if len(names) != 2:
        raise ValueError(
            f"A structured survival target needs exactly two fields (event, time). Got fields "
            f"{names!r}."
        )
    if event is not None:
        raise ValueError(
            "The structured y already holds the event indicator; do not pass event=... too."
        )
    flags = [name for name in names if array.dtype[name].kind == "b"]
    event_name = flags[0] if len(flags) == 1 else names[0]  # Surv's order: event, time
    time_name = names[1] if event_name == names[0] else names[0]
    # Fields of a structured array are strided views: copy them into plain arrays.
    return np.ascontiguousarray(array[time_name]), np.ascontiguousarray(array[event_name])


def _check_times(times: np.ndarray) -> np.ndarray:
    try:
        times = np.asarray(times, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Survival times must be numbers. Got dtype {times.dtype}.") from exc
    if times.ndim == 2 and times.shape[1] == 1:
        times = times.ravel()
    if times.ndim != 1:
        raise ValueError(
            f"y must be one observed time per row, shape (n_samples,). Got shape {times.shape}; "
            "pass the event indicator as fit(X, y, event=...) or y as a structured "
            "(event, time) array."
        )
    bad = ~np.isfinite(times) | (times <= 0)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"Survival times must be finite and > 0; {int(bad.sum())} are not (row {first}: "
            f"{times[first]!r}). Use the time from the origin to the event or censoring, "
            "e.g. days since diagnosis; add a small offset if some times are 0."
        )
    return times


def _check_event(event: np.ndarray | None, n: int) -> np.ndarray:
    if event is None:
        raise MissingFitExtraError(
            "LossSurvivalRegressor needs the event indicator: pass fit(X, y, event=...) with 1 "
            "(event observed) or 0 (censored) per row, or y as a structured (event, time) array."
        )
    event = np.asarray(event).reshape(-1)
    if event.shape[0] != n:
        raise ValueError(f"event has {event.shape[0]} values but y has {n}; pass one per row.")
    values = set(np.unique(event).tolist())
    if not values <= {0, 1}:
        raise ValueError(
            f"event must hold 1 (event observed) or 0 (censored) per row. Got values "
            f"{sorted(values, key=repr)[:5]!r}."
        )
    return event.astype(np.int64)


class LossSurvivalRegressor(LossEstimatorBase):
    """A neural-network survival model for right-censored times, trained with a survival loss.

    ``fit(X, y, event=...)``: ``y`` the observed time (> 0, the event or the censoring
    time), ``event`` 1 when the event was observed and 0 when the row is censored; or ``y``
    a structured array holding both (scikit-survival's ``Surv.from_arrays(event, time)``).
    Any loss registered for the ``survival`` task (``lossreg list --task survival``):
    ``weibull_survival_nll`` (default), ``loglogistic_survival_nll``, ``apgw_survival_nll``,
    ``logistic_hazard``. Other parameters are those of :class:`~lossreg.LossClassifier`
    without ``class_weight``.

    Parameters
    ----------
    loss : str or LossSpec, default="weibull_survival_nll"
        A registered survival loss or alias, or a spec. Non-survival losses are refused at fit.
    module, max_iter, batch_size, lr, optimizer, weight_decay, early_stopping, \
validation_fraction, n_iter_no_change, tol, random_state, device, verbose, warm_start, \
callbacks, **kwargs
        As in :class:`~lossreg.LossClassifier`.

    Attributes
    ----------
    net_, module_, criterion_, history_, data_params_, n_iter_
        As in :class:`~lossreg.LossClassifier` (``data_params_`` holds ``target_max``, the
        largest training time, for ``logistic_hazard``).

    Notes
    -----
    ``predict`` returns the loss's link: every built-in survival loss predicts the **median
    survival time** in the units of ``y`` (``(log 2 / rho)^(1/gamma)`` for the Weibull model;
    for ``logistic_hazard`` the upper edge of the first time bin where the survival curve
    drops to 1/2, or the last edge when it never does). ``predict_risk`` gives a risk score
    (higher = earlier event): the loss's own ``risk_score`` when it has one
    (``logistic_hazard``: the event probability by the last bin edge, which has no ties
    unlike the binned median), otherwise minus the predicted median time. ``score`` is
    Harrell's concordance index (:func:`concordance_index`) of ``predict_risk``.

    Times are used as given: the parametric likelihoods contain :math:`t^\\gamma`, so times of
    order 1 (divide by the median training time, and multiply predictions back) train best.

    ``event`` (and ``sample_weight``) travel through ``Pipeline`` and ``GridSearchCV`` with
    scikit-learn's metadata routing: ``set_fit_request(event=True)`` and, for the default
    scoring, ``set_score_request(event=True)``. Without routing, pass ``y`` as a structured
    (event, time) array: cross-validation then splits times and events together, and
    ``score`` finds the events in ``y``.

    Examples
    --------
    >>> import numpy as np
    >>> from lossreg import LossSurvivalRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3))
    >>> true_time = np.exp(0.8 * X[:, 0]) * rng.weibull(1.5, size=200)
    >>> censor = rng.exponential(2.0, size=200)
    >>> y, event = np.minimum(true_time, censor), (true_time <= censor).astype(int)
    >>> model = LossSurvivalRegressor(max_iter=30, random_state=0).fit(X, y, event=event)
    >>> model.predict(X[:3]).shape
    (3,)
    >>> bool(model.score(X, y, event=event) > 0.6)
    True
    """

    _tasks = ("survival",)

    def __init__(
        self,
        loss: Any = "weibull_survival_nll",
        *,
        module: Any = None,
        max_iter: int = 200,
        batch_size: int | str = "auto",
        lr: float = 1e-3,
        optimizer: Any = "adamw",
        weight_decay: float = 0.0,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        tol: float = 1e-4,
        random_state: Any = None,
        device: Any = "cpu",
        verbose: int = 0,
        warm_start: bool = False,
        callbacks: list[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.loss = loss
        self.module = module
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.warm_start = warm_start
        self.callbacks = callbacks
        self._store_prefixed(kwargs)

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        event: Any = None,
        group: Any = None,
        bag: Any = None,
        bag_target: Any = None,
        teacher_logits: Any = None,
        sample_index: Any = None,
        rejected_label: Any = None,
        teacher_features: Any = None,
        bid: Any = None,
        value: Any = None,
    ) -> LossSurvivalRegressor:
        """Train on features ``X``, observed times ``y`` and the ``event`` indicator.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), or structured array with fields (event, time)
            Observed times, > 0.
        sample_weight : array-like of shape (n_samples,), optional
        event : array-like of shape (n_samples,)
            1 (event observed) or 0 (censored); required unless ``y`` is structured.
        group, bag, ... : array-like, optional
            Further per-row extras, for losses that declare them.
        """
        extras = fit_extras_from(locals())
        times, flags = split_survival_target(y, event)
        times = _check_times(times)
        extras["event"] = _check_event(flags, times.shape[0])
        return self._fit(X, times, sample_weight, extras)

    def _prepare_target(self, y: Any) -> tuple[str, np.ndarray, int]:
        self.n_outputs_ = 1
        return "survival", np.asarray(y, dtype=np.float64).reshape(-1), 1

    def _data_task(self, task: str) -> str:
        # Time-scale data params (target_max: the bin range) are those of a regression target.
        return "regression"

    def predict(self, X: Any) -> np.ndarray:
        """Predicted median survival time per row, shape (n_samples,), in the units of ``y``."""
        return self._linked(X).reshape(-1)

    def predict_risk(self, X: Any) -> np.ndarray:
        """Risk score per row (higher = earlier event), shape (n_samples,).

        The loss's ``risk_score`` when it has one, otherwise minus the predicted median time.
        """
        if callable(getattr(getattr(self, "criterion_", None), "risk_score", None)):
            return self._criterion_method(X, "risk_score").reshape(-1)
        return -self.predict(X)

    @available_if(lambda self: self._loss_offers("survival"))
    def predict_survival(self, X: Any, times: Any) -> np.ndarray:
        """Predicted survival probability :math:`S(t \\mid x)` of each row at each of ``times``.

        Available when the loss gives survival curves (every built-in survival loss does).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        times : array-like of shape (n_times,)
            Times in the units of ``y``.

        Returns
        -------
        ndarray of shape (n_samples, n_times)
        """
        grid = torch.as_tensor(np.asarray(times, dtype=np.float64).reshape(-1))
        return self._criterion_method(X, "survival", times=grid)

    def score(self, X: Any, y: Any, sample_weight: Any = None, *, event: Any = None) -> float:
        """Harrell's concordance index of :meth:`predict_risk` on ``(y, event)``.

        ``y`` and ``event`` as in :meth:`fit`; ``sample_weight`` weights pair
        :math:`(i, j)` by :math:`w_i w_j`.
        """
        times, flags = split_survival_target(y, event)
        times = _check_times(times)
        flags = _check_event(flags, times.shape[0])
        return concordance_index(times, flags, self.predict_risk(X), sample_weight)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = False
        return tags
