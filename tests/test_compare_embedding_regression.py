"""compare's embedding task on regression targets: target binning, checks, probes, a run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin

from lossreg.compare import compare, load_data
from lossreg.compare._extras import declared_extras
from lossreg.compare._losses import parse_losses
from lossreg.compare._regression_embedding import (
    TargetPrepared,
    bins_of,
    check_regression_embedding,
    quantile_bins,
    regression_embedding_metrics,
)

FAST = {"max_iter": 1, "n_components": 4, "module__hidden_units": (8,)}


def test_quantile_bins_cut_equal_shares_at_the_training_quantiles():
    y = np.arange(100.0)[::-1]
    ids, edges = quantile_bins(y, 4)
    assert np.bincount(ids).tolist() == [25, 25, 25, 25]
    np.testing.assert_allclose(edges, [24.75, 49.5, 74.25])
    assert ids[0] == 3 and ids[-1] == 0  # ordered like y
    tied, tied_edges = quantile_bins(np.repeat([0.0, 1.0], [90, 10]), 4)
    assert tied_edges.tolist() == [0.0] and set(tied.tolist()) == {0, 1}  # merged bins


def test_bins_of_reads_an_int_a_dict_and_skips_target_kernel_losses():
    assert bins_of(None, "supcon") is None
    assert bins_of(8, "supcon") == 8
    assert bins_of({"supcon": 5, "default": 3}, "supcon") == 5
    assert bins_of({"supcon": 5, "default": 3}, "triplet") == 3
    assert bins_of({"supcon": 5}, "triplet") is None
    assert bins_of(8, "cwcl", {"kernel": "laplace"}) is None
    for bad in (1, 2.5, True, "10"):
        with pytest.raises(ValueError, match=f"int >= 2.*got {bad!r} for loss 'supcon'"):
            bins_of(bad, "supcon")


@pytest.mark.parametrize(
    ("losses", "task", "setting", "message"),
    [
        (["supcon"], "embedding_regression", None, "supcon train.*on class labels.*bin_targets"),
        (["supcon"], "regression", 10, "bin_targets=10 bins.*this task is 'regression'"),
        (
            ["cwcl(kernel='laplace')"],
            "embedding_regression",
            {"cwcl": 5},
            "bin_targets names 'cwcl'.*Leave it out",
        ),
        (["supcon"], "embedding_regression", {"supcn": 5}, "Did you mean 'supcon'"),
    ],
)
def test_losses_the_task_cannot_feed_are_refused_with_the_fix(losses, task, setting, message):
    with pytest.raises((ValueError, KeyError), match=message):
        check_regression_embedding(parse_losses(losses), task, setting)


def test_target_kernel_and_label_free_losses_need_no_bins():
    choices = parse_losses(["cwcl(kernel='laplace')", "info_nce", "supcon"])
    check_regression_embedding(choices, "embedding_regression", {"supcon": 10})
    assert "teacher_logits" not in declared_extras("cwcl", {"kernel": "laplace"})
    assert "teacher_logits" in declared_extras("cwcl", {})


def test_probes_score_how_well_embeddings_carry_the_target():
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    informative = np.c_[y, rng.normal(size=300)]
    out = regression_embedding_metrics(informative[:200], y[:200], informative[200:], y[200:])
    assert out["linear_probe_r2"] > 0.99 and out["knn_r2"] > 0.9
    noise = rng.normal(size=(300, 2))
    out = regression_embedding_metrics(noise[:200], y[:200], noise[200:], y[200:])
    assert out["linear_probe_r2"] < 0.05 and out["knn_r2"] < 0.05


class _Recorder(TransformerMixin, BaseEstimator):
    def fit(self, X, y):
        self.y_ = np.asarray(y)
        return self

    def transform(self, X):
        return np.asarray(X)


def test_the_wrapper_bins_or_standardises_the_training_targets():
    X, y = np.zeros((40, 1)), np.linspace(10.0, 50.0, 40)
    binned = TargetPrepared(_Recorder(), bins=4).fit(X, y)
    assert binned.embedder_.y_.tolist() == [0] * 10 + [1] * 10 + [2] * 10 + [3] * 10
    scaled = TargetPrepared(_Recorder()).fit(X, y)
    assert scaled.bin_edges_ is None
    np.testing.assert_allclose(scaled.embedder_.y_, (y - y.mean()) / y.std())


def test_the_task_is_named_in_the_embedding_error_and_needs_numbers():
    frame = pd.DataFrame({"x": np.arange(30.0), "target": np.linspace(0, 1, 30)})
    with pytest.raises(ValueError, match="Use task='embedding_regression'"):
        load_data(frame, target="target", task="embedding")
    assert (
        load_data(frame, target="target", task="embedding_regression").task
        == "embedding_regression"
    )
    words = frame.assign(target=["a", "b", "c"] * 10)
    with pytest.raises(
        ValueError, match=r"needs a numeric target; 'target' holds (str|object) values"
    ):
        load_data(words, target="target", task="embedding_regression")


def test_compare_runs_a_target_kernel_loss_against_binned_supcon():
    results = compare(
        "synthetic:friedman1(n_samples=120, n_features=5)",
        task="embedding_regression",
        losses=["cwcl(kernel='laplace', sigma=0.5)", "supcon"],
        cv=2,
        estimator_params={**FAST, "bin_targets": {"supcon": 4}},
        torch_threads=1,
    )
    assert results.attrs["primary"] == "linear_probe_r2"
    assert results.attrs["baseline"] == "cwcl(kernel='laplace')"
    assert set(results["loss_label"]) == {
        "cwcl(kernel='laplace')",
        "cwcl(kernel='laplace', sigma=0.5)",
        "supcon",
    }
    assert (results["status"] == "ok").all()
    assert results[["linear_probe_r2", "knn_r2"]].notna().all().all()
