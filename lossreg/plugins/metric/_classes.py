"""Shared base of the losses that own one learnable vector per class, and their predict link."""

from __future__ import annotations

import abc
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lossreg import Link, LossModule

from ._private import check_embeddings

__all__ = ["CLASS_LOGITS_LINK", "ClassVectors", "check_width", "replace_target_logit"]


def check_width(input: torch.Tensor, embedding_dim: int) -> torch.Tensor:
    """Return ``input`` if it is (N, embedding_dim), else raise a clear error."""
    check_embeddings(input)
    if input.shape[1] != embedding_dim:
        raise ValueError(
            f"The loss was built for embedding_dim={embedding_dim} but got embeddings of width "
            f"{input.shape[1]}; embedding_dim must equal the network's output width."
        )
    return input


def replace_target_logit(
    logits: torch.Tensor, labels: torch.Tensor, target_logit: torch.Tensor
) -> torch.Tensor:
    """Return the cross-entropy of ``logits`` with the target column set to ``target_logit``."""
    logits = logits.scatter(1, labels.unsqueeze(1), target_logit.unsqueeze(1))
    return torch.logsumexp(logits, dim=1) - target_logit


class ClassVectors(LossModule):
    """A per-sample loss with a learnable (n_classes, embedding_dim) matrix ``weight``.

    ``weight`` is created in the default dtype and cast to the input's dtype at each call,
    so float64 inputs stay float64 while the parameter keeps its own dtype.
    """

    def __init__(self, *, n_classes: int, embedding_dim: int, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        if int(n_classes) < 1 or int(embedding_dim) < 1:
            raise ValueError(
                f"n_classes and embedding_dim must be positive ints. Got n_classes={n_classes!r}"
                f", embedding_dim={embedding_dim!r}."
            )
        self.n_classes = n_classes
        self.embedding_dim = embedding_dim
        self.weight = nn.Parameter(
            torch.randn(int(n_classes), int(embedding_dim)) / math.sqrt(int(embedding_dim))
        )

    def cosine(self, input: torch.Tensor) -> torch.Tensor:
        """Return the (N, C) cosine between each embedding and each class vector."""
        x = F.normalize(check_width(input, self.embedding_dim), dim=1)
        return x @ F.normalize(self.weight.to(input.dtype), dim=1).T

    @abc.abstractmethod
    def logits(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Return the (N, C) class logits without margin."""


def _class_softmax(output: torch.Tensor, criterion: Any = None) -> torch.Tensor:
    if criterion is None or not hasattr(criterion, "logits"):
        raise ValueError(
            "The class_logits link needs the fitted loss module (it holds the class vectors); "
            "pass the criterion to the link."
        )
    return criterion.logits(output).softmax(dim=-1)


#: Probabilities from the loss's class vectors: softmax(criterion.logits(embeddings)).
CLASS_LOGITS_LINK = Link(
    "class_logits",
    _class_softmax,
    "proba",
    "softmax of the loss's margin-free class logits criterion.logits(embeddings)",
)
