"""LossClassifier and LossRegressor: scikit-learn behaviour, losses by name, data flow."""

from __future__ import annotations

import io
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn
import torch
from estimator_losses import exploding_spec, group_spec, recording_spec, score_spec, tempered_spec
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, make_classification, make_regression
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import lossreg
from lossreg import (
    LossClassifier,
    LossRegressor,
    MissingFitExtraError,
    TrainingDivergedError,
    UnsupportedTaskError,
    loss_grid,
)

FAST = {"max_iter": 15, "lr": 0.01, "random_state": 0}


@pytest.fixture
def blobs():
    X, y = make_classification(
        n_samples=240, n_features=8, n_informative=5, n_classes=3, random_state=0
    )
    return StandardScaler().fit_transform(X), y


def test_loss_by_name_with_its_parameters(blobs):
    X, y = blobs
    clf = LossClassifier(loss="focal", loss__gamma=2.0, **FAST).fit(X, y)
    assert clf.criterion_.gamma == 2.0
    assert clf.loss_name_ == "focal"
    assert clf.score(X, y) > 0.8
    assert clf.history_[-1, "train_loss"] < clf.history_[0, "train_loss"]


def test_aliases_work_and_are_kept_as_given(blobs):
    X, y = blobs
    clf = LossClassifier(loss="ce", **FAST).fit(X, y)
    assert clf.loss == "ce" and clf.loss_name_ == "cross_entropy"


def test_unknown_loss_parameter_fails_at_fit_with_a_suggestion(blobs):
    X, y = blobs
    clf = LossClassifier(loss="focal", loss__gama=1.0)  # construction only stores it
    with pytest.raises(ValueError, match=r"no parameter 'loss__gama'\. Did you mean 'loss__gamma'"):
        clf.fit(X, y)


def test_unprefixed_unknown_keyword_fails_at_fit(blobs):
    X, y = blobs
    clf = LossClassifier(gamma=2.0)
    with pytest.raises(TypeError, match=r"'gamma'.*prefixes loss__"):
        clf.fit(X, y)
    assert clone(clf).get_params()["gamma"] == 2.0  # kept through clone, so never lost


def test_out_of_range_loss_parameter_is_reported(blobs):
    X, y = blobs
    with pytest.raises(
        ValueError, match=r"'loss__gamma' parameter of loss 'focal' must be a float"
    ):
        LossClassifier(loss="focal", loss__gamma=-1.0).fit(X, y)


def test_unsupported_task_lists_compatible_losses(blobs):
    X, y = blobs
    with pytest.raises(
        UnsupportedTaskError, match="'mse' does not support task 'multiclass'"
    ) as err:
        LossClassifier(loss="mse").fit(X, y)
    suggested = str(err.value).split("Use one of: ")[1].split(", ")
    assert all("multiclass" in lossreg.get_spec(name).tasks for name in suggested[:-1])
    with pytest.raises(UnsupportedTaskError, match="'focal' does not support task 'regression'"):
        LossRegressor(loss="focal").fit(X, y.astype(float))


def test_get_params_set_params_and_clone_carry_loss_parameters():
    clf = LossClassifier(loss="focal", loss__gamma=1.0, module__hidden_units=(16,))
    params = clf.get_params()
    assert params["loss__gamma"] == 1.0 and params["module__hidden_units"] == (16,)
    clf.set_params(loss__gamma=3.0, loss__alpha=[1.0, 2.0, 3.0], max_iter=7)
    copy = clone(clf)
    assert copy.loss__gamma == 3.0 and copy.loss__alpha == [1.0, 2.0, 3.0] and copy.max_iter == 7
    assert "loss__gamma=3.0" in repr(copy)


def test_loss_grid_builds_one_entry_per_loss():
    grid = loss_grid(["cross_entropy", "focal"], overrides={"focal": {"alpha": [None]}})
    assert grid == [
        {"loss": ["cross_entropy"], "loss__label_smoothing": [0.0, 0.1]},
        {"loss": ["focal"], "loss__gamma": [0.5, 1.0, 2.0, 3.0], "loss__alpha": [None]},
    ]
    assert loss_grid(["mse"], prefix="reg__") == [{"reg__loss": ["mse"]}]
    with pytest.raises(ValueError, match="not in names"):
        loss_grid(["mse"], overrides={"huber": {"delta": [1.0]}})


