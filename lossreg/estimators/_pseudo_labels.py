"""Pseudo-label-diverse batches: k-means pseudo-labels on autoencoder latents, one per batch.

Two-view contrastive losses (``info_nce``) treat every other row of a batch as a negative.
Rows that belong together then repel each other. G-SimCLR ("G-SimCLR: Self-Supervised
Contrastive Learning with Guided Projection via Pseudo Labelling", arXiv:2009.12007) fits a
denoising autoencoder on the unlabeled rows first, clusters its latent codes with k-means and
builds batches in which no two rows share a pseudo-label. :class:`PseudoLabelDiverse` holds
the settings of that step and computes the pseudo-labels; :class:`PseudoLabelDiverseBatches`
draws the training batches from them.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from ._batches import TensorBatches

__all__ = ["PSEUDO_LABEL_FIELD", "PseudoLabelDiverse", "PseudoLabelDiverseBatches"]

#: the batch field holding each row's pseudo-label; fields starting with "_" build batches
#: and never reach the loss
PSEUDO_LABEL_FIELD = "_pseudo_label"


def _check_settings(settings: dict[str, Any]) -> None:
    """Raise one ValueError listing every invalid :class:`PseudoLabelDiverse` setting."""
    problems = []
    n_clusters = settings["n_clusters"]
    if n_clusters is not None and not _integer_at_least(n_clusters, 2):
        problems.append(f"n_clusters must be an integer >= 2 or None. Got {n_clusters!r}.")
    for name in ("latent_dim", "hidden_units", "max_iter"):
        if not _integer_at_least(settings[name], 1):
            problems.append(f"{name} must be an integer >= 1. Got {settings[name]!r}.")
    lr = settings["lr"]
    if not isinstance(lr, numbers.Real) or isinstance(lr, bool) or not lr > 0:
        problems.append(f"lr must be a number > 0. Got {lr!r}.")
    if problems:
        raise ValueError("PseudoLabelDiverse: " + " ".join(problems))


class PseudoLabelDiverse:
    """Settings of the ``"pseudo_label_diverse"`` sampler of :class:`~lossreg.LossEmbedder`.

    At each ``fit`` and before the embedding network trains, an autoencoder is fitted on the
    training rows: a :class:`~lossreg.LossRegressor` with the ``mse`` loss reconstructing
    ``X`` from ``X`` through an MLP with hidden layers ``(hidden_units, latent_dim,
    hidden_units)`` (ReLU). Each row's latent code is the bottleneck layer's output before
    its activation. k-means (scikit-learn, 4 initialisations) clusters the codes into
    ``n_clusters`` pseudo-labels, and the training batches are then drawn by
    :class:`PseudoLabelDiverseBatches`. G-SimCLR uses a denoising convolutional autoencoder;
    this one is a plain fully connected one (tabular rows, and its only job is to give
    k-means a compressed view of the rows).

    Parameters
    ----------
    n_clusters : int >= 2 or None, default=None
        Number of pseudo-labels. ``None``: twice the training batch size, so that every
        batch can hold rows of distinct pseudo-labels and no pseudo-label must be in every
        batch. Capped at the number of training rows. With fewer pseudo-labels than rows in
        a batch, a batch holds each pseudo-label about equally often (see
        :class:`PseudoLabelDiverseBatches`).
    latent_dim : int >= 1, default=8
        Width of the autoencoder's bottleneck (the codes k-means clusters).
    hidden_units : int >= 1, default=64
        Width of the autoencoder's layers around the bottleneck.
    max_iter : int >= 1, default=50
        Epochs of autoencoder training (it stops earlier when the training loss stalls).
    lr : float > 0, default=1e-3
        Learning rate of the autoencoder (AdamW).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(120, 6)).astype(np.float32)
    >>> settings = PseudoLabelDiverse(n_clusters=5, max_iter=5)
    >>> labels = settings.pseudo_labels(X, batch_size=32, seed=0)
    >>> labels.shape, sorted(set(labels.tolist()))
    ((120,), [0, 1, 2, 3, 4])
    """

    def __init__(
        self,
        n_clusters: int | None = None,
        *,
        latent_dim: int = 8,
        hidden_units: int = 64,
        max_iter: int = 50,
        lr: float = 1e-3,
    ) -> None:
        _check_settings(
            {
                "n_clusters": n_clusters,
                "latent_dim": latent_dim,
                "hidden_units": hidden_units,
                "max_iter": max_iter,
                "lr": lr,
            }
        )
        self.n_clusters = n_clusters
        self.latent_dim = latent_dim
        self.hidden_units = hidden_units
        self.max_iter = max_iter
        self.lr = lr

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The settings, so that ``repr`` and scikit-learn's ``clone`` see them."""
        return {
            "n_clusters": self.n_clusters,
            "latent_dim": self.latent_dim,
            "hidden_units": self.hidden_units,
            "max_iter": self.max_iter,
            "lr": self.lr,
        }

    def set_params(self, **params: Any) -> PseudoLabelDiverse:
        """Change settings, checked as in ``__init__`` (``sampler__n_clusters`` in a search)."""
        settings = self.get_params()
        unknown = sorted(set(params) - set(settings))
        if unknown:
            raise ValueError(
                f"PseudoLabelDiverse has no setting {', '.join(map(repr, unknown))}. Valid "
                f"settings: {', '.join(settings)}."
            )
        settings.update(params)
        _check_settings(settings)
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"PseudoLabelDiverse({inner})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PseudoLabelDiverse) and other.get_params() == self.get_params()

    def __hash__(self) -> int:
        return hash(tuple(self.get_params().items()))

    def pseudo_labels(self, X: np.ndarray, *, batch_size: int, seed: int) -> np.ndarray:
        """k-means pseudo-labels (0 .. k-1) of the rows of ``X`` on autoencoder latents.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            The training rows, as the embedding network sees them (scaled).
        batch_size : int
            The training batch size (half the number of pseudo-labels when
            ``n_clusters=None``).
        seed : int
            Seeds the autoencoder's training and k-means.

        Returns
        -------
        ndarray of int64, shape (n_samples,)
        """
        from sklearn.cluster import KMeans

        from .regressor import LossRegressor

        X = np.ascontiguousarray(X, dtype=np.float32)
        n_rows = X.shape[0]
        wanted = 2 * int(batch_size) if self.n_clusters is None else int(self.n_clusters)
        k = max(1, min(wanted, n_rows))
        autoencoder = LossRegressor(
            loss="mse",
            max_iter=self.max_iter,
            lr=self.lr,
            random_state=seed,
            module__hidden_units=(self.hidden_units, self.latent_dim, self.hidden_units),
        ).fit(X, X)
        layers = autoencoder.module_.layers
        with torch.no_grad():
            # layers: Linear, ReLU, Linear (the bottleneck), ReLU, ...: the code is the
            # bottleneck's pre-activation, so no unit is clipped to zero before k-means.
            codes = layers[:3](torch.from_numpy(X)).numpy().astype(np.float64)
        kmeans = KMeans(n_clusters=k, n_init=4, random_state=seed)
        return kmeans.fit_predict(codes).astype(np.int64)


