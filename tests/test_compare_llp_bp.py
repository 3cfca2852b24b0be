"""LLP-BP: belief propagation against enumeration, the classifier, and ``model:llp_bp``."""

from __future__ import annotations

import importlib.util
import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lossreg.estimators._belief_propagation import (
    IsingModel,
    belief_propagation,
    knn_edges,
    llp_gibbs_model,
)
from lossreg.estimators.llp_bp import LLPBPClassifier

ROOT = Path(__file__).resolve().parents[1]


def _exact_marginals(n, couplings, fields):
    """P(s_i = +1) by summing exp(energy) over all 2**n spin vectors, with plain loops."""
    totals = [0.0] * n
    z = 0.0
    for spins in itertools.product((-1, 1), repeat=n):
        energy = sum(fields[i] * spins[i] for i in range(n))
        for (i, j), value in couplings.items():
            energy += value * spins[i] * spins[j]
        weight = math.exp(energy)
        z += weight
        for i in range(n):
            if spins[i] == 1:
                totals[i] += weight
    return [t / z for t in totals]


def test_bp_is_exact_on_a_tree():
    rng = np.random.default_rng(3)
    # a tree on 8 nodes: a chain 0-1-2-3 with branches 1-4, 4-5, 2-6, 6-7
    edges = np.array([[0, 1], [1, 2], [2, 3], [1, 4], [4, 5], [2, 6], [6, 7]])
    coupling = rng.uniform(-1.5, 1.5, len(edges))
    field = rng.uniform(-1.0, 1.0, 8)
    marginals = belief_propagation(IsingModel(8, edges, coupling, field), n_iter=200, tol=0)
    expected = _exact_marginals(
        8, {tuple(e): c for e, c in zip(edges.tolist(), coupling)}, field.tolist()
    )
    np.testing.assert_allclose(marginals, expected, atol=1e-9)


def test_bp_without_edges_is_the_field_alone():
    field = np.array([-2.0, 0.0, 0.5])
    marginals = belief_propagation(IsingModel(3, np.empty((0, 2)), np.empty(0), field))
    np.testing.assert_allclose(marginals, 1 / (1 + np.exp(-2 * field)))


def test_gibbs_model_is_the_papers_energy():
    # 6 rows in bags {0,1,2} (one positive of 3) and {3,4,5} (two of 3); graph edges
    # include (1, 2), which is also a bag pair, and (2, 3) across bags
    bag = np.array([7, 7, 7, 9, 9, 9])
    share = np.array([1 / 3] * 3 + [2 / 3] * 3)
    graph = np.array([[1, 2], [2, 3], [0, 5]])
    lam_s, lam_b = 0.4, 1.5
    model = llp_gibbs_model(graph, bag, share, similarity_weight=lam_s, bag_weight=lam_b)
    couplings = {tuple(e): c for e, c in zip(model.edges.tolist(), model.coupling)}
    offsets = set()
    for spins in itertools.product((-1, 1), repeat=6):
        ising = sum(model.field[i] * spins[i] for i in range(6))
        ising += sum(c * spins[i] * spins[j] for (i, j), c in couplings.items())
        paper = lam_s * sum(spins[i] * spins[j] for i, j in graph.tolist())
        for rows, alpha in (((0, 1, 2), 1 / 3), ((3, 4, 5), 2 / 3)):
            count = sum(spins[r] for r in rows)
            paper -= lam_b / 3 * (count - 3 * (2 * alpha - 1)) ** 2
        offsets.add(round(ising - paper, 9))
    assert len(offsets) == 1  # the same distribution: the energies differ by a constant


def test_bp_marginals_follow_the_bag_shares_without_a_graph():
    bag = np.repeat(np.arange(5), 8)
    share = np.repeat([0.0, 0.25, 0.5, 0.75, 1.0], 8)
    model = llp_gibbs_model(
        np.empty((0, 2), int), bag, share, similarity_weight=0.0, bag_weight=3.0
    )
    marginals = belief_propagation(model).reshape(5, 8)
    assert np.ptp(marginals, axis=1).max() < 1e-9  # rows of a bag are exchangeable
    assert np.all(np.diff(marginals[:, 0]) > 0)
    assert marginals[0, 0] < 0.5 < marginals[-1, 0]


