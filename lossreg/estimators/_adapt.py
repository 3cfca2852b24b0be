"""Test-time / source-free adaptation of a fitted classifier on unlabeled rows (``adapt``).

A second, adapt-only stage after ``fit``: the fitted network keeps training on unlabeled
rows with an unsupervised (``semi_supervised``) loss such as ``entropy_min`` (Tent),
``eata_entropy`` (EATA) or ``entropy_prior_kl`` (source-free adaptation with a class prior),
without the labelled source rows. Every row is given the label -1, so the loss sees only
unlabeled rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted, check_random_state, validate_data

__all__ = ["ADAPT_PARAMETERS", "AdaptMixin", "norm_parameters"]

#: which network parameters ``adapt`` updates
ADAPT_PARAMETERS = ("norm", "all")

_NORMS = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.LayerNorm, torch.nn.GroupNorm)


def norm_parameters(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The affine parameters (scale and shift) of the normalisation layers of ``module``."""
    return [
        p for m in module.modules() if isinstance(m, _NORMS) for p in m.parameters(recurse=False)
    ]


class AdaptMixin:
    """Adds :meth:`adapt` to :class:`~lossreg.estimators.LossClassifier`."""

    def adapt(
        self,
        X: Any,
        loss: str = "entropy_min",
        *,
        loss_params: Mapping[str, Any] | None = None,
        max_iter: int = 10,
        lr: float = 1e-3,
        batch_size: int = 64,
        parameters: str = "norm",
        random_state: Any = None,
    ) -> Any:
        """Continue training the fitted network on the unlabeled rows ``X`` alone.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Unlabeled rows of the domain to adapt to (test rows for test-time adaptation,
            target-domain training rows for source-free adaptation).
        loss : str, default="entropy_min"
            A registered ``semi_supervised`` multiclass loss (``entropy_min``,
            ``eata_entropy``, ``entropy_prior_kl`` ...); every row reaches it labelled -1.
        loss_params : mapping, optional
            Its hyperparameters. Its data params come from the fit: ``n_classes`` and
            ``class_priors`` (the class frequencies of the labelled training rows; pass
            ``prior`` to ``entropy_prior_kl`` for another known prior).
        max_iter : int, default=10
            Epochs over ``X``.
        lr : float, default=1e-3
            Adam's learning rate (Tent's optimiser and default).
        batch_size : int, default=64
            Rows per step (batch-level losses need enough rows for their batch statistics).
        parameters : {"norm", "all"}, default="norm"
            ``"norm"`` updates only the scale and shift of the normalisation layers (Tent,
            EATA; the network needs them: fit with ``module__batch_norm=True``), ``"all"``
            every parameter of the network.
        random_state : int, RandomState or None, default=None
            Seeds the order of the rows.

        Returns
        -------
        self
            The same estimator, its network adapted in place. ``adapt_history_`` holds the
            mean adaptation loss per epoch.

        Notes
        -----
        During adaptation the network is in training mode, as in Tent: batch normalisation
        normalises each batch with its own statistics, and its running statistics (which
        predictions use) are re-estimated from the adaptation rows alone, the average over
        the adaptation batches (Tent normalises test batches with their own statistics).
        The source rows are not used, so this is source-free; calling it again continues
        from the adapted network.
        """
        check_is_fitted(self, "net_")
        spec = self._adapt_spec(loss, loss_params)
        if parameters not in ADAPT_PARAMETERS:
            raise ValueError(
                f"parameters must be one of {ADAPT_PARAMETERS}. Got {parameters!r} instead."
            )
        for name, value in (("max_iter", max_iter), ("batch_size", batch_size)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an int >= 1. Got {value!r} instead.")
        if not lr > 0:
            raise ValueError(f"lr must be > 0. Got {lr!r} instead.")
        X = validate_data(self, X, reset=False, dtype=(np.float32, np.float64))
        module = self.module_
        chosen = norm_parameters(module) if parameters == "norm" else list(module.parameters())
        if not chosen:
            raise ValueError(
                "adapt(parameters='norm') updates normalisation layers, and this network has "
                "none: fit with module__batch_norm=True, or adapt with parameters='all'."
            )
        criterion = self._adapt_criterion(spec, loss_params)
        device = next(module.parameters()).device
        inputs = torch.as_tensor(np.asarray(X, dtype=np.float32), device=device)
        unlabeled = torch.full((len(inputs),), -1, dtype=torch.long, device=device)
        rng = check_random_state(random_state)
        frozen = {p: p.requires_grad for p in module.parameters()}
        for p in module.parameters():
            p.requires_grad_(False)
        for p in chosen:
            p.requires_grad_(True)
        optimizer = torch.optim.Adam(chosen, lr=lr)
        history: list[float] = []
        # batch normalisation re-estimates its statistics on the adapted rows (a cumulative
        # average over the adaptation batches): Tent normalises with the target's statistics
        norms = [
            m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        ]
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        module.train()
        try:
            for epoch in range(int(max_iter)):
                if hasattr(criterion, "set_epoch"):
                    criterion.set_epoch(epoch, int(max_iter))
                order = torch.as_tensor(rng.permutation(len(inputs)), device=device)
                losses, sizes = [], []
                for start in range(0, len(order), int(batch_size)):
                    rows = order[start : start + int(batch_size)]
                    if len(rows) < 2 and len(order) > 1:
                        continue  # batch statistics need two rows
                    out = module(inputs[rows])
                    if isinstance(out, tuple) and spec.outputs != "logits+features":
                        out = out[0]
                    value = criterion(out, unlabeled[rows])
                    optimizer.zero_grad()
                    value.backward()
                    optimizer.step()
                    losses.append(float(value.detach()))
                    sizes.append(len(rows))
                history.append(float(np.average(losses, weights=sizes)) if losses else np.nan)
        finally:
            module.eval()
            for m, momentum in zip(norms, momenta):
                m.momentum = momentum
            for p, flag in frozen.items():
                p.requires_grad_(flag)
        self.adapt_history_ = getattr(self, "adapt_history_", []) + history
        self.adapted_with_ = spec.name
        return self

    def _adapt_spec(self, loss: str, loss_params: Mapping[str, Any] | None) -> Any:
        """The spec of an adaptation loss; an error naming the fix if it cannot adapt."""
        from lossreg._effective import effective_spec
        from lossreg.registry import default_registry

        spec = effective_spec(default_registry().get_spec(loss), loss_params)
        if not spec.semi_supervised:
            raise ValueError(
                f"adapt(loss={loss!r}): adaptation has no labels, so the loss must learn from "
                "unlabeled rows (a semi_supervised loss such as 'entropy_min', 'eata_entropy' "
                "or 'entropy_prior_kl')."
            )
        if self.task_ not in spec.tasks:
            raise ValueError(
                f"adapt(loss={loss!r}) supports {sorted(spec.tasks)}; this classifier was "
                f"fitted on a {self.task_} target."
            )
        return spec

    def _adapt_criterion(self, spec: Any, loss_params: Mapping[str, Any] | None) -> Any:
        """Build the adaptation loss with the data params of the fit's labelled rows."""
        from lossreg.targets import compute_data_params

        n_classes = len(self.classes_)
        counts = getattr(self, "class_counts_", np.ones(n_classes, dtype=np.int64))
        labels = np.repeat(np.arange(n_classes), counts)
        data = compute_data_params(spec.data_params, labels, self.task_, n_classes)
        params = dict(loss_params or {})
        criterion = spec.factory(**params, **{k: v for k, v in data.items() if k not in params})
        device = next(self.module_.parameters()).device
        return criterion.to(device)
