"""``HiddenLayersFrom``: start a network from the hidden layers of another fitted network.

Two-phase training (pretrain an embedding with a metric loss such as ``supcon``, then fine-tune
a classifier with another loss) needs the pretrained hidden layers in a network whose output
layer is new: a LossEmbedder ends in an ``n_components``-wide embedding, a LossClassifier in
one logit per class. ``warm_start`` cannot do it: it continues the same estimator, with the
same loss and output width.

``HiddenLayersFrom`` is a module factory, passed as the new estimator's ``module``. It copies
the weights when it is created, so it is a plain object: ``clone`` (and every scikit-learn
search) deep-copies it with the weights, where a fitted estimator passed as a parameter would be
cloned into an unfitted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ._mlp import ACTIVATIONS, MLP

__all__ = ["HiddenLayersFrom"]

#: the MLP layers that hold weights and so are copied, in order; activations and dropout
#: have none
_WEIGHTED = (nn.Linear, nn.BatchNorm1d)


class HiddenLayersFrom:
    """lossreg's MLP with hidden layers copied from a fitted network and a new output layer.

    Parameters
    ----------
    source : fitted lossreg estimator or MLP
        A fitted ``LossEmbedder``, ``LossClassifier`` or ``LossRegressor`` trained with the
        default MLP (its ``module_``), or an :class:`~lossreg.estimators.MLP` itself. Every
        layer but the output layer is copied (Linear and BatchNorm weights and statistics);
        the source is not kept, so refitting it later changes nothing here.

    Notes
    -----
    The new network takes the source's architecture (``hidden_units``, ``activation``,
    ``dropout``, ``batch_norm``) unless the estimator sets ``module__<name>``; settings that
    change a hidden layer's shape fail at ``fit`` with the shapes of both networks. The input
    width must be the source's: preprocess the new rows as the source's were. The output
    layer is built by the estimator for its loss and target (initialised from its
    ``random_state``; ``output_bias="prior"`` applies to it), and every layer is trained.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from lossreg import LossClassifier, LossEmbedder
    >>> from lossreg.estimators import HiddenLayersFrom
    >>> X, y = make_classification(n_samples=200, n_features=8, random_state=0)
    >>> embedder = LossEmbedder(loss="supcon", max_iter=2, random_state=0).fit(X, y)
    >>> clf = LossClassifier(
    ...     loss="binary_focal", module=HiddenLayersFrom(embedder), max_iter=2, random_state=0
    ... ).fit(X, y)
    >>> clf.predict_proba(X).shape
    (200, 2)
    """

    def __init__(self, source: Any) -> None:
        module = _source_module(source)
        hidden = list(module.layers)[:-1]
        linear = [layer for layer in hidden if isinstance(layer, nn.Linear)]
        self.n_features = int(module.layers[0].in_features)
        self.architecture = {
            "hidden_units": tuple(int(layer.out_features) for layer in linear),
            "activation": _activation_name(hidden),
            "dropout": next((float(m.p) for m in hidden if isinstance(m, nn.Dropout)), 0.0),
            "batch_norm": any(isinstance(m, nn.BatchNorm1d) for m in hidden),
        }
        # detached CPU copies: the factory owns its weights and pickles without the source
        self.states = [
            {k: v.detach().cpu().clone() for k, v in layer.state_dict().items()}
            for layer in hidden
            if isinstance(layer, _WEIGHTED)
        ]
        self.kinds = [type(layer).__name__ for layer in hidden if isinstance(layer, _WEIGHTED)]

    def __call__(
        self, n_features: int, n_outputs: int, return_features: bool = False, **params: Any
    ) -> MLP:
        """The estimator's MLP (its sizes and ``module__`` settings) with the copied layers."""
        if int(n_features) != self.n_features:
            raise ValueError(
                f"HiddenLayersFrom: the pretrained network takes {self.n_features} input "
                f"features; this fit has {n_features}. Pass rows with the source's columns, "
                "preprocessed as its training rows were."
            )
        settings = {**self.architecture, **params}
        module = MLP(n_features, n_outputs, return_features=return_features, **settings)
        targets = [layer for layer in list(module.layers)[:-1] if isinstance(layer, _WEIGHTED)]
        self._check_shapes(targets, settings["hidden_units"])
        for layer, state in zip(targets, self.states, strict=True):
            layer.load_state_dict(state)
        return module

    def _check_shapes(self, targets: Sequence[nn.Module], hidden_units: Any) -> None:
        kinds = [type(layer).__name__ for layer in targets]
        shapes = [_shape(layer) for layer in targets]
        wanted = [tuple(state["weight"].shape) for state in self.states]
        if kinds == self.kinds and shapes == wanted:
            return
        source = self.architecture
        raise ValueError(
            "HiddenLayersFrom: the new network's hidden layers do not match the pretrained "
            f"ones: {_describe(kinds, shapes)} here (hidden_units={tuple(hidden_units)!r}), "
            f"{_describe(self.kinds, wanted)} pretrained (hidden_units="
            f"{source['hidden_units']!r}, batch_norm={source['batch_norm']!r}). Leave "
            "module__hidden_units and module__batch_norm unset to take the pretrained ones."
        )

    def __repr__(self) -> str:
        units = self.architecture["hidden_units"]
        return f"HiddenLayersFrom(<MLP {self.n_features} -> {units}>)"


def _source_module(source: Any) -> MLP:
    """The MLP of a fitted estimator (or the MLP itself); clear errors for anything else."""
    if isinstance(source, MLP):
        return source
    if isinstance(source, nn.Module):
        raise ValueError(
            f"HiddenLayersFrom copies lossreg's MLP; got a {type(source).__name__}. Copy the "
            "weights of your own module yourself (load_state_dict) in a module factory."
        )
    module = getattr(source, "module_", None)
    if module is None:
        raise ValueError(
            f"HiddenLayersFrom needs a fitted lossreg estimator (with module_); got "
            f"{type(source).__name__}, which is not fitted. Call its fit(X, y) first."
        )
    if not isinstance(module, MLP):
        raise ValueError(
            f"HiddenLayersFrom copies lossreg's default MLP; the {type(source).__name__} was "
            f"fitted with module={type(module).__name__}. Pretrain with module=None."
        )
    return module


def _activation_name(layers: Sequence[nn.Module]) -> str:
    for layer in layers:
        for name, kind in ACTIVATIONS.items():
            if type(layer) is kind:
                return name
    return "relu"  # a linear model (no hidden layer) has no activation to copy


def _shape(layer: nn.Module) -> tuple[int, ...]:
    return tuple(layer.weight.shape)


def _describe(kinds: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> str:
    parts = [f"{k}{list(s)}" for k, s in zip(kinds, shapes, strict=True)]
    return ", ".join(parts) if parts else "no hidden layer"