@pytest.mark.slow
def test_grid_search_over_losses_in_a_pipeline_with_two_jobs():
    X, y = load_breast_cancer(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), LossClassifier(max_iter=10, random_state=0))
    grid = loss_grid(
        ["cross_entropy", "focal", "bce"],
        overrides={"focal": {"gamma": [1.0, 2.0]}, "cross_entropy": {"label_smoothing": [0.0]}},
        prefix="lossclassifier__",
    )
    search = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == 4
    assert np.all(scores > 0.9), scores
    assert search.best_estimator_.score(X, y) > 0.95


def test_data_params_come_from_each_training_fold():
    X, y = make_classification(n_samples=150, weights=[0.7, 0.3], random_state=1)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    result = cross_validate(
        LossClassifier(loss=recording_spec(), max_iter=2, random_state=0),
        X,
        y,
        cv=cv,
        return_estimator=True,
        return_indices=True,
    )
    for est, train in zip(result["estimator"], result["indices"]["train"]):
        expected = np.bincount(y[train]).tolist()
        assert est.data_params_["class_counts"] == expected
        assert est.criterion_.class_counts == expected
    assert result["estimator"][0].data_params_ != np.bincount(y).tolist()


def test_class_weight_and_sample_weight_reach_the_loss(blobs):
    X, y = blobs
    weights = np.linspace(0.5, 1.5, len(y))
    clf = LossClassifier(
        loss=recording_spec(), class_weight={0: 2.0, 1: 1.0, 2: 0.5}, max_iter=1, batch_size=len(y)
    ).fit(X, y, sample_weight=weights)
    (seen,) = clf.criterion_.seen_weights
    expected = weights * np.array([2.0, 1.0, 0.5])[y]
    # batches are shuffled: compare as multisets
    np.testing.assert_allclose(np.sort(seen.numpy()), np.sort(expected), rtol=1e-6)


def test_missing_fit_extra_is_named(blobs):
    X, y = blobs
    with pytest.raises(
        MissingFitExtraError,
        match=r"'group_ce' needs 'group' at fit time: pass fit\(X, y, group=\.\.\.\)",
    ):
        LossClassifier(loss=group_spec(), max_iter=1).fit(X, y)


def test_sample_weight_and_extras_are_routed_through_pipeline_and_grid_search(blobs):
    X, y = blobs
    groups = np.arange(len(y)) % 4
    weights = np.ones(len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        clf = LossClassifier(loss=group_spec(), max_iter=1, batch_size=len(y), random_state=0)
        # weighted scores: a request of False would leave the search's sample_weight unrouted in
        # Pipeline.score, and every score would be NaN
        clf.set_fit_request(sample_weight=True, group=True).set_score_request(sample_weight=True)
        pipe = make_pipeline(StandardScaler().set_fit_request(sample_weight=False), clf)
        search = GridSearchCV(
            pipe, {"lossclassifier__loss__scale": [1.0, 2.0]}, cv=KFold(2), refit=True
        )
        search.fit(X, y, sample_weight=weights, group=groups)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    fitted = search.best_estimator_[-1].criterion_
    (seen,) = fitted.seen_groups
    assert sorted(seen.tolist()) == sorted(groups.tolist())  # all rows, refit on everything
    assert len(fitted.seen_weights) == 1


def test_divergence_stops_training_with_a_clear_error(blobs):
    X, y = blobs
    clf = LossClassifier(loss=exploding_spec(), max_iter=5, lr=0.01)
    with pytest.raises(TrainingDivergedError) as err:
        clf.fit(X, y)
    message = str(err.value)
    assert "'exploding_ce' was nan on train batch 1 of epoch 3" in message
    assert "Lower the learning rate (lr=0.01 now)" in message
    with pytest.raises(NotFittedError):
        clf.predict(X)


def test_divergence_under_warm_start_keeps_the_fitted_model(blobs):
    X, y = blobs
    clf = LossClassifier(loss=exploding_spec(), loss__at_epoch=3, max_iter=2, warm_start=True)
    clf.fit(X, y)
    before = clf.predict_proba(X)
    with pytest.raises(TrainingDivergedError):
        clf.fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), before)


def test_same_seed_gives_identical_results_and_leaves_the_global_rng_alone(blobs):
    X, y = blobs
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = LossClassifier(**FAST).fit(X, y).predict_proba(X)
    assert torch.equal(torch.get_rng_state(), state)
    b = LossClassifier(**FAST).fit(X, y).predict_proba(X)
    c = LossClassifier(max_iter=15, lr=0.01, random_state=1).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_softmax_link_probabilities(blobs):
    X, y = blobs
    proba = LossClassifier(**FAST).fit(X, y).predict_proba(X)
    assert proba.shape == (len(y), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)


