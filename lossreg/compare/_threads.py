"""Each fit keeps to the torch threads the comparison gave it, and gives the count back after."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["limit_torch_threads"]


def limit_torch_threads(threads: int | None) -> Callable[[], None]:
    """Set torch's intra-op thread count to ``threads`` (None keeps it); return the undo.

    Parallel fits share the machine's cores (``torch_threads`` of compare), so every fit that
    trains a network sets the count on entry and calls the returned function in a
    ``finally``: a worker process runs many fits in turn.
    """
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    return lambda: torch.set_num_threads(before)