class PseudoLabelDiverseBatches:
    """Training batches in which no two rows share a pseudo-label, where possible.

    An epoch has ``B = ceil(n / batch_size)`` batches of near-equal sizes. A batch of
    ``size`` rows over ``K`` pseudo-labels:

    - ``size <= K``: ``size`` distinct pseudo-labels, drawn without replacement with
      probabilities proportional to their numbers of rows, one row of each: no two rows of
      the batch share a pseudo-label.
    - ``size > K`` (a batch larger than the number of clusters): every pseudo-label
      ``size // K`` times, and ``size % K`` distinct ones (drawn as above) once more, so the
      rows of one pseudo-label are spread as evenly over the batch as its size allows.

    The rows of each pseudo-label are taken in shuffled passes that carry over from batch to
    batch and epoch to epoch: every row of a pseudo-label is drawn before any is drawn
    again. A pseudo-label is in a batch at most once (``size <= K``), so the rows of a
    pseudo-label holding more than ``1 / size`` of the data are drawn less often than with
    random batches, and rows of small pseudo-labels more often: the price of the constraint.

    Parameters
    ----------
    data : TensorBatches
        The training rows and their fields.
    labels : Tensor of shape (n_samples,)
        The pseudo-label of each row.
    batch_size : int
    generator : torch.Generator, optional
        Seeds the draws and the shuffles.
    """

    def __init__(
        self,
        data: TensorBatches,
        labels: torch.Tensor,
        batch_size: int,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        self.data = data
        self.batch_size = max(1, int(batch_size))
        self.generator = generator
        labels = labels.cpu().long()
        if labels.shape[0] != len(data):
            raise ValueError(
                f"{labels.shape[0]} pseudo-labels for {len(data)} rows; pass one per row."
            )
        _, inverse = torch.unique(labels, return_inverse=True)
        order = torch.argsort(inverse, stable=True)
        counts = torch.bincount(inverse)
        self._members = list(torch.split(order, counts.tolist()))
        self._weights = counts.double()
        # per pseudo-label: the current shuffled pass over its rows and how much is used
        self._passes = [torch.empty(0, dtype=torch.long)] * len(self._members)
        self._used = [0] * len(self._members)

    def __len__(self) -> int:
        n = len(self.data)
        return -(-n // self.batch_size) if n else 0

    def _take(self, label: int, k: int) -> list[torch.Tensor]:
        """The next ``k`` rows of ``label``'s stream of shuffled passes."""
        rows, taken = self._members[label], []
        while k > 0:
            if self._used[label] >= len(self._passes[label]):
                self._passes[label] = rows[torch.randperm(len(rows), generator=self.generator)]
                self._used[label] = 0
            start = self._used[label]
            chunk = self._passes[label][start : start + k]
            self._used[label] += len(chunk)
            k -= len(chunk)
            taken.append(chunk)
        return taken

    def _labels_of_batch(self, size: int) -> torch.Tensor:
        """How many rows of each pseudo-label a batch of ``size`` rows takes."""
        n_labels = len(self._members)
        full, rest = divmod(size, n_labels)
        counts = torch.full((n_labels,), full, dtype=torch.long)
        if rest:
            chosen = torch.multinomial(
                self._weights, rest, replacement=False, generator=self.generator
            )
            counts[chosen] += 1
        return counts

    def batches(self) -> list[torch.Tensor]:
        """One epoch of batches (row positions in ``data``)."""
        n, n_batches = len(self.data), len(self)
        base, extra = divmod(n, max(n_batches, 1))
        out = []
        for b in range(n_batches):
            counts = self._labels_of_batch(base + (b < extra))
            parts = []
            for label in torch.nonzero(counts).flatten().tolist():
                parts.extend(self._take(label, int(counts[label])))
            out.append(torch.cat(parts))
        return out

    def __iter__(self) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        device = self.data.X.device
        for index in self.batches():
            index = index.to(device)
            yield self.data.X[index], {k: v[index] for k, v in self.data.fields.items()}


def _integer_at_least(value: Any, low: int) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low
