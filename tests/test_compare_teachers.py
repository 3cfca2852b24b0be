"""compare's teachers: a neural teacher with features, regression teachers, two teachers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

from lossreg.compare import compare, load_data, plan_fits
from lossreg.compare._fit import TargetScaled
from lossreg.compare._teachers import FoldTeachers, models_taken, parse_teachers

FAST = {"max_iter": 3, "module__hidden_units": (8,), "batch_size": 64}
TINY_MLP = "mlp(hidden_units=(16, 8), max_iter=3)"


def _classes(n: int = 90) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=list("abcd"))
    y = (X["a"] + 0.5 * X["b"] > 0).astype(int).to_numpy() + (X["c"] > 1).to_numpy()
    return X, y


def test_how_many_models_a_loss_takes_comes_from_its_spec():
    assert models_taken("kd_assistive_regression", {}, "regression") == 2
    assert models_taken("kd_data_partition", {}, "multiclass") == 2
    assert models_taken("knowledge_distillation", {}, "multiclass") == 1
    assert models_taken("norm_direction", {}, "multiclass") == 1


def test_mlp_teacher_gives_out_of_fold_logits_and_features_to_a_feature_loss():
    X, y = _classes()
    teachers = FoldTeachers(TINY_MLP, "multiclass", 0, "norm_direction", {})
    params = teachers.fit_params(X, y)
    logits, features = params["model__teacher_logits"], params["model__teacher_features"]
    assert logits.shape == (len(y), 3) and features.shape == (len(y), 8)
    assert np.isfinite(logits).all() and (features >= 0).all()  # ReLU features
    # out of fold: the logits are not those of the teacher refitted on every row
    refit = teachers.fitted_[0]
    in_sample = np.log(np.clip(refit.predict_proba(X), 1e-7, 1))
    assert not np.allclose(logits, in_sample, atol=1e-3)
    scores = teachers.scores(X, y)
    assert set(scores) == {"teacher_accuracy"} and 0 <= scores["teacher_accuracy"] <= 1
    # a loss without teacher_features gets the logits only
    plain = FoldTeachers(TINY_MLP, "multiclass", 0, "knowledge_distillation", {})
    assert set(plain.fit_params(X, y)) == {"model__teacher_logits"}


def test_two_regression_teachers_stack_their_predictions_in_order():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=list("abc"))
    y = 100 + 10 * X["a"].to_numpy() + rng.normal(size=60)
    teachers = FoldTeachers(["ridge", TINY_MLP], "regression", 0, "kd_assistive_regression", {})
    stacked = teachers.fit_params(X, y)["model__teacher_logits"]
    assert stacked.shape == (60, 2)
    # the first block is ridge's out-of-fold prediction, in the target's units (~ y)
    assert np.corrcoef(stacked[:, 0], y)[0, 1] > 0.95 and abs(stacked[:, 0].mean() - 100) < 5
    scores = teachers.scores(X, y)
    assert set(scores) == {"teacher_1_mae", "teacher_1_rmse", "teacher_2_mae", "teacher_2_rmse"}
    assert scores["teacher_1_mae"] < 2.0  # ridge on a linear target


class _Recorder(RegressorMixin, BaseEstimator):
    def fit(self, X, y, teacher_logits=None):
        self.y_, self.teacher_ = np.asarray(y), np.asarray(teacher_logits)
        return self

    def predict(self, X):
        return np.zeros(len(X))


def test_target_scaling_maps_the_teachers_predictions_like_the_target():
    y = np.array([10.0, 20.0, 30.0, 40.0])
    teachers = np.column_stack([y, y + 10.0])  # two teachers: exact, and 10 too high
    model = TargetScaled(_Recorder()).fit(np.zeros((4, 1)), y, teacher_logits=teachers)
    inner = model.regressor_
    assert np.allclose(inner.teacher_[:, 0], inner.y_)
    assert np.allclose(inner.teacher_[:, 1] - inner.teacher_[:, 0], 10.0 / y.std())


def test_regression_comparison_distils_two_teachers_and_records_their_scores():
    results = compare(
        "synthetic:regression(n_samples=160, n_features=4)",
        losses="mse,kd_assistive_regression",
        teacher=f"ridge,{TINY_MLP}",
        cv=2,
        estimator_params=FAST,
        torch_threads=1,
    )
    assert (results["status"] == "ok").all(), results["error"].dropna().tolist()
    kd = results[results["loss"] == "kd_assistive_regression"]
    assert kd["teacher_1_mae"].notna().all() and kd["teacher_2_mae"].notna().all()
    assert results.loc[results["loss"] == "mse", "teacher_1_mae"].isna().all()


@pytest.mark.parametrize(
    ("data", "losses", "teacher", "message"),
    [
        ("diabetes", "kd_assistive_regression", "ridge", "takes 2 models' outputs"),
        ("iris", "norm_direction", "random_forest", "needs the teacher's penultimate features"),
        ("diabetes", "mse", "logistic_regression", "teachers: hist_gradient_boosting, random"),
        ("iris", "knowledge_distillation", "random_forest(n_estimators=5)", "takes no param"),
        ("iris", "knowledge_distillation", "mlp(width=3)", "Unknown parameter.s. 'width'"),
    ],
)
def test_teachers_that_cannot_serve_the_losses_are_refused(data, losses, teacher, message):
    with pytest.raises(ValueError, match=message):
        plan_fits(load_data(data), losses=losses, cv=2, teacher=teacher)


def test_a_teacher_for_a_task_without_teachers_is_refused():
    frame = load_data("synthetic:ordinal(n_samples=100)")
    with pytest.raises(ValueError, match="this task is 'ordinal'"):
        plan_fits(frame, losses="cross_entropy", cv=2, teacher="random_forest")


def test_teacher_lists_parse_with_the_mlp_settings():
    choices = parse_teachers("hist_gradient_boosting, mlp(hidden_units=(32, 8), max_iter=5)")
    assert [c.name for c in choices] == ["hist_gradient_boosting", "mlp"]
    assert choices[1].params == {"hidden_units": (32, 8), "max_iter": 5}
    assert parse_teachers(["ridge"])[0].name == "ridge" and parse_teachers(None) == []


def test_pretrain_continues_the_same_network_for_every_loss():
    results = compare(
        "synthetic:classification(n_samples=200, n_features=6, n_informative=4, n_classes=3)",
        losses="cross_entropy,kd_data_partition",
        pretrain="cross_entropy",
        teacher="logistic_regression,pretrained",
        cv=2,
        # a vanishing learning rate: the continued network is the pretrained one
        estimator_params={**FAST, "lr": 1e-12},
        torch_threads=1,
    )
    assert (results["status"] == "ok").all(), results["error"].dropna().tolist()
    assert np.allclose(results["accuracy_change"], 0.0)
    assert np.allclose(results["accuracy"], results["pretrained_accuracy"])
    # every loss of a fold starts from the same pretrained network
    assert results.groupby("fold")["pretrained_accuracy"].nunique().eq(1).all()


def test_the_pretrained_network_takes_its_place_among_the_teachers():
    from lossreg.compare._pretrain import Pretrained
    from lossreg.estimators import LossClassifier

    X, y = _classes()
    teacher = np.full((len(y), 3), 7.0)
    seen = {}

    class Spy(LossClassifier):
        def fit(self, X, y, teacher_logits=None):
            seen["teacher_logits"] = np.asarray(teacher_logits)
            return super().fit(X, y, teacher_logits=teacher_logits)

    base = LossClassifier(random_state=0, max_iter=2)
    model = Pretrained(base, Spy("kd_data_partition", random_state=0, max_iter=1), 1)
    model.fit(X.to_numpy(), y, teacher_logits=teacher)
    own = np.log(np.clip(model.pretrained_.predict_proba(X.to_numpy()), 1e-7, 1))
    assert np.allclose(seen["teacher_logits"][:, :3], 7.0)
    assert np.allclose(seen["teacher_logits"][:, 3:], own, atol=1e-5)


@pytest.mark.parametrize(
    ("losses", "kwargs", "message"),
    [
        ("knowledge_distillation", {"teacher": "pretrained"}, "needs pretrain=BASE_LOSS"),
        ("kd_data_partition", {"teacher": "random_forest"}, "'pretrained'] with pretrain="),
        ("cross_entropy", {"pretrain": "knowledge_distillation"}, "from the labels alone"),
        ("temperature_scaling", {"pretrain": "ce", "calibrate": "ce"}, "cannot be combined"),
    ],
)
def test_pretrain_misuse_is_refused(losses, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plan_fits(load_data("iris"), losses=losses, cv=2, **kwargs)


def test_regression_teacher_folds_are_shuffled_for_rows_stored_in_target_order():
    # rows sorted by the target: consecutive inner folds would train each tree teacher on the
    # other two thirds of the range, so it could never predict the lowest third's values
    rng = np.random.default_rng(2)
    a = np.sort(rng.uniform(-3, 3, size=90))
    X = pd.DataFrame({"a": a, "b": rng.normal(size=90)})
    y = 10 * a
    teachers = FoldTeachers("random_forest", "regression", 0, "kd_assistive_regression", {})
    oof = teachers.fit_params(X, y)["model__teacher_logits"][:, 0]
    lowest = slice(0, 30)
    assert abs(oof[lowest].mean() - y[lowest].mean()) < 3.0  # unshuffled folds: ~13 off
