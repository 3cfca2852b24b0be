"""scikit-learn estimators that train a network with any registered loss, run by skorch."""

from lossreg.estimators._mlp import MLP
from lossreg.estimators.classifier import LossClassifier
from lossreg.estimators.grid import loss_grid
from lossreg.estimators.regressor import LossRegressor

__all__ = ["MLP", "LossClassifier", "LossRegressor", "loss_grid"]