def test_sigmoid_link_binary_and_multilabel():
    X, y = make_classification(n_samples=120, n_features=6, random_state=0)
    clf = LossClassifier(loss="bce", **FAST).fit(X, y)
    assert clf.module_.layers[-1].out_features == 1
    proba = clf.predict_proba(X)
    assert proba.shape == (120, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    Y = np.stack([y, 1 - y, (X[:, 0] > 0).astype(int)], axis=1)
    multi = LossClassifier(loss="binary_focal", **FAST).fit(X, Y)
    assert multi.predict_proba(X).shape == (120, 3)
    assert set(np.unique(multi.predict(X))) <= {0, 1}
    assert multi.predict(X).shape == (120, 3)


def test_score_link_has_decision_function_and_no_predict_proba(blobs):
    X, y = blobs
    clf = LossClassifier(loss=score_spec(), **FAST)
    assert not hasattr(clf, "predict_proba")
    clf.fit(X, y)
    assert clf.decision_function(X).shape == (len(y), 3)
    assert set(clf.predict(X)) <= set(clf.classes_)
    assert not hasattr(LossClassifier(loss="focal"), "decision_function")


def test_regressor_single_and_multi_output():
    X, y = make_regression(n_samples=200, n_features=5, n_targets=2, noise=0.1, random_state=0)
    y = y / y.std()
    reg = LossRegressor(loss="huber", loss__delta=0.5, max_iter=60, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (200, 2)
    assert reg.score(X, y) > 0.9
    single = LossRegressor(**FAST).fit(X, y[:, 0])
    assert single.predict(X).shape == (200,)


def test_learnable_loss_parameters_train_and_are_saved(blobs):
    X, y = blobs
    clf = LossClassifier(loss=tempered_spec(), **FAST).fit(X, y)
    temperature = clf.criterion_.log_temperature.detach().clone()
    assert temperature.item() != 0.0  # the optimizer updated it
    restored = pickle.loads(pickle.dumps(clf))
    assert torch.equal(restored.criterion_.log_temperature.detach(), temperature)


def test_set_epoch_is_called_every_epoch(blobs):
    X, y = blobs
    clf = LossClassifier(loss=recording_spec(), max_iter=4, tol=0.0, random_state=0).fit(X, y)
    assert clf.criterion_.epochs == [(0, 4), (1, 4), (2, 4), (3, 4)]


def test_pickle_and_joblib_round_trips(blobs):
    X, y = blobs
    clf = LossClassifier(loss="focal", **FAST).fit(X, y)
    expected = clf.predict_proba(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(X), expected)
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).predict_proba(X), expected)


def test_pandas_input_string_labels_and_sparse_input(blobs):
    X, y = blobs
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    labels = np.array(["low", "mid", "high"])[y]
    clf = LossClassifier(**FAST).fit(frame, labels)
    assert list(clf.feature_names_in_) == list(frame.columns)
    assert set(clf.predict(frame)) <= {"low", "mid", "high"}
    dense = LossClassifier(**FAST).fit(X, y).predict_proba(X)
    sparse = LossClassifier(**FAST).fit(sp.csr_matrix(X), y).predict_proba(sp.csr_matrix(X))
    np.testing.assert_allclose(sparse, dense, rtol=1e-5)


def test_nan_input_is_rejected_with_scikit_learns_message(blobs):
    X, y = blobs
    X = X.copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        LossClassifier(**FAST).fit(X, y)


def test_early_stopping_uses_a_validation_split(blobs):
    X, y = blobs
    clf = LossClassifier(
        early_stopping=True, n_iter_no_change=2, max_iter=200, lr=0.05, random_state=0
    ).fit(X, y)
    assert "valid_loss" in clf.history_[-1]
    assert clf.n_iter_ < 200


def test_warm_start_continues_training(blobs):
    X, y = blobs
    clf = LossClassifier(max_iter=3, tol=0.0, warm_start=True, random_state=0).fit(X, y)
    first = clf.history_[-1, "train_loss"]
    clf.fit(X, y)
    assert len(clf.history_) == 6
    assert clf.history_[-1, "train_loss"] < first


def test_user_module_class_gets_the_sizes(blobs):
    X, y = blobs

    class Linear(torch.nn.Module):
        def __init__(self, n_features, n_outputs, bias=True):
            super().__init__()
            self.linear = torch.nn.Linear(n_features, n_outputs, bias=bias)

        def forward(self, x):
            return self.linear(x)

    clf = LossClassifier(module=Linear, module__bias=False, **FAST).fit(X, y)
    assert clf.module_.linear.weight.shape == (3, X.shape[1])
    assert clf.module_.linear.bias is None


