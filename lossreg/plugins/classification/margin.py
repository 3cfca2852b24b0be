"""Binary margin losses on one score per row: hinge, squared hinge, exponential, perceptron."""

from __future__ import annotations

from typing import Any

import torch

from lossreg import LossModule

from ._private import binary_margin

__all__ = ["Exponential", "Hinge", "Perceptron", "SquaredHinge"]


class Hinge(LossModule):
    r"""Hinge loss on one score per row (the SVM loss).

    .. math::

        \ell_i = \max(0,\, 1 - m_i), \qquad m_i = (2y_i - 1) f_i

    The score has shape (N,) or (N, 1); targets are {0, 1} labels, mapped to :math:`\pm 1`.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Classification-calibrated but not proper: the score gives a sign, not a probability.
    At :math:`m = 1` autograd uses the subgradient 0. Matches
    ``sklearn.metrics.hinge_loss`` and the ``Hinge`` class of statmlben/ensLoss
    ``losses.py`` (checked; same formula as the catalogue).

    References
    ----------
    J. Terven, D.-M. Cordova-Esparza, A. Ramirez-Pedraza, E. A. Chavez-Urbiola,
    J. A. Romero-Gonzalez. "Loss Functions and Metrics in Deep Learning." arXiv:2307.02694.

    Examples
    --------
    >>> import torch
    >>> loss = Hinge(reduction="none")
    >>> values = loss(torch.tensor([2.0, -0.5, 0.0, 1.0]), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.0, 0.5, 1.0, 2.0]
    """

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        return torch.relu(1 - binary_margin(input, target))


class SquaredHinge(LossModule):
    r"""Squared hinge loss on one score per row.

    .. math::

        \ell_i = \max(0,\, 1 - m_i)^2, \qquad m_i = (2y_i - 1) f_i

    Shapes as :class:`Hinge`.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Smooth at the hinge, unlike ``hinge``; no probabilities (not proper). The per-row loss of
    ``sklearn.linear_model.LinearSVC(loss="squared_hinge")`` and of scikit-learn's SGD
    ``SquaredHinge(threshold=1)``, which the tests compare against.

    References
    ----------
    J. Terven et al. "Loss Functions and Metrics in Deep Learning." arXiv:2307.02694.

    Examples
    --------
    >>> import torch
    >>> loss = SquaredHinge(reduction="none")
    >>> values = loss(torch.tensor([2.0, -0.5, 0.0, 1.0]), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.0, 0.25, 1.0, 4.0]
    """

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        return torch.relu(1 - binary_margin(input, target)).square()


class Exponential(LossModule):
    r"""Exponential loss on one score per row (the AdaBoost loss).

    .. math::

        \ell_i = \exp(-m_i), \qquad m_i = (2y_i - 1) f_i

    Shapes as :class:`Hinge`.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    The margin is clamped at -50 before the exponential: beyond it the value would overflow
    float32 within a few more units and a single wrong row would swamp the batch, so the
    loss is :math:`e^{50}` with zero gradient there. The population minimiser is half the
    log-odds, so :math:`\sigma(2f)` can be read as a probability (not offered by the
    ``score`` link). Extremely sensitive to label noise. Same per-row loss as scikit-learn's
    ``ExponentialLoss`` (gradient boosting) and the ``EXP`` class of statmlben/ensLoss.

    References
    ----------
    B. Dai. "EnsLoss: Stochastic Calibrated Loss Ensembles for Preventing Overfitting in
    Classification." ICML 2025, arXiv:2409.00908.

    Examples
    --------
    >>> import torch
    >>> loss = Exponential(reduction="none")
    >>> values = loss(torch.tensor([2.0, -0.5, 0.0, 1.0]), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.1353, 0.6065, 1.0, 2.7183]
    """

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        return torch.exp(-binary_margin(input, target).clamp_min(-50.0))


class Perceptron(LossModule):
    r"""Perceptron loss on one score per row.

    .. math::

        \ell_i = \max(0,\, -m_i), \qquad m_i = (2y_i - 1) f_i

    Shapes as :class:`Hinge`.

    Parameters
    ----------
    reduction : {"mean", "sum", "none"}, default="mean"

    Notes
    -----
    Scale-invariant, zero gradient on correctly classified rows, and 0 for the all-zero
    model: pair it with an initialisation away from 0 (or the paper's normalised step,
    an optimizer feature). The per-row loss of ``sklearn.linear_model.Perceptron``
    (scikit-learn's SGD ``Hinge(threshold=0)``), which the tests compare against.

    References
    ----------
    A. Tyurin. "From Logistic Regression to the Perceptron Algorithm: Exploring Gradient
    Descent with Large Step Sizes." arXiv:2412.08424, 2024.

    Examples
    --------
    >>> import torch
    >>> loss = Perceptron(reduction="none")
    >>> values = loss(torch.tensor([2.0, -0.5, 0.5, 1.0]), torch.tensor([1.0, 0.0, 1.0, 0.0]))
    >>> [round(v, 4) for v in values.tolist()]
    [0.0, 0.0, 0.0, 1.0]
    """

    def per_sample_loss(
        self, input: torch.Tensor, target: torch.Tensor, **extras: Any
    ) -> torch.Tensor:
        return torch.relu(-binary_margin(input, target))
