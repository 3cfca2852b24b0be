"""The warning for fits that the stopping rule ended at the first epoch it could."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning

from lossreg.errors import StalledTrainingWarning
from lossreg.estimators import LossClassifier


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(200, 5, random_state=0)


def test_a_flat_fit_warns_and_names_the_fix(data):
    X, y = data
    # lr=1e-7 leaves the loss flat: no epoch after the first improves it by tol
    with pytest.warns(StalledTrainingWarning, match=r"stopped after 4 of max_iter=50.*tol=0\.001"):
        model = LossClassifier(
            loss="cross_entropy", lr=1e-7, max_iter=50, n_iter_no_change=3, tol=1e-3
        ).fit(X, y)
    assert model.n_iter_ == 4
    assert issubclass(StalledTrainingWarning, ConvergenceWarning)  # scikit-learn filters apply


@pytest.mark.parametrize(
    "params",
    [
        {"max_iter": 30},  # ordinary training: the loss falls for many epochs
        {"max_iter": 4, "lr": 1e-7, "n_iter_no_change": 3},  # max_iter ends it, not the rule
        {"max_iter": 30, "lr": 1e-7, "tol": 0.0},  # tol=0: any fall counts
    ],
)
def test_no_warning_when_training_went_on(data, params):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error", StalledTrainingWarning)
        LossClassifier(loss="cross_entropy", random_state=0, **params).fit(X, y)


def test_the_advice_for_a_rising_loss_trains_every_epoch(data):
    X, y = data
    # gradient ascent climbs the loss: no tol stops that, n_iter_no_change=max_iter does
    rising = {"loss": "cross_entropy", "optimizer__maximize": True, "max_iter": 20, "tol": 0.0}
    with pytest.warns(StalledTrainingWarning, match=r"pass n_iter_no_change=20 or more") as seen:
        LossClassifier(**rising).fit(X, y)
    assert "rises while the model improves" in str(seen[0].message)
    model = LossClassifier(**rising, n_iter_no_change=20).fit(X, y)
    assert model.n_iter_ == 20
