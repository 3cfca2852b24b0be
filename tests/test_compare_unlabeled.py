"""lossreg compare with unlabeled rows: the unlabeled:RATE scenario and the unlabeled pool."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lossreg.compare import Scenario, compare, corrupt, load_data, plan_fits
from lossreg.compare._synthetic import make_synthetic
from lossreg.compare._unlabeled import UNLABELED, add_unlabeled, learns_from_unlabeled

FAST = {"max_iter": 3, "module__hidden_units": (8,), "batch_size": 64}


def run(data, **kwargs):
    kwargs.setdefault("estimator_params", FAST)
    kwargs.setdefault("torch_threads", 1)
    kwargs.setdefault("cv", 2)
    return compare(data, **kwargs)


def with_pool(n_labeled: int = 40, n_pool: int = 30) -> pd.DataFrame:
    """Two numeric features, integer classes 0 / 1 and ``n_pool`` rows without a target."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_labeled + n_pool, 2))
    y = (X[:, 0] > 0).astype(np.float64)
    y[n_labeled:] = np.nan
    return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "label": y})


# -- the scenario -----------------------------------------------------------------------------
def test_hiding_labels_keeps_a_share_of_every_class_and_is_deterministic():
    y = np.array(["a"] * 50 + ["b"] * 10 + ["c"] * 2)
    _, hidden, info = corrupt(None, y, Scenario("unlabeled", 0.9), random_state=3)
    _, again, _ = corrupt(None, y, Scenario("unlabeled", 0.9), random_state=3)
    assert hidden.dtype == object  # class names, with the int -1 among them
    np.testing.assert_array_equal(hidden.astype(str), again.astype(str))
    marked = np.array([not isinstance(v, str) and v == UNLABELED for v in hidden])
    # 45 of 50, 9 of 10, and 1 of 2 (round(1.8) = 2 would leave class c without a label)
    assert [int(marked[y == k].sum()) for k in "abc"] == [45, 9, 1]
    assert info["n_corrupted"] == 55
    # labelled rows keep their own label
    np.testing.assert_array_equal(hidden[~marked].astype(str), y[~marked])


def test_unlabeled_scenario_checks_its_rate_and_task():
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        Scenario("unlabeled", 1.0).check("binary")
    with pytest.raises(ValueError, match="does not apply to regression"):
        Scenario("unlabeled", 0.5).check("regression")


def test_minus_one_as_a_real_class_is_refused():
    with pytest.raises(ValueError, match="class label -1 is also the marker"):
        corrupt(None, np.array([-1, 1, -1, 1]), Scenario("unlabeled", 0.5), random_state=0)


def test_semi_supervised_loss_gets_the_hidden_rows_the_others_do_not():
    from lossreg import LossClassifier

    X = np.arange(12.0).reshape(6, 2)
    y = np.array([0, UNLABELED, 1, UNLABELED, 0, 1])
    for loss, n_rows in (("marginal_entropy", 6), ("cross_entropy", 4)):
        info: dict = {}
        X_fit, y_fit, extras = add_unlabeled(
            LossClassifier(loss=loss), X, y, {"g": np.arange(6)}, info, marked=True
        )
        assert len(X_fit) == len(y_fit) == len(extras["g"]) == n_rows
        assert info == {"n_labeled": 4, "n_unlabeled": n_rows - 4, "n_train": n_rows}
    assert learns_from_unlabeled(LossClassifier(loss="self_labeled_margin"))
    assert not learns_from_unlabeled(LossClassifier(loss="focal"))


def test_compare_records_what_each_loss_was_fitted_on():
    results = run(
        "iris", losses="cross_entropy,marginal_entropy", scenarios=["unlabeled:0.8"], repeats=1
    )
    assert (results["status"] == "ok").all(), results["error"].tolist()
    ce = results[results["loss"] == "cross_entropy"]
    me = results[results["loss"] == "marginal_entropy"]
    # 75 training rows per fold, 25 per class: 5 labels kept per class
    assert (ce["n_labeled"] == 15).all() and (ce["n_unlabeled"] == 0).all()
    assert (me["n_labeled"] == 15).all() and (me["n_unlabeled"] == 60).all()
    assert (results["n_train"] == results["n_labeled"] + results["n_unlabeled"]).all()


# -- the pool ------------------------------------------------------------------------------
def test_rows_without_a_target_join_every_training_fold_and_no_test_fold():
    data = with_pool()
    dataset = load_data(data, target="label")
    assert dataset.task == "binary"
    plan = plan_fits(dataset, cv=2, repeats=2, losses="cross_entropy")
    pool = set(range(40, 70))
    for fit in plan["fits"]:
        assert pool <= set(fit["train"]) and not pool & set(fit["test"])
        assert len(fit["test"]) == 20
    results = run(data, target="label", losses="cross_entropy,self_labeled_margin")
    assert (results["status"] == "ok").all(), results["error"].tolist()
    slm = results[results["loss"] == "self_labeled_margin"]
    assert (slm["n_unlabeled"] == 30).all() and (slm["n_labeled"] == 20).all()
    assert (results.loc[results["loss"] == "cross_entropy", "n_unlabeled"] == 0).all()


