"""Helpers shared by the benchmark scripts: timing, tables, and appending to RESULTS.md."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

RESULTS = Path(__file__).with_name("RESULTS.md")


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), Python "
        f"{platform.python_version()}"
    )


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def append_results(title: str, body: str) -> None:
    """Append a dated section with the exact command to benchmarks/RESULTS.md."""
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = f"\n## {title}\n\n{stamp} · `{command}` · {machine()}\n\n{body}\n"
    with RESULTS.open("a") as out:
        out.write(section)
    print(section)
