"""scikit-learn estimators that train a network with any registered loss, run by skorch."""

from lossreg.estimators._augment import FeatureCorruption
from lossreg.estimators._mlp import MLP
from lossreg.estimators.classifier import LossClassifier
from lossreg.estimators.embedder import LossEmbedder
from lossreg.estimators.grid import loss_grid
from lossreg.estimators.regressor import LossRegressor

__all__ = [
    "MLP",
    "FeatureCorruption",
    "LossClassifier",
    "LossEmbedder",
    "LossRegressor",
    "loss_grid",
]
