"""Loopy belief propagation on binary pairwise (Ising) models, and the LLP-BP Gibbs model.

The Gibbs model of LLP-BP (Havaldar et al., ICLR 2024, arXiv:2310.08056) over the training
rows' binary labels is an Ising model, so its marginals are computed by sum-product belief
propagation with one scalar message per directed edge. Everything is numpy over edge arrays:
one iteration costs O(number of edges).
"""

from __future__ import annotations

import numpy as np

__all__ = ["IsingModel", "belief_propagation", "knn_edges", "llp_gibbs_model"]

#: keeps the argument of arctanh inside (-1, 1) when couplings and fields saturate
_TANH_LIMIT = 1.0 - 1e-12


class IsingModel:
    r"""A pairwise binary model over spins :math:`s_i\in\{-1,+1\}`.

    .. math::

        p(s) \propto \exp\Big(\sum_{(i,j)\in E} J_{ij}\,s_is_j + \sum_i h_i s_i\Big)

    Parameters
    ----------
    n_nodes : int
        Number of spins.
    edges : ndarray of int, shape (E, 2)
        Undirected edges ``(i, j)`` with ``i < j``, each listed once.
    coupling : ndarray of float, shape (E,)
        :math:`J_{ij}` per edge (positive: the two labels tend to agree).
    field : ndarray of float, shape (n_nodes,)
        :math:`h_i` per spin (positive: the label tends to be 1).
    """

    def __init__(
        self, n_nodes: int, edges: np.ndarray, coupling: np.ndarray, field: np.ndarray
    ) -> None:
        self.n_nodes = int(n_nodes)
        self.edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        self.coupling = np.asarray(coupling, dtype=np.float64)
        self.field = np.asarray(field, dtype=np.float64)


def belief_propagation(
    model: IsingModel, *, n_iter: int = 100, damping: float = 0.8, tol: float = 1e-6
) -> np.ndarray:
    r"""Marginals :math:`P(s_i=+1)` of an Ising model by (loopy) sum-product BP.

    With the cavity field :math:`u_{i\to j}` as the message from :math:`i` to :math:`j` and
    :math:`H_i=h_i+\sum_{k\in\partial i}u_{k\to i}`, one parallel update is

    .. math::

        u_{i\to j} \leftarrow \operatorname{artanh}\big(\tanh J_{ij}\,
            \tanh(H_i-u_{j\to i})\big),

    damped as :math:`u\leftarrow\delta\,u_{\text{old}}+(1-\delta)\,u_{\text{new}}`; the
    belief is :math:`P(s_i=+1)=\sigma(2H_i)`. Exact on trees (and forests) at convergence;
    an approximation on graphs with loops.

    Parameters
    ----------
    model : IsingModel
    n_iter : int >= 1, default=100
        Most parallel updates (a fixed budget: loopy BP need not converge).
    damping : float in [0, 1), default=0.8
        Share of the old message kept at each update (steadies loopy graphs).
    tol : float >= 0, default=1e-6
        Stop early once no message moves by more than this.

    Returns
    -------
    ndarray of float64, shape (n_nodes,)
        :math:`P(s_i=+1)`, i.e. the probability that row ``i``'s label is 1.
    """
    if not 0.0 <= damping < 1.0:
        raise ValueError(f"damping must be in [0, 1). Got {damping!r}.")
    if n_iter < 1:
        raise ValueError(f"n_iter must be >= 1. Got {n_iter!r}.")
    n, edges = model.n_nodes, model.edges
    n_edges = len(edges)
    # directed edge d = e runs i -> j, d = e + E runs j -> i: the reverse of d is (d + E) % 2E
    source = np.concatenate([edges[:, 0], edges[:, 1]])
    target = np.concatenate([edges[:, 1], edges[:, 0]])
    reverse = (np.arange(2 * n_edges) + n_edges) % max(2 * n_edges, 1)
    tanh_coupling = np.tanh(np.concatenate([model.coupling, model.coupling]))
    messages = np.zeros(2 * n_edges)
    for _ in range(n_iter):
        total = model.field + np.bincount(target, weights=messages, minlength=n)
        cavity = total[source] - messages[reverse]
        product = np.clip(tanh_coupling * np.tanh(cavity), -_TANH_LIMIT, _TANH_LIMIT)
        updated = damping * messages + (1.0 - damping) * np.arctanh(product)
        moved = float(np.abs(updated - messages).max()) if n_edges else 0.0
        messages = updated
        if moved <= tol:
            break
    total = model.field + np.bincount(target, weights=messages, minlength=n)
    return 1.0 / (1.0 + np.exp(-2.0 * total))


