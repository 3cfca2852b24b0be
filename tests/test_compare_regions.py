"""lossreg compare: few-shot target regions (DIR shot metrics) and the sparse-target generator."""

from __future__ import annotations

import numpy as np
import pytest

from lossreg.compare import compare
from lossreg.compare._regions import shot_region_metrics
from lossreg.compare._run import TASK_METRICS
from lossreg.compare._synthetic import make_synthetic


def test_shot_regions_by_hand():
    # 20 bins over [0, 20): 150 training rows in bin 0, 50 in bin 10, 5 in bin 19
    y_train = np.concatenate([np.full(150, 0.5), np.full(50, 10.5), np.full(5, 19.5), [0.0, 20.0]])
    y_true = np.array([0.2, 10.2, 19.8, 25.0])  # 25 lies beyond the range: the last bin
    y_pred = np.array([1.2, 10.2, 17.8, 21.0])
    out = shot_region_metrics(y_train, y_true, y_pred)
    assert out["many_shot_mae"] == pytest.approx(1.0)  # bin 0 only (151 training rows)
    assert out["few_shot_mae"] == pytest.approx((2.0 + 4.0) / 2)  # bin 19 (6 rows), twice
    empty = shot_region_metrics(np.linspace(0, 1, 4000), np.array([0.5]), np.array([0.5]))
    assert np.isnan(empty["few_shot_mae"]) and empty["many_shot_mae"] == 0.0


def test_sparse_targets_thin_both_tails():
    _, frame = make_synthetic("synthetic:sparse_targets(n_samples=3000, keep=0.1)")
    y = frame["target"].to_numpy()
    counts = np.histogram(y, bins=20)[0]
    assert max(counts[0], counts[-1]) < counts.max() / 10
    with pytest.raises(ValueError, match="keep in"):
        make_synthetic("synthetic:sparse_targets(keep=0.0)")


def test_regression_fits_report_the_shot_regions():
    assert {"few_shot_mae", "many_shot_mae"} <= set(TASK_METRICS["regression"])
    results = compare(
        "synthetic:sparse_targets(n_samples=400)",
        losses="mse,mae",
        cv=2,
        estimator_params={"max_iter": 2, "module__hidden_units": (8,)},
        torch_threads=1,
        scoring="few_shot_mae",
    )
    assert (results["status"] == "ok").all(), results["error"].dropna().tolist()
    # 200 training rows: the tails are few-shot, no bin reaches many-shot
    assert results["few_shot_mae"].notna().all() and results["many_shot_mae"].isna().all()
    assert results.attrs["primary"] == "few_shot_mae" and not results.attrs["greater_is_better"]
