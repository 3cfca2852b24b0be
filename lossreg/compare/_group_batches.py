"""Whole-group training batches for any loss: ``whole_group_batches = true`` in compare.

Some losses normalise over their batch and were designed for a batch that is one natural
unit: ``density_normalized_ce`` divides by the foreground count of one scene graph. With
random rows every batch has about the same foreground share and the normaliser becomes a
constant. These estimators draw training batches made of whole groups (the ids passed as
``group``): groups are shuffled each epoch and packed until a batch holds ``batch_size`` rows
(``batch_size=1``: one group per batch). The loss itself does not receive the ids unless it
declares a ``group`` extra; prediction and validation batches are unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lossreg.estimators import LossClassifier, LossRegressor
from lossreg.estimators._batches import GroupedBatches, TensorBatches
from lossreg.estimators._net import LossNet

__all__ = ["GroupBatchedClassifier", "GroupBatchedRegressor", "group_batched"]

#: the batch field holding the group ids the batches are cut by; LossNet passes no field named
#: "_..." to the loss
_BATCH_GROUP = "_batch_group"


class _GroupBatchNet(LossNet):
    """A :class:`LossNet` whose training batches are whole groups of ``_batch_group``."""

    def get_iterator(self, dataset: TensorBatches, training: bool = False) -> Any:
        if not training:
            return super().get_iterator(dataset, training)
        size = self.batch_size if self.batch_size and self.batch_size > 0 else len(dataset)
        return GroupedBatches(dataset, dataset.fields[_BATCH_GROUP], size, generator=self.generator)


class _WholeGroupBatching:
    """Estimator mixin: ``fit(X, y, group=ids)`` trains on whole-group batches."""

    def _extras(
        self,
        loss: str,
        declared: tuple[str, ...],
        extras: dict[str, Any],
        X: np.ndarray,
        widths: dict[str, tuple[int, ...]] | None = None,
    ) -> dict[str, torch.Tensor]:
        tensors = super()._extras(loss, declared, extras, X, widths)  # type: ignore[misc]
        group = extras.get("group")
        if group is None:
            raise ValueError(
                "whole_group_batches=True cuts training batches by group ids, but fit got no "
                "group: pass fit(X, y, group=ids) (in compare: --group COL or a generator with "
                "a group column)."
            )
        group = np.asarray(group)
        if group.shape[0] != X.shape[0]:
            raise ValueError(f"group has {group.shape[0]} rows but X has {X.shape[0]}.")
        ids = np.unique(group, return_inverse=True)[1].reshape(-1)
        tensors[_BATCH_GROUP] = torch.as_tensor(ids, dtype=torch.int64)
        return tensors

    def _build_net(self, spec: Any, *args: Any, **kwargs: Any) -> LossNet:
        if spec.sampler is not None:
            raise ValueError(
                f"Loss {spec.name!r} draws its own batches (sampler={spec.sampler!r}); "
                "whole_group_batches cannot replace them. Drop whole_group_batches for it."
            )
        net = super()._build_net(spec, *args, **kwargs)  # type: ignore[misc]
        # LossNet is built by the base class; only the batch iterator changes, so the instance
        # takes the subclass's method.
        net.__class__ = _GroupBatchNet
        return net


class GroupBatchedClassifier(_WholeGroupBatching, LossClassifier):
    """:class:`~lossreg.LossClassifier` trained on whole-group batches (``fit(..., group=)``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(60, 3)), np.tile([0, 0, 1], 20)
    >>> clf = GroupBatchedClassifier(max_iter=2, batch_size=1, random_state=0)
    >>> clf.fit(X, y, group=np.repeat(np.arange(6), 10)).predict(X).shape
    (60,)
    """


class GroupBatchedRegressor(_WholeGroupBatching, LossRegressor):
    """:class:`~lossreg.LossRegressor` trained on whole-group batches (``fit(..., group=)``)."""


def group_batched(model: type) -> type:
    """The whole-group-batch version of ``LossClassifier`` or ``LossRegressor``."""
    versions = {LossClassifier: GroupBatchedClassifier, LossRegressor: GroupBatchedRegressor}
    if model not in versions:
        raise ValueError(
            f"whole_group_batches works for classification and regression, not for "
            f"{model.__name__}; drop it from the estimator settings."
        )
    return versions[model]
