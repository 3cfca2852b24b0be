"""The benchmark scripts still run: ``run_all.py --quick --no-record`` exits 0 and prints tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


@pytest.mark.slow
def test_run_all_quick_prints_every_table_and_records_nothing():
    before = RESULTS.read_bytes() if RESULTS.exists() else None
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--no-record"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for title in (
        "## Training throughput sweep (bench_training.py)",
        "## Loss kernels (bench_losses.py)",
        "## Registry overhead (bench_registry.py)",
        "## Search scaling (bench_search.py)",
    ):
        assert title in out
    # the GPU part either prints its table or says why it was skipped
    assert "(bench_training.py, cuda)" in out or "GPU throughput skipped:" in out
    assert "| cross_entropy | F.cross_entropy |" in out
    assert "| lossreg list |" in out
    assert "dask LocalCluster" in out
    assert "run_all:" in out
    after = RESULTS.read_bytes() if RESULTS.exists() else None
    assert after == before, "--no-record must not write RESULTS.md"
