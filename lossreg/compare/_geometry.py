"""Class geometry of a fitted classifier's last hidden layer: class-mean norms and angles.

Descriptive metrics for the neural-collapse claims: on the test fold, the mean feature vector of
each class (the last hidden layer's output, not centred) is compared with the number of
training rows of the class, and with the other classes' means.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["GEOMETRY_GREATER_IS_BETTER", "GEOMETRY_METRICS", "class_geometry", "hidden_features"]

#: direction used when a check compares these descriptive metrics
GEOMETRY_GREATER_IS_BETTER: dict[str, bool] = {
    "class_norm_count_corr": True,
    "class_mean_cosine": False,
}
GEOMETRY_METRICS = tuple(GEOMETRY_GREATER_IS_BETTER)


def hidden_features(est: Any, X: Any) -> np.ndarray | None:
    """The last hidden layer's output for ``X`` (float64), or None for a model without one.

    Reads the network of a fitted lossreg estimator whose module is the built-in MLP with at
    least one hidden layer.
    """
    import torch

    module = getattr(getattr(est, "net_", None), "module_", None)
    layers = getattr(module, "layers", None)
    if not isinstance(layers, torch.nn.Sequential) or len(layers) < 2:
        return None
    was_training = module.training
    module.eval()  # dropout and batch norm as at prediction time
    try:
        with torch.no_grad():
            inputs = torch.as_tensor(np.asarray(X, dtype=np.float32))
            return layers[:-1](inputs).double().numpy()
    finally:
        module.train(was_training)


def class_geometry(
    features: np.ndarray, y_index: np.ndarray, train_counts: np.ndarray
) -> dict[str, float]:
    """``class_norm_count_corr`` and ``class_mean_cosine`` of the classes present in ``y_index``.

    ``class_norm_count_corr`` is the Spearman correlation between a class's number of training
    rows (``train_counts``, by class index) and the norm of its mean feature vector (absent
    when the counts are all equal or fewer than 3 classes are present);
    ``class_mean_cosine`` the mean cosine over pairs of class means (0: orthogonal).
    """
    from scipy.stats import spearmanr

    features = np.asarray(features, dtype=np.float64)
    y_index = np.asarray(y_index)
    present = np.unique(y_index)
    means = np.stack([features[y_index == k].mean(axis=0) for k in present])
    norms = np.linalg.norm(means, axis=1)
    out: dict[str, float] = {}
    counts = np.asarray(train_counts, dtype=np.float64)[present]
    if len(present) >= 3 and np.ptp(counts) > 0 and np.ptp(norms) > 0:
        out["class_norm_count_corr"] = float(spearmanr(counts, norms).statistic)
    if len(present) >= 2 and np.all(norms > 0):
        unit = means / norms[:, None]
        cosines = unit @ unit.T
        out["class_mean_cosine"] = float(cosines[np.triu_indices(len(present), k=1)].mean())
    return out
