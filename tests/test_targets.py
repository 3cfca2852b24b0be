"""Task detection, data params from a training fold, and output sizes."""

import numpy as np
import pytest
from conftest import toy_spec

import lossreg
from lossreg.targets import compute_data_params, output_size, task_of_target


@pytest.mark.parametrize(
    ("y", "task"),
    [
        ([0, 1, 1], "binary"),
        (["a", "b", "c"], "multiclass"),
        (np.array([[0, 1], [1, 1]]), "multilabel"),
        ([0.5, 1.2], "regression"),
        (np.array([[0.5, 1.0], [1.2, 3.0]]), "regression"),
    ],
)
def test_task_of_target(y, task):
    assert task_of_target(y) == task


def test_unsupported_targets_are_explained():
    with pytest.raises(ValueError, match="Unsupported target type 'multiclass-multioutput'"):
        task_of_target(np.array([[0, 2], [1, 3]]))


def test_class_data_params_come_from_the_given_rows():
    y = np.array([0, 2, 2, 2])
    params = compute_data_params(
        ["n_classes", "class_counts", "class_priors", "n_samples"], y, "multiclass", n_classes=3
    )
    assert params == {
        "n_classes": 3,
        "class_counts": [1, 0, 3],
        "class_priors": [0.25, 0.0, 0.75],
        "n_samples": 4,
    }


def test_multilabel_and_regression_data_params():
    y = np.array([[1, 0, 1], [1, 0, 0]])
    assert compute_data_params(["class_counts", "n_outputs"], y, "multilabel") == {
        "class_counts": [2, 0, 1],
        "n_outputs": 3,
    }
    r = np.array([[0.0, 5.0], [2.0, -1.0]])
    assert compute_data_params(["target_min", "target_max"], r, "regression") == {
        "target_min": [0.0, -1.0],
        "target_max": [2.0, 5.0],
    }
    with pytest.raises(ValueError, match="not defined for regression"):
        compute_data_params(["class_counts"], r, "regression")


def test_output_size_follows_the_link_and_the_spec():
    registry = lossreg.Registry(entry_points=False)
    assert output_size(registry.get_spec("cross_entropy"), "binary", n_classes=2) == 2
    assert output_size(registry.get_spec("bce"), "binary", n_classes=2) == 1
    assert output_size(registry.get_spec("bce"), "multilabel", n_classes=4, n_outputs=4) == 4
    assert output_size(registry.get_spec("mse"), "regression", n_outputs=3) == 3
    spec = toy_spec(output_size=lambda ctx: 2 * ctx["n_outputs"] + int(ctx["scale"]))
    assert output_size(spec, "regression", n_outputs=3, params={"scale": 4.0}) == 10


def test_width_data_params_come_from_the_output_width():
    y = np.array([0, 1, 1])
    assert compute_data_params(["embedding_dim"], y, "multiclass", width=16) == {
        "embedding_dim": 16
    }
    with pytest.raises(ValueError, match="output width: pass width="):
        compute_data_params(["embedding_dim"], y, "multiclass")
