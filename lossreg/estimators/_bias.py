"""Prior-based initialisation of the network's output bias (``output_bias="prior"``).

A freshly initialised network predicts roughly uniform classes, so on imbalanced data the
first epochs are spent learning the class frequencies, and with a sigmoid on rare labels the
loss of the many easy negatives dominates. Starting the output bias at the log-prior (softmax)
or the logit of each label's frequency (sigmoid) removes that phase; it is the initialisation
that the focal-loss and sampling-free detection papers rely on.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["OUTPUT_BIAS", "prior_bias", "set_output_bias"]

#: the values of the classifiers' ``output_bias`` parameter
OUTPUT_BIAS = ("default", "prior")

#: frequencies are clipped to [EPS, 1 - EPS] before the log: a class or label absent from the
#: training rows would otherwise give an infinite bias (and NaN gradients from its first step)
EPS = 1e-6


def prior_bias(
    loss: str, link: str, task: str, y: np.ndarray, n_classes: int, width: int
) -> np.ndarray:
    """The output bias whose link reproduces the training rows' class (or label) frequencies.

    Parameters
    ----------
    loss, link : str
        The loss and its link's name, for the messages.
    task : {"binary", "multiclass", "multilabel"}
    y : ndarray
        Encoded labelled targets: class indices (N,) or a 0/1 indicator matrix (N, L).
    n_classes : int
        Number of classes (labels).
    width : int
        Output width of the network.

    Returns
    -------
    ndarray of shape (width,)
        ``log(pi_k)`` for a softmax link (its softmax is ``pi``); ``log(pi / (1 - pi))`` per
        output for a sigmoid link (the positive class of a binary target, or each label).
    """
    if task == "multilabel":
        frequency = np.asarray(y, dtype=np.float64).mean(axis=0)
    else:
        frequency = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes) / len(y)
    frequency = np.clip(frequency, EPS, 1.0 - EPS)
    if link == "softmax" and width == len(frequency):
        return np.log(frequency)
    if link == "sigmoid" and task == "multilabel" and width == len(frequency):
        return np.log(frequency) - np.log1p(-frequency)
    if link == "sigmoid" and task == "binary" and width == 1:
        return np.log(frequency[1:]) - np.log1p(-frequency[1:])
    raise ValueError(
        f"output_bias='prior' needs a softmax output with one column per class or a sigmoid "
        f"output with one column per label; loss {loss!r} has link {link!r} and {width} output "
        f"columns for a {task} target with {n_classes} classes. Use output_bias='default'."
    )


def set_output_bias(module: nn.Module, bias: np.ndarray) -> None:
    """Write ``bias`` into the module's output layer: its last ``nn.Linear`` of that width.

    Raises a ValueError naming the fix when the module has no such layer (a custom module
    whose last layer is not a biased ``nn.Linear``).
    """
    last = None
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            last = layer
    if last is None or last.bias is None or last.out_features != len(bias):
        found = (
            "no nn.Linear layer"
            if last is None
            else f"a last nn.Linear with {last.out_features} outputs"
            + (" and no bias" if last.bias is None else "")
        )
        raise ValueError(
            f"output_bias='prior' sets the bias of the module's last nn.Linear layer, which must "
            f"have {len(bias)} outputs and a bias; {type(module).__name__} has {found}. "
            "Use output_bias='default' and initialise the bias in your module."
        )
    with torch.no_grad():
        last.bias.copy_(torch.as_tensor(bias, dtype=last.bias.dtype))
