"""Whole-tensor datasets and a batch iterator that slices them, instead of collating rows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch.utils.data import Dataset

__all__ = ["BatchIterator", "ClassBalancedBatches", "GroupedBatches", "TensorBatches"]


class TensorBatches(Dataset):
    """Inputs and per-row fields (target, sample weights, extras) as tensors of equal length.

    A torch ``Dataset`` so that skorch accepts it as is; :class:`BatchIterator` never calls
    ``__getitem__`` row by row.
    """

    def __init__(self, X: torch.Tensor, fields: Mapping[str, torch.Tensor] | None = None) -> None:
        self.X = X
        self.fields = dict(fields or {})
        for name, value in self.fields.items():
            if value.shape[0] != X.shape[0]:
                raise ValueError(
                    f"{name} has {value.shape[0]} rows but X has {X.shape[0]}; pass one per row."
                )

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __getitem__(
        self, index: int | torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.X[index], {k: v[index] for k, v in self.fields.items()}

    def subset(self, index: torch.Tensor) -> TensorBatches:
        """Return the rows at ``index`` (a validation split, a fold)."""
        return TensorBatches(self.X[index], {k: v[index] for k, v in self.fields.items()})

    def to(self, device: str | torch.device) -> TensorBatches:
        """Return the same data on ``device`` (moved once, before training)."""
        return TensorBatches(self.X.to(device), {k: v.to(device) for k, v in self.fields.items()})


class BatchIterator:
    """Yields ``(X_batch, fields_batch)`` slices; reshuffled on each pass when ``shuffle``.

    skorch asks for the iterator once per ``fit`` and loops over it every epoch, so this is a
    re-iterable object rather than a generator.
    """

    def __init__(
        self,
        data: TensorBatches,
        batch_size: int,
        *,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        merge_tail: bool = False,
    ) -> None:
        self.data = data
        self.batch_size = max(1, min(int(batch_size), len(data))) if len(data) else 1
        self.shuffle = shuffle
        self.generator = generator
        self.merge_tail = merge_tail

    def _bounds(self) -> list[tuple[int, int]]:
        n, size = len(self.data), self.batch_size
        bounds = [(start, min(start + size, n)) for start in range(0, n, size)]
        # Batch-level losses (no per-row form) need batch statistics: a short last batch is
        # folded into the one before it rather than trained on alone.
        if self.merge_tail and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < size // 2:
            bounds[-2:] = [(bounds[-2][0], n)]
        return bounds

    def __len__(self) -> int:
        return len(self._bounds())

    def __iter__(self) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        n = len(self.data)
        X, fields = self.data.X, self.data.fields
        if self.shuffle:
            # One gather per epoch, then contiguous slices: cheaper than indexing per batch.
            order = torch.randperm(n, generator=self.generator).to(X.device)
            X = X[order]
            fields = {k: v[order] for k, v in fields.items()}
        for start, stop in self._bounds():
            yield X[start:stop], {k: v[start:stop] for k, v in fields.items()}


class ClassBalancedBatches:
    """Training batches holding several rows from each of several classes ("P×K" batches).

    Pair and triplet losses learn nothing from a batch whose classes appear once. Each epoch
    draws ``len(data) // batch_size`` batches (at least one). A batch takes
    ``P = min(n_classes, batch_size // min_per_class)`` classes at random and
    ``K = batch_size // P`` rows of each (so few classes get many rows each), without
    replacement inside the batch where the class is large enough.
    """

    def __init__(
        self,
        data: TensorBatches,
        labels: torch.Tensor,
        batch_size: int,
        *,
        min_per_class: int = 4,
        generator: torch.Generator | None = None,
    ) -> None:
        self.data = data
        self.batch_size = max(2, int(batch_size))
        self.min_per_class = max(2, int(min_per_class))
        self.generator = generator
        labels = labels.cpu().long()
        self._by_class = [torch.nonzero(labels == c).flatten() for c in labels.unique()]

    def __len__(self) -> int:
        return max(1, len(self.data) // self.batch_size)

    def _draw(self, pool: torch.Tensor, k: int) -> torch.Tensor:
        if len(pool) >= k:
            return pool[torch.randperm(len(pool), generator=self.generator)[:k]]
        return pool[torch.randint(len(pool), (k,), generator=self.generator)]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        n_classes = len(self._by_class)
        classes_per_batch = max(1, min(n_classes, self.batch_size // self.min_per_class))
        per_class = max(2, self.batch_size // classes_per_batch)
        device = self.data.X.device
        for _ in range(len(self)):
            chosen = torch.randperm(n_classes, generator=self.generator)[:classes_per_batch]
            index = torch.cat([self._draw(self._by_class[int(c)], per_class) for c in chosen])
            index = index.to(device)
            yield self.data.X[index], {k: v[index] for k, v in self.data.fields.items()}


class GroupedBatches:
    """Training batches made of whole groups (bags, queries, pairs), in a new order each epoch.

    Groups are shuffled, then added to the current batch until it holds at least
    ``batch_size`` rows; a group larger than ``batch_size`` is a batch of its own. A loss on bag
    proportions or on the pairs of a query then always sees complete bags or queries.
    """

    def __init__(
        self,
        data: TensorBatches,
        ids: torch.Tensor,
        batch_size: int,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        self.data = data
        self.batch_size = max(1, int(batch_size))
        self.generator = generator
        ids = ids.cpu()
        _, inverse = torch.unique(ids, return_inverse=True)
        order = torch.argsort(inverse, stable=True)
        counts = torch.bincount(inverse)
        self._groups = list(torch.split(order, counts.tolist()))

    def _batches(self, groups: list[torch.Tensor]) -> list[torch.Tensor]:
        batches, current, size = [], [], 0
        for rows in groups:
            current.append(rows)
            size += len(rows)
            if size >= self.batch_size:
                batches.append(torch.cat(current))
                current, size = [], 0
        if current:
            batches.append(torch.cat(current))
        return batches

    def __len__(self) -> int:
        return len(self._batches(self._groups))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        order = torch.randperm(len(self._groups), generator=self.generator).tolist()
        device = self.data.X.device
        for index in self._batches([self._groups[i] for i in order]):
            index = index.to(device)
            yield self.data.X[index], {k: v[index] for k, v in self.data.fields.items()}