def knn_edges(features: np.ndarray, n_neighbors: int) -> np.ndarray:
    """Undirected edges ``(i, j)``, ``i < j``, of the symmetrised k-nearest-neighbour graph.

    ``i`` and ``j`` are joined when either is among the other's ``n_neighbors`` nearest
    rows (Euclidean distance); each edge is listed once.
    """
    from sklearn.neighbors import NearestNeighbors

    n = len(features)
    k = min(int(n_neighbors), n - 1)
    if k < 1:
        return np.empty((0, 2), dtype=np.int64)
    _, index = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    rows = np.repeat(np.arange(n), k)
    cols = index[:, 1:].reshape(-1)  # the first neighbour is the row itself
    pairs = np.stack([np.minimum(rows, cols), np.maximum(rows, cols)], axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]  # duplicated rows can list another as "self"
    return np.unique(pairs, axis=0)


def llp_gibbs_model(
    graph_edges: np.ndarray,
    bag: np.ndarray,
    proportion: np.ndarray,
    *,
    similarity_weight: float,
    bag_weight: float,
) -> IsingModel:
    r"""The LLP-BP Gibbs model of the rows' labels as an Ising model.

    With spins :math:`s_i=2y_i-1`, bags :math:`B` of size :math:`|B|` and positive share
    :math:`\alpha_B`, so that :math:`\mu_B=|B|(2\alpha_B-1)` is the bag's known spin sum,

    .. math::

        \log p(s) = \lambda_s\sum_{(i,j)\in G} s_is_j
            - \sum_B \frac{\lambda_b}{|B|}\Big(\sum_{i\in B}s_i-\mu_B\Big)^2 + \text{const},

    :math:`G` being the k-NN graph. Expanding the square gives the couplings
    :math:`J_{ij}=\lambda_s[(i,j)\in G]-2\lambda_b/|B|\,[i,j\in B]` and the fields
    :math:`h_i=2\lambda_b(2\alpha_{B(i)}-1)`.

    Parameters
    ----------
    graph_edges : ndarray of int, shape (E, 2)
        The covariate graph's undirected edges, ``i < j``.
    bag : ndarray, shape (n,)
        Bag id per row.
    proportion : ndarray of float, shape (n,)
        The row's bag's share of positive labels, in [0, 1].
    similarity_weight : float >= 0
        :math:`\lambda_s`.
    bag_weight : float >= 0
        :math:`\lambda_b`.

    Returns
    -------
    IsingModel
    """
    bag = np.asarray(bag)
    proportion = np.asarray(proportion, dtype=np.float64)
    n = len(bag)
    _, index, sizes = np.unique(bag, return_inverse=True, return_counts=True)
    index = index.reshape(-1)
    order = np.argsort(index, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    bag_pairs = []
    for b, size in enumerate(sizes):
        rows = order[starts[b] : starts[b] + size]
        left, right = np.triu_indices(size, k=1)
        a, c = rows[left], rows[right]
        bag_pairs.append(np.stack([np.minimum(a, c), np.maximum(a, c)], axis=1))
    pairs = np.concatenate(
        [np.asarray(graph_edges, dtype=np.int64).reshape(-1, 2), *bag_pairs], axis=0
    )
    weights = np.concatenate(
        [
            np.full(len(graph_edges), float(similarity_weight)),
            *(np.full(len(p), -2.0 * bag_weight / s) for p, s in zip(bag_pairs, sizes)),
        ]
    )
    # an edge both in the graph and in a bag gets the sum of its two couplings
    edges, inverse = np.unique(pairs, axis=0, return_inverse=True)
    coupling = np.bincount(inverse.reshape(-1), weights=weights, minlength=len(edges))
    field = 2.0 * bag_weight * (2.0 * proportion - 1.0)
    return IsingModel(n, edges.reshape(-1, 2), coupling, field)
