"""Whole-tensor datasets and a batch iterator that slices them, instead of collating rows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import torch
from torch.utils.data import Dataset

__all__ = [
    "BatchIterator",
    "ClassBalancedBatches",
    "GroupStratifiedBatches",
    "GroupedBatches",
    "TensorBatches",
]


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


class GroupStratifiedBatches:
    """Training batches that each hold rows of every group of the fold (environments, domains).

    Losses that compare groups inside a batch (GroupDRO, IRM, V-REx, Fishr, group CVaR) lose
    a group's term whenever a batch misses it. An epoch has
    ``B = min(ceil(n / batch_size), n // G)`` batches (``n`` rows in ``G`` groups, at least
    one batch) of near-equal sizes, and every batch holds every group:

    - ``balanced=True`` (spec sampler ``"group_balanced"``): ``n`` draws per epoch; each
      group fills an equal share of every batch (the remainder goes to groups picked at
      random). A group's rows are drawn without replacement from a shuffled pass over the
      group, and a new shuffled pass starts when one runs out; the passes carry over from
      epoch to epoch, so every row of a large group is drawn before any is drawn twice,
      while the rows of a small group repeat within an epoch. The expected batch
      composition is that of sampling rows with probability proportional to ``1 / n_g``
      (uniform over groups).
    - ``balanced=False`` (``"group_stratified"``): each group fills a share of every batch in
      proportion to its size, and every row is drawn once per epoch; a group with fewer rows
      than batches has rows repeated (a fresh shuffled pass) so that it still appears in each
      batch, so its share of the rows seen is slightly above its share of the fold.
    """

    def __init__(
        self,
        data: TensorBatches,
        ids: torch.Tensor,
        batch_size: int,
        *,
        balanced: bool,
        generator: torch.Generator | None = None,
    ) -> None:
        self.data = data
        self.batch_size = max(1, int(batch_size))
        self.balanced = balanced
        self.generator = generator
        ids = ids.cpu()
        _, inverse = torch.unique(ids, return_inverse=True)
        order = torch.argsort(inverse, stable=True)
        counts = torch.bincount(inverse)
        self._groups = list(torch.split(order, counts.tolist()))
        # Per group: the current shuffled pass and how much of it is used (balanced mode).
        self._passes: list[torch.Tensor] = [torch.empty(0, dtype=torch.long)] * len(self._groups)
        self._used = [0] * len(self._groups)

    def __len__(self) -> int:
        n, n_groups = len(self.data), len(self._groups)
        if n == 0:
            return 0
        return max(1, min(-(-n // self.batch_size), n // max(n_groups, 1)))

    def _sizes(self, total: int, parts: int) -> list[int]:
        """``total`` split into ``parts`` near-equal sizes; the larger ones at random places."""
        base, extra = divmod(total, parts)
        sizes = [base] * parts
        for index in torch.randperm(parts, generator=self.generator)[:extra].tolist():
            sizes[index] += 1
        return sizes

    def _take(self, group: int, k: int) -> torch.Tensor:
        """The next ``k`` rows of ``group``'s stream of shuffled passes."""
        rows = self._groups[group]
        taken = []
        while k > 0:
            if self._used[group] >= len(self._passes[group]):
                self._passes[group] = rows[torch.randperm(len(rows), generator=self.generator)]
                self._used[group] = 0
            start = self._used[group]
            chunk = self._passes[group][start : start + k]
            self._used[group] += len(chunk)
            k -= len(chunk)
            taken.append(chunk)
        return torch.cat(taken) if taken else torch.empty(0, dtype=torch.long)

    def _balanced_batches(self, n_batches: int) -> list[torch.Tensor]:
        n_groups = len(self._groups)
        batches = []
        for size in self._sizes(len(self.data), n_batches):
            shares = self._sizes(size, n_groups)
            batches.append(torch.cat([self._take(g, k) for g, k in enumerate(shares)]))
        return batches

    def _proportional_batches(self, n_batches: int) -> list[list[torch.Tensor]]:
        parts: list[list[torch.Tensor]] = [[] for _ in range(n_batches)]
        for g, rows in enumerate(self._groups):
            # A fresh epoch: one full pass, topped up from further passes when the group has
            # fewer rows than there are batches.
            self._passes[g], self._used[g] = torch.empty(0, dtype=torch.long), 0
            stream = self._take(g, max(len(rows), n_batches))
            start = 0
            for b, size in enumerate(self._sizes(len(stream), n_batches)):
                parts[b].append(stream[start : start + size])
                start += size
        return parts

    def __iter__(self) -> Iterator[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        n_batches = len(self)
        if self.balanced:
            batches = self._balanced_batches(n_batches)
        else:
            batches = [torch.cat(part) for part in self._proportional_batches(n_batches)]
        device = self.data.X.device
        for index in batches:
            index = index.to(device)
            yield self.data.X[index], {k: v[index] for k, v in self.data.fields.items()}
