"""scikit-learn's own estimator checks, passed the way MLPClassifier / MLPRegressor pass them.

The only expected failures are the sample-weight equivalence checks, which scikit-learn itself
expects to fail for estimators trained by stochastic gradient descent (weighting a row by 2 and
repeating it give the same objective, not the same SGD trajectory).
"""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from lossreg import LossClassifier, LossEmbedder, LossRegressor

SGD_SAMPLE_WEIGHT = {
    "check_sample_weight_equivalence_on_dense_data": "SGD training: weights change the path",
    "check_sample_weight_equivalence_on_sparse_data": "SGD training: weights change the path",
}

# As scikit-learn tests its MLP estimators: a bounded number of epochs.
ESTIMATORS = [
    LossClassifier(max_iter=100),
    LossClassifier(loss="focal", loss__gamma=2.0, max_iter=100),
    # a loss whose factory needs the class counts of the training rows
    LossClassifier(loss="weighted_cross_entropy", max_iter=100),
    LossRegressor(max_iter=100),
    LossRegressor(loss="huber", loss__delta=1.0, max_iter=100),
    # the transformer (issue 8): triplet loss with class-balanced batches
    LossEmbedder(max_iter=20),
]


def _expected_failures(estimator):
    # Non-strict: the regressors usually pass them, within float32 rounding (a 4e-8 difference
    # against scikit-learn's 1e-7 tolerance was seen once for huber); the classifiers miss them.
    return SGD_SAMPLE_WEIGHT


@pytest.mark.slow
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
