"""compare's outlier task: losses train reconstructions, outlier scores are ranked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lossreg import LossRegressor
from lossreg.compare import compare, load_data
from lossreg.compare._outlier import Reconstruction, outlier_metrics
from lossreg.compare._synthetic import outliers
from lossreg.errors import UnsupportedTaskError

TINY = {"max_iter": 2, "module__hidden_units": [8, 2, 8]}


def test_generator_marks_its_share_of_outliers_with_in_range_values():
    frame = outliers(n_samples=400, n_features=6, contamination=0.1, random_state=3)
    y = frame.pop("target").to_numpy()
    assert y.sum() == 40 and set(np.unique(y)) == {0, 1}
    inliers, bad = frame[y == 0], frame[y == 1]
    # shuffled values come from other rows: no column of an outlier leaves the data's range
    assert (bad.min() >= frame.min()).all() and (bad.max() <= frame.max()).all()
    assert bad.shape[1] == inliers.shape[1] == 6
    pd.testing.assert_frame_equal(
        outliers(n_samples=400, n_features=6, contamination=0.1, random_state=3).drop(
            columns="target"
        ),
        frame,
    )


def test_outlier_metrics_rank_the_marked_rows():
    y = np.array([0, 0, 0, 1, 1])
    perfect = outlier_metrics(y, np.array([0.1, 0.2, 0.3, 0.9, 0.8]))
    assert perfect == {"outlier_roc_auc": 1.0, "outlier_average_precision": 1.0}
    reversed_ = outlier_metrics(y, np.array([0.9, 0.8, 0.7, 0.1, 0.2]))
    assert reversed_["outlier_roc_auc"] == 0.0
    # a diverged model's NaN score counts as the most anomalous, not as an error
    nan = outlier_metrics(y, np.array([np.nan, 0.2, 0.3, 0.9, 0.8]))
    assert nan["outlier_roc_auc"] == pytest.approx(4 / 6)
    assert np.isnan(outlier_metrics(np.zeros(3), np.arange(3.0))["outlier_roc_auc"])


def test_reconstruction_scores_by_the_losss_own_score_or_the_squared_error():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 4)).astype(np.float32)
    mse = Reconstruction(LossRegressor(loss="mse", random_state=0, **TINY)).fit(X, np.zeros(64))
    rebuilt = mse.regressor_.predict(X)
    np.testing.assert_allclose(mse.outlier_scores(X), ((X - rebuilt) ** 2).mean(axis=1), 1e-5)
    apre = Reconstruction(LossRegressor(loss="apre", random_state=0, **TINY)).fit(X)
    out, criterion = apre.regressor_._forward64(X)
    expected = criterion.outlier_score(out, torch.as_tensor(X, dtype=torch.float64))
    np.testing.assert_allclose(apre.outlier_scores(X), expected.numpy(), rtol=1e-6)


def test_compare_runs_the_outlier_task(tmp_path):
    results = compare(
        "synthetic:outliers(n_samples=300, n_features=6, contamination=0.1)",
        task="outlier",
        losses=["mse", "apre"],
        cv=2,
        estimator_params=TINY,
        n_jobs=1,
        out=tmp_path,
        report=False,
    )
    assert (results["status"] == "ok").all(), results.get("error")
    for metric in ("outlier_roc_auc", "outlier_average_precision"):
        assert results[metric].between(0, 1).all()
    assert results.attrs["baseline"] == "mse"


def test_outlier_task_needs_a_01_target_and_regression_losses():
    with pytest.raises(ValueError, match=r"task='outlier' needs a 0/1 target"):
        load_data("diabetes", task="outlier")
    with pytest.raises(
        UnsupportedTaskError,
        match=r"task .outlier. \(it trains regression losses\)",
    ):
        compare(
            "synthetic:outliers(n_samples=100)",
            task="outlier",
            losses=["cross_entropy"],
            cv=2,
            n_jobs=1,
            report=False,
        )
