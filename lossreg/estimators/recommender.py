"""LossRecommender: a two-tower (user and item embeddings) recommender on sampled negatives."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, column_or_1d
from torch import nn

from lossreg.spec import LossSpec

from ._mode import loss_mode
from ._params import PrefixedParams, check_prefixed, extra_params, split_prefixed

__all__ = ["LossRecommender", "sampled_layout", "top_k_metrics"]

#: how a loss sees the (N, 1 + M) scores of N positives and their M sampled negatives, in
#: the order tried: a ranking loss whose module takes row groups (``row_groups = True``:
#: ``bpr``) gets the (N, 1 + M) rows with relevance [1, 0, ..., 0], each row a group; a
#: multiclass loss (``cosine_contrastive``, ``cross_entropy`` as a
#: sampled softmax) the (N, 1 + M) rows with class 0; a multilabel loss (``bce``) the rows
#: with the label matrix [1, 0, ..., 0]; a binary loss the flattened scores with 0/1 targets
LAYOUTS = ("ranking", "multiclass", "multilabel", "binary")


def sampled_layout(spec: LossSpec, params: Mapping[str, Any] | None = None) -> str | None:
    """The layout in :data:`LAYOUTS` a loss trains a :class:`LossRecommender` in, or None.

    A ranking loss must take each row of (N, K) scores as a group (its module class says so
    with ``row_groups = True``); flattened with one group id per positive, the (N(1 + M))^2
    pair matrices of a batch would not fit in time or memory. Only that layout may list the
    fit extra ``group`` (the rows are the groups); a loss that needs any other fit extra
    (``group`` in the other layouts: group_dro, irm), a data parameter, a feature output
    (``outputs="logits+features"``: deep_coral) or two views (vat) with the hyperparameters
    ``params`` cannot be fed sampled negatives and gets None.
    """
    if spec.data_params or spec.outputs != "logits":
        return None
    mode = loss_mode(spec, params)
    if mode.views != 1:
        return None
    extras = set(mode.fit_extras)
    for layout in LAYOUTS:
        if layout not in spec.tasks:
            continue
        if layout == "ranking":
            if getattr(spec.factory, "row_groups", False) and extras <= {"group"}:
                return layout
        elif not extras:
            return layout
    return None


def _criterion_input(
    layout: str, scores: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """(input, target, extras) of the loss for scores (N, 1 + M), the positive in column 0."""
    n = scores.shape[0]
    one_hot = torch.zeros_like(scores)
    one_hot[:, 0] = 1.0
    if layout in ("ranking", "multilabel"):  # each row a group / a row of labels
        return scores, one_hot, {}
    if layout == "multiclass":
        return scores, torch.zeros(n, dtype=torch.long, device=scores.device), {}
    return scores.reshape(-1), one_hot.reshape(-1), {}


def _items_per_user(users: np.ndarray, items: np.ndarray, n_users: int) -> list[np.ndarray]:
    """Per user id in [0, n_users), the sorted distinct items of its rows, in one pass."""
    order = np.lexsort((items, users))  # by user, then item
    users, items = users[order], items[order]
    keep = np.ones(len(items), dtype=bool)  # drop repeated (user, item) pairs
    keep[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
    users, items = users[keep], items[keep]
    bounds = np.searchsorted(users, np.arange(1, n_users))
    return np.split(items, bounds)


class _TwoTower(nn.Module):
    """User and item embedding tables; a score per (user, item) pair: cosine or dot product."""

    def __init__(
        self, n_users: int, n_items: int, dim: int, score: str, generator: torch.Generator
    ) -> None:
        super().__init__()
        self.users = nn.Embedding(n_users, dim)
        self.items = nn.Embedding(n_items, dim)
        # small random vectors: dot-product scores start near 0 (sigmoid 1/2)
        nn.init.normal_(self.users.weight, std=0.1, generator=generator)
        nn.init.normal_(self.items.weight, std=0.1, generator=generator)
        self.score = score

    def _vectors(self, users: torch.Tensor, items: torch.Tensor) -> tuple[Any, Any]:
        u, v = self.users(users), self.items(items)
        if self.score == "cosine":
            u, v = F.normalize(u, dim=-1), F.normalize(v, dim=-1)
        return u, v

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores (N, K) of users (N,) against items (N, K)."""
        u, v = self._vectors(users, items)
        return torch.einsum("nd,nkd->nk", u, v)

    def all_items(self, users: torch.Tensor) -> torch.Tensor:
        """Scores (N, n_items) of users (N,) against the whole catalogue."""
        u, v = self._vectors(users, torch.arange(self.items.num_embeddings))
        return u @ v.T


