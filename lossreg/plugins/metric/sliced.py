"""Sliced-Wasserstein distance of a batch of embeddings to samples of a fixed prior (SWAE)."""

from __future__ import annotations

from typing import Any

import torch

from ._private import BatchLoss, check_embeddings

__all__ = ["PRIORS", "SlicedWasserstein", "sliced_wasserstein"]

#: The priors the embeddings can be matched to.
PRIORS = ("uniform", "normal")


def sliced_wasserstein(
    z: torch.Tensor, prior: torch.Tensor, directions: torch.Tensor
) -> torch.Tensor:
    r"""Monte-Carlo sliced :math:`W_2^2` between two equal-size samples along unit ``directions``.

    ``z`` and ``prior`` are (N, D), ``directions`` (L, D) unit rows. Returns
    :math:`\frac1{LN}\sum_{l,n}(\mathrm{sort}(z\theta_l)_n - \mathrm{sort}(\tilde z\theta_l)_n)^2`.
    """
    projected = (z @ directions.T).sort(dim=0).values
    reference = (prior @ directions.T).sort(dim=0).values
    return (projected - reference).square().mean()


class SlicedWasserstein(BatchLoss):
    r"""Sliced-Wasserstein distance of the embedding batch to a prior (SWAE regulariser).

    .. math::

        \mathrm{SW}_2^2(z,\tilde z) \approx \frac1L\sum_{l=1}^L\frac1N\sum_{n=1}^N
            \big(\mathrm{sort}(\theta_l^\top z)_n - \mathrm{sort}(\theta_l^\top\tilde z)_n\big)^2

    with :math:`L` directions :math:`\theta_l` drawn uniformly on the unit sphere and
    :math:`\tilde z` N samples of the prior, both drawn afresh at each call. Sorting solves the
    one-dimensional optimal transport along each direction exactly.

    Input: embeddings (N, D) (not normalised); target: ignored (labels are accepted). No
    per-row form: ``reduction`` is "mean" or "sum" (the same value). ``sample_weight`` is not
    supported (weighted empirical measures have no sorted matching). Randomness comes from
    torch's global generator.

    Parameters
    ----------
    n_projections : int >= 1, default=50
        :math:`L`.
    prior : {"uniform", "normal"}, default="uniform"
        Uniform on :math:`[-1, 1]^D` or standard normal.
    reduction : {"mean", "sum"}, default="mean"

    Notes
    -----
    Checked against the authors' code (skolouri/swae,
    ``MNIST_SlicedWassersteinAutoEncoder_uniform.ipynb``): directions are normalised Gaussian
    draws, :math:`L=50`, the prior is uniform on :math:`[-1,1]^D`, the distance is the mean of the
    squared differences of the sorted projections. There it is added to the reconstruction
    loss with weight :math:`\lambda=10` (the catalogue's :math:`\lambda` is 1-10): as a
    regulariser, combine it with a task loss through ``weighted_sum``; on its own it only
    moves the embeddings towards the prior, ignoring labels. The catalogue's second use
    (predictions against targets in multi-output regression) is not offered: it needs
    weighted measures for sample weights.

    References
    ----------
    S. Kolouri et al. "Sliced-Wasserstein Autoencoder: An Embarrassingly Simple Generative
    Model." arXiv:1804.01947, 2018.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [-1.0, 0.0]])
    >>> prior = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    >>> round(sliced_wasserstein(z, prior, torch.tensor([[1.0, 0.0]])).item(), 4)
    0.0625
    """

    def __init__(
        self, *, n_projections: int = 50, prior: str = "uniform", reduction: str = "mean"
    ) -> None:
        super().__init__(reduction=reduction)
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}. Got {prior!r} instead.")
        self.n_projections = n_projections
        self.prior = prior

    def sample_prior(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """Draw ``n`` prior samples shaped and typed like the rows of ``like``."""
        shape = (n, like.shape[1])
        if self.prior == "normal":
            return torch.randn(shape, dtype=like.dtype, device=like.device)
        return 2 * torch.rand(shape, dtype=like.dtype, device=like.device) - 1

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor | None = None,
        *,
        sample_weight: torch.Tensor | None = None,
        **extras: Any,
    ) -> torch.Tensor:
        z = check_embeddings(input)
        if sample_weight is not None:
            raise ValueError(
                "SlicedWasserstein compares the batch's empirical distribution with the prior "
                "and cannot honour sample_weight; drop it."
            )
        directions = torch.randn((self.n_projections, z.shape[1]), dtype=z.dtype, device=z.device)
        directions = directions / directions.norm(dim=1, keepdim=True)
        return sliced_wasserstein(z, self.sample_prior(z.shape[0], z), directions)

    def extra_repr(self) -> str:
        return (
            f"n_projections={self.n_projections}, prior={self.prior!r}, "
            f"reduction={self.reduction!r}"
        )