def test_pool_and_hidden_labels_add_up():
    results = run(
        with_pool(),
        target="label",
        losses="self_labeled_margin",
        repeats=1,
        scenarios=["unlabeled:0.5"],
        baseline="self_labeled_margin",
    )
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert (results["n_labeled"] == 10).all() and (results["n_unlabeled"] == 40).all()


def test_missing_targets_are_refused_outside_class_tasks():
    data = with_pool()
    data["label"] = data["a"] * 3.7  # continuous
    data.loc[50:, "label"] = np.nan
    with pytest.raises(ValueError, match="unlabeled pool for binary and multiclass"):
        load_data(data, target="label")
    data["label"] = np.nan
    with pytest.raises(ValueError, match="every row is missing its target"):
        load_data(data, target="label")


def test_shifted_gaussians_pool_is_shifted_and_unlabeled():
    _, frame = make_synthetic(
        "synthetic:shifted_gaussians(n_samples=4400, n_labeled=400, n_features=20)"
    )
    assert frame["target"].isna().sum() == 4000
    X = frame.drop(columns="target").to_numpy()
    labelled = frame["target"].notna().to_numpy()
    y = frame["target"].to_numpy()
    signs = 2 * y[labelled] - 1
    mean = (signs[:, None] * X[labelled]).mean(axis=0)
    assert np.linalg.norm(mean) == pytest.approx(1.5, abs=0.2)
    # the pool's class means are ±(mu + 0.5 v): the top principal direction of the pool
    # (its between-class axis) leans away from mu by atan(0.5 / 1.5) = 18 degrees
    pool = X[~labelled]
    _, _, vt = np.linalg.svd(pool - pool.mean(axis=0), full_matrices=False)
    angle = np.degrees(np.arccos(abs(vt[0] @ mean) / np.linalg.norm(mean)))
    assert 10 < angle < 30


def test_class_names_with_minus_one_reach_a_semi_supervised_loss():
    from lossreg import LossClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 2))
    y = np.where(X[:, 0] > 0, "yes", "no").astype(object)
    y[::3] = UNLABELED
    model = LossClassifier(loss="marginal_entropy", max_iter=2, random_state=0).fit(X, y)
    assert model.classes_.tolist() == ["no", "yes"]
    assert set(model.predict(X)) <= {"no", "yes"}


# -- the target domain -------------------------------------------------------------------------
SHIFT = "synthetic:covariate_shift(n_samples=200, n_features=4)"


def test_target_domain_rows_are_unlabeled_in_training_and_scored_in_testing():
    dataset = load_data(SHIFT, target_domain="domain=target")
    assert "domain" not in dataset.X.columns
    target_rows = dataset.target_rows
    assert 0.35 < target_rows.mean() < 0.65
    plan = plan_fits(dataset, cv=2, losses="cross_entropy")
    for fit in plan["fits"]:
        assert set(fit["hidden"]) == {r for r in fit["train"] if target_rows[r]}
        assert target_rows[fit["test"]].all() and not target_rows[fit["source_test"]].any()
        assert not set(fit["train"]) & set(fit["test"] + fit["source_test"])
    results = run(SHIFT, target_domain="domain=target", losses="cross_entropy,marginal_entropy")
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert results["source_accuracy"].between(0, 1).all()
    for fit, (_, row) in zip(plan["fits"], results[results["loss"] == "cross_entropy"].iterrows()):
        assert row["n_labeled"] == len(fit["train"]) - len(fit["hidden"])
        assert row["n_unlabeled"] == 0
    me = results[results["loss"] == "marginal_entropy"]
    assert (me["n_unlabeled"] == [len(f["hidden"]) for f in plan["fits"]]).all()
    assert "hidden" not in results.columns and "source_test" not in results.columns
    # the marked rows are part of the data's identity
    assert dataset.fingerprint != load_data(SHIFT, target_domain="domain=source").fingerprint


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("domain", "takes COLUMN=VALUE"),
        ("site=B", "Domain column 'site' is not in"),
        ("domain=elsewhere", "must mark some rows but not all"),
    ],
)
def test_bad_target_domain_names_the_fix(text, message):
    with pytest.raises(ValueError, match=message):
        load_data(SHIFT, target_domain=text)


def test_target_domain_is_for_class_targets():
    data = with_pool().dropna()
    data["label"] = data["a"] * 3.7
    data["site"] = np.where(data["b"] > 0, "B", "A")
    with pytest.raises(ValueError, match="binary and multiclass targets"):
        load_data(data, target="label", target_domain="site=B")


def test_target_domain_in_a_config_file(tmp_path):
    from lossreg.compare._config import load_config

    path = tmp_path / "c.toml"
    path.write_text(f'[compare]\ndata = "{SHIFT}"\ntarget_domain = "domain=target"\n')
    assert load_config(path)["target_domain"] == "domain=target"
