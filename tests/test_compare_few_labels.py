"""compare's few-label embedding probes (``probe_labels``) and the ``raw_features`` reference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lossreg.compare import compare, load_data, plan_fits
from lossreg.compare._few_labels import check_probe_labels, few_label_metrics, labelled_share

FAST = {"max_iter": 2, "n_components": 4, "module__hidden_units": (8,)}


def test_the_labelled_share_is_stratified_seeded_and_keeps_every_class():
    y = np.repeat([0, 1, 2], [100, 40, 3])
    rows = labelled_share(y, 0.1, seed=7)
    counts = np.bincount(y[rows], minlength=3)
    assert counts.tolist() == [10, 4, 1]  # 0.3 of a row still leaves one row of class 2
    assert np.array_equal(rows, np.sort(rows)) and len(set(rows)) == len(rows)
    assert np.array_equal(rows, labelled_share(y, 0.1, seed=7))
    assert not np.array_equal(rows, labelled_share(y, 0.1, seed=8))


def test_the_few_label_probe_sees_only_the_labelled_share():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 200)
    emb = rng.normal(size=(400, 2)) + 4.0 * y[:, None]
    assert few_label_metrics(emb, y, emb, y, None, 0) == {}
    out = few_label_metrics(emb, y, emb, y, 0.05, 0)
    assert out["n_probe_labels"] == 20 and out["few_label_probe_accuracy"] > 0.97
    # training rows outside the share cannot matter: scrambling them changes nothing
    unseen = np.setdiff1d(np.arange(400), labelled_share(y, 0.05, 0))
    scrambled = emb.copy()
    scrambled[unseen] = rng.normal(scale=50.0, size=(len(unseen), 2))
    assert few_label_metrics(scrambled, y, emb, y, 0.05, 0) == out


@pytest.mark.parametrize(
    ("value", "task", "message"),
    [
        (0.1, "multiclass", "task='embedding'.*this task is 'multiclass'"),
        (0.0, "embedding", r"fraction in \(0, 1\).*Got 0.0"),
        (1.5, "embedding", r"fraction in \(0, 1\).*Got 1.5"),
        (True, "embedding", "Got True"),
        ("0.1", "embedding", "Got '0.1'"),
    ],
)
def test_unusable_probe_labels_are_refused_with_the_value(value, task, message):
    with pytest.raises(ValueError, match=message):
        check_probe_labels(value, task)
    assert check_probe_labels(None, "multiclass") is None


def test_compare_scores_losses_and_raw_features_with_the_same_few_labels():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    results = compare(
        "iris",
        task="embedding",
        losses=["triplet"],
        models=["raw_features"],
        probe_labels=0.2,
        cv=3,
        estimator_params=FAST,
        report=False,
    )
    assert (results["status"] == "ok").all(), results["error"].tolist()
    assert results["n_probe_labels"].tolist() == [21] * 6  # 7 of each class's 33 or 34 rows
    assert results["few_label_probe_accuracy"].between(0, 1).all()
    # raw_features: the probe is a logistic regression on the scaled raw features
    data = load_data("iris", task="embedding")
    plan = plan_fits(data, losses=["triplet"], cv=3, models=["raw_features"], probe_labels=0.2)
    fit = next(f for f in plan["fits"] if f["loss"] == "model:raw_features" and f["fold"] == 1)
    train, test = np.asarray(fit["train"]), np.asarray(fit["test"])
    X, y = data.X.to_numpy(), data.y.to_numpy()
    scale = StandardScaler().fit(X[train])
    rows = train[labelled_share(y[train], 0.2, fit["model_seed"])]
    probe = LogisticRegression(max_iter=2000).fit(scale.transform(X[rows]), y[rows])
    expected = np.mean(probe.predict(scale.transform(X[test])) == y[test])
    raw = results[(results["loss_label"] == "model:raw_features") & (results["fold"] == 1)]
    assert raw["few_label_probe_accuracy"].item() == pytest.approx(expected)
    full = LogisticRegression(max_iter=2000).fit(scale.transform(X[train]), y[train])
    expected_full = np.mean(full.predict(scale.transform(X[test])) == y[test])
    assert raw["linear_probe_accuracy"].item() == pytest.approx(expected_full)


def test_probe_labels_enter_the_fit_keys_and_need_an_embedding_task():
    data = load_data("iris", task="embedding")
    plain = plan_fits(data, losses=["triplet"], cv=2)
    probed = plan_fits(data, losses=["triplet"], cv=2, probe_labels=0.1)
    assert {f["key"] for f in plain["fits"]}.isdisjoint(f["key"] for f in probed["fits"])
    with pytest.raises(ValueError, match="this task is 'multiclass'"):
        plan_fits(load_data("iris"), losses=["cross_entropy"], cv=2, probe_labels=0.1)
    with pytest.raises(
        ValueError,
        match="'raw_features' of a multiclass comparison only clusters the novel classes",
    ):
        plan_fits(load_data("iris"), losses=["cross_entropy"], cv=2, models=["raw_features"])


def test_the_cli_and_config_files_take_probe_labels(tmp_path):
    from click.testing import CliRunner

    from lossreg.cli import cli

    config = tmp_path / "c.toml"
    config.write_text(
        '[compare]\ndata = "iris"\ntask = "embedding"\nlosses = ["triplet"]\n'
        'models = ["raw_features"]\nprobe_labels = 0.5\n'
    )
    out = tmp_path / "out"
    base = ["compare", "--config", str(config), "--cv", "2", "--max-iter", "1", "--no-progress"]
    result = CliRunner().invoke(cli, [*base, "--probe-labels", "0.1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "results.jsonl").open()]
    assert {r["loss_label"] for r in records} == {"triplet", "model:raw_features"}
    # the option overrides the file: 0.1 of each class's 25 training rows rounds to 2
    assert {r["n_probe_labels"] for r in records} == {3 * 2}
