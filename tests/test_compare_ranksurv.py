"""lossreg compare: the ranking and survival tasks, their generators, folds and metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lossreg.compare import compare, load_data
from lossreg.compare._config import load_config
from lossreg.compare._ranksurv import vote_noise
from lossreg.compare._ranksurv_metrics import (
    integrated_brier_score,
    kaplan_meier,
    ranking_metrics,
)
from lossreg.compare._run import plan_fits
from lossreg.compare._synthetic import make_synthetic

FAST = {"max_iter": 2, "module__hidden_units": (8,), "batch_size": 64}


def test_ranking_generator_gives_graded_queries_and_soft_pairs():
    _, frame = make_synthetic("synthetic:ranking(n_samples=200, query_size=10, n_levels=4)")
    assert frame["group"].value_counts().eq(10).all()
    assert set(frame["target"]) == {0.0, 1.0, 2.0, 3.0}
    _, pairs = make_synthetic("synthetic:ranking(n_samples=100, query_size=2, n_levels=0)")
    sums = pairs.groupby("group")["target"].sum()
    np.testing.assert_allclose(sums, 1.0)
    with pytest.raises(ValueError, match="query_size=2"):
        make_synthetic("synthetic:ranking(n_levels=0)")


@pytest.mark.parametrize("hazards", ["proportional", "nonproportional"])
def test_survival_generator_censors_the_requested_share(hazards):
    _, frame = make_synthetic(
        f"synthetic:survival(n_samples=3000, censoring=0.4, hazards={hazards!r})"
    )
    assert abs(1 - frame["event"].mean() - 0.4) < 0.01
    assert (frame["target"] > 0).all()
    with pytest.raises(ValueError, match="hazards must be"):
        make_synthetic("synthetic:survival(hazards='crossing')")


def test_ranking_folds_keep_queries_whole_and_survival_folds_keep_censoring():
    ranking = load_data("synthetic:ranking(n_samples=300)", task="ranking")
    for fit in plan_fits(ranking, losses="bpr", cv=3, repeats=2)["fits"]:
        train = set(ranking.groups.iloc[fit["train"]])
        assert train.isdisjoint(ranking.groups.iloc[fit["test"]])
    survival = load_data("synthetic:survival(n_samples=500, censoring=0.3)")
    assert survival.task == "survival"
    assert list(survival.y.columns) == ["target", "event"]
    assert "event" not in survival.X.columns
    for fit in plan_fits(survival, cv=5)["fits"]:
        share = 1 - survival.y["event"].iloc[fit["test"]].mean()
        assert abs(share - 0.3) < 0.02


def test_ranking_metrics_by_hand():
    y = [2, 1, 0, 1, 0]
    scores = [0.9, 0.1, 0.5, 0.3, 0.3]
    group = [0, 0, 0, 1, 1]
    out = ranking_metrics(y, scores, group)
    # query 0: pairs (2>1) right, (2>0) right, (1>0) wrong; query 1: tied scores count 1/2
    assert out["pair_accuracy"] == pytest.approx(2.5 / 4)
    # tau-b of query 0 is 1/3; query 1 has tied scores, tau-b 0 by convention here
    assert out["kendall_tau"] == pytest.approx((1 / 3 + 0.0) / 2)
    assert 0 < out["ndcg_at_10"] <= 1


def test_kaplan_meier_by_hand():
    steps, surv = kaplan_meier([1, 2, 2, 3, 4], [1, 1, 0, 1, 0])
    np.testing.assert_allclose(steps, [1, 2, 3])
    np.testing.assert_allclose(surv, [4 / 5, 4 / 5 * 3 / 4, 4 / 5 * 3 / 4 * 1 / 2])


def _brier_by_loops(time, event, surv, grid, g_steps, g_values):
    def g_at(t, left):
        value = 1.0
        for s, v in zip(g_steps, g_values, strict=True):
            if s < t or (s == t and not left):
                value = v
        return value

    scores = []
    for j, t in enumerate(grid):
        total = 0.0
        for i in range(len(time)):
            if time[i] <= t and event[i]:
                total += surv[i, j] ** 2 / g_at(time[i], left=True)
            elif time[i] > t:
                total += (1 - surv[i, j]) ** 2 / g_at(t, left=False)
        scores.append(total / len(time))
    area = sum(
        (scores[k] + scores[k + 1]) / 2 * (grid[k + 1] - grid[k]) for k in range(len(grid) - 1)
    )
    return area / (grid[-1] - grid[0])


def test_integrated_brier_score_matches_a_loop_and_the_coin_flip_value():
    rng = np.random.default_rng(0)
    time = rng.exponential(size=40)
    event = rng.random(40) < 0.7
    grid = np.linspace(0.2, 1.5, 7)
    surv = np.exp(-np.outer(rng.uniform(0.5, 2, 40), grid))
    steps, g = kaplan_meier(time, ~event)
    expected = _brier_by_loops(time, event, surv, grid, steps, g)
    assert integrated_brier_score(time, event, surv, grid, time, event) == pytest.approx(expected)
    # no censoring, S = 1/2 everywhere: every row scores 1/4 at every time
    half = np.full((40, 7), 0.5)
    assert integrated_brier_score(time, np.ones(40), half, grid, time, np.ones(40)) == 0.25


def test_vote_noise_keeps_pairs_complementary():
    y = np.array([0.9, 0.1, 0.3, 0.7, 0.5, 0.5])
    groups = np.array([4, 4, 7, 7, 9, 9])
    rng = np.random.default_rng(0)
    noisy, flipped = vote_noise(y, 5, groups, rng)
    np.testing.assert_allclose(noisy[::2] + noisy[1::2], 1.0)
    np.testing.assert_allclose(noisy * 5, np.round(noisy * 5))
    again, _ = vote_noise(y, 5, groups, np.random.default_rng(0))
    np.testing.assert_array_equal(noisy, again)
    assert 0 <= flipped <= 3
    with pytest.raises(ValueError, match="takes pairs"):
        vote_noise(y, 5, np.array([1, 1, 1, 2, 2, 2]), rng)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        vote_noise(y * 3, 5, groups, rng)


def test_survival_curves_of_every_survival_loss_fall_and_meet_the_median():
    from lossreg import LossSurvivalRegressor

    _, frame = make_synthetic("synthetic:survival(n_samples=200)")
    X, t, e = frame.filter(like="x").to_numpy(), frame["target"].to_numpy(), frame["event"]
    grid = np.linspace(0.05, 3.0, 30)
    for loss in ("weibull_survival_nll", "loglogistic_survival_nll", "apgw_survival_nll"):
        model = LossSurvivalRegressor(loss=loss, max_iter=3, random_state=0).fit(X, t, event=e)
        curves = model.predict_survival(X[:5], grid)
        assert curves.shape == (5, 30)
        assert (np.diff(curves, axis=1) <= 1e-6).all()
        median = model.predict(X[:5])
        at_median = np.diag(model.predict_survival(X[:5], median))
        np.testing.assert_allclose(at_median, 0.5, atol=1e-4)
    model = LossSurvivalRegressor(loss="logistic_hazard", max_iter=3, random_state=0)
    model.fit(X, t, event=e)
    curves = model.predict_survival(X[:5], np.concatenate([[0.0], model.criterion_.edges_]))
    np.testing.assert_allclose(curves[:, 0], 1.0)  # before the first edge
    assert (np.diff(curves, axis=1) <= 1e-6).all()
    # the risk score is the event probability by the last edge
    np.testing.assert_allclose(1 - curves[:, -1], model.predict_risk(X[:5]), rtol=1e-5)


def test_compare_ranks_pointwise_and_pairwise_losses_and_scores_survival(tmp_path):
    ranking = compare(
        "synthetic:ranking(n_samples=120, query_size=6)",
        task="ranking",
        losses=["bpr", "mse"],
        cv=2,
        estimator_params=FAST,
        torch_threads=1,
    )
    assert (ranking["status"] == "ok").all(), ranking["error"].tolist()
    assert ranking.attrs["primary"] == "ndcg_at_10"
    assert ranking[["ndcg_at_10", "pair_accuracy", "kendall_tau"]].notna().all().all()
    survival = compare(
        "synthetic:survival(n_samples=150)",
        losses=["weibull_survival_nll", "logistic_hazard"],
        cv=2,
        estimator_params=FAST,
        torch_threads=1,
        out=tmp_path,
    )
    assert (survival["status"] == "ok").all(), survival["error"].tolist()
    assert survival.attrs["primary"] == "c_index"
    assert survival["integrated_brier"].between(0, 1).all()
    assert (tmp_path / "report.md").is_file()


def test_ranking_teacher_feeds_margin_mse_and_is_the_pointwise_target():
    results = compare(
        "synthetic:ranking(n_samples=120, query_size=6)",
        task="ranking",
        losses=["mse", "margin_mse"],
        teacher="hist_gradient_boosting",
        cv=2,
        estimator_params=FAST,
        torch_threads=1,
    )
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert results["teacher_ndcg_at_10"].gt(0.5).all()


def test_ranking_and_survival_errors_name_the_fix(tmp_path):
    frame = pd.DataFrame({"x": np.arange(20.0), "y": np.arange(20) % 3, "q": np.arange(20) // 5})
    with pytest.raises(ValueError, match="group="):
        load_data(frame, target="y", task="ranking")
    with pytest.raises(ValueError, match="Unknown teacher 'svm'; teachers: hist_gradient_boosting"):
        compare(frame, target="y", group="q", task="ranking", losses="margin_mse", teacher="svm")
    with pytest.raises(Exception, match="does not support task 'ranking'"):
        compare(frame, target="y", group="q", task="ranking", losses="cross_entropy")
    bad = frame.assign(e=np.arange(20) % 3, y=frame["x"] + 1)
    with pytest.raises(ValueError, match="1 \\(event observed\\) or 0"):
        load_data(bad, target="y", event="e")
    with pytest.raises(ValueError, match="finite numbers > 0"):
        load_data(bad.assign(e=1, y=frame["x"]), target="y", event="e")
    config = tmp_path / "surv.toml"
    config.write_text('[compare]\ndata = "x.csv"\ntarget = "time"\nevent = "died"\n')
    assert load_config(config)["event"] == "died"


def test_parametric_survival_curves_match_scipy():
    import torch
    from scipy import stats

    from lossreg.plugins.survival.parametric import APGWSurvivalNLL, LogLogisticSurvivalNLL

    out = torch.tensor([[0.3, -0.2, 0.4], [-0.5, 0.1, -0.3]], dtype=torch.float64)
    times = torch.tensor([0.2, 1.0, 3.0], dtype=torch.float64)
    lam, phi, gamma = out.exp().unbind(dim=1)
    curves = LogLogisticSurvivalNLL().survival(out, times).numpy()
    # S(t) = (1 + (phi t)^gamma)^(-lambda): Burr XII with c = gamma, d = lambda, scale 1/phi
    for i in range(2):
        burr = stats.burr12(c=gamma[i].item(), d=lam[i].item(), scale=1 / phi[i].item())
        np.testing.assert_allclose(curves[i], burr.sf(times.numpy()), rtol=1e-10)
    # kappa = 1 is the Weibull member: H(t) = lambda (phi t)^gamma
    weibull = APGWSurvivalNLL(kappa=1.0, learn_kappa=False).survival(out, times).numpy()
    expected = np.exp(
        -lam.numpy()[:, None] * np.outer(phi.numpy(), times.numpy()) ** gamma.numpy()[:, None]
    )
    np.testing.assert_allclose(weibull, expected, rtol=1e-10)


def test_survival_with_a_group_column_keeps_the_groups_out_of_the_model():
    _, frame = make_synthetic("synthetic:survival(n_samples=120)")
    frame["site"] = np.arange(120) % 3
    results = compare(
        frame,
        target="target",
        event="event",
        group="site",
        losses="weibull_survival_nll",
        cv=2,
        estimator_params=FAST,
        torch_threads=1,
    )
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert results.attrs["task"] == "survival"