class LossRecommender(PrefixedParams, BaseEstimator):
    r"""Implicit-feedback recommender trained with any registered loss on sampled negatives.

    A two-tower model in the style of matrix factorisation: one embedding per user and per
    item, the score of a pair being their cosine (``score="cosine"``, as in SimpleX) or their
    dot product. Each training row is an observed interaction (user, item); every epoch, each
    positive gets ``n_negatives`` items drawn uniformly from the catalogue (a draw may hit an
    item the user interacted with, as in the usual uniform samplers), and the loss sees the
    (N, 1 + M) scores with the positive in column 0, in the layout its tasks allow (see
    :func:`sampled_layout`): ``cosine_contrastive`` directly, ``bpr`` with each row a group
    of relevance [1, 0, ..., 0] (mean over the M pairs), ``bce`` as a multilabel row
    [1, 0, ..., 0] (mean over the 1 + M terms), ``cross_entropy`` as a sampled softmax.

    Parameters
    ----------
    loss : str or LossSpec, default="cosine_contrastive"
        A registered loss with a ranking task whose module takes row groups (``bpr``), or a
        multiclass, multilabel or binary task, and no data parameter.
    n_negatives : int >= 1, default=100
        Items sampled per positive per epoch (the negative ratio :math:`M`).
    embedding_dim : int >= 1, default=32
    score : {"cosine", "dot"}, default="cosine"
        Cosine of the two embeddings (in [-1, 1]; what ``cosine_contrastive`` expects) or their
        dot product (unbounded; classic MF for ``bpr`` / ``bce``).
    max_iter : int >= 1, default=20
        Epochs over the training interactions.
    batch_size : int >= 1, default=256
        Positives per batch.
    lr : float > 0, default=1e-3
        Adam's learning rate.
    weight_decay : float >= 0, default=0.0
        Adam's L2 penalty on the embeddings.
    n_users, n_items : int, optional
        Sizes of the tables; None takes the largest id seen in ``fit`` plus one. Give
        ``n_items`` to rank a catalogue that holds items no training row mentions.
    random_state : int, optional
        Seeds the initial embeddings, the shuffling and the negative draws; None draws a fresh
        seed per fit.
    **kwargs
        ``loss__<name>``: the loss's hyperparameters (``loss__margin=0.8``). ``module__`` and
        ``optimizer__`` parameters are refused in ``fit``: the network and optimizer are fixed.

    Attributes
    ----------
    module_ : nn.Module
        The trained two-tower model.
    criterion_ : nn.Module
        The loss module.
    layout_ : str
        The layout the loss was trained in.
    seen_ : list of ndarray
        Per user id, the items of its training interactions (excluded from recommendations).
    history_ : list of float
        Mean training loss per epoch.

    Notes
    -----
    Trained by a plain PyTorch loop rather than skorch: the rows of a batch are drawn anew
    (negatives) every epoch, which skorch's fixed row dataset does not express. ``X`` holds
    one column of integer user ids, ``y`` the item ids (integers from 0).

    Examples
    --------
    >>> import numpy as np
    >>> users = np.repeat(np.arange(20), 5)[:, None]
    >>> items = (users[:, 0] * 3 + np.tile(np.arange(5), 20)) % 40
    >>> rec = LossRecommender(n_negatives=10, max_iter=3, random_state=0).fit(users, items)
    >>> rec.recommend([0, 1], k=3).shape
    (2, 3)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "loss": [str, LossSpec],
        "n_negatives": [Interval(numbers.Integral, 1, None, closed="left")],
        "embedding_dim": [Interval(numbers.Integral, 1, None, closed="left")],
        "score": [StrOptions({"cosine", "dot"})],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "n_users": [None, Interval(numbers.Integral, 1, None, closed="left")],
        "n_items": [None, Interval(numbers.Integral, 2, None, closed="left")],
        "random_state": [None, numbers.Integral],
    }

    def __init__(
        self,
        loss: Any = "cosine_contrastive",
        *,
        n_negatives: int = 100,
        embedding_dim: int = 32,
        score: str = "cosine",
        max_iter: int = 20,
        batch_size: int = 256,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        n_users: int | None = None,
        n_items: int | None = None,
        random_state: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.loss = loss
        self.n_negatives = n_negatives
        self.embedding_dim = embedding_dim
        self.score = score
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.n_users = n_users
        self.n_items = n_items
        self.random_state = random_state
        self._extra_params = dict(kwargs)  # loss__*: kept for clone(), checked in fit

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> LossRecommender:
        """Train on interactions: ``X`` (n, 1) user ids, ``y`` (n,) item ids."""
        from lossreg.errors import TrainingDivergedError, UnsupportedTaskError
        from lossreg.params import check_params
        from lossreg.registry import default_registry

        self._validate_params()
        check_prefixed(type(self).__name__, list(extra_params(self)), list(self._get_param_names()))
        unused = sorted(k for k in extra_params(self) if not k.startswith("loss__"))
        if unused:
            raise TypeError(
                f"LossRecommender does not use {', '.join(map(repr, unused))}: it builds its own "
                "two-tower network (set embedding_dim, score, n_users, n_items) and Adam optimizer "
                "(set lr, weight_decay), and takes only loss__ parameters. Remove these."
            )
        users, items = self._ids(X), self._item_ids(y)
        if len(users) != len(items):
            raise ValueError(f"X has {len(users)} rows and y {len(items)}: one item per row.")
        spec = (
            self.loss if isinstance(self.loss, LossSpec) else default_registry().get_spec(self.loss)
        )
        loss_params = split_prefixed(self, "loss__")
        check_params(spec.name, spec.params, loss_params, data_params=(), prefix="loss__")
        layout = sampled_layout(spec, loss_params)
        if layout is None:
            mode = loss_mode(spec, loss_params)
            raise UnsupportedTaskError(
                f"Loss {spec.name!r} cannot train on sampled negatives (tasks: "
                f"{', '.join(sorted(spec.tasks))}; fit extras: {list(mode.fit_extras)}; data "
                f"parameters: {list(spec.data_params)}; outputs: {spec.outputs!r}; views: "
                f"{mode.views}). Use a ranking loss that takes row groups (bpr), or a "
                "multiclass (cosine_contrastive, cross_entropy), multilabel (bce) or binary "
                "loss with outputs='logits', one view, and no fit extras or data parameters."
            )
        n_users = self.n_users or int(users.max()) + 1
        n_items = self.n_items or int(items.max()) + 1
        for name, ids, size in (("user", users, n_users), ("item", items, n_items)):
            if ids.max() >= size:
                raise ValueError(
                    f"{name} id {int(ids.max())} does not fit n_{name}s={size}: ids run from 0 "
                    f"to n_{name}s - 1; raise n_{name}s or leave it None."
                )
        # None draws a fresh seed per fit; an int gives the same seed (and model) every time
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        generator = torch.Generator().manual_seed(seed)
        self.module_ = _TwoTower(n_users, n_items, self.embedding_dim, self.score, generator)
        self.criterion_ = spec.factory(**loss_params)
        self.layout_ = layout
        optimizer = torch.optim.Adam(
            self.module_.parameters(), lr=self.lr, weight_decay=self.weight_decay
        )
        u_all, i_all = torch.as_tensor(users), torch.as_tensor(items)
        self.history_: list[float] = []
        for epoch in range(self.max_iter):
            order = torch.randperm(len(u_all), generator=generator)
            total = 0.0
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                negatives = torch.randint(
                    0, n_items, (len(rows), self.n_negatives), generator=generator
                )
                candidates = torch.cat([i_all[rows, None], negatives], dim=1)
                scores = self.module_(u_all[rows], candidates)
                input, target, extras = _criterion_input(layout, scores)
                loss = self.criterion_(input, target, **extras)
                if not torch.isfinite(loss):
                    raise TrainingDivergedError(
                        f"The training loss of {spec.name!r} became {loss.item()} in epoch "
                        f"{epoch + 1}; lower lr (now {self.lr})."
                    )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(rows)
            self.history_.append(total / len(order))
        self.n_users_, self.n_items_ = n_users, n_items
        self.seen_ = _items_per_user(users, items, n_users)
        self.n_features_in_ = 1
        return self

    # -- predicting -------------------------------------------------------------------------
    def score_items(self, users: Any) -> np.ndarray:
        """Scores (len(users), n_items) of each user against the whole catalogue."""
        check_is_fitted(self, "module_")
        ids = self._known_users(users)
        with torch.no_grad():
            return self.module_.all_items(torch.as_tensor(ids)).numpy().astype(np.float64)

    def recommend(self, users: Any, k: int = 20, *, exclude_seen: bool = True) -> np.ndarray:
        """The ``k`` best-scored items (n, k) per user, best first; training items excluded."""
        scores = self.score_items(users)
        if exclude_seen:
            for row, user in enumerate(self._known_users(users)):
                scores[row, self.seen_[user]] = -np.inf
        k = min(int(k), scores.shape[1])
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]

    def predict(self, X: Any) -> np.ndarray:
        """The best-scored item each row's user has not interacted with in training."""
        return self.recommend(self._ids(X), k=1)[:, 0]

    def _known_users(self, users: Any) -> np.ndarray:
        ids = column_or_1d(np.asarray(users)).astype(np.int64)
        if len(ids) and (ids.min() < 0 or ids.max() >= self.n_users_):
            raise ValueError(
                f"User ids must lie in [0, {self.n_users_}) (the fitted n_users); got "
                f"{int(ids.min())} .. {int(ids.max())}."
            )
        return ids

    @staticmethod
    def _ids(X: Any) -> np.ndarray:
        values = np.asarray(X)
        if values.ndim == 2:
            if values.shape[1] != 1:
                raise ValueError(f"X holds one column of user ids; got {values.shape[1]} columns.")
            values = values[:, 0]
        return LossRecommender._non_negative_ints(values, "user")

    @staticmethod
    def _item_ids(y: Any) -> np.ndarray:
        return LossRecommender._non_negative_ints(column_or_1d(np.asarray(y)), "item")

    @staticmethod
    def _non_negative_ints(values: np.ndarray, what: str) -> np.ndarray:
        as_float = np.asarray(values, dtype=np.float64)
        if len(as_float) == 0 or (as_float < 0).any() or (as_float != np.round(as_float)).any():
            raise ValueError(
                f"{what} ids must be integers >= 0 (encode names with pandas.factorize); got "
                f"{values[:5]!r} ..."
            )
        return as_float.astype(np.int64)


