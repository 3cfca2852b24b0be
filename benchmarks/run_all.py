"""Run every benchmark, each appending its table to benchmarks/RESULTS.md (``make bench``).

1. training throughput across rows and features (``bench_training.py --sweep``);
2. the same on the GPU (``--device cuda``), skipped with the reason when there is none;
3. loss kernels against independent references (``bench_losses.py``);
4. registry overhead (``bench_registry.py``);
5. search scaling, serial / n_jobs=2 / dask (``bench_search.py``), last, so that the worker
   processes it leaves idle cannot disturb the other figures.

The scripts run in this one process (imports paid once), one after the other, with the
options given here: ``--quick`` a smoke run of a few seconds per script on a quiet machine,
``--full`` the larger sizes (1M rows, 500 features, a 4x larger search) and the loss kernels
without their per-call budget (20 ms blocks instead of 10 ms, and the slowest losses timed at
every size: ~8 minutes for the kernels alone), ``--no-record`` print only. The default size is
meant for well under 10 minutes on a quiet 2-core machine: estimated from the per-fit and
per-call times of the last quiet run, about 1 minute for the training sweep, 1.5 for the loss
kernels, 1 for the registry and 1 for the search. Each part prints its elapsed time when it
ends, and the total at the end.

Run: ``python benchmarks/run_all.py [--quick | --full] [--no-record]``.
"""

from __future__ import annotations

import argparse
import time

import bench_losses
import bench_registry
import bench_search
import bench_training


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smoke run at tiny sizes")
    size.add_argument("--full", action="store_true", help="the larger sizes")
    parser.add_argument("--no-record", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    common = [flag for flag, on in (("--quick", args.quick), ("--no-record", args.no_record)) if on]
    full = ["--full"] if args.full else []
    runs = [
        ("training throughput", bench_training.main, ["--sweep", *full, *common]),
        ("GPU throughput", bench_training.main, ["--sweep", "--device", "cuda", *full, *common]),
        ("loss kernels", bench_losses.main, [*full, *common]),
        ("registry overhead", bench_registry.main, common),
        ("search scaling", bench_search.main, [*full, *common]),
    ]
    took = []
    start = time.perf_counter()
    for name, run, run_argv in runs:
        print(f"\n=== {name}: {' '.join(run_argv) or '(defaults)'}", flush=True)
        t0 = time.perf_counter()
        run(run_argv)
        seconds = time.perf_counter() - t0
        took.append(f"{name} {seconds:.0f} s")
        print(f"=== {name}: {seconds:.0f} s (run_all so far {time.perf_counter() - start:.0f} s)")
    print(f"\nrun_all: {time.perf_counter() - start:.0f} s ({', '.join(took)})")


if __name__ == "__main__":
    main()
