"""LossRanker: learning to rank within queries with any registered ranking loss."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.metrics import ndcg_score
from sklearn.model_selection import GroupShuffleSplit
from sklearn.utils.validation import check_consistent_length, column_or_1d

from lossreg.spec import LossSpec

from ._base import LossEstimatorBase, _ValidationSplit, fit_extras_from
from ._batches import TensorBatches
from ._net import LossNet

__all__ = ["LossRanker", "mean_ndcg"]


def mean_ndcg(
    y: Any, scores: Any, group: Any, *, k: int | None = 10, sample_weight: Any = None
) -> float:
    """Mean NDCG@k over the queries (``group`` ids) with at least two rows.

    Each query's NDCG is scikit-learn's :func:`~sklearn.metrics.ndcg_score` (gains = the
    relevance ``y``, which must be >= 0, log2 discount, ties in ``scores`` averaged). A query
    of one row is skipped (its NDCG is undefined); a query whose relevances are all 0 scores
    0, as in scikit-learn. ``sample_weight`` (one per row) weights each query by the mean
    weight of its rows.

    Examples
    --------
    >>> round(mean_ndcg([3, 2, 0, 1, 0], [0.9, 0.5, 0.1, 0.2, 0.8], group=[0, 0, 0, 1, 1]), 4)
    0.8155
    """
    y = column_or_1d(np.asarray(y, dtype=np.float64))
    scores = column_or_1d(np.asarray(scores, dtype=np.float64))
    group = column_or_1d(np.asarray(group))
    check_consistent_length(y, scores, group)
    weights = None if sample_weight is None else column_or_1d(np.asarray(sample_weight))
    values, query_weights = [], []
    for query in np.unique(group):
        rows = np.flatnonzero(group == query)
        if len(rows) < 2:
            continue
        values.append(ndcg_score(y[rows][None, :], scores[rows][None, :], k=k))
        query_weights.append(1.0 if weights is None else float(np.mean(weights[rows])))
    if not values:
        raise ValueError("NDCG needs at least one query (group id) with two or more rows.")
    return float(np.average(values, weights=query_weights))


class _GroupValidationSplit(_ValidationSplit):
    """Holds out whole queries, so that the validation loss sees complete groups."""

    def __call__(self, dataset: TensorBatches, y: Any = None, **kwargs: Any) -> Any:
        group = dataset.fields.get("group")
        if group is None or len(torch.unique(group)) < 2:
            return super().__call__(dataset, y, **kwargs)
        splitter = GroupShuffleSplit(n_splits=1, test_size=self.fraction, random_state=self.seed)
        ids = group.cpu().numpy()
        train, valid = next(splitter.split(np.zeros(len(ids)), groups=ids))
        device = dataset.X.device
        return (
            dataset.subset(torch.as_tensor(train, device=device)),
            dataset.subset(torch.as_tensor(valid, device=device)),
        )


class LossRanker(LossEstimatorBase):
    """A neural-network scorer for learning to rank, trained with a registered ranking loss.

    ``fit(X, y, group=query_ids)``: ``y`` the graded relevance of each row (document) to its
    query, ``group`` the query id of each row (any hashable values). Any loss registered for
    the ``ranking`` task (``lossreg list --task ranking``): ``bpr`` (default, the pairwise
    logistic / RankNet loss), ``margin_mse`` (also needs ``teacher_logits``: the teacher's
    score per row), ``pairwise_logit_regression`` (each group is a pair, ``y`` the empirical
    preference in [0, 1]), ``thurstone_fidelity``. Other parameters are those of
    :class:`~lossreg.LossClassifier` without ``class_weight``.

    Parameters
    ----------
    loss : str or LossSpec, default="bpr"
        A registered ranking loss or alias, or a spec. Non-ranking losses are refused at fit.
    module, max_iter, batch_size, lr, optimizer, weight_decay, early_stopping, \
