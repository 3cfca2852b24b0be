"""Search scaling: GridSearchCV over ``loss_grid`` serially, with ``n_jobs=2``, and on dask.

The same search (a LossClassifier, three losses with their declared grids, 3-fold CV) runs
four ways in this one process: ``n_jobs=1`` with torch's default threads, ``n_jobs=1`` with one
torch thread, ``n_jobs=2`` on joblib's loky processes, and ``n_jobs=2`` on a dask
``LocalCluster`` of two one-thread worker processes (``joblib.parallel_backend("dask")``). The
figure is the median wall time of the timed rounds; the speed-up is against ``n_jobs=1``.

Threads. Two workers each running torch's default intra-op pool (one thread per core) would
ask for 4 threads on 2 cores; the fits would fight over the cores and the speed-up would
mostly measure the oversubscription. Each fit therefore sets its own torch thread count: the
estimator gets a :class:`TorchThreads` skorch callback that calls ``torch.set_num_threads(1)``
when training starts, inside whichever process runs the fit, and puts the old count back when
training ends. (loky and dask also set ``OMP_NUM_THREADS`` in their workers, but torch reads it
only when it is imported, which may be before; the callback does not depend on that.) The
``n_jobs=1, 1 thread`` row separates the two effects: parallel fits versus one fit using both
cores.

Run: ``python benchmarks/bench_search.py [--rows 4000] [--epochs 8] [--rounds 3]``,
``--full`` for a larger search, ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import append_results, markdown_table, median
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from lossreg import LossClassifier, loss_grid

LOSSES = ["cross_entropy", "focal", "generalized_cross_entropy"]


class TorchThreads(Callback):
    """Set torch's intra-op thread count for the duration of one fit (see the module docstring)."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads

    def on_train_begin(self, net: Any, **kwargs: Any) -> None:
        self.previous_ = torch.get_num_threads()
        torch.set_num_threads(self.threads)

    def on_train_end(self, net: Any, **kwargs: Any) -> None:
        torch.set_num_threads(self.previous_)


def grid(quick: bool) -> list[dict[str, list[Any]]]:
    """The searched grid: each loss's declared grid, or one candidate per loss for --quick."""
    if quick:
        no_grid = {"cross_entropy": "label_smoothing", "focal": "gamma"}
        no_grid["generalized_cross_entropy"] = "q"
        return loss_grid(LOSSES, {loss: {param: []} for loss, param in no_grid.items()})
    return loss_grid(LOSSES)


def search(X: np.ndarray, y: np.ndarray, args: argparse.Namespace, threads: int | None) -> Any:
    callbacks = None if threads is None else [TorchThreads(threads)]
    estimator = LossClassifier(
        max_iter=args.epochs,
        batch_size=args.batch_size,
        tol=0.0,
        n_iter_no_change=args.epochs + 1,
        random_state=0,
        callbacks=callbacks,
    )
    return GridSearchCV(estimator, grid(args.quick), cv=args.cv, n_jobs=args.n_jobs)


def _time_search(X: np.ndarray, y: np.ndarray, args: argparse.Namespace, **kw: Any) -> float:
    jobs = kw.pop("n_jobs")
    threads = kw.pop("threads")
    backend = kw.pop("backend", None)
    args = argparse.Namespace(**{**vars(args), "n_jobs": jobs})
    gs = search(X, y, args, threads)
    start = time.perf_counter()
    if backend is None:
        gs.fit(X, y)
    else:
        import joblib

        with joblib.parallel_backend(backend):
            gs.fit(X, y)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=4_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per configuration")
    parser.add_argument("--no-dask", action="store_true", help="skip the dask LocalCluster")
    parser.add_argument("--full", action="store_true", help="a larger search (4x the rows)")
    parser.add_argument("--quick", action="store_true", help="smoke run at tiny sizes")
    parser.add_argument("--no-record", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    if args.full:
        args.rows *= 4
    if args.quick:
        args.rows, args.epochs, args.cv, args.rounds = 300, 1, 2, 1
    # Workers import this module to unpickle TorchThreads: they start with this folder on
    # their path (loky and dask both spawn fresh interpreters that inherit the environment).
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    if here not in sys.path:
        sys.path.insert(0, here)
    X, y = make_classification(
        n_samples=args.rows, n_features=args.features, n_informative=10, random_state=0
    )
    X, y = X.astype(np.float32), y.astype(np.int64)
    n_candidates = sum(int(np.prod([len(v) for v in g.values()])) for g in grid(args.quick))
    fits = n_candidates * args.cv
    default_threads = torch.get_num_threads()

    configs: dict[str, dict[str, Any]] = {
        f"n_jobs=1, torch {default_threads} threads": {"n_jobs": 1, "threads": None},
        "n_jobs=1, 1 thread": {"n_jobs": 1, "threads": 1},
        "n_jobs=2 (loky), 1 thread each": {"n_jobs": 2, "threads": 1},
    }
    client = cluster = None
    dask_note = ""
    if not args.no_dask:
        try:
            from distributed import Client, LocalCluster

            cluster = LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            client = Client(cluster)
            configs["dask LocalCluster 2 workers × 1 thread"] = {
                "n_jobs": 2,
                "threads": 1,
                "backend": "dask",
            }
        except Exception as exc:  # no distributed, or no room for worker processes
            dask_note = f" dask skipped: {type(exc).__name__}: {exc}."
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter from 1-epoch fits
            # Warm-up: start the loky and dask workers and import torch + lossreg in them; the
            # timed rounds measure the search, not the pool start (reported separately).
            # --quick skips it: the smoke run only checks that every configuration runs.
            start_up: dict[str, float] = {}
            tiny = argparse.Namespace(**{**vars(args), "epochs": 1, "cv": 2})
            for name, config in configs.items():
                if not args.quick:
                    start_up[name] = _time_search(X[:200], y[:200], tiny, **dict(config))
            seconds: dict[str, list[float]] = {name: [] for name in configs}
            for _ in range(args.rounds):
                for name, config in configs.items():
                    seconds[name].append(_time_search(X, y, args, **dict(config)))
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    serial = median(next(iter(seconds.values())))
    rows = [
        [
            name,
            f"{median(values):.2f}",
            f"{fits / median(values):.1f}",
            f"{serial / median(values):.2f}×",
            f"{start_up[name]:.2f}" if name in start_up else "—",
        ]
        for name, values in seconds.items()
    ]
    body = (
        f"GridSearchCV(LossClassifier, loss_grid({LOSSES})): {n_candidates} candidates × "
        f"{args.cv} folds = {fits} fits of {args.rows:,} rows × {args.features} features, "
        f"{args.epochs} epochs, batch {args.batch_size}; median of {args.rounds} round(s) after "
        f"a warm-up search that starts the workers (its time, pool start included, is the last "
        f"column).{dask_note}\n\n"
        + markdown_table(
            ["configuration", "search s", "fits / s", "speed-up vs n_jobs=1", "warm-up s"], rows
        )
    )
    title = "Search scaling (bench_search.py)"
    if args.no_record:
        print(f"## {title}\n\n{body}\n")
    else:
        append_results(title, body)


if __name__ == "__main__":
    main()
