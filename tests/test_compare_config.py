"""lossreg compare: generated data, numeric class names, the --config file, the added metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from lossreg.cli import cli
from lossreg.compare import compare, load_data
from lossreg.compare._config import load_config
from lossreg.compare._metrics import classification_metrics, regression_metrics
from lossreg.compare._synthetic import GENERATORS, describe_generators, make_synthetic

FAST = {"max_iter": 3, "module__hidden_units": (8,), "batch_size": 64}


@pytest.mark.parametrize("name", sorted(GENERATORS))
def test_every_generator_gives_a_reproducible_frame_with_a_target(name):
    label, first = make_synthetic(f"synthetic:{name}(n_samples=50)")
    _, again = make_synthetic(f"synthetic:{name}(n_samples=50)")
    _, other = make_synthetic(f"synthetic:{name}(n_samples=50, random_state=1)")
    assert label == f"synthetic:{name}(n_samples=50)"
    assert first.shape[0] == 50
    assert "target" in first.columns or "target_0" in first.columns  # multilabel: target_j
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)


def test_generated_data_has_the_stated_properties():
    _, skewed = make_synthetic("synthetic:skewed(n_samples=4000)")
    y = skewed["target"]
    assert (y > 0).all() and y.mean() > y.median()  # positive, right-skewed
    _, hetero = make_synthetic("synthetic:heteroscedastic(n_samples=4000)")
    residual = hetero["target"] - (
        np.sin(hetero["x0"]) + 0.5 * hetero["x1"] + 0.25 * hetero["x2"] * hetero["x3"]
    )
    wide = hetero["x0"].abs() > 2
    assert residual[wide].std() > 3 * residual[hetero["x0"].abs() < 0.5].std()
    _, parity = make_synthetic("synthetic:parity(n_samples=200, n_bits=3, n_noise=2)")
    bits = parity[["x0", "x1", "x2"]].to_numpy()
    assert (parity["target"] == (bits.prod(axis=1) > 0)).all()
    data = load_data("synthetic:classification(n_samples=300, n_classes=4)")
    assert data.task == "multiclass" and data.y.nunique() == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("synthetic:nope", "Unknown generator 'nope'"),
        ("synthetic:skewed(n_rows=5)", "has no parameter 'n_rows'"),
        ("synthetic:skewed(5)", "Cannot read data"),
    ],
)
def test_bad_generator_text_names_the_fix(text, message):
    with pytest.raises(ValueError, match=message):
        load_data(text)
    assert "synthetic:multimodal" in describe_generators()


def test_digits_numeric_class_names_are_a_class_target():
    # digits' class names are numbers; stored as Python ints in an object column they read as
    # "unknown" to scikit-learn's target checks, and every fit failed
    data = load_data("digits")
    assert data.task == "multiclass" and pd.api.types.is_integer_dtype(data.y)
    small = data.X.iloc[:150].assign(target=data.y.iloc[:150])
    results = compare(small, target="target", losses="cross_entropy", cv=2, estimator_params=FAST)
    assert (results["status"] == "ok").all(), results.get("error")


def test_added_classification_metrics_by_hand():
    y = np.array([0, 0, 1, 1, 2, 3])
    proba = np.array(
        [
            [0.7, 0.1, 0.1, 0.1],
            [0.2, 0.5, 0.2, 0.1],  # wrong, top-3 right
            [0.1, 0.8, 0.05, 0.05],
            [0.1, 0.6, 0.2, 0.1],
            [0.4, 0.3, 0.2, 0.1],  # wrong, top-3 right
            [0.3, 0.3, 0.3, 0.1],  # wrong, top-3 wrong
        ]
    )
    pred = proba.argmax(axis=1)
    scores, _ = classification_metrics(y, pred, proba, np.arange(4), minority=3)
    assert scores["worst_class_recall"] == 0.0  # classes 2 and 3 never predicted
    assert scores["top3_accuracy"] == pytest.approx(5 / 6)
    # wrong rows have top probabilities 0.5, 0.4, 0.3; right ones 0.7, 0.8, 0.6: perfectly ranked
    assert scores["error_auroc"] == pytest.approx(1.0)


def test_added_regression_metrics_by_hand():
    y = np.array([1.0, 2.0, 4.0, 8.0, 10.0, 20.0, 40.0, 80.0, 100.0, 200.0])
    pred = y * 1.5
    scores = regression_metrics(y, pred)
    assert scores["mape"] == pytest.approx(0.5)
    # the top 10% of ten targets is the largest one
    assert scores["tail_mae"] == pytest.approx(100.0)
    assert np.isnan(regression_metrics(np.array([0.0, 1.0]), np.array([0.0, 1.0]))["mape"])


CONFIG = """
[compare]
data = "iris"
losses = ["cross_entropy", "focal(gamma=1.0)"]
scenarios = "class_noise:0.1"
cv = 2
seed = 3