def test_cuda_request_without_a_gpu_is_explained(blobs):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the message is for machines without one")
    X, y = blobs
    with pytest.raises(ValueError, match="sees no CUDA device"):
        LossClassifier(device="cuda", max_iter=1).fit(X, y)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_and_cpu_unpickling(blobs):
    X, y = blobs
    clf = LossClassifier(device="cuda", **FAST).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X), rtol=1e-6)


def test_lossreg_exports_the_estimators():
    assert lossreg.LossClassifier is LossClassifier
    assert lossreg.loss_grid is loss_grid


def _heteroscedastic(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 2))
    scale = 0.2 + 0.5 * np.abs(X[:, 0])
    y = np.sin(X[:, 0]) + X[:, 1] * 0.5 + rng.normal(size=n) * scale
    return X, y


def test_pinball_regressor_returns_the_three_quantiles():
    X, y = _heteroscedastic(600, 0)
    reg = LossRegressor(
        loss="pinball", loss__quantiles=[0.1, 0.5, 0.9], max_iter=80, lr=0.01, random_state=0
    ).fit(X, y)
    quantiles = reg.predict_quantiles(X)
    assert quantiles.shape == (600, 3)
    assert np.all(np.diff(quantiles, axis=1) >= 0)
    below = (y[:, None] < quantiles).mean(axis=0)
    np.testing.assert_allclose(below, [0.1, 0.5, 0.9], atol=0.07)
    assert not hasattr(LossRegressor(loss="mse"), "predict_quantiles")


def test_gaussian_nll_regressor_gives_std_and_intervals():
    X, y = _heteroscedastic(800, 1)
    reg = LossRegressor(loss="gaussian_nll", max_iter=80, lr=0.01, random_state=0).fit(X, y)
    mean, std = reg.predict(X, return_std=True)
    assert mean.shape == std.shape == (800,)
    assert np.all(std > 0)
    X_test, y_test = _heteroscedastic(800, 2)
    interval = reg.predict_interval(X_test, alpha=0.2)
    assert interval.shape == (800, 2)
    coverage = np.mean((interval[:, 0] <= y_test) & (y_test <= interval[:, 1]))
    assert abs(coverage - 0.8) < 0.07, coverage
    with pytest.raises(ValueError, match="predicts no standard deviation"):
        LossRegressor(**FAST).fit(X, y).predict(X, return_std=True)


def test_batch_level_losses_get_no_tiny_last_batch():
    from lossreg.estimators._batches import BatchIterator, TensorBatches

    data = TensorBatches(torch.arange(9.0)[:, None], {"target": torch.arange(9.0)})
    assert [len(b[0]) for b in BatchIterator(data, 4)] == [4, 4, 1]
    assert [len(b[0]) for b in BatchIterator(data, 4, merge_tail=True)] == [4, 5]
    assert [len(b[0]) for b in BatchIterator(data, 6, merge_tail=True)] == [6, 3]
    X, y = _heteroscedastic(201, 3)
    reg = LossRegressor(loss="rse", batch_size=100, max_iter=3, random_state=0).fit(X, y)
    assert reg.n_iter_ == 3  # a 1-row batch would have raised inside the loss


def test_composite_loss_trains_in_a_grid_search_over_its_weight(blobs):
    X, y = blobs
    clf = LossClassifier(
        loss="weighted_sum", loss__losses=("cross_entropy", "mae_prob"), max_iter=10, lr=0.01
    )
    search = GridSearchCV(clf, {"loss__weights": [(1.0, 0.0), (1.0, 1.0)]}, cv=2).fit(X, y)
    assert search.best_score_ > 0.6
    with pytest.raises(
        UnsupportedTaskError, match="'weighted_sum' does not support task 'regression'"
    ):
        LossRegressor(loss="weighted_sum", loss__losses=("cross_entropy", "focal")).fit(
            X, y.astype(float)
        )


def test_sample_index_is_supplied_by_the_estimator(blobs):
    X, y = blobs
    clf = LossClassifier(loss="aldr_kl", max_iter=2, random_state=0).fit(X, y)
    assert clf.n_iter_ == 2


def test_imbalance_loss_receives_each_folds_class_counts():
    X, y = make_classification(n_samples=180, weights=[0.8, 0.2], random_state=3)
    result = cross_validate(
        LossClassifier(loss="ldam", max_iter=2, random_state=0),
        X,
        y,
        cv=StratifiedKFold(3, shuffle=True, random_state=1),
        return_estimator=True,
        return_indices=True,
    )
    for est, train in zip(result["estimator"], result["indices"]["train"]):
        assert list(est.criterion_.class_counts) == np.bincount(y[train]).tolist()


