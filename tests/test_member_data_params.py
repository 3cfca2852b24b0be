"""Data params of composite members (LossSpec.data_params_of): computed per training fold."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from conftest import ToySquared, toy_spec
from sklearn.datasets import make_classification
from sklearn.model_selection import StratifiedKFold, cross_validate

import lossreg
from lossreg import LossClassifier
from lossreg.spec import spec_problems
from lossreg.targets import data_param_names
from lossreg.testing import LossCase, make_toy


def _members(params):
    """Whatever the 'extra' hyperparameter names."""
    return (params["extra"],)


def _kwargs_factory(*, scale=1.0, reduction="mean", **data_params):
    return ToySquared(scale=scale, reduction=reduction)


def test_data_params_of_needs_a_factory_that_takes_kwargs():
    assert any(
        "takes no **kwargs" in text for _, text in spec_problems(toy_spec(data_params_of=_members))
    )
    assert spec_problems(toy_spec(factory=_kwargs_factory, data_params_of=_members)) == []
    assert ("data-params", "data_params_of 3 is not callable") in spec_problems(
        toy_spec(factory=_kwargs_factory, data_params_of=3)
    )


def test_data_param_names_adds_the_members_once():
    spec = toy_spec(factory=_kwargs_factory, data_params_of=_members, data_params=("n_samples",))
    assert data_param_names(spec, {"extra": "class_counts"}) == ("n_samples", "class_counts")
    assert data_param_names(spec, {"extra": "n_samples"}) == ("n_samples",)
    weighted = lossreg.get_spec("weighted_sum")
    assert data_param_names(weighted) == ()  # cross_entropy + mae_prob need none
    both = {"losses": ("ldam", "weighted_cross_entropy", "ldam_drw")}
    assert data_param_names(weighted, both) == ("class_counts",)
    given = {**both, "member_params": {"ldam": {"class_counts": [1, 2]}}}
    assert data_param_names(weighted, given) == ("class_counts",)  # the others still need it
    only = {"losses": ("cross_entropy", "ldam"), "member_params": {"ldam": {"class_counts": [1]}}}
    assert data_param_names(weighted, only) == ()
    assert data_param_names(lossreg.get_spec("group_dro"), {"base": "ldam"}) == ("class_counts",)
    assert data_param_names(lossreg.get_spec("group_dro"), {"base": "ldmm"}) == ()


def _folds(estimator, X, y, **params):
    return cross_validate(
        estimator,
        X,
        y,
        cv=StratifiedKFold(3, shuffle=True, random_state=1),
        return_estimator=True,
        return_indices=True,
        params=params,
    )


def test_weighted_sum_members_receive_each_folds_class_counts():
    X, y = make_classification(n_samples=180, weights=[0.8, 0.2], random_state=3)
    clf = LossClassifier(
        loss="weighted_sum", loss__losses=("cross_entropy", "ldam"), max_iter=2, random_state=0
    )
    result = _folds(clf, X, y)
    seen = []
    for est, train in zip(result["estimator"], result["indices"]["train"]):
        expected = np.bincount(y[train]).tolist()
        ldam = est.criterion_.members[1]
        assert list(ldam.class_counts) == expected
        assert est.data_params_ == {"class_counts": expected}
        seen.append(expected)
    assert len({tuple(s) for s in seen}) > 1  # the folds really differ


def test_a_members_own_value_wins():
    X, y = make_classification(n_samples=90, random_state=0)
    clf = LossClassifier(
        loss="weighted_sum",
        loss__losses=("cross_entropy", "ldam"),
        loss__member_params={"ldam": {"class_counts": [5, 7]}},
        max_iter=1,
        random_state=0,
    ).fit(X, y)
    assert list(clf.criterion_.members[1].class_counts) == [5, 7]
    assert clf.data_params_ == {}


def test_a_wrappers_base_receives_each_folds_class_counts():
    X, y = make_classification(n_samples=180, weights=[0.7, 0.3], random_state=2)
    group = np.arange(180) % 2
    with sklearn.config_context(enable_metadata_routing=True):
        clf = LossClassifier(
            loss="group_dro", loss__base="ldam", loss__n_groups=2, max_iter=2, random_state=0
        ).set_fit_request(group=True)
        result = _folds(clf, X, y, group=group)
    for est, train in zip(result["estimator"], result["indices"]["train"]):
        assert list(est.criterion_.base_loss.class_counts) == np.bincount(y[train]).tolist()


def test_a_member_data_param_the_task_lacks_leaves_the_member_to_complain():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    with pytest.raises(lossreg.LossregError, match="ldam"):
        lossreg.LossRegressor(loss="weighted_sum", loss__losses=("mse", "ldam"), max_iter=1).fit(
            X, X[:, 0]
        )


def test_the_kit_builds_composites_with_their_members_data_params():
    case = LossCase(lossreg.get_spec("weighted_sum"), {"losses": ("cross_entropy", "ldam")})
    toy = make_toy(case.spec, case.params)
    assert toy.data_params == {"class_counts": [4, 4, 4]}
    value = case.value(toy)
    assert value.ndim == 0 and bool(value.isfinite())


def test_a_composite_checks_its_members_extra_widths():
    X, y = make_classification(n_samples=60, n_classes=3, n_informative=3, random_state=0)
    rng = np.random.default_rng(0)
    clf = LossClassifier(
        loss="weighted_sum",
        loss__losses=("cross_entropy", "kd_data_partition"),
        max_iter=1,
        random_state=0,
    )
    with pytest.raises(ValueError, match="'weighted_sum' takes teacher_logits 6 columns wide"):
        clf.fit(X, y, teacher_logits=rng.normal(size=(60, 3)))
    clf.fit(X, y, teacher_logits=rng.normal(size=(60, 6)))
    group = np.arange(60) % 2
    wrapped = LossClassifier(loss="group_dro", loss__base="kd_data_partition", max_iter=1)
    with pytest.raises(ValueError, match="6 columns wide"):
        wrapped.fit(X, y, group=group, teacher_logits=rng.normal(size=(60, 3)))


def test_create_loss_takes_and_requires_the_members_data_params():
    registry = lossreg.Registry(entry_points=False)
    counts = [6, 3, 1]
    loss = registry.create_loss(
        "weighted_sum", losses=("cross_entropy", "ldam"), class_counts=counts, reduction="none"
    )
    assert list(loss.members[1].class_counts) == counts
    with pytest.raises(lossreg.InvalidLossParameterError) as missing:
        registry.create_loss("weighted_sum", losses=("cross_entropy", "ldam"))
    assert "needs the data parameter 'class_counts'" in str(missing.value)
    assert "pass class_counts=..." in str(missing.value)
    # Members that need none: a data param is as unknown as a misspelled hyperparameter.
    with pytest.raises(lossreg.InvalidLossParameterError, match="no parameter 'class_counts'"):
        registry.create_loss("weighted_sum", class_counts=counts)
    # A member given its own value in member_params needs nothing more.
    given = {"ldam": {"class_counts": counts}}
    registry.create_loss("weighted_sum", losses=("cross_entropy", "ldam"), member_params=given)
    # Wrappers: the base's data params, unless base_params holds them.
    group_dro = registry.create_loss("group_dro", base="ldam", class_counts=counts)
    assert list(group_dro.base_loss.class_counts) == counts
    with pytest.raises(lossreg.InvalidLossParameterError, match="'class_counts'"):
        registry.create_loss("group_dro", base="ldam")
    registry.create_loss("group_dro", base="ldam", base_params={"class_counts": counts})
    # An invalid hyperparameter is reported as such, and every problem at once.
    with pytest.raises(lossreg.InvalidLossParameterError) as both:
        registry.create_loss("weighted_sum", losses=3, gamma=1.0)
    assert "'losses' parameter" in str(both.value) and "'gamma'" in str(both.value)
