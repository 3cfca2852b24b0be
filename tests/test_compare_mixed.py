"""``lossreg compare`` on mixed targets: the generator, loading, the scaled model, the metrics and
a tiny comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from lossreg.compare import compare
from lossreg.compare._data import load_data
from lossreg.compare._mixed import MixedTargetScaled, mixed_metrics
from lossreg.compare._synthetic_mixed import mixed_targets
from lossreg.estimators import LossMixedEstimator


def test_generator_shares_features_between_the_two_targets():
    frame = mixed_targets(n_samples=400, n_classes=4, random_state=3)
    assert frame.attrs["task"] == "mixed"
    assert list(frame.columns[-2:]) == ["target_0", "target_1"]
    assert set(frame["target_1"]) == {0, 1, 2, 3}
    pd.testing.assert_frame_equal(frame, mixed_targets(n_samples=400, n_classes=4, random_state=3))
    # the relation is drawn before the rows: more rows give the same classes' shares, roughly
    small = mixed_targets(n_samples=1000)["target_1"].value_counts(normalize=True)
    large = mixed_targets(n_samples=4000)["target_1"].value_counts(normalize=True)
    assert np.abs(small.sort_index() - large.sort_index()).max() < 0.05
    # value_scale only changes the units
    scaled = mixed_targets(n_samples=400, n_classes=4, random_state=3, value_scale=10.0)
    np.testing.assert_allclose(scaled["target_0"], 10.0 * frame["target_0"])
    with pytest.raises(ValueError, match="n_classes must be at least 2"):
        mixed_targets(n_classes=1)


def test_load_data_poses_a_mixed_task():
    data = load_data("synthetic:mixed_targets(n_samples=200)")
    assert data.task == "mixed"
    assert list(data.y.columns) == ["target_0", "target_1"]
    assert "target_1" not in data.X.columns
    frame = pd.DataFrame(
        {"a": np.arange(8.0), "v": np.linspace(0, 1, 8), "c": ["x", "y"] * 4, "w": [1.0] * 8}
    )
    named = load_data(frame, target="v,c", task="mixed")
    assert named.task == "mixed" and list(named.X.columns) == ["a", "w"]
    with pytest.raises(ValueError, match=r"List the numeric column first \(target='v,c'\)"):
        load_data(frame, target="c,v", task="mixed")
    with pytest.raises(ValueError, match="'v' holds non-integer numbers"):
        load_data(frame, target="a,v", task="mixed")
    with pytest.raises(ValueError, match=r"takes two target columns.*got 3"):
        load_data(frame, target="v,c,w", task="mixed")
    with pytest.raises(ValueError, match="single class"):
        load_data(frame.assign(c="x"), target="v,c", task="mixed")


def test_mixed_metrics_score_each_column():
    y = np.array([[1.0, "b"], [2.0, "a"], [0.5, "b"], [3.0, "c"]], dtype=object)
    value = np.array([1.5, 2.0, 0.0, 2.0])
    proba = np.array([[0.2, 0.7, 0.1], [0.5, 0.3, 0.2], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    out = mixed_metrics(y, value, proba, np.array(["a", "b", "c"]))
    assert out["rmse"] == pytest.approx(np.sqrt((0.25 + 0 + 0.25 + 1) / 4))
    assert out["mae"] == pytest.approx((0.5 + 0 + 0.5 + 1) / 4)
    assert out["accuracy"] == pytest.approx(0.75)  # rows 0, 1, 3 right; row 2 says "a"
    labels = ["b", "a", "b", "c"]
    assert out["log_loss"] == pytest.approx(metrics.log_loss(labels, proba))
    assert out["r2"] == pytest.approx(metrics.r2_score([1.0, 2.0, 0.5, 3.0], value))


def test_value_column_is_scaled_for_training_and_mapped_back():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3)).astype(np.float32)
    y = np.empty((200, 2), dtype=object)
    y[:, 0], y[:, 1] = 1000.0 + 50.0 * X[:, 0], (X[:, 1] > 0).astype(int)
    model = MixedTargetScaled(LossMixedEstimator(max_iter=30, random_state=0, lr=1e-2))
    model.fit(X, y)
    assert model.offset_ == pytest.approx(np.mean(y[:, 0].astype(float)))
    values = model.predict_value(X)
    assert np.sqrt(np.mean((values - y[:, 0].astype(float)) ** 2)) < 25.0  # half its spread
    assert model.predict(X)[:, 0] == pytest.approx(values)
    with pytest.raises(ValueError, match="target_scaling must be"):
        MixedTargetScaled(LossMixedEstimator(), scaling="log").fit(X, y)


def test_compare_runs_a_mixed_comparison(tmp_path):
    frame = compare(
        "synthetic:mixed_targets(n_samples=160)",
        losses="uncertainty_weighted_mixed",
        cv=2,
        estimator_params={"max_iter": 2},
        torch_threads=1,
        out=tmp_path,
    )
    assert frame.attrs["task"] == "mixed" and frame.attrs["primary"] == "rmse"
    assert frame.attrs["baseline"] == "uncertainty_weighted_mixed(weights='equal')"
    assert (frame["status"] == "ok").all()
    for metric in ("rmse", "mae", "r2", "accuracy", "balanced_accuracy", "log_loss"):
        assert frame[metric].notna().all(), metric
    learned = frame[frame["loss_label"] == "uncertainty_weighted_mixed"]
    assert learned["log_var_value"].notna().all() and learned["log_var_class"].notna().all()
    assert (
        frame.loc[frame["loss_label"] != "uncertainty_weighted_mixed", "log_var_value"].isna().all()
    )
    assert (tmp_path / "report.md").read_text().count("uncertainty_weighted_mixed") >= 2


def test_compare_refuses_what_a_mixed_task_cannot_do():
    with pytest.raises(ValueError, match="does not apply to mixed targets"):
        compare("synthetic:mixed_targets(n_samples=160)", scenarios=["target_noise:0.5"], cv=2)
    with pytest.raises(Exception, match="does not support task 'mixed'"):
        compare("synthetic:mixed_targets(n_samples=160)", losses="mse", cv=2)