@pytest.mark.parametrize("loss", ["asymmetric", "distribution_balanced"])
def test_multilabel_losses_give_per_label_probabilities(loss):
    from sklearn.datasets import make_multilabel_classification

    X, Y = make_multilabel_classification(n_samples=200, n_features=10, n_classes=4, random_state=0)
    clf = LossClassifier(loss=loss, max_iter=10, lr=0.01, random_state=0).fit(X, Y)
    proba = clf.predict_proba(X)
    assert proba.shape == (200, 4)
    assert np.all((proba >= 0) & (proba <= 1))
    assert clf.predict(X).shape == (200, 4)


def test_every_fit_extra_is_a_fit_argument_of_every_estimator():
    import inspect

    from lossreg.estimators._base import USER_FIT_EXTRAS
    from lossreg.spec import FIT_EXTRAS

    assert set(USER_FIT_EXTRAS) == set(FIT_EXTRAS) - {"features"}  # features: X, passed by us
    for estimator in (LossClassifier, LossRegressor, lossreg.LossEmbedder):
        params = inspect.signature(estimator.fit).parameters
        assert set(USER_FIT_EXTRAS) <= set(params), estimator.__name__


def test_semi_supervised_losses_see_unlabeled_rows_as_minus_one(blobs):
    X, y = blobs
    partial = y.copy()
    partial[::2] = -1  # half the rows unlabeled, scikit-learn's convention
    clf = LossClassifier(loss="marginal_entropy", max_iter=10, lr=0.01, random_state=0)
    clf.fit(X, partial)
    assert list(clf.classes_) == [0, 1, 2]
    assert set(clf.predict(X)) <= {0, 1, 2}
    assert clf.score(X, y) > 0.6
    # a loss that is not semi-supervised treats -1 as a class, as scikit-learn does
    plain = LossClassifier(max_iter=1).fit(X, partial)
    assert -1 in plain.classes_


def test_binned_regression_predicts_the_expected_value():
    X, y = _heteroscedastic(600, 4)
    reg = LossRegressor(loss="hl_gauss", max_iter=60, lr=0.01, random_state=0).fit(X, y)
    pred = reg.predict(X)
    assert pred.shape == (600,)
    assert y.min() <= pred.min() and pred.max() <= y.max()  # an average of bin centres
    assert reg.score(X, y) > 0.5


def test_r2ccp_intervals_cover_held_out_rows_at_the_nominal_level():
    X, y = _heteroscedastic(1500, 5)
    reg = LossRegressor(
        loss="r2ccp", max_iter=40, lr=0.01, validation_fraction=0.3, random_state=0
    ).fit(X, y)
    X_test, y_test = _heteroscedastic(1500, 6)
    interval = reg.predict_interval(X_test, alpha=0.1)
    assert interval.shape == (1500, 2)
    coverage = np.mean((interval[:, 0] <= y_test) & (y_test <= interval[:, 1]))
    assert abs(coverage - 0.9) < 0.04, coverage
    assert reg.predict(X_test).shape == (1500,)


def test_grouped_batches_keep_every_group_whole():
    from lossreg.estimators._batches import GroupedBatches, TensorBatches

    ids = torch.tensor([3, 3, 3, 7, 7, 1, 1, 1, 1, 9, 5, 5])
    data = TensorBatches(torch.arange(12.0)[:, None], {"bag": ids})
    batches = list(GroupedBatches(data, ids, 4, generator=torch.Generator().manual_seed(0)))
    seen = torch.cat([fields["bag"] for _, fields in batches])
    assert sorted(seen.tolist()) == sorted(ids.tolist())  # every row once per epoch
    for _, fields in batches:
        for bag in fields["bag"].unique():
            assert int((fields["bag"] == bag).sum()) == int((ids == bag).sum())
        assert len(fields["bag"]) >= 4 or fields is batches[-1][1]


@pytest.mark.parametrize(("loss", "extra"), [("group_dro", "group"), ("dllp", "bag")])
def test_an_id_extra_of_several_columns_is_refused_by_name(loss, extra):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.tile([0, 1], 20)
    extras = {extra: np.zeros((40, 2), dtype=np.int64)}
    if extra == "bag":
        extras["bag_target"] = np.full(40, 0.5)
    with pytest.raises(ValueError, match=rf"{extra} holds one number per row.*shape \(40, 2\)"):
        LossClassifier(loss=loss, max_iter=1).fit(X, y, **extras)
