"""LossCase: one loss with one set of hyperparameters, as the conformance checks receive it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lossreg.params import check_params
from lossreg.spec import LossSpec
from lossreg.testing._toy import Toy, make_toy, primary_task

__all__ = ["LossCase", "case_id"]


def case_id(spec: LossSpec, params: Mapping[str, Any]) -> str:
    """Return ``name`` or ``name(k=v, ...)``, the readable id used in test names."""
    if not params:
        return spec.name
    inner = ",".join(f"{k}={v!r}" for k, v in params.items())
    return f"{spec.name}({inner})"


@dataclass(frozen=True)
class LossCase:
    """A loss spec with the hyperparameters to check it with (the rest keep their defaults)."""

    spec: LossSpec
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return case_id(self.spec, self.params)

    @property
    def task(self) -> str:
        return primary_task(self.spec)

    def toy(self, task: str | None = None, **kwargs: Any) -> Toy:
        """A toy batch for this loss (see :func:`lossreg.testing.make_toy`)."""
        return make_toy(self.spec, self.params, task, **kwargs)

    def build(
        self,
        toy: Toy,
        reduction: str = "mean",
        dtype: torch.dtype | None = None,
        /,
        **override: Any,
    ) -> nn.Module:
        """Validate the hyperparameters and build the module, data params from ``toy``.

        ``reduction`` and ``dtype`` are positional-only, so that a hyperparameter of the same
        name (``dtype="float64"``) goes to the loss with the other ``override`` values.

        This is the path :meth:`lossreg.Registry.create_loss` takes. Construction is seeded,
        so two builds of a learnable loss are identical. A learnable module is moved to
        ``dtype`` (its parameters must match the input's precision).
        """
        hyper = {**self.params, **override}
        check_params(self.spec.name, self.spec.params, hyper, data_params=self.spec.data_params)
        # Seeded, so that two builds of a learnable loss start from the same parameters.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            module = self.spec.factory(**hyper, **toy.data_params, reduction=reduction)
        if dtype is not None and self.spec.learnable:
            module = module.to(dtype)
        return module

    def value(
        self,
        toy: Toy,
        reduction: str = "mean",
        dtype: torch.dtype | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Build a fresh module and call it once: comparable across calls for stateful losses."""
        return self.call(self.build(toy, reduction, dtype), toy, **kwargs)

    def call(
        self,
        module: nn.Module,
        toy: Toy,
        *,
        sample_weight: torch.Tensor | None = None,
        input: torch.Tensor | tuple[torch.Tensor, ...] | None = None,
        seed: int | None = None,
    ) -> torch.Tensor:
        """Return ``module(input, target, sample_weight=..., **extras)``.

        A stochastic loss is always seeded (``seed`` or 0) so that comparisons are meaningful;
        a deterministic one is seeded only when ``seed`` is given. For a ``logits+features``
        loss, ``input`` is the logits (the toy's features are added) or the whole pair; a
        1-tuple stands for the logits alone.
        """
        x: Any = toy.output if input is None else input
        if isinstance(x, tuple):
            x = x[0] if len(x) == 1 else x
        elif toy.features is not None:
            x = (x, toy.features)
        kwargs: dict[str, Any] = dict(toy.extras)
        if sample_weight is not None:
            kwargs["sample_weight"] = sample_weight
        if seed is None and not self.spec.stochastic:
            return module(x, toy.target, **kwargs)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0 if seed is None else seed)
            return module(x, toy.target, **kwargs)
