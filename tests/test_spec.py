"""LossSpec registration rules and the Param schema."""

from __future__ import annotations

import pytest
from conftest import ToySquared, toy_spec

from lossreg import Link, Param
from lossreg.params import check_params
from lossreg.spec import spec_problems


def _rules(spec) -> set[str]:
    return {rule for rule, _ in spec_problems(spec)}


def test_a_valid_spec_has_no_problems():
    assert spec_problems(toy_spec()) == []


def test_spec_normalises_collections():
    spec = toy_spec(tasks=["regression"], aliases=["other"], params=[Param("scale", "float", 1.0)])
    assert spec.tasks == frozenset({"regression"})
    assert spec.aliases == ("other",)
    assert isinstance(spec.params, tuple)
    assert spec.names == ("toy", "other")
    assert spec.defaults == {"scale": 1.0}


def _no_default(*, scale, reduction="mean"):
    return ToySquared(scale=scale, reduction=reduction)


def _no_reduction(*, scale=1.0):
    return ToySquared(scale=scale)


def _other_default(*, scale=3.0, reduction="mean"):
    return ToySquared(scale=scale, reduction=reduction)


def _undeclared(*, scale=1.0, extra=0, reduction="mean"):
    return ToySquared(scale=scale, reduction=reduction)


@pytest.mark.parametrize(
    ("changes", "rule", "text"),
    [
        ({"name": "Focal"}, "name", "must match"),
        ({"name": "focal_loss"}, "name", "must not end in '_loss'"),
        ({"aliases": ("Bad Alias",)}, "alias", "must match"),
        ({"aliases": ("toy",)}, "alias", "repeat a name"),
        ({"tasks": set()}, "tasks", "declares no task"),
        ({"tasks": {"classification"}}, "tasks", "unknown tasks ['classification']"),
        ({"link": "softmaxx"}, "link", "unknown link 'softmaxx'"),
        ({"reference": " "}, "reference", "has no reference"),
        ({"sampler": "balanced"}, "sampler", "is not one of"),
        ({"sampler": "whole_bags"}, "sampler", "needs 'bag' in fit_extras"),
        ({"views": 3}, "views", "views must be 1 or 2"),
        ({"summary": ""}, "summary", "has no one-line summary"),
        ({"data_params": ("n_clases",)}, "data-params", "unknown data-params entry 'n_clases'"),
        ({"fit_extras": ("groups",)}, "fit-extras", "unknown fit-extras entry 'groups'"),
        ({"params": (Param("scale", "float", -1.0, low=0),)}, "params", "default -1.0"),
        ({"params": (Param("scale", "number", 1.0),)}, "params", "has kind 'number'"),
        (
            {"params": (Param("scale", "float", 1.0, low=0, grid=(1.0, -2.0)),)},
            "params",
            "search grid",
        ),
        ({"params": (Param("mode", "choice", "a"),)}, "params", "declares no options"),
        ({"factory": _no_default}, "factory", "'scale' has no default"),
        ({"factory": _no_reduction}, "factory", "does not accept 'reduction'"),
        ({"factory": _other_default}, "factory", "default of 'scale' differs"),
        ({"factory": _undeclared}, "factory", "'extra' is not declared"),
        ({"factory": "not callable"}, "factory", "is not callable"),
        ({"params": ()}, "factory", "'scale' is not declared"),
        (
            {"params": (Param("scale", "float", 1.0), Param("shift", "float", 0.0))},
            "factory",
            "'shift' is declared but the factory does not accept it",
        ),
    ],
)
def test_each_rule_is_enforced(changes, rule, text):
    problems = spec_problems(toy_spec(**changes))
    assert rule in {r for r, _ in problems}
    assert any(text in explanation for r, explanation in problems if r == rule), problems


def test_something_that_is_not_a_spec_is_rejected():
    assert _rules({"name": "toy"}) == {"type"}


def test_a_custom_link_is_accepted():
    link = Link("doubled", lambda out, criterion=None: 2 * out, "value", "twice the output")
    assert spec_problems(toy_spec(link=link)) == []


@pytest.mark.parametrize(
    ("param", "good", "bad"),
    [
        (Param("g", "float", 2.0, low=0), [0, 0.5, 1e9, float("inf")], [-0.1, "2", True, None]),
        (Param("p", "float", 0.5, low=0, high=1, closed="neither"), [0.5], [0, 1, float("nan")]),
        (Param("k", "int", 3, low=1), [1, 10], [0, 2.5, True]),
        (Param("b", "bool", True), [True, False], [1, "yes"]),
        (Param("m", "choice", "a", options=("a", "b")), ["a", "b"], ["c", None]),
        (
            Param("v", "vector", None, low=0, nullable=True),
            [None, [1, 2], (0.5,)],
            [[-1], "ab", []],
        ),
        (Param("s", "str", "x"), ["anything"], [3]),
    ],
)
def test_param_validity(param, good, bad):
    for value in good:
        assert param.is_valid(value), value
    for value in bad:
        assert not param.is_valid(value), value


def test_param_constraint_text():
    assert Param("g", "float", 1.0, low=0).constraint == "a float in the range [0, inf)"
    assert (
        Param("p", "float", 0.5, low=0, high=1, closed="left", nullable=True).constraint
        == "a float in the range [0, 1) or None"
    )
    assert Param("m", "choice", "a", options=("a", "b")).constraint == "one of 'a', 'b'"


def test_check_params_uses_the_prefix_and_requires_data_params():
    schema = (Param("gamma", "float", 2.0, low=0),)
    with pytest.raises(ValueError, match="Loss 'focal' has no parameter 'loss__gama'") as err:
        check_params(
            "focal",
            schema,
            {"gama": 1.0},
            data_params=("n_classes",),
            require_data_params=True,
            prefix="loss__",
        )
    assert "needs the data parameter 'n_classes'" in str(err.value)
    check_params("focal", schema, {"gamma": 0.0, "n_classes": 3}, data_params=("n_classes",))
