"""The fully supervised reference of an embedding comparison (``models=["supervised"]``).

Self-supervised pretraining is judged by how close a probe with few labels comes to a
network trained with every label. ``compare(..., task="embedding", models=["supervised"])``
(``--model supervised``) fits, on each stressed training fold, a LossClassifier with
cross-entropy and the comparison's estimator settings (the same network as the embedders,
with a class head in place of the embedding) on every training label of the probe column
(``probe_target``), or of the target without one. It has no embedding: its record holds its
own test-fold scores under the few-label probe's names, ``few_label_probe_accuracy`` and
``few_label_probe_f1`` (macro), with ``n_probe_labels`` the whole training fold, so it is
paired fold by fold with the losses' few-label probes (``model:supervised`` in the results).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from lossreg.compare._store import finish_record, record_failure
from lossreg.compare._threads import limit_torch_threads

__all__ = [
    "SUPERVISED",
    "check_supervised",
    "embedder_only",
    "run_supervised_fit",
    "supervised_classifier",
]

#: the reference's name in ``models``
SUPERVISED = "supervised"

#: settings of compare's own (batching, target scaling) that no estimator takes
_COMPARE_ONLY = ("whole_group_batches", "target_scaling", "bin_targets")


def embedder_only() -> frozenset[str]:
    """The estimator settings a LossEmbedder takes and a LossClassifier does not, plus compare's.

    Read from the two signatures, so a new embedder option (``sampler``) is dropped too.
    """
    from lossreg.estimators import LossClassifier, LossEmbedder

    own = set(LossEmbedder().get_params()) - set(LossClassifier().get_params())
    return frozenset(own | set(_COMPARE_ONLY))


def check_supervised(models: list[str], probe_labels: float | None, scenarios: Any) -> None:
    """Refuse, before any fit, a ``supervised`` reference that nothing could be paired with.

    Its scores go under the few-label probe's names, which the losses only record with
    ``probe_labels``; and it trains on every clean label of its fold, so a stress scenario
    that corrupts or subsamples the labels would corrupt the probe column, not the target the
    losses train on: only ``clean`` applies.
    """
    if not any(label.split(":", 1)[-1] == SUPERVISED for label in models):
        return
    if probe_labels is None:
        raise ValueError(
            "The reference model 'supervised' is scored as few_label_probe_accuracy / _f1, "
            "which the losses only record with probe_labels: pass probe_labels=FRACTION "
            "(--probe-labels 0.1), or drop the model."
        )
    stressed = [s.label for s in scenarios if s.label != "clean"]
    if stressed:
        raise ValueError(
            f"The reference model 'supervised' trains on every clean label of its fold; "
            f"scenarios {stressed} would stress its labels, not the losses' target. Run it "
            "in the 'clean' scenario only (a separate comparison for the others)."
        )


def supervised_classifier(task: str, seed: int, settings: dict[str, Any] | None = None) -> Any:
    """A cross-entropy LossClassifier with ``settings`` (embedder-only keys dropped)."""
    from lossreg.estimators import LossClassifier

    dropped = embedder_only()
    kept = {k: v for k, v in (settings or {}).items() if k not in dropped}
    # the loss is the reference itself: the comparison's loss__ settings are not its own
    kept = {k: v for k, v in kept.items() if not k.startswith("loss__")}
    return LossClassifier(loss="cross_entropy", random_state=seed, **kept)


def run_supervised_fit(spec: dict[str, Any], X: pd.DataFrame, y: pd.Series) -> dict[str, Any]:
    """Fit and score ``model:supervised`` on one fold; the error goes into the record."""
    from sklearn.metrics import f1_score
    from sklearn.pipeline import Pipeline

    from lossreg.compare._fit import preprocessing
    from lossreg.compare._probe_target import PROBE_ROWS
    from lossreg.compare._scenarios import StressedEstimator

    record = {k: v for k, v in spec.items() if k not in ("train", "test", "threads", *PROBE_ROWS)}
    restore_threads = limit_torch_threads(spec.get("threads"))
    try:
        train, test = np.asarray(spec["train"]), np.asarray(spec["test"])
        if "probe_train" in spec:
            y_train, y_test = np.asarray(spec["probe_train"]), np.asarray(spec["probe_test"])
        else:
            y_train, y_test = y.iloc[train].to_numpy(), y.iloc[test].to_numpy()
        network = supervised_classifier(spec["task"], spec["model_seed"], spec["estimator"])
        pipeline = Pipeline([("prep", preprocessing()), ("model", network)])
        model = StressedEstimator(pipeline, spec["scenario"], spec["noise_seed"])
        start = time.perf_counter()
        model.fit(X.iloc[train], y_train)
        record["fit_time"] = time.perf_counter() - start
        predicted = model.estimator_.predict(X.iloc[test])
        record["few_label_probe_accuracy"] = float(np.mean(predicted == y_test))
        record["few_label_probe_f1"] = float(f1_score(y_test, predicted, average="macro"))
        record["n_probe_labels"] = len(model.fit_rows_[1])
        history = model.estimator_[-1].history_
        record["train_loss"] = [float(v) for v in history[:, "train_loss"]]
        record["n_epochs"] = len(history)
        record.update(model.corruption_)
        record["status"] = "ok"
    except Exception as exc:
        record_failure(record, exc)
    finally:
        restore_threads()
    return finish_record(record)
