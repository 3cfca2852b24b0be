"""The default network: a multilayer perceptron sized from the data at fit time."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "MLP"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


class MLP(nn.Module):
    """Fully connected network: [Linear → (BatchNorm) → activation → (Dropout)] × k → Linear.

    Parameters
    ----------
    n_features : int
        Input width, set by the estimator from ``X``.
    n_outputs : int
        Output width, set by the estimator from the loss and the target.
    hidden_units : sequence of int, default=(128, 64)
        Width of each hidden layer; ``()`` gives a linear model.
    activation : {"relu", "gelu", "silu", "tanh", "elu", "leaky_relu"}, default="relu"
    dropout : float in [0, 1), default=0.0
        Dropout after each hidden activation.
    batch_norm : bool, default=False
        Batch normalisation before each hidden activation.
    return_features : bool, default=False
        Return the pair ``(logits, features)``, features being the last hidden layer's output
        (after its activation and dropout; the inputs when ``hidden_units=()``). Estimators
        set it for losses whose spec says ``outputs="logits+features"``.
    head_bias : bool, default=True
        Whether the output layer has a bias; False gives the bias-free last layer of the
        neural-collapse analyses (class geometry read from the weights and features alone).
    """

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        hidden_units: Sequence[int] = (128, 64),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        return_features: bool = False,
        head_bias: bool = True,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"module__activation must be one of {', '.join(map(repr, ACTIVATIONS))}. "
                f"Got {activation!r} instead."
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"module__dropout must be in [0, 1). Got {dropout!r} instead.")
        layers: list[nn.Module] = []
        width = n_features
        for units in hidden_units:
            layers.append(nn.Linear(width, int(units)))
            if batch_norm:
                layers.append(nn.BatchNorm1d(int(units)))
            layers.append(ACTIVATIONS[activation]())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = int(units)
        layers.append(nn.Linear(width, n_outputs, bias=head_bias))
        self.layers = nn.Sequential(*layers)
        self.return_features = return_features
        self.n_features_out = width  # the width of the features returned next to the logits

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if not self.return_features:
            return self.layers(x)
        features = self.layers[:-1](x)
        return self.layers[-1](features), features
