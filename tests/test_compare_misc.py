"""Compare capabilities for the remaining claims: validation hooks, embedding structure metrics,
trading metrics, the ``returns`` and ``subclusters`` generators."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lossreg.compare._embedding_probes import (
    embedding_probe_metrics,
    group_probe_accuracy,
    intra_class_variance,
    novelty_auroc,
    opis,
    recall_at_1,
)
from lossreg.compare._trading import trading_metrics


def _blobs(n_per_class=30, n_classes=3, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = 4.0 * rng.standard_normal((n_classes, 5))
    y = np.repeat(np.arange(n_classes), n_per_class)
    return centres[y] + spread * rng.standard_normal((len(y), 5)), y


# -- validation split for losses with an epoch-end hook ------------------------------------


@pytest.mark.parametrize(("early_stopping", "moves"), [(True, True), (False, False)])
def test_compare_pipeline_gives_adaptive_logit_adjusted_its_validation_split(early_stopping, moves):
    import pandas as pd

    from lossreg.compare._fit import make_pipeline

    X, y = _blobs(n_per_class=40, n_classes=3, spread=2.0)
    y = np.concatenate([y[:40], y[40:80], y[80:90]])  # a rare third class
    X = pd.DataFrame(X[: len(y)], columns=[f"x{j}" for j in range(5)])
    settings = {"max_iter": 2, "early_stopping": early_stopping, "n_iter_no_change": 5}
    pipeline = make_pipeline("multiclass", "adaptive_logit_adjusted", {}, settings, seed=0)
    pipeline.fit(X, y)
    status = pipeline[-1].criterion_.status_.numpy()
    priors = np.bincount(y) / len(y)
    # with a validation split the status is the validation rule's (max 1), else the priors
    assert np.allclose(status, priors, atol=1e-6) is not moves
    if moves:
        assert status.max() == pytest.approx(1.0)


# -- embedding structure metrics ----------------------------------------------------------


def test_recall_at_1_counts_rows_whose_nearest_neighbour_shares_the_class():
    emb = np.array([[0.0], [0.1], [5.0], [5.1], [0.2]])
    y = np.array([0, 0, 1, 1, 1])  # the last row sits among class 0
    assert recall_at_1(emb, y) == pytest.approx(4 / 5)


def test_intra_class_variance_is_the_scale_free_within_class_share():
    emb = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [12.0, 0.0]])
    y = np.array([0, 0, 1, 1])
    # within: 4 rows at distance 1 from their class mean -> 4; total: around 6 -> 1+25+...
    within = 4 * 1.0
    total = sum((x - 6.0) ** 2 for x in (0.0, 2.0, 10.0, 12.0))
    assert intra_class_variance(emb, y) == pytest.approx(within / total)
    assert intra_class_variance(10 * emb, y) == pytest.approx(within / total)
    points, _ = np.array([[1.0], [1.0], [3.0], [3.0]]), None
    assert intra_class_variance(points, y) == 0.0


def _opis_reference(emb, y, n_thresholds):
    """OPIS with explicit loops over pairs, classes and thresholds."""
    unit = [np.asarray(e) / np.linalg.norm(e) for e in emb]
    pairs = [
        (float(unit[i] @ unit[j]), y[i], y[j]) for i, j in itertools.combinations(range(len(y)), 2)
    ]
    sims = np.array([p[0] for p in pairs])
    grid = np.quantile(sims, np.linspace(0.05, 0.95, n_thresholds))

    def utility(chosen, t):
        pos = [s for s, a, b in chosen if a == b]
        neg = [s for s, a, b in chosen if a != b]
        tpr = sum(s >= t for s in pos) / len(pos)
        tnr = sum(s < t for s in neg) / len(neg)
        return 0.0 if tpr + tnr == 0 else 2 * tpr * tnr / (tpr + tnr)

    total, count = 0.0, 0
    for c in sorted(set(y)):
        mine = [p for p in pairs if c in (p[1], p[2])]
        if not any(a == b for _, a, b in mine):
            continue
        for t in grid:
            total += (utility(mine, t) - utility(pairs, t)) ** 2
            count += 1
    return total / count


def test_opis_matches_a_loop_reference_and_is_zero_for_mirror_classes():
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((12, 3))
    y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2])
    assert opis(emb, y, n_thresholds=7) == pytest.approx(_opis_reference(emb, y, 7))
    # two classes that are mirror images of each other: every class has the same utility
    half = np.array([[1.0, 0.1], [1.0, -0.1], [0.9, 0.0]])
    mirror = np.vstack([half, -half])
    assert opis(mirror, np.array([0, 0, 0, 1, 1, 1])) == pytest.approx(0.0)
    # a loose class and a tight one disagree at most thresholds
    loose = np.vstack([[1.0, 0.0], [0.99, 0.1], [1.0, -0.1], [0.0, 1.0], [0.5, 0.8], [-0.3, 0.9]])
    assert opis(loose, np.array([0, 0, 0, 1, 1, 1])) > 0.01
    assert np.isnan(opis(emb[:3], np.array([0, 0, 0])))


def test_novelty_auroc_scores_rows_of_unseen_classes():
    train, y_train = _blobs(n_per_class=30, n_classes=3)
    rng = np.random.default_rng(3)
    seen_test = train[::3] + 0.1 * rng.standard_normal((30, 5))
    novel = 20.0 + rng.standard_normal((10, 5))
    test = np.vstack([seen_test, novel])
    y_test = np.concatenate([y_train[::3], np.full(10, 7)])
    assert novelty_auroc(train, y_train, test, y_test) == pytest.approx(1.0)
    assert np.isnan(novelty_auroc(train, y_train, seen_test, y_train[::3]))
    metrics = embedding_probe_metrics(train, y_train, seen_test, y_train[::3])
    assert "novelty_auroc" not in metrics and "group_probe_accuracy" not in metrics
    assert set(metrics) == {"recall_at_1", "intra_class_variance", "opis"}


def test_group_probe_accuracy_reads_sub_clusters_a_class_probe_would_merge():
    emb, groups = _blobs(n_per_class=20, n_classes=4, spread=0.2)
    assert group_probe_accuracy(emb[::2], groups[::2], emb[1::2], groups[1::2]) == 1.0
    collapsed = np.repeat(emb[::20], 20, axis=0)[:, :1] * 0  # one point: groups are lost
    assert group_probe_accuracy(collapsed[::2], groups[::2], collapsed[1::2], groups[1::2]) < 0.5


# -- trading metrics ----------------------------------------------------------------------


def test_trading_metrics_by_hand():
    r = np.array([1.0, -2.0, 0.5, -0.5, 3.0])
    pred = np.array([0.1, 0.2, 0.3, -0.1, -0.2])
    out = trading_metrics(r, pred)
    assert out["sign_pnl"] == pytest.approx((1.0 - 2.0 + 0.5 + 0.5 - 3.0) / 5)
    assert out["weighted_direction_accuracy"] == pytest.approx((1.0 + 0.5 + 0.5) / 7.0)
    assert out["trade_rate"] == pytest.approx(1 / 4)  # one change in four steps
    assert trading_metrics(np.abs(r), pred) == {}  # a positive target: no trading metrics


# -- generators ---------------------------------------------------------------------------


def test_returns_rows_are_lags_of_the_series_with_heavy_tails():
    from lossreg.compare._synthetic import make_synthetic

    _, frame = make_synthetic("synthetic:returns(n_samples=2000, n_lags=4)")
    assert list(frame.columns) == ["x0", "x1", "x2", "x3", "target"]
    # the next row's latest lag is this row's target, and so on down the lags
    np.testing.assert_array_equal(frame["x0"].to_numpy()[1:], frame["target"].to_numpy()[:-1])
    np.testing.assert_array_equal(frame["x1"].to_numpy()[1:], frame["x0"].to_numpy()[:-1])
    from scipy.stats import kurtosis

    assert kurtosis(frame["target"]) > 1.0
    assert (frame["target"] > 0).mean() == pytest.approx(0.5, abs=0.05)
    _, again = make_synthetic("synthetic:returns(n_samples=2000, n_lags=4)")
    assert frame.equals(again)
    with pytest.raises(ValueError, match="persistence must be in"):
        make_synthetic("synthetic:returns(persistence=1.0)")


def test_subclusters_groups_split_each_class():
    from lossreg.compare import load_data

    data = load_data("synthetic:subclusters(n_samples=300, n_classes=3, per_class=2)")
    assert "group" not in data.X.columns
    np.testing.assert_array_equal(data.groups.to_numpy() // 2, data.y.to_numpy())
    assert sorted(data.groups.unique()) == list(range(6))


# -- end to end ---------------------------------------------------------------------------


def test_compare_reports_the_new_metrics():
    from lossreg.compare import compare

    small = {"max_iter": 2, "target_scaling": "scale"}
    trades = compare(
        "synthetic:returns(n_samples=120)", losses=["mse"], cv=2, estimator_params=small
    )
    assert trades["status"].eq("ok").all(), trades["error"].tolist()
    assert trades[["sign_pnl", "weighted_direction_accuracy", "trade_rate"]].notna().all().all()
    emb = compare(
        "synthetic:subclusters(n_samples=120, n_classes=3, per_class=2)",
        task="embedding",
        losses=["supcon"],
        scenarios=["holdout_classes:1"],
        cv=2,
        scoring="group_probe_accuracy",
        estimator_params={"max_iter": 2, "n_components": 4},
    )
    assert emb["status"].eq("ok").all(), emb["error"].tolist()
    columns = ["group_probe_accuracy", "opis", "recall_at_1", "intra_class_variance"]
    columns.append("novelty_auroc")  # the held-out class's test rows are novelties
    assert emb[columns].notna().all().all()
    assert emb.attrs["primary"] == "group_probe_accuracy"


# -- held-out classes -----------------------------------------------------------------------


def test_holdout_classes_drops_whole_classes_from_training_only():
    from lossreg.compare._scenarios import corrupt, parse_scenario

    y = np.repeat(np.arange(5), 10)
    X = np.arange(50.0)[:, None]
    X_c, y_c, info = corrupt(X, y, parse_scenario("holdout_classes:2"), random_state=3)
    held = info["held_out_classes"]
    assert len(held) == 2 and not np.isin(y_c, held).any()
    assert sorted(set(y_c) | set(held)) == list(range(5))
    np.testing.assert_array_equal(X_c[:, 0], np.flatnonzero(~np.isin(y, held)))
    assert info["n_removed"] == 20
    # the same seed holds out the same classes (every loss of a comparison loses the same)
    assert corrupt(X, y, parse_scenario("holdout_classes:2"), 3)[2]["held_out_classes"] == held


@pytest.mark.parametrize(
    ("scenario", "task", "message"),
    [
        ("holdout_classes:1.5", "embedding", "whole number >= 1"),
        ("holdout_classes:0", "embedding", "whole number >= 1"),
        ("holdout_classes:1", "multiclass", "does not apply to multiclass"),
    ],
)
def test_holdout_classes_rejects_bad_values(scenario, task, message):
    from lossreg.compare._scenarios import parse_scenario

    with pytest.raises(ValueError, match=message):
        parse_scenario(scenario).check(task)


def test_holdout_classes_keeps_two_classes_to_learn_from():
    from lossreg.compare._scenarios import corrupt, parse_scenario

    with pytest.raises(ValueError, match="hold out at most 1"):
        corrupt(np.zeros((9, 1)), np.repeat([0, 1, 2], 3), parse_scenario("holdout_classes:2"), 0)


# -- composites' fit extras -------------------------------------------------------------------


_ONE_HEAD = "weighted_sum(losses=('cross_entropy', 'binary_kl_kd'))"


def test_declared_extras_include_a_composites_members():
    from lossreg.compare._extras import declared_extras

    kd = declared_extras("weighted_sum", {"losses": ("cross_entropy", "binary_kl_kd")})
    assert "teacher_logits" in kd
    assert "teacher_logits" not in declared_extras("weighted_sum")  # cross_entropy + mae_prob
    assert declared_extras("kl_dro", {"base": "group_dro"}) >= {"group"}
    assert declared_extras("kl_dro") == frozenset()  # its default base takes nothing
    assert "teacher_logits" in declared_extras("knowledge_distillation")


def test_a_distilling_composite_asks_for_a_teacher_and_gets_its_logits():
    from lossreg.compare import compare, load_data, plan_fits

    data = load_data(
        "synthetic:classification(n_samples=90, n_classes=3, n_features=6, n_informative=4)"
    )
    with pytest.raises(ValueError, match="distil"):
        plan_fits(data, losses=[_ONE_HEAD])
    frame = compare(
        "synthetic:classification(n_samples=90, n_classes=3, n_features=6, n_informative=4)",
        losses=[_ONE_HEAD],
        teacher="logistic_regression",
        cv=2,
        estimator_params={"max_iter": 2},
    )
    assert frame["status"].eq("ok").all(), frame["error"].tolist()
    # the teacher was fitted for the composite (and scored), not for plain cross_entropy
    one_head = frame[frame["loss_label"] == _ONE_HEAD]
    assert one_head["teacher_accuracy"].notna().all()
    assert frame.loc[frame["loss_label"] == "cross_entropy", "teacher_accuracy"].isna().all()


def test_pairwise_metrics_use_a_seeded_sample_of_a_large_test_fold(monkeypatch):
    from lossreg.compare import _embedding_probes as probes

    emb, y = _blobs(n_per_class=20, n_classes=3, spread=2.0)
    monkeypatch.setattr(probes, "MAX_PAIR_ROWS", 25)
    out = embedding_probe_metrics(emb, y, emb, y)
    rows = np.sort(np.random.default_rng(0).choice(len(y), 25, replace=False))
    assert out["opis"] == pytest.approx(opis(emb[rows], y[rows]))
    assert out["recall_at_1"] == pytest.approx(recall_at_1(emb[rows], y[rows]))
    assert out["intra_class_variance"] == pytest.approx(intra_class_variance(emb, y))  # all rows


def test_a_fit_limits_torch_threads_and_gives_the_count_back():
    import torch

    from lossreg.compare._threads import limit_torch_threads

    before = torch.get_num_threads()
    restore = limit_torch_threads(1)
    assert torch.get_num_threads() == 1
    restore()
    assert torch.get_num_threads() == before
    limit_torch_threads(None)()  # None leaves the count alone
    assert torch.get_num_threads() == before
