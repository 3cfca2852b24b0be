"""Reference models that learn from bags: ``model:llp_bp`` beside the bag losses.

A bag method that is a procedure rather than a criterion (LLP-BP: belief-propagation
pseudo-labels, then a network) cannot be a loss of ``losses=[...]``; it is a reference model
(``models=["llp_bp"]``) that, in a ``bags:SIZE`` / ``sorted_bags:SIZE`` scenario, gets what the
bag losses get: the bag ids and each bag's positive share, never the rows' labels. Its
network takes the comparison's estimator settings (epochs, learning rate, batch size, hidden
layers), so it is sized like the ``dllp`` network it is compared with.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lossreg.compare._bags import BAG_EXTRAS, check_bag_losses
from lossreg.compare._threads import limit_torch_threads

__all__ = [
    "BAG_MODELS",
    "bag_model_extras",
    "check_bag_models",
    "llp_bp",
    "torch_threads",
    "use_settings",
]

#: reference models (names without ``model:``) that learn from bag ids and bag targets
BAG_MODELS = ("llp_bp",)

#: compare estimator settings -> LLPBPClassifier parameters they set
_SETTINGS = {
    "max_iter": "max_iter",
    "lr": "lr",
    "batch_size": "batch_size",
    "module__hidden_units": "hidden_units",
}


def llp_bp(task: str, seed: int) -> Any:
    """The LLP-BP classifier (:class:`lossreg.estimators.llp_bp.LLPBPClassifier`)."""
    from lossreg.estimators.llp_bp import LLPBPClassifier

    return LLPBPClassifier(random_state=seed)


def bag_model_extras(label: str) -> tuple[str, ...]:
    """The fit extras a reference model's label (``model:NAME``) takes from a bag scenario."""
    return BAG_EXTRAS if label.split(":", 1)[-1] in BAG_MODELS else ()


def check_bag_models(labels: list[str], scenarios: Any) -> None:
    """Refuse bag models in scenarios without bags, before any fit (as for bag losses)."""
    check_bag_losses({label: bag_model_extras(label) for label in labels}, scenarios)


def use_settings(pipeline: Any, label: str, settings: dict[str, Any]) -> Any:
    """Give a bag model's network the comparison's estimator settings it understands."""
    if not bag_model_extras(label):
        return pipeline
    params = {}
    for key, name in _SETTINGS.items():
        value = settings.get(key)
        if value is None or (key == "batch_size" and value == "auto"):
            continue
        params[name] = tuple(value) if key == "module__hidden_units" else value
    return pipeline.set_params(**{f"{pipeline.steps[-1][0]}__{k}": v for k, v in params.items()})


@contextmanager
def torch_threads(spec: dict[str, Any]) -> Iterator[None]:
    """The fit's torch thread count (``spec["threads"]``) while a bag model's network trains.

    Other reference models are scikit-learn models and use no torch; a bag model trains a
    network and must keep to the threads a shared machine gave this fit.
    """
    threads = spec.get("threads")
    if threads is None or not bag_model_extras(spec["loss"]):
        yield
        return
    restore = limit_torch_threads(threads)
    try:
        yield
    finally:
        restore()
