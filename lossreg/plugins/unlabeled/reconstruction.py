"""PBN: cross-entropy on labelled (known-class) rows plus input reconstruction on all rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossreg import Link

from ._private import check_batch_reduction, labeled_mask, row_weights, weighted_mean

__all__ = ["KNOWN_CLASS_SOFTMAX_LINK", "ProjectionBasedNCD", "pbn_output_size"]


class ProjectionBasedNCD(nn.Module):
    r"""PBN training loss: weighted CE on known-class rows plus squared reconstruction error.

    .. math::

        L = w\,\mathrm{mean}_{i: y_i \ne -1}\,\mathrm{CE}(z_i, y_i)
            + (1-w)\,\frac1B\sum_{i=1}^{B}\lVert\hat x_i - x_i\rVert^2

    Output (N, C + F): columns 0..C-1 are the logits over the C known classes, columns C..
    the reconstruction :math:`\hat x` of the F input features. Target: known-class labels,
    -1 for unlabeled / novel-class rows; ``features``: the rows' own features X (fit extra).
    The CE uses labelled rows only (0 when the batch has none); the reconstruction all rows.

    Parameters
    ----------
    w : float in [0, 1], default=0.5
        Trade-off between classification and reconstruction (the key hyperparameter).
    n_classes : int
        Number of known classes C (data param, computed without the -1 rows).
    reduction : {"mean", "sum"}, default="mean"
        Batch-level: ``"none"`` is refused; ``"sum"`` multiplies by the total weight.

    Notes
    -----
    Checked against ``train_on_known_classes`` of ColinTr/PracticalNCD
    (``models/PBN_model.py``): ``w * CrossEntropyLoss(known) + (1 - w) * MSELoss(sum) / B``.
    There the reference gives NaN for a batch without known rows; here that term is 0. The
    paper tunes ``w`` per data set with its class-hiding cross-validation (a model-selection
    splitter, not part of the loss); 0.5 is a neutral default, not the paper's. Novel classes
    are found afterwards by k-means in the latent space (an estimator feature); the predict
    link gives softmax probabilities over the known classes. Sample weights weight both terms.

    References
    ----------
    C. Troisemaine, A. Reiffers-Masson, S. Gosselin, V. Lemaire, S. Vaton. "A Practical
    Approach to Novel Class Discovery in Tabular Data." Data Mining and Knowledge Discovery
    2024, arXiv:2311.05440.

    Examples
    --------
    >>> import torch
    >>> loss = ProjectionBasedNCD(n_classes=2)
    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    >>> out = torch.tensor([[2.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0],
    ...                     [1.0, 1.0, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]])
    >>> round(loss(out, torch.tensor([0, 1, -1, -1]), features=x).item(), 4)
    0.1725
    """

    def __init__(self, *, w: float = 0.5, n_classes: int, reduction: str = "mean") -> None:
        super().__init__()
        self.w = w
        self.n_classes = n_classes
        self.reduction = check_batch_reduction(reduction, "pbn_ce_recon")

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        *,
        sample_weight: torch.Tensor | None = None,
        features: Any = None,
        **extras: Any,
    ) -> torch.Tensor:
        if features is None:
            raise ValueError("Loss 'pbn_ce_recon' needs features=X, the rows' own features.")
        x = torch.as_tensor(features, dtype=input.dtype, device=input.device)
        x = x.reshape(x.shape[0], -1)
        c = self.n_classes
        if input.ndim != 2 or input.shape[1] != c + x.shape[1]:
            raise ValueError(
                f"Loss 'pbn_ce_recon' needs an output of shape (N, {c} + {x.shape[1]}): the "
                f"known-class logits, then one reconstruction per input feature. Got "
                f"{tuple(input.shape)}."
            )
        weight = row_weights(sample_weight, input.shape[0], input)
        logits, reconstruction = input[:, :c], input[:, c:]
        labeled = labeled_mask(target)
        labels = torch.where(labeled, target.reshape(-1).long(), 0)
        ce = weighted_mean(
            F.cross_entropy(logits, labels, reduction="none"), weight * labeled.to(input.dtype)
        )
        recon = weighted_mean((reconstruction - x).square().sum(dim=1), weight)
        value = self.w * ce + (1 - self.w) * recon
        return value * weight.sum() if self.reduction == "sum" else value

    def extra_repr(self) -> str:
        return f"w={self.w}, n_classes={self.n_classes}, reduction={self.reduction!r}"


def pbn_output_size(context: Mapping[str, Any]) -> int:
    """Return C + F outputs; needs ``n_features`` in the context (an estimator feature)."""
    if "n_features" not in context:
        raise KeyError(
            "Loss 'pbn_ce_recon' needs n_classes + n_features outputs, but the estimator did "
            "not provide 'n_features' in the output-size context."
        )
    return int(context["n_classes"]) + int(context["n_features"])


def _known_class_softmax(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    if criterion is None:
        raise ValueError("The known_class_softmax link needs the fitted loss (its n_classes).")
    return output[:, : criterion.n_classes].softmax(dim=1)


#: Softmax over the known-class columns of a (logits, reconstruction) output.
KNOWN_CLASS_SOFTMAX_LINK = Link(
    "known_class_softmax",
    _known_class_softmax,
    "proba",
    "softmax over the first n_classes columns (known classes)",
)