def test_knn_edges_are_symmetrised_and_listed_once():
    X = np.random.default_rng(0).normal(size=(30, 3))
    edges = knn_edges(X, 4)
    assert np.all(edges[:, 0] < edges[:, 1])
    assert len(np.unique(edges, axis=0)) == len(edges)
    degree = np.bincount(edges.reshape(-1), minlength=30)
    assert degree.min() >= 4


def _bagged(n=400, size=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0.3, "yes", "no")
    bag = rng.permutation(n) // size
    share = pd.Series(y == "yes").groupby(bag).transform("mean").to_numpy()
    return X, y, bag, share


def test_classifier_learns_instance_labels_from_bags():
    from sklearn.metrics import roc_auc_score

    X, y, bag, share = _bagged()
    clf = LLPBPClassifier(max_iter=30, lr=1e-2, hidden_units=(16,), random_state=0)
    clf.fit(X[:300], y[:300], bag=bag[:300], bag_target=share[:300])
    assert list(clf.classes_) == ["no", "yes"]
    proba = clf.predict_proba(X[300:])
    assert proba.shape == (100, 2) and np.allclose(proba.sum(axis=1), 1)
    assert roc_auc_score(y[300:] == "yes", proba[:, 1]) > 0.9
    assert set(clf.predict(X[300:])) <= {"no", "yes"}
    assert clf.pseudo_labels_.shape == (300,)


def test_classifier_errors_name_the_problem():
    X, y, bag, share = _bagged(n=60)
    with pytest.raises(ValueError, match="needs bag_target"):
        LLPBPClassifier().fit(X, y, bag=bag)
    with pytest.raises(ValueError, match="binary"):
        LLPBPClassifier().fit(X, np.arange(60) % 3, bag=bag, bag_target=share)
    with pytest.raises(ValueError, match="same on every row of a bag"):
        LLPBPClassifier().fit(X, y, bag=bag, bag_target=np.linspace(0, 1, 60))
    with pytest.raises(ValueError, match=r"damping must be a float in \[0, 1\); got 1.0"):
        LLPBPClassifier(damping=1.0).fit(X, y, bag=bag, bag_target=share)


def test_compare_fits_llp_bp_on_bags_with_the_comparison_settings():
    from lossreg.compare import compare

    results = compare(
        "synthetic:classification(n_samples=200, n_classes=2, n_features=5, n_informative=3)",
        losses=["dllp"],
        baseline="dllp",
        models=["llp_bp"],
        scenarios=["bags:10"],
        cv=2,
        repeats=1,
        estimator_params={"max_iter": 3, "module__hidden_units": [8]},
        n_jobs=1,
    )
    fits = results[results["loss_label"] == "model:llp_bp"]
    assert list(fits["status"]) == ["ok", "ok"]
    assert fits["roc_auc"].between(0, 1).all()


def test_use_settings_sizes_the_llp_bp_network_like_the_losses():
    from lossreg.compare._bag_models import use_settings
    from lossreg.compare._models import make_model

    pipeline = make_model("model:llp_bp", "binary", 0)
    settings = {"max_iter": 7, "batch_size": "auto", "module__hidden_units": [8, 4]}
    model = use_settings(pipeline, "model:llp_bp", settings)[-1]
    assert (model.max_iter, model.hidden_units, model.batch_size) == (7, (8, 4), 128)


def test_compare_refuses_llp_bp_without_bags():
    from lossreg.compare import compare

    with pytest.raises(ValueError, match="model:llp_bp learn"):
        compare(
            "synthetic:classification(n_samples=100, n_classes=2)",
            losses=["cross_entropy"],
            models=["llp_bp"],
            scenarios=["clean"],
            cv=2,
        )


def _runner():
    spec = importlib.util.spec_from_file_location(
        "run_claims", ROOT / "examples" / "claims" / "run_claims.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_claims"] = module
    spec.loader.exec_module(module)
    return module


