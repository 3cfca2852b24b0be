"""scikit-learn estimators that train a network with any registered loss, run by skorch."""

from lossreg.estimators._augment import FeatureCorruption
from lossreg.estimators._mlp import MLP
from lossreg.estimators._pseudo_labels import PseudoLabelDiverse
from lossreg.estimators._transfer import HiddenLayersFrom
from lossreg.estimators.calibration import LossCalibratedClassifier
from lossreg.estimators.classifier import LossClassifier
from lossreg.estimators.distill import DistilledClassifier, teacher_logits
from lossreg.estimators.embedder import LossEmbedder
from lossreg.estimators.grid import loss_grid
from lossreg.estimators.mixed import LossMixedEstimator
from lossreg.estimators.quantile_aggregator import QuantileAggregator
from lossreg.estimators.ranking import LossRanker, mean_ndcg
from lossreg.estimators.recommender import LossRecommender
from lossreg.estimators.regressor import LossRegressor
from lossreg.estimators.survival import LossSurvivalRegressor, concordance_index

__all__ = [
    "MLP",
    "DistilledClassifier",
    "FeatureCorruption",
    "HiddenLayersFrom",
    "LossCalibratedClassifier",
    "LossClassifier",
    "LossEmbedder",
    "LossMixedEstimator",
    "LossRanker",
    "LossRecommender",
    "LossRegressor",
    "LossSurvivalRegressor",
    "PseudoLabelDiverse",
    "QuantileAggregator",
    "concordance_index",
    "loss_grid",
    "mean_ndcg",
    "teacher_logits",
]