[compare.estimator]
max_iter = 3
module__hidden_units = [8]

[[check]]
loss = "focal(gamma=1.0)"
"""


def test_config_file_sets_the_comparison_and_options_override_it(tmp_path, monkeypatch):
    path = tmp_path / "exp.toml"
    path.write_text(CONFIG)
    table = load_config(path)
    assert table["scenarios"] == ["class_noise:0.1"] and table["estimator"]["max_iter"] == 3
    captured = {}
    import lossreg.compare

    real = lossreg.compare.compare

    def fake(data, **kwargs):
        captured.update(kwargs, data=data)
        return real(data, **{**kwargs, "torch_threads": 1})

    monkeypatch.setattr(lossreg.compare, "compare", fake)
    out = ["--no-progress", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, ["compare", "--config", str(path), *out])
    assert result.exit_code == 0, result.output
    assert captured["data"] == "iris" and captured["cv"] == 2 and captured["random_state"] == 3
    assert captured["losses"] == ["cross_entropy", "focal(gamma=1.0)"]
    assert captured["scenarios"] == ("class_noise:0.1",)
    assert captured["estimator_params"] == {"max_iter": 3, "module__hidden_units": [8]}
    result = CliRunner().invoke(
        cli, ["compare", "--config", str(path), "--cv", "3", "--max-iter", "2", *out]
    )
    assert result.exit_code == 0, result.output
    assert captured["cv"] == 3 and captured["estimator_params"]["max_iter"] == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[other]\nx = 1\n", "has no \\[compare\\] table"),
        ("[compare]\nfolds = 3\n", "unknown key\\(s\\) 'folds'"),
        ("[compare]\ncv = '3'\n", "cv must be of type int"),
        ("[compare\n", "Cannot read"),
    ],
)
def test_bad_config_files_exit_2_naming_the_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_config(path)
    result = CliRunner().invoke(cli, ["compare", "--config", str(path)])
    assert result.exit_code == 2 and "Error:" in result.output
    missing = CliRunner().invoke(cli, ["compare", "--config", str(tmp_path / "none.toml")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_group_column_reaches_group_losses_and_the_worst_group_metric(monkeypatch):
    from lossreg.compare import _scenarios

    data = load_data("synthetic:spurious(n_samples=300)")
    # the generator's group ids are taken out of the features by default: they hold the label
    assert "group" not in data.X.columns and data.groups is not None
    assert sorted(data.groups.unique()) == [0, 1, 2, 3]
    seen = {}
    real = _scenarios.StressedEstimator.fit

    def spy(self, X, y, **fit_params):
        seen.setdefault(self.estimator.steps[-1][1].loss, fit_params)
        return real(self, X, y, **fit_params)

    monkeypatch.setattr(_scenarios.StressedEstimator, "fit", spy)
    results = compare(
        "synthetic:spurious(n_samples=300)",
        losses="cross_entropy,group_dro",
        scenarios=["clean", "imbalance:3"],
        cv=2,
        estimator_params=FAST,
        torch_threads=1,
    )
    assert (results["status"] == "ok").all(), results["error"].dropna().tolist()
    assert "model__group" in seen["group_dro"] and seen["cross_entropy"] == {}
    assert results["worst_group_accuracy"].notna().all()
    assert (results["worst_group_accuracy"] <= results["accuracy"] + 1e-12).all()


def test_worst_group_accuracy_by_hand_and_group_errors(tmp_path):
    y = np.array([0, 0, 1, 1, 1, 0])
    pred = np.array([0, 1, 1, 1, 0, 0])
    groups = np.array(["a", "a", "b", "b", "c", "c"])
    scores, _ = classification_metrics(y, pred, None, np.arange(2), minority=1, groups=groups)
    assert scores["worst_group_accuracy"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="Group column 'nope'"):
        load_data("iris", group="nope")
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "g": [0, 1, None, 1], "target": [0, 1, 0, 1]})
    with pytest.raises(ValueError, match="'g' has missing values"):
        load_data(frame, target="target", group="g")


def test_imbalance_keeps_per_row_fit_params_aligned():
    from lossreg.compare._scenarios import StressedEstimator

    class Spy:
        def get_params(self, deep=True):
            return {}

        def fit(self, X, y, group=None):
            self.pairs_ = (np.asarray(X["x"]), y, group)
            return self

    X = pd.DataFrame({"x": np.arange(90)})
    y = np.repeat([0, 1, 2], 30)
    model = StressedEstimator(Spy(), "imbalance:10", random_state=0).fit(X, y, group=np.arange(90))
    rows, labels, group = model.estimator_.pairs_
    np.testing.assert_array_equal(group, rows)  # the group of each kept row is its own
    np.testing.assert_array_equal(y[rows], labels)
    assert "kept_rows" not in model.corruption_


def test_multilabel_target_from_columns_with_missing_label_scenario(tmp_path):
    from lossreg.compare._metrics import multilabel_metrics

    data = load_data("synthetic:multilabel(n_samples=400, n_labels=4, max_rate=0.4, ratio=4.0)")
    assert data.task == "multilabel" and data.y.shape == (400, 4)
    assert list(data.y.columns) == ["target_0", "target_1", "target_2", "target_3"]
    rates = data.y.mean().to_numpy()
    assert rates[0] == pytest.approx(0.4, abs=0.01) and rates[-1] == pytest.approx(0.1, abs=0.01)
    results = compare(
        "synthetic:multilabel(n_samples=400, n_labels=4, max_rate=0.4, ratio=4.0)",
        losses="bce,asymmetric",
        scenarios=["clean", "missing_labels:0.5"],
        cv=2,
        estimator_params=FAST,
        torch_threads=1,
    )
    assert (results["status"] == "ok").all(), results["error"].dropna().tolist()
    assert results.attrs["primary"] == "map" and results.attrs["baseline"] == "bce"
    assert results["tail_map"].notna().all() and (results["map"] <= 1).all()
    hidden = results.loc[results["scenario"] == "missing_labels:0.5", "n_corrupted"]
    assert (hidden > 0).all()
    # a frame with several 0/1 target columns is multilabel too; other numbers make a
    # multioutput target, unless the task says multilabel
    frame = data.X.assign(a=data.y["target_0"], b=data.y["target_1"])
    assert load_data(frame, target="a,b").task == "multilabel"
    assert load_data(frame.assign(b=frame["b"] * 2), target=["a", "b"]).task == "multioutput"
    with pytest.raises(ValueError, match="must be 0 or 1"):
        load_data(frame.assign(b=frame["b"] * 2), target=["a", "b"], task="multilabel")
    with pytest.raises(ValueError, match="does not apply"):
        compare("synthetic:multilabel(n_samples=60)", losses="bce", scenarios=["imbalance:5"])
    # metrics by hand: AP per label, the tail is the listed column
    y = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
    proba = np.array([[0.9, 0.2], [0.2, 0.3], [0.6, 0.4], [0.1, 0.8]])
    scores = multilabel_metrics(y, (proba > 0.5).astype(int), proba, tail=[1])
    assert scores["tail_map"] == pytest.approx(1 / 3)  # the positive of label 1 ranks third
    assert scores["map"] == pytest.approx((1.0 + 1 / 3) / 2)
    assert scores["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # TP 2, FP 1, FN 1


def test_teacher_logits_are_out_of_fold_on_the_stressed_rows(monkeypatch):
    import lossreg
    from lossreg.compare import plan_fits

    calls = []
    real = lossreg.teacher_logits

    def spy(estimator, X, y, **kwargs):
        calls.append((len(X), np.asarray(y).copy(), kwargs.get("cv")))
        return real(estimator, X, y, **kwargs)

    monkeypatch.setattr(lossreg, "teacher_logits", spy)
    results = compare(
        "iris",
        losses="cross_entropy,knowledge_distillation",
        teacher="logistic_regression",
        scenarios=["symmetric_noise:0.3"],
        cv=2,
        estimator_params=FAST,
        torch_threads=1,
    )
    assert (results["status"] == "ok").all(), results["error"].dropna().tolist()
    # only the distillation fits get a teacher, once per fold, on that fold's noisy labels
    assert len(calls) == 2 and all(cv == 3 for _, _, cv in calls)
    kd = results[results["loss"] == "knowledge_distillation"]
    assert kd["teacher_accuracy"].between(0.5, 1.0).all()
    assert results.loc[results["loss"] == "cross_entropy", "teacher_accuracy"].isna().all()
    flipped = kd["n_corrupted"].sum()
    assert flipped > 0 and sum(len(y) for _, y, _ in calls) == kd["n_train"].sum()
    # a distillation loss without a teacher, or a classifier teacher for regression, is refused
    with pytest.raises(ValueError, match="name the teacher with teacher="):
        plan_fits(load_data("iris"), losses="knowledge_distillation", cv=2)
    with pytest.raises(ValueError, match="Unknown teacher 'gbm'"):
        plan_fits(load_data("iris"), losses="cross_entropy", cv=2, teacher="gbm")
    with pytest.raises(ValueError, match="Unknown teacher 'logistic_regression'; teachers: hist"):
        plan_fits(load_data("diabetes"), losses="mse", cv=2, teacher="logistic_regression")


def test_embedding_task_scores_knn_and_linear_probe(monkeypatch):
    from lossreg.compare import _metrics

    results = compare(
        "iris",
        task="embedding",
        losses="triplet,supcon",
        scenarios=["clean", "symmetric_noise:0.2"],
        cv=2,
        estimator_params={**FAST, "n_components": 4},
        torch_threads=1,
    )
    assert (results["status"] == "ok").all(), results["error"].dropna().tolist()
    assert results.attrs["primary"] == "knn_accuracy" and results.attrs["baseline"] == "triplet"
    assert results[["knn_accuracy", "linear_probe_accuracy"]].notna().all().all()
    # the probes by hand: separable embeddings are classified perfectly
    train = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]] * 3)
    labels = np.array([0, 0, 1, 1] * 3)
    scores = _metrics.embedding_metrics(train, labels, np.array([[0.0, 0.1], [5.0, 4.9]]), [0, 1])
    assert scores == {"knn_accuracy": 1.0, "linear_probe_accuracy": 1.0}
    with pytest.raises(ValueError, match="continuous"):
        load_data("diabetes", task="embedding")


def test_top3_from_scores_when_a_loss_has_no_probabilities():
    y = np.array([0, 1, 2, 3])
    scores = np.array([[3, 2, 1, 0], [0, 1, 3, 2], [0, 1, 2, 3], [3, 2, 1, 0.0]])
    out, bins = classification_metrics(y, scores.argmax(1), None, np.arange(4), 0, scores=scores)
    assert bins is None and "log_loss" not in out
    assert out["top3_accuracy"] == pytest.approx(0.75)  # the last row's class ranks fourth


def test_binary_ranking_metrics_from_scores_when_a_loss_has_no_probabilities():
    y = np.array(["no", "yes", "no", "yes", "yes"])
    margin = np.array([-2.0, 1.0, 0.5, -0.5, 3.0])  # pairs (yes, no) ordered right: 5 of 6
    labels = np.where(margin > 0, "yes", "no")
    out, bins = classification_metrics(
        y, labels, None, np.array(["no", "yes"]), "yes", scores=margin
    )
    assert bins is None and "log_loss" not in out
    assert out["roc_auc"] == pytest.approx(5 / 6)  # only (-0.5, 0.5) is in the wrong order
    # one column per class ranks by their difference, the same order
    two = np.stack([-margin / 2, margin / 2], axis=1)
    columns, _ = classification_metrics(y, labels, None, np.array(["no", "yes"]), "yes", scores=two)
    assert columns["roc_auc"] == out["roc_auc"]
    assert columns["average_precision"] == out["average_precision"]


def test_spearman_by_hand():
    y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert regression_metrics(y, y**3)["spearman"] == pytest.approx(1.0)  # monotone: perfect
    assert regression_metrics(y, -y)["spearman"] == pytest.approx(-1.0)
    assert "spearman" not in regression_metrics(y, np.zeros(5))
