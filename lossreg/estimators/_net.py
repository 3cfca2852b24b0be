"""The skorch net that trains a lossreg criterion: tensor batches, extras, divergence checks."""

from __future__ import annotations

import math
from typing import Any

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EpochTimer

from lossreg.errors import TrainingDivergedError

from ._adversarial import virtual_adversarial_views
from ._batches import (
    BatchIterator,
    ClassBalancedBatches,
    GroupedBatches,
    GroupStratifiedBatches,
    TensorBatches,
)
from ._meta import run_meta_step
from ._outputs import as_logits_features
from ._pseudo_labels import PSEUDO_LABEL_FIELD, PseudoLabelDiverseBatches

__all__ = ["EpochNotifier", "LossNet"]

#: Samplers that keep every id of a fit extra inside one batch, and that extra.
_GROUPING = {"whole_bags": "bag", "whole_groups": "group"}

#: Samplers that put every group of the ``group`` extra in every batch: balanced or not.
_STRATIFYING = {"group_balanced": True, "group_stratified": False}

_PER_BATCH_EVENTS = frozenset({"on_batch_begin", "on_batch_end", "on_grad_computed"})


class EpochNotifier(Callback):
    """Tells a criterion with ``set_epoch(epoch, max_epochs)`` which epoch starts."""

    def on_epoch_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        set_epoch = getattr(net.criterion_, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(len(net.history) - 1, net.max_epochs)


class LossNet(NeuralNet):
    """A skorch ``NeuralNet`` for lossreg estimators.

    Differences from plain skorch, each for speed or for the loss contract:

    - data arrive as :class:`TensorBatches` and are sliced in whole batches (no per-row
      ``Dataset.__getitem__`` and collate);
    - each batch's target is a dict holding ``target``, ``sample_weight`` and the loss's fit
      extras, passed to the criterion as keyword arguments;
    - the epoch loss is accumulated on the device and recorded once per epoch (``train_loss``,
      ``valid_loss``); no per-batch history rows;
    - for a loss whose spec says ``outputs="logits+features"`` the module's output reaches
      the criterion as the pair ``(logits, features)`` (a dict from a user module included);
    - a non-finite loss raises :class:`~lossreg.errors.TrainingDivergedError` naming the
      epoch and batch;
    - a criterion with ``on_validation_end(input, target, **fields)`` gets, after each
      epoch's validation pass (when there is a validation split), the module outputs of the
      whole validation split (what its ``forward`` received, detached), their targets and
      the split's ``sample_weight`` and fit extras, under ``torch.no_grad()``;
    - ``sampler="group_balanced"`` / ``"group_stratified"`` draw training batches with
      :class:`GroupStratifiedBatches` (every group of the ``group`` extra in every batch);
      ``"pseudo_label_diverse"`` with :class:`PseudoLabelDiverseBatches` from the
      ``_pseudo_label`` field. Fields whose name starts with ``_`` build batches only and
      are not passed to the criterion;
    - ``view_maker="virtual_adversarial"`` (two-view losses): the second view of each batch is
      the clean batch moved by its virtual adversarial perturbation, with the criterion's
      ``eps`` and ``xi`` (:func:`virtual_adversarial_views`), instead of two augmentations;
    - a criterion with ``meta_step(module, x, target, **fields)`` gets the network and each
      training batch before its step (:func:`run_meta_step`): bilevel losses (``tgeo_kd``)
      update their own parameters from a look-ahead of the network there.
    """

    def __init__(
        self,
        *args: Any,
        loss_name: str = "",
        generator: Any = None,
        merge_tail: bool = False,
        sampler: str | None = None,
        views: int = 1,
        outputs: str = "logits",
        augment: Any = None,
        view_maker: str = "augment",
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.loss_name = loss_name
        self.generator = generator
        self.merge_tail = merge_tail
        self.sampler = sampler
        self.views = views
        self.outputs = outputs
        self.augment = augment
        self.view_maker = view_maker
        # Set through __dict__: skorch's __setattr__ bookkeeping is too slow for per-batch flags.
        self.__dict__["_loss_pass"] = False

    def get_default_callbacks(self) -> list[tuple[str, Callback]]:
        # skorch's train_loss / valid_loss scorers read per-batch history that this net does
        # not write; run_single_epoch records the epoch losses itself.
        # PrintLog is added by the estimator when verbose: it tabulates every epoch.
        return [("epoch_timer", EpochTimer())]

    def get_dataset(self, X: Any, y: Any = None) -> TensorBatches:
        if isinstance(X, TensorBatches):
            return X
        fields = {} if y is None else {"target": torch.as_tensor(y)}
        return TensorBatches(torch.as_tensor(X), fields)

    def get_iterator(self, dataset: TensorBatches, training: bool = False) -> Any:
        batch_size = self.batch_size if self.batch_size and self.batch_size > 0 else len(dataset)
        if training and self.sampler == "class_balanced":
            return ClassBalancedBatches(
                dataset, dataset.fields["target"], batch_size, generator=self.generator
            )
        if training and self.sampler == "pseudo_label_diverse":
            labels = dataset.fields[PSEUDO_LABEL_FIELD]
            return PseudoLabelDiverseBatches(dataset, labels, batch_size, generator=self.generator)
        if training and self.sampler in _GROUPING:
            ids = dataset.fields[_GROUPING[self.sampler]]
            return GroupedBatches(dataset, ids, batch_size, generator=self.generator)
        if training and self.sampler in _STRATIFYING:
            return GroupStratifiedBatches(
                dataset,
                dataset.fields["group"],
                batch_size,
                balanced=_STRATIFYING[self.sampler],
                generator=self.generator,
            )
        return BatchIterator(
            dataset,
            batch_size,
            shuffle=training,
            generator=self.generator,
            merge_tail=training and self.merge_tail,
        )

    def infer(self, x: torch.Tensor, **fit_params: Any) -> torch.Tensor:
        x = x.to(self.device)
        if self.views == 2 and self._loss_pass and self.view_maker == "virtual_adversarial":
            # The loss's own hyperparameters set the perturbation (spec.view_maker's contract).
            eps, xi = self.criterion_.eps, self.criterion_.xi
            return virtual_adversarial_views(self.module_, x, eps=eps, xi=xi)
        if self.views == 2 and self._loss_pass:
            # Two-view losses: rows i and i+N of the output are two augmentations of row i.
            x = torch.cat([self.augment(x), self.augment(x)])
        output = self.module_(x)
        if self.outputs == "logits+features":
            # A dict or list from a user module reaches the loss as the (logits, features) pair.
            return as_logits_features(output, self.loss_name, repr(type(self.module_).__name__))
        return output

    def train_step_single(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        if callable(getattr(self.criterion_, "meta_step", None)):
            self._set_training(True)  # the look-ahead runs the network as training does
            run_meta_step(self.criterion_, self.module_, batch, self.device)
        self.__dict__["_loss_pass"] = True
        try:
            return super().train_step_single(batch, **fit_params)
        finally:
            self.__dict__["_loss_pass"] = False

    def validation_step(self, batch: Any, **fit_params: Any) -> dict[str, Any]:
        self.__dict__["_loss_pass"] = True
        try:
            return super().validation_step(batch, **fit_params)
        finally:
            self.__dict__["_loss_pass"] = False

    def _set_training(self, training: bool = True) -> None:
        # skorch switches modes on every batch, walking every submodule; do it only on change.
        if self.module_.training == training and self.criterion_.training == training:
            return
        super()._set_training(training)

    def on_batch_begin(self, net: NeuralNet, **kwargs: Any) -> None:
        """No per-batch history rows: run_single_epoch records epoch totals."""

    def notify(self, method_name: str, **cb_kwargs: Any) -> None:
        if method_name not in _PER_BATCH_EVENTS:
            super().notify(method_name, **cb_kwargs)
            return
        # Per-batch events go only to callbacks that override them; calling every no-op
        # handler each batch costs more than a small network's step on a CPU.
        for callback in self._listeners(method_name):
            getattr(callback, method_name)(self, **cb_kwargs)

    def _listeners(self, method_name: str) -> list[Callback]:
        key = (method_name, id(self.callbacks_))
        cache = self.__dict__.setdefault("_listener_cache", {})
        if key not in cache:
            cache[key] = [
                cb
                for _, cb in self.callbacks_
                if getattr(type(cb), method_name, None) is not getattr(Callback, method_name)
            ]
        return cache[key]

    def get_loss(
        self, y_pred: torch.Tensor, y_true: Any, X: Any = None, training: bool = False
    ) -> torch.Tensor:
        # fields named "_..." only build batches (pseudo-labels): the loss never sees them
        fields = {k: v for k, v in dict(y_true).items() if not k.startswith("_")}
        target = fields.pop("target")
        return self.criterion_(y_pred, target, **fields)

    def run_single_epoch(
        self, iterator: Any, training: bool, prefix: str, step_fn: Any, **fit_params: Any
    ) -> None:
        if iterator is None:
            return
        on_cpu = torch.device(self.device).type == "cpu"
        total: torch.Tensor | float = 0.0
        rows = 0
        batch_losses = []
        # A loss with on_validation_end gets the validation pass's outputs, collected here
        # rather than recomputed, so it sees exactly what valid_loss was computed from.
        hook = None if training else getattr(self.criterion_, "on_validation_end", None)
        collected: list[tuple[Any, dict[str, torch.Tensor]]] = []
        for batch_index, batch in enumerate(iterator):
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            if callable(hook):
                collected.append((_detached(step["y_pred"]), dict(batch[1])))
            size = int(batch[0].shape[0])
            if on_cpu:
                # Reading a CPU scalar costs nothing: stop at the first bad batch.
                value = step["loss"].item()
                if not math.isfinite(value):
                    self._diverged(prefix, batch_index, value)
                total += value * size
            else:
                # On a GPU, reading each loss would wait for the device: check once per epoch.
                loss = step["loss"].detach()
                batch_losses.append(loss)
                total = total + loss * size
            rows += size
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if batch_losses:
            finite = torch.isfinite(torch.stack(batch_losses))
            if not bool(finite.all()):
                bad = int((~finite).nonzero()[0, 0])
                self._diverged(prefix, bad, float(batch_losses[bad]))
        self.history.record(f"{prefix}_loss", float(total) / max(rows, 1))
        self.history.record(f"{prefix}_batch_count", batch_index + 1 if rows else 0)
        if callable(hook) and collected:
            output = _concat([out for out, _ in collected])
            names = [k for k in collected[0][1] if not k.startswith("_")]
            fields = {k: torch.cat([f[k] for _, f in collected]) for k in names}
            target = fields.pop("target")
            with torch.no_grad():
                hook(output, target, **fields)

    def _diverged(self, prefix: str, batch_index: int, value: float) -> None:
        epoch = len(self.history)
        lr = self.lr
        raise TrainingDivergedError(
            f"Training diverged: loss {self.loss_name!r} was {value} on {prefix} batch "
            f"{batch_index + 1} of epoch {epoch}. Lower the learning rate (lr={lr!r} now), scale "
            "the inputs (e.g. StandardScaler in a Pipeline), or check the loss parameters."
        )


def _detached(output: Any) -> Any:
    """A batch's module output (a tensor, or the ``(logits, features)`` pair) without graph."""
    if isinstance(output, tuple | list):
        return tuple(part.detach() for part in output)
    return output.detach()


def _concat(outputs: list[Any]) -> Any:
    """Stack per-batch outputs along the rows, part by part for ``(logits, features)``."""
    if isinstance(outputs[0], tuple):
        return tuple(torch.cat(parts) for parts in zip(*outputs, strict=True))
    return torch.cat(outputs)
