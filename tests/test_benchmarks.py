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


def test_kernel_budget_times_a_slow_loss_once_and_skips_its_larger_sizes(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_losses

    before = RESULTS.read_bytes() if RESULTS.exists() else None
    # A budget of 1 ns: every first call is over it.
    argv = ["--only", "mse", "cross_entropy", "--batch-sizes", "64", "512"]
    argv += ["--classes", "2", "5", "--reps", "1", "--block-ms", "1"]
    bench_losses.main([*argv, "--max-call-ms", "1e-6", "--no-record"])
    out = capsys.readouterr().out
    # the smallest size of each loss runs once (†); every size at least as large is skipped
    assert "| mse | F.mse_loss | regression | 64 | 1 target |" in out
    assert "| cross_entropy | F.cross_entropy | binary | 64 | 2 |" in out
    assert out.count(" †") == 4  # two rows, lossreg and reference columns
    assert "| mse | 512 | 2 | over the per-call budget" in out
    for size in ("64 | 5", "512 | 2", "512 | 5"):
        assert f"| cross_entropy | {size} | over the per-call budget" in out
    assert "| mse | 64 | 5 |" not in out  # a regression loss has no class counts to skip
    # without a budget (--max-call-ms 0) every size is timed
    bench_losses.main([*argv, "--max-call-ms", "0", "--no-record"])
    out = capsys.readouterr().out
    assert " †" not in out and "over the per-call budget" not in out
    assert "| cross_entropy | F.cross_entropy | multiclass | 512 | 5 |" in out
    after = RESULTS.read_bytes() if RESULTS.exists() else None
    assert after == before


def test_recommender_bench_checks_both_ways_agree_and_records_nothing(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_recommender

    before = RESULTS.read_bytes()
    bench_recommender.main(["--quick", "--no-record"])  # asserts the two outputs are equal
    assert "| 1,000 | 50,000 |" in capsys.readouterr().out
    assert RESULTS.read_bytes() == before
