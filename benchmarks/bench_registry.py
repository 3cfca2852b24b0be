"""Registry overhead: ``lossreg list`` cold start and ``create_loss`` calls per second.

Cold start: each command runs in a fresh interpreter (a subprocess), in interleaved rounds, so
every round pays the imports and, for ``lossreg list``, the plugin discovery; the baselines are
an empty interpreter and ``import torch`` (which every loss needs anyway). The CLI runs as its
console script does (``lossreg.cli.main``) with this interpreter, so the tree under test is the
one measured, not whatever ``lossreg`` is first on the PATH.

Construction: ``lossreg.create_loss(name)`` (name lookup, parameter validation, the module's
``__init__``) against building the ``torch.nn`` module directly, in this process, after the
registry has loaded; median of interleaved repetitions.

Run: ``python benchmarks/bench_registry.py [--rounds 7] [--quick] [--no-record]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from _common import append_results, markdown_table, median

import lossreg

COLD: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "python -c 'import torch'": ["-c", "import torch"],
    "python -c 'import lossreg'": ["-c", "import lossreg"],
    "lossreg list": ["-c", "import sys; from lossreg.cli import main; sys.exit(main())", "list"],
}


def cold_seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, *args],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},
    )
    return time.perf_counter() - start


def per_second(fn: Callable[[], object], block_s: float, reps: int) -> list[float]:
    """Calls per second of ``fn`` in each of ``reps`` blocks of about ``block_s`` seconds."""
    fn()
    start = time.perf_counter()
    fn()
    k = max(1, int(block_s / max(time.perf_counter() - start, 1e-7)))
    rates = []
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(k):
            fn()
        rates.append(k / (time.perf_counter() - start))
    return rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7, help="cold-start rounds")
    parser.add_argument("--reps", type=int, default=7, help="construction repetitions")
    parser.add_argument("--quick", action="store_true", help="smoke run: one round, short blocks")
    parser.add_argument("--no-record", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    block_s = 0.2
    if args.quick:
        args.rounds, args.reps, block_s = 1, 2, 0.01

    for cmd in COLD.values() if not args.quick else ():  # warm-up: disk cache, .pyc files
        cold_seconds(cmd)
    cold: dict[str, list[float]] = {name: [] for name in COLD}
    for _ in range(args.rounds):
        for name, cmd in COLD.items():
            cold[name].append(cold_seconds(cmd))
    pass_s, torch_s = median(cold["python -c pass"]), median(cold["python -c 'import torch'"])
    cold_rows = [
        [
            name,
            f"{median(values):.3f}",
            f"{median(values) - pass_s:+.3f}",
            f"{median(values) - torch_s:+.3f}",
        ]
        for name, values in cold.items()
    ]

    n_losses = len(lossreg.list_losses())  # loads the registry before the timed calls
    build: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "cross_entropy": (
            lambda: lossreg.create_loss("cross_entropy"),
            torch.nn.CrossEntropyLoss,
        ),
        "focal (gamma=2.0)": (
            lambda: lossreg.create_loss("focal", gamma=2.0),
            torch.nn.CrossEntropyLoss,
        ),
        "mse": (lambda: lossreg.create_loss("mse"), torch.nn.MSELoss),
    }
    build_rows = []
    for name, (ours, baseline) in build.items():
        ours_rates, base_rates = [], []
        for _ in range(args.reps):  # interleaved: one block each, in turn
            ours_rates += per_second(ours, block_s, 1)
            base_rates += per_second(baseline, block_s, 1)
        o, b = median(ours_rates), median(base_rates)
        build_rows.append([name, f"{o:,.0f}", f"{b:,.0f} ({baseline.__name__}())", f"{b / o:.2f}×"])
    body = (
        f"Cold start: wall seconds of a fresh interpreter, median of {args.rounds} interleaved "
        f"rounds after one warm-up (none with --quick); {n_losses} losses registered.\n\n"
        + markdown_table(["command", "s", "vs python -c pass", "vs import torch"], cold_rows)
        + f"\n\nConstruction in a warm process: calls per second, median of {args.reps} "
        "interleaved blocks; the baseline builds the torch.nn module directly.\n\n"
        + markdown_table(
            ["lossreg call", "lossreg calls / s", "baseline calls / s", "time lossreg / baseline"],
            build_rows,
        )
    )
    title = "Registry overhead (bench_registry.py)"
    if args.no_record:
        print(f"## {title}\n\n{body}\n")
    else:
        append_results(title, body)


if __name__ == "__main__":
    main()