def top_k_metrics(
    recommended: np.ndarray, relevant: list[np.ndarray], k: int = 20
) -> dict[str, float]:
    r"""Mean Recall@k and NDCG@k over users with at least one held-out item.

    ``recommended`` (n_users, >= k): item ids best first; ``relevant``: per user, its held-out
    items. Recall@k = hits in the top k / number of held-out items; NDCG@k = DCG of the hits
    (gain 1, discount :math:`1/\log_2(r + 1)` at rank r) over the DCG of
    :math:`\min(k, |\text{relevant}|)` hits at the top.

    Examples
    --------
    >>> top = np.array([[3, 1, 2], [0, 1, 2]])
    >>> out = top_k_metrics(top, [np.array([1]), np.array([5, 6])], k=2)
    >>> {name: round(value, 4) for name, value in out.items()}
    {'recall_at_2': 0.5, 'ndcg_at_2': 0.3155}
    """
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    recalls, ndcgs = [], []
    for top, items in zip(recommended, relevant, strict=True):
        if len(items) == 0:
            continue
        hits = np.isin(top[:k], items)
        recalls.append(hits.sum() / len(items))
        ndcgs.append((discount[: len(hits)] * hits).sum() / discount[: min(k, len(items))].sum())
    if not recalls:
        raise ValueError("Top-k metrics need at least one user with a held-out item.")
    return {f"recall_at_{k}": float(np.mean(recalls)), f"ndcg_at_{k}": float(np.mean(ndcgs))}
