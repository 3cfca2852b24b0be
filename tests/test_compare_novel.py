"""The novel_classes:K scenario: hidden classes, clustering accuracy, the k estimate."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lossreg.compare import compare, load_data, plan_fits
from lossreg.compare._novel import (
    cluster_accuracy,
    estimate_n_clusters,
    hide_novel_classes,
    known_test_rows,
)
from lossreg.compare._scenarios import corrupt, parse_scenario

DATA = "synthetic:classification(n_samples=300, n_features=6, n_informative=4, n_classes=6)"


def _brute_force_accuracy(y_true, clusters):
    """Best share of matched rows over every injective map of clusters to classes (loops)."""
    classes, groups = sorted(set(y_true)), sorted(set(clusters))
    best = 0
    for chosen in itertools.permutations(classes + [None] * len(groups), len(groups)):
        hits = sum(
            1
            for truth, cluster in zip(y_true, clusters, strict=True)
            if chosen[groups.index(cluster)] == truth
        )
        best = max(best, hits)
    return best / len(y_true)


def test_cluster_accuracy_matches_clusters_to_classes_one_to_one():
    assert cluster_accuracy([0, 0, 1, 1, 2, 2], [5, 5, 3, 3, 4, 4]) == 1.0
    assert cluster_accuracy([0, 0, 1, 1, 2, 2], [1, 1, 0, 0, 0, 2]) == pytest.approx(5 / 6)
    # more clusters than classes: the unmatched cluster's rows are wrong
    assert cluster_accuracy(["a"] * 4, [0, 0, 1, 1]) == 0.5
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 3, size=12).tolist()
        c = rng.integers(0, 4, size=12).tolist()
        assert cluster_accuracy(y, c) == pytest.approx(_brute_force_accuracy(y, c))


def test_silhouette_finds_the_number_of_separated_blobs():
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    Z = np.concatenate([c + rng.normal(size=(30, 2)) for c in centres])
    k, labels = estimate_n_clusters(Z, seed=0)
    assert k == 4
    assert cluster_accuracy(np.repeat(np.arange(4), 30), labels) == 1.0
    with pytest.raises(ValueError, match="at least 3 novel test rows"):
        estimate_n_clusters(Z[:2], seed=0)


def test_hide_novel_classes_unlabels_whole_classes():
    y = np.repeat(np.array(["a", "b", "c", "d", "e"]), 4)
    hidden, info = hide_novel_classes(y, 2, np.random.default_rng(0))
    novel = info["novel_classes"]
    assert len(novel) == 2 and info["n_corrupted"] == 8
    assert all((hidden[y == c] == -1).all() for c in novel)
    assert all((hidden[y == c] == c).all() for c in set(y) - set(novel))
    test = np.arange(len(y))
    assert set(y[known_test_rows(test, y, info)]) == set(y) - set(novel)
    with pytest.raises(ValueError, match="at most 3 classes novel"):
        hide_novel_classes(y, 4, np.random.default_rng(0))


def test_scenario_checks_its_value_and_task():
    for text in ("novel_classes:1", "novel_classes:2.5"):
        with pytest.raises(ValueError, match="whole number >= 2"):
            parse_scenario(text).check("multiclass")
    with pytest.raises(ValueError, match="does not apply to binary"):
        parse_scenario("novel_classes:2").check("binary")
    _, y, info = corrupt(None, np.repeat(np.arange(6), 3), parse_scenario("novel_classes:3"), 7)
    assert (y == -1).sum() == 9 and info["n_corrupted"] == 9


def test_plan_refuses_raw_features_outside_novel_scenarios_and_too_many_novel_classes():
    dataset = load_data(DATA)
    with pytest.raises(ValueError, match="only clusters the novel classes"):
        plan_fits(dataset, models=["raw_features"], scenarios=["clean", "novel_classes:2"])
    with pytest.raises(ValueError, match="at most 4 classes novel"):
        plan_fits(dataset, scenarios=["novel_classes:5"])


def test_compare_clusters_the_novel_test_rows_for_every_loss_and_the_raw_baseline():
    results = compare(
        DATA.replace(")", ", class_sep=4.0)"),
        losses=["cross_entropy", "pbn_ce_recon"],
        models=["raw_features", "gaussian_nb"],
        scenarios=["novel_classes:2"],
        cv=2,
        estimator_params={"max_iter": 20, "lr": 0.05, "module__hidden_units": [8]},
        torch_threads=1,
    )
    assert (results["status"] == "ok").all(), results.get("error")
    # every loss of a fold hides the same classes
    assert (
        results.groupby("fold")["novel_classes"].apply(lambda s: s.map(tuple).nunique()).eq(1).all()
    )
    # a reference classifier has no latent space: it gets no clustering metrics
    clustered = results[results["loss_label"] != "model:gaussian_nb"]
    assert results.loc[results.index.difference(clustered.index), "novel_k_error"].isna().all()
    for metric in ("novel_cluster_accuracy", "novel_cluster_accuracy_est"):
        assert clustered[metric].between(0, 1).all()
    assert (clustered["novel_k_error"] == (clustered["novel_n_clusters"] - 2).abs()).all()
    by_loss = results.set_index(["loss_label", "fold"])
    # the semi-supervised loss trains on the novel rows as unlabeled, cross-entropy without them
    assert (by_loss.loc["pbn_ce_recon", "n_unlabeled"] > 0).all()
    assert (by_loss.loc["cross_entropy", "n_unlabeled"] == 0).all()
    # the classifiers are scored on known-class rows only: with the novel third of the test
    # rows, whose classes no classifier predicts, accuracy could not exceed 2/3
    assert by_loss.loc["cross_entropy", "accuracy"].gt(0.7).all()
    assert by_loss.loc["model:gaussian_nb", "accuracy"].gt(0.7).all()
    assert by_loss.loc["model:raw_features", "accuracy"].isna().all()