def test_contrast_scenario_judges_the_difference_in_differences():
    claims = _runner()
    rng = np.random.default_rng(0)
    gaps = {"small": 0.01, "large": 0.10}  # the loss's advantage per scenario
    rows = []
    for fold in range(5):
        for scenario, gap in gaps.items():
            base = 0.8 + 0.01 * rng.normal()
            for label, value in (("dllp", base), ("x", base + gap + 0.002 * fold)):
                rows.append(
                    {"loss_label": label, "repeat": 0, "fold": fold, "status": "ok"}
                    | {"scenario": scenario, "roc_auc": value}
                )
    frame = pd.DataFrame(rows)
    frame.attrs.update(cv=5, baseline="dllp")
    check = claims.Check(loss="x", metric="roc_auc", scenario="large", contrast_scenario="small")
    (row,) = claims.evaluate(claims.Claim("C0", "t", "X", "", {}, [check]), frame)
    assert row["pairs"] == 5 and row["diff"] == pytest.approx(0.09)
    assert row["outcome"] is True and "change from small" in row["baseline"]
    reverse = claims.Check(loss="x", metric="roc_auc", scenario="small", contrast_scenario="large")
    (row,) = claims.evaluate(claims.Claim("C0", "t", "X", "", {}, [reverse]), frame)
    assert row["diff"] == pytest.approx(-0.09) and row["outcome"] is False


def test_contrast_scenario_refuses_a_threshold():
    claims = _runner()
    raw = {"loss": "x", "metric": "roc_auc", "contrast_scenario": "a", "threshold": 0.5}
    with pytest.raises(ValueError, match="contrast_scenario"):
        claims._check(Path("C0.toml"), raw, {"": {}})


def test_contrast_scenario_counts_the_baselines_failures_in_its_own_experiment():
    claims = _runner()
    frames = {}
    for name, label in (("with x", "x"), ("with dllp", "dllp")):
        rows = [
            {"loss_label": label, "repeat": 0, "fold": fold, "status": "ok"}
            | {"scenario": scenario, "roc_auc": 0.8 + 0.01 * fold + (label == "x") * 0.05}
            for fold in range(5)
            for scenario in ("small", "large")
        ]
        frames[name] = pd.DataFrame(rows)
        frames[name].attrs.update(cv=5, baseline="dllp")
    failed = (frames["with dllp"]["scenario"] == "small") & (frames["with dllp"]["fold"] == 0)
    frames["with dllp"].loc[failed, "status"] = "error"  # the baseline's fit in the contrast
    check = claims.Check(
        loss="x",
        metric="roc_auc",
        scenario="large",
        contrast_scenario="small",
        experiment="with x",
        baseline_experiment="with dllp",
    )
    claim = claims.Claim("C0", "t", "X", "", {"with x": {}, "with dllp": {}}, [check])
    (row,) = claims.evaluate(claim, frames)
    assert row["errors"] == 1 and row["pairs"] == 4


def test_classifier_leaves_the_global_torch_rng_alone():
    import torch

    X, y, bag, share = _bagged(n=60)
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    LLPBPClassifier(max_iter=2, hidden_units=(4,), random_state=0).fit(
        X, y, bag=bag, bag_target=share
    )
    assert torch.equal(torch.rand(1), expected)


def test_classifier_takes_string_bag_ids_like_integer_ones():
    X, y, bag, share = _bagged(n=60)
    names = np.array([f"bag{b:03d}" for b in bag])  # sorts like the integers
    params = {"max_iter": 2, "hidden_units": (4,), "random_state": 0}
    by_int = LLPBPClassifier(**params).fit(X, y, bag=bag, bag_target=share)
    by_name = LLPBPClassifier(**params).fit(X, y, bag=names, bag_target=share)
    assert np.array_equal(by_int.pseudo_labels_, by_name.pseudo_labels_)
    assert np.array_equal(by_int.predict_proba(X), by_name.predict_proba(X))