validation_fraction, n_iter_no_change, tol, random_state, device, verbose, warm_start, \
callbacks, **kwargs
        As in :class:`~lossreg.LossClassifier`.

    Attributes
    ----------
    net_, module_, criterion_, history_, data_params_, n_iter_
        As in :class:`~lossreg.LossClassifier`.

    Notes
    -----
    Losses that pair rows of the same query (their spec says ``sampler="whole_groups"``) are
    trained on batches made of whole queries: queries are shuffled each epoch and added to a
    batch until it holds ``batch_size`` rows, so a batch never splits a query (a query
    larger than ``batch_size`` is a batch of its own). Losses that compare every pair of the
    batch (``thurstone_fidelity``) use ordinary shuffled batches and do not need ``group``.
    With ``early_stopping=True`` the validation rows are whole queries.

    ``predict`` returns one score per row through the loss's link (the raw score for
    ``identity``; the expected level for ``thurstone_fidelity``): sort a query's rows by it.
    ``score`` is the mean NDCG@10 over the queries of ``group`` (:func:`mean_ndcg`).

    ``group`` (and ``teacher_logits``, ``sample_weight``) travel through ``Pipeline`` and
    ``GridSearchCV`` with scikit-learn's metadata routing: ``set_fit_request(group=True)``
    and ``set_score_request(group=True)``; use ``GroupKFold`` (``groups=`` the same ids) so
    that folds keep queries whole.

    Examples
    --------
    >>> import numpy as np
    >>> from lossreg import LossRanker
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 4))
    >>> query = np.repeat(np.arange(30), 10)
    >>> relevance = np.digitize(X[:, 0] + 0.3 * rng.normal(size=300), [-0.5, 0.5, 1.5])
    >>> ranker = LossRanker(max_iter=20, random_state=0).fit(X, relevance, group=query)
    >>> ranker.predict(X[:3]).shape
    (3,)
    >>> bool(ranker.score(X, relevance, group=query) > 0.8)
    True
    """

    _tasks = ("ranking",)

    def __init__(
        self,
        loss: Any = "bpr",
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
        group: Any = None,
        teacher_logits: Any = None,
        bag: Any = None,
        bag_target: Any = None,
        sample_index: Any = None,
        event: Any = None,
        rejected_label: Any = None,
        teacher_features: Any = None,
        bid: Any = None,
        value: Any = None,
    ) -> LossRanker:
        """Train on features ``X``, relevance ``y`` and query ids ``group``.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Relevance of each row to its query (higher = more relevant).
        sample_weight : array-like of shape (n_samples,), optional
        group : array-like of shape (n_samples,)
            Query id of each row (any hashable values); required by the pairwise losses.
        teacher_logits : array-like of shape (n_samples,), optional
            A teacher's score per row (``margin_mse``).
        bag, ... : array-like, optional
            Further per-row extras, for losses that declare them.
        """
        extras = fit_extras_from(locals())
        if group is not None:
            # Query ids may be strings or sparse numbers: the loss and the batches need codes.
            extras["group"] = np.unique(column_or_1d(np.asarray(group)), return_inverse=True)[1]
        return self._fit(X, y, sample_weight, extras)

    def _prepare_target(self, y: Any) -> tuple[str, np.ndarray, int]:
        y = np.asarray(y, dtype=np.float64)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.ndim != 1:
            raise ValueError(
                f"y must be one relevance value per row, shape (n_samples,). Got shape {y.shape}."
            )
        self.n_outputs_ = 1
        return "ranking", y, 1

    def _data_task(self, task: str) -> str:
        # Relevance-range data params (target_min / target_max) are those of a regression target.
        return "regression"

    def _build_net(
        self,
        spec: LossSpec,
        module: torch.nn.Module,
        criterion: torch.nn.Module,
        data: TensorBatches,
        device: str,
        seed: int,
        task: str,
    ) -> LossNet:
        net = super()._build_net(spec, module, criterion, data, device, seed, task)
        if self.early_stopping:
            net.train_split = _GroupValidationSplit(self.validation_fraction, seed, task)
        return net

    def predict(self, X: Any) -> np.ndarray:
        """Ranking score per row, shape (n_samples,): higher ranks first within a query."""
        return self._linked(X).reshape(-1)

    def score(self, X: Any, y: Any, sample_weight: Any = None, *, group: Any = None) -> float:
        """Mean NDCG@10 of :meth:`predict` over the queries of ``group`` (:func:`mean_ndcg`)."""
        if group is None:
            raise ValueError(
                "LossRanker.score needs the query id of each row: score(X, y, group=...). In "
                "GridSearchCV / cross_validate enable metadata routing and call "
                "set_score_request(group=True)."
            )
        return mean_ndcg(y, self.predict(X), group, k=10, sample_weight=sample_weight)

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = False
        return tags
