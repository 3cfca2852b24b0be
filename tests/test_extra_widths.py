"""LossSpec.extra_widths: the rules, the kit's toy extras, the estimators' width check, info."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import toy_spec

import lossreg
from lossreg import LossClassifier, LossEmbedder, LossRegressor
from lossreg.cli import cli
from lossreg.spec import spec_problems
from lossreg.targets import accepted_widths, column_width, extra_widths
from lossreg.testing import make_toy


def _double(context):
    """2 x the output width."""
    return 2 * context["width"]


def _texts(spec) -> list[str]:
    return [text for rule, text in spec_problems(spec) if rule == "extra-widths"]


def test_a_declared_width_is_valid_and_the_spec_stays_hashable():
    spec = toy_spec(fit_extras=("teacher_logits",), extra_widths={"teacher_logits": _double})
    assert spec_problems(spec) == []
    assert spec.extra_widths["teacher_logits"] is _double
    hash(spec)  # registries and caches may hash specs
    with pytest.raises(TypeError):
        spec.extra_widths["teacher_logits"] = len  # read-only, like the rest of the spec


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"extra_widths": {"teacher_logits": _double}}, "not in fit_extras"),
        (
            {"fit_extras": ("group",), "extra_widths": {"group": _double}},
            "only these extras have a width",
        ),
        (
            {"fit_extras": ("teacher_logits",), "extra_widths": {"teacher_logits": 4}},
            "must be a callable",
        ),
    ],
)
def test_extra_width_rules(changes, text):
    texts = _texts(toy_spec(**changes))
    assert any(text in t for t in texts), texts


def test_extra_widths_sees_the_output_width_and_the_hyperparameters():
    spec = lossreg.get_spec("kd_data_partition")
    assert extra_widths(spec, "multiclass", width=3, n_classes=3) == {"teacher_logits": (6,)}
    # A two-class head also takes one logit per model.
    assert extra_widths(spec, "binary", width=2, n_classes=2) == {"teacher_logits": (4, 2)}
    spec = toy_spec(
        fit_extras=("teacher_logits",),
        extra_widths={"teacher_logits": lambda c: c["width"] * c["scale"] + c["n_classes"]},
    )
    widths = extra_widths(spec, "regression", width=2, n_classes=5, params={"scale": 3})
    assert widths == {"teacher_logits": (11,)}
    assert accepted_widths(None) is None and accepted_widths(np.int64(3)) == (3,)
    assert accepted_widths(6.0) == (6,) and accepted_widths([4, 2]) == (4, 2)
    assert column_width(np.zeros(4)) == 1 and column_width(np.zeros((4, 2, 3))) == 6


@pytest.mark.parametrize(
    ("name", "columns"),
    [("kd_data_partition", 6), ("kd_assistive_regression", 2), ("cwcl", 4)],
)
def test_the_kit_builds_sized_extras_that_wide(name, columns):
    toy = make_toy(lossreg.get_spec(name))
    assert tuple(toy.extras["teacher_logits"].shape) == (toy.n, columns)


def test_a_default_extra_keeps_its_width():
    toy = make_toy(lossreg.get_spec("knowledge_distillation"))
    assert tuple(toy.extras["teacher_logits"].shape) == (toy.n, 3)


def _classification(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = np.arange(n) % 3
    X[:, 0] += y
    return X, y, rng


def test_classifier_checks_the_teacher_width_and_names_the_fix():
    X, y, rng = _classification()
    clf = LossClassifier(loss="kd_data_partition", max_iter=2, random_state=0)
    with pytest.raises(ValueError, match="kd_data_partition") as info:
        clf.fit(X, y, teacher_logits=rng.normal(size=(60, 3)))
    message = str(info.value)
    assert "'kd_data_partition'" in message and "teacher_logits 6 columns wide" in message
    assert "got 3" in message and "(n_rows, 6)" in message and "lossreg info" in message
    assert "initial student" in message  # the rule's docstring says what the columns are
    clf.fit(X, y, teacher_logits=rng.normal(size=(60, 6)))
    assert clf.n_iter_ == 2


def test_binary_one_logit_per_model_is_accepted():
    X, y, rng = _classification()
    y = y % 2
    clf = LossClassifier(loss="kd_data_partition", max_iter=1, random_state=0)
    clf.fit(X, y, teacher_logits=rng.normal(size=(60, 2)))  # one logit each (2-class head)
    clf.fit(X, y, teacher_logits=rng.normal(size=(60, 4)))
    with pytest.raises(ValueError, match="4 or 2 columns wide"):
        clf.fit(X, y, teacher_logits=rng.normal(size=(60, 3)))


def test_regressor_checks_two_teachers():
    X, _, rng = _classification()
    y = X[:, 0] + 0.1 * rng.normal(size=60)
    reg = LossRegressor(loss="kd_assistive_regression", max_iter=1, random_state=0)
    with pytest.raises(ValueError, match="teacher_logits 2 columns wide"):
        reg.fit(X, y, teacher_logits=y)
    reg.fit(X, y, teacher_logits=np.stack([y + 0.3, y - 0.2], axis=1))


def test_embedder_checks_old_embeddings_against_n_components():
    X, y, rng = _classification()
    emb = LossEmbedder(loss="cwcl", n_components=5, max_iter=1, random_state=0)
    with pytest.raises(ValueError, match=r"teacher_logits 5 columns wide.*got 32"):
        emb.fit(X, y, teacher_logits=rng.normal(size=(60, 32)))
    emb.fit(X, y, teacher_logits=rng.normal(size=(60, 5)))
    assert emb.transform(X).shape == (60, 5)


def test_warm_start_checks_the_width_again():
    X, y, rng = _classification()
    clf = LossClassifier(loss="kd_data_partition", max_iter=1, warm_start=True, random_state=0)
    clf.fit(X, y, teacher_logits=rng.normal(size=(60, 6)))
    with pytest.raises(ValueError, match="6 columns wide"):
        clf.fit(X, y, teacher_logits=rng.normal(size=(60, 3)))


_JSON_KEYS = {"params": "parameters", "factory": "factory"}


def test_info_shows_every_card_field():
    result = CliRunner().invoke(cli, ["info", "kd_data_partition", "--json"])
    data = json.loads(result.output)
    missing = [
        f.name
        for f in dataclasses.fields(lossreg.LossSpec)
        if _JSON_KEYS.get(f.name, f.name) not in data
    ]
    assert not missing, f"lossreg info --json leaves out {missing}"
    assert data["outputs"] == "logits"
    assert data["output_size"] is None
    assert "initial student" in data["extra_widths"]["teacher_logits"]
    text = CliRunner().invoke(cli, ["info", "kd_data_partition"]).output
    for label in ("outputs", "output size", "extra widths", "member data"):
        assert label in text
    assert "2 x the output width" in text
    data = json.loads(CliRunner().invoke(cli, ["info", "weighted_sum", "--json"]).output)
    assert "output size" in data["output_size"]
