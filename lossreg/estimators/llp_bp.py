"""LLP-BP: learning from label proportions by belief-propagation pseudo-labels."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ._belief_propagation import belief_propagation, knn_edges, llp_gibbs_model
from ._mlp import MLP

__all__ = ["LLPBPClassifier"]


class LLPBPClassifier(ClassifierMixin, BaseEstimator):
    r"""Binary classifier learned from bag label proportions by belief propagation (LLP-BP).

    A procedure, not a loss: training rows come in bags, and only each bag's share of
    positive labels is known. ``fit`` repeats ``n_rounds`` times:

    1. **Pseudo-labelling.** A Gibbs distribution over the rows' labels
       :math:`s_i\in\{-1,+1\}` joins the rows' ``n_neighbors``-nearest-neighbour graph
       :math:`G` (covariates in the first round, the network's last hidden layer after)
       and the bag counts:

       .. math::

           \log p(s) = \lambda_s\sum_{(i,j)\in G}s_is_j
               - \sum_B\frac{\lambda_b}{|B|}\Big(\sum_{i\in B}s_i-|B|(2\alpha_B-1)\Big)^2
               + \text{const}.

       Loopy belief propagation (``bp_iter`` damped parallel updates) gives each row's
       marginal :math:`\pi_i=P(y_i=1)`, its soft pseudo-label.
    2. **Embedding refinement.** A fresh MLP is trained on
       :math:`\frac1N\sum_i\mathrm{bce}(z_i,\pi_i)+\lambda\,\mathrm{dllp}`, the dllp term
       (the registered loss ``dllp``) matching each bag's mean predicted probability to
       :math:`\alpha_B`; batches hold whole bags.

    The network of the last round is the classifier (``predict_proba``).

    Parameters
    ----------
    n_neighbors : int >= 1, default=10
        Neighbours per row in the k-NN graph (symmetrised: an edge when either row lists the
        other).
    similarity_weight : float >= 0, default=0.2
        :math:`\lambda_s`, the coupling of neighbouring rows' labels.
    bag_weight : float >= 0, default=3.0
        :math:`\lambda_b`, the strength of the bag-count term.
    bp_iter : int >= 1, default=100
        Most belief-propagation updates per round.
    damping : float in [0, 1), default=0.8
        Share of the old message kept at each BP update (strong repulsive bag couplings
        make undamped parallel updates oscillate).
    n_rounds : int >= 1, default=2
        Pseudo-label / train rounds; round ``r > 1`` builds its graph on the embeddings of
        round ``r - 1``'s network.
    dllp_weight : float >= 0, default=1.0
        :math:`\lambda`, the weight of the dllp term in the network's loss.
    hidden_units : tuple of int, default=(128, 64)
        The MLP's hidden layers (ReLU); the last one is the embedding.
    max_iter : int >= 1, default=100
        Epochs per round.
    batch_size : int >= 1, default=128
        Rows per batch (whole bags are added until a batch holds at least this many).
    lr : float > 0, default=1e-3
        AdamW learning rate.
    random_state : int or None, default=None
        Seeds the networks and the batch order.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    n_features_in_ : int
    pseudo_labels_ : ndarray of shape (n_samples,)
        The last round's BP marginals :math:`\pi_i` on the training rows.
    network_ : torch.nn.Module
        The final network.

    Notes
    -----
    What was checked, and where this differs from the paper. The paper's abstract, Figure 1
    and reproducibility notes (arXiv:2310.08056; ICLR 2024) give the two-step loop, the
    k-NN graph on covariates then on embeddings, the final classifier trained on the
    pseudo-labels, and that BP is run with PGMax by specifying Ising potentials
    :math:`J_{ij}` and :math:`h_i` (so the bag constraint enters as pairwise and unary
    terms, as above). The paper's full method section could not be read here, so: the bag
    term's scaling by :math:`1/|B|` (a Gaussian-likelihood form of the bag count, which keeps
    the couplings of large bags weak enough for loopy BP), the unweighted graph, soft rather
    than thresholded pseudo-labels, the dllp form of the bag-level term and every default
    value are this implementation's choices, not the paper's tuned values (the paper tunes
    them on a validation split). No official code was found. Cost: a bag of size :math:`k`
    adds :math:`k(k-1)/2` edges, so BP costs :math:`O(N(k+n_\text{neighbors}))` per update.

    References
    ----------
    Havaldar, Sharma, Sareen, Shanmugam, Raghuveer, "Learning from Label Proportions:
    Bootstrapping Supervised Learners via Belief Propagation", ICLR 2024, arXiv:2310.08056.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 4)).astype(np.float32)
    >>> y = (X[:, 0] > 0).astype(int)
    >>> bag = np.arange(200) // 10
    >>> share = np.bincount(bag, weights=y)[bag] / 10
    >>> clf = LLPBPClassifier(max_iter=5, n_rounds=1, random_state=0)
    >>> clf.fit(X, y, bag=bag, bag_target=share).predict_proba(X).shape
    (200, 2)
    """

    def __init__(
        self,
        *,
        n_neighbors: int = 10,
        similarity_weight: float = 0.2,
        bag_weight: float = 3.0,
        bp_iter: int = 100,
        damping: float = 0.8,
        n_rounds: int = 2,
        dllp_weight: float = 1.0,
        hidden_units: tuple[int, ...] = (128, 64),
        max_iter: int = 100,
        batch_size: int = 128,
        lr: float = 1e-3,
        random_state: int | None = None,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.similarity_weight = similarity_weight
        self.bag_weight = bag_weight
        self.bp_iter = bp_iter
        self.damping = damping
        self.n_rounds = n_rounds
        self.dllp_weight = dllp_weight
        self.hidden_units = hidden_units
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.lr = lr
        self.random_state = random_state

    def fit(self, X: Any, y: Any, bag: Any = None, bag_target: Any = None) -> LLPBPClassifier:
        """Learn from bags: ``y`` only names the classes; ``bag`` / ``bag_target`` teach.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Two classes; the labels' order within a bag is not used (only the class set).
        bag : array-like of shape (n_samples,)
            Bag id per row.
        bag_target : array-like of shape (n_samples,)
            Each row's bag's share of the positive (larger) class, the same on every row of
            a bag.
        """
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float32)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(
                f"LLPBPClassifier learns binary labels; y has {len(self.classes_)} classes "
                f"({self.classes_.tolist()!r}). Use a bag loss (dllp, proportion_kl) with "
                "LossClassifier for more classes."
            )
        bag, share = _bags(bag, bag_target, len(y))
        seed = np.random.default_rng(self.random_state).integers(2**31 - 1)
        features = X
        # _train seeds torch per round: on a forked RNG, so the caller's global state is untouched
        with torch.random.fork_rng(devices=[]):
            for round_ in range(self.n_rounds):
                model = llp_gibbs_model(
                    knn_edges(features, self.n_neighbors),
                    bag,
                    share,
                    similarity_weight=self.similarity_weight,
                    bag_weight=self.bag_weight,
                )
                self.pseudo_labels_ = belief_propagation(
                    model, n_iter=self.bp_iter, damping=self.damping
                )
                self.network_ = self._train(X, self.pseudo_labels_, bag, share, int(seed) + round_)
                features = self._embed(X)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float32, reset=False)
        with torch.no_grad():
            logits, _ = self.network_(torch.from_numpy(X))
        positive = torch.sigmoid(logits.reshape(-1)).numpy().astype(np.float64)
        return np.stack([1.0 - positive, positive], axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """The more probable class."""
        return self.classes_[(self.predict_proba(X)[:, 1] > 0.5).astype(int)]

    def _embed(self, X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            _, features = self.network_(torch.from_numpy(X))
        return features.numpy()

    def _train(
        self, X: np.ndarray, soft: np.ndarray, bag: np.ndarray, share: np.ndarray, seed: int
    ) -> torch.nn.Module:
        """A fresh MLP fitted to the soft pseudo-labels plus the dllp bag term."""
        from lossreg import create_loss

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        network = MLP(X.shape[1], 1, hidden_units=tuple(self.hidden_units), return_features=True)
        optimizer = torch.optim.AdamW(network.parameters(), lr=self.lr)
        dllp = create_loss("dllp")
        inputs = torch.from_numpy(X)
        soft_t = torch.as_tensor(soft, dtype=torch.float32)
        share_t = torch.as_tensor(share, dtype=torch.float32)
        bag_t = torch.as_tensor(bag)
        members = _bag_members(bag)
        network.train()
        for _ in range(self.max_iter):
            for rows in _whole_bag_batches(members, self.batch_size, rng):
                index = torch.from_numpy(rows)
                logits, _ = network(inputs[index])
                logits = logits.reshape(-1)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, soft_t[index])
                if self.dllp_weight:
                    bag_term = dllp(logits, None, bag=bag_t[index], bag_target=share_t[index])
                    loss = loss + self.dllp_weight * bag_term
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        network.eval()
        return network

    def _check_params(self) -> None:
        problems = []
        ints = {
            "n_neighbors": 1,
            "bp_iter": 1,
            "n_rounds": 1,
            "max_iter": 1,
            "batch_size": 1,
        }
        for name, low in ints.items():
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or value < low:
                problems.append(f"{name} must be an integer >= {low}; got {value!r}")
        for name in ("similarity_weight", "bag_weight", "dllp_weight"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or value < 0:
                problems.append(f"{name} must be a float >= 0; got {value!r}")
        if not isinstance(self.damping, numbers.Real) or not 0 <= self.damping < 1:
            problems.append(f"damping must be a float in [0, 1); got {self.damping!r}")
        if not isinstance(self.lr, numbers.Real) or self.lr <= 0:
            problems.append(f"lr must be a float > 0; got {self.lr!r}")
        units = tuple(np.atleast_1d(self.hidden_units)) if self.hidden_units != () else ()
        if not units or any(not isinstance(u, numbers.Integral) or u < 1 for u in units):
            problems.append(
                "hidden_units must be a non-empty tuple of integers >= 1 (its last layer is "
                f"the embedding); got {self.hidden_units!r}"
            )
        if problems:
            raise ValueError("LLPBPClassifier: " + "; ".join(problems) + ".")


def _bags(bag: Any, bag_target: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Bag codes (0 .. n_bags - 1; any sortable ids, strings too) and per-row positive shares."""
    if bag is None or bag_target is None:
        missing = " and ".join(
            name for name, value in (("bag", bag), ("bag_target", bag_target)) if value is None
        )
        raise ValueError(
            f"LLPBPClassifier needs {missing} at fit time: pass fit(X, y, bag=..., "
            "bag_target=...) with one bag id and the bag's positive share per row."
        )
    bag = np.asarray(bag).reshape(-1)
    share = np.array(bag_target, dtype=np.float64).reshape(-1)  # a writable copy for torch
    if len(bag) != n or len(share) != n:
        raise ValueError(
            f"bag and bag_target need one value per row ({n}); got {len(bag)} and {len(share)}."
        )
    if np.any((share < 0) | (share > 1)) or not np.all(np.isfinite(share)):
        raise ValueError("bag_target must hold positive shares in [0, 1].")
    _, index = np.unique(bag, return_inverse=True)
    index = index.reshape(-1)
    low = np.full(index.max() + 1, np.inf)
    high = np.full(index.max() + 1, -np.inf)
    np.minimum.at(low, index, share)
    np.maximum.at(high, index, share)
    if np.any(high - low > 1e-6):
        raise ValueError("bag_target must be the same on every row of a bag; it varies.")
    return index.astype(np.int64), share


def _bag_members(bag: np.ndarray) -> list[np.ndarray]:
    """The rows of each bag."""
    _, index = np.unique(bag, return_inverse=True)
    index = index.reshape(-1)
    order = np.argsort(index, kind="stable")
    return np.split(order, np.cumsum(np.bincount(index))[:-1])


def _whole_bag_batches(
    members: list[np.ndarray], batch_size: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Bags in a random order, grouped so that each batch holds whole bags (dllp is exact)."""
    batches, current, size = [], [], 0
    for b in rng.permutation(len(members)):
        current.append(members[b])
        size += len(members[b])
        if size >= batch_size:
            batches.append(np.concatenate(current))
            current, size = [], 0
    if current:
        batches.append(np.concatenate(current))
    return batches
