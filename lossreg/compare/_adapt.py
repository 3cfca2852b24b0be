"""``lossreg compare --adapt SOURCE``: compare test-time / source-free adaptation losses.

With ``adapt`` (a source loss, e.g. ``"cross_entropy"``) and a ``target_domain``, every fit
trains a :class:`~lossreg.estimators.LossClassifier` with the source loss on the training
fold's *source* rows only (the target-domain rows' labels are hidden, and a supervised loss
drops unlabeled rows), then, for each compared loss other than the source loss, adapts that
network on unlabeled target-domain rows with the compared loss
(:meth:`~lossreg.estimators.LossClassifier.adapt`, no source rows) and scores it on the test
fold's target-domain rows (``source_accuracy`` on its source rows measures forgetting). The
source loss itself is the unadapted model, and the default baseline.

Which target rows are adapted on (``adapt_params["rows"]``):

- ``"test"``: the test fold's target rows, the ones then scored (transductive test-time
  adaptation, as Tent and EATA adapt on the test stream);
- ``"train"``: the training fold's target rows (source-free domain adaptation, as SFDA
  adapts on the target training set and is scored on held-out target rows).

The source model's seed depends only on (repeat, fold), so every adaptation loss of a fold
starts from the same network and the paired differences measure the adaptation alone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ADAPT_DEFAULTS", "adapt_fit", "check_adapt", "source_loss"]

#: adaptation settings and their defaults (``adapt_params``)
ADAPT_DEFAULTS: dict[str, Any] = {
    "rows": "test",
    "max_iter": 10,
    "lr": 1e-3,
    "batch_size": 64,
    "parameters": "norm",
}


def check_adapt(
    source: Any,
    params: Mapping[str, Any] | None,
    choices: list[Any],
    task: str,
    has_domain: bool,
    registry: Any,
) -> dict[str, Any]:
    """Check an ``adapt`` setting; return the plan's adaptation record.

    Raises ``ValueError`` naming the value and the fix: a class target with a
    ``target_domain``, a supervised source loss, known settings, and compared losses (other
    than the source) that learn from unlabeled rows.
    """
    from lossreg._effective import effective_spec
    from lossreg.compare._losses import LossChoice, parse_losses

    if not isinstance(source, str) or not source:
        raise ValueError(
            f"adapt must name the source model's loss, e.g. adapt='cross_entropy'. Got {source!r}."
        )
    if task != "multiclass":
        raise ValueError(
            f"adapt={source!r} adapts a multiclass classifier (the adaptation losses are "
            f"multiclass); the target is {task}."
        )
    if not has_domain:
        raise ValueError(
            f"adapt={source!r} adapts to a shifted target domain: name its rows with "
            "target_domain='COLUMN=VALUE' (e.g. data='synthetic:covariate_shift', "
            "target_domain='domain=target')."
        )
    choice = parse_losses(source)[0]
    spec = registry.get_spec(choice.name)  # UnknownLossError with a suggestion
    choice = LossChoice(spec.name, choice.params)
    if effective_spec(spec, choice.params).semi_supervised or task not in spec.tasks:
        raise ValueError(
            f"adapt={source!r}: the source model is trained on the labelled source rows, so "
            "its loss must be a supervised multiclass loss, e.g. adapt='cross_entropy'."
        )
    settings = dict(ADAPT_DEFAULTS)
    unknown = sorted(set(params or {}) - set(ADAPT_DEFAULTS))
    if unknown:
        raise ValueError(f"Unknown adapt_params {unknown!r}; known: {', '.join(ADAPT_DEFAULTS)}.")
    settings.update(params or {})
    if settings["rows"] not in ("test", "train"):
        raise ValueError(
            f"adapt_params rows must be 'test' (adapt on the scored target rows, test-time "
            f"adaptation) or 'train' (the training fold's target rows). Got {settings['rows']!r}."
        )
    wrong = [
        c.label
        for c in choices
        if c.label != choice.label
        and not effective_spec(registry.get_spec(c.name), c.params).semi_supervised
    ]
    if wrong:
        raise ValueError(
            f"With adapt={source!r} every compared loss besides {choice.label!r} (the unadapted "
            f"model) adapts without labels and must learn from unlabeled rows; {wrong!r} do not. "
            "Use e.g. entropy_min, eata_entropy or entropy_prior_kl."
        )
    return {
        "source": choice.name,
        "source_params": choice.params,
        "source_label": choice.label,
        **settings,
    }


def source_loss(spec: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The loss and parameters the fit trains with: the source loss when adapting."""
    adapt = spec.get("adapt")
    if not adapt:
        return spec["loss"], spec["params"]
    return adapt["source"], adapt["source_params"]


def adapt_fit(est: Any, prep: Any, X: pd.DataFrame, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Adapt the fitted ``est`` with the fit's loss on its target rows; return record fields.

    Nothing happens for the source loss itself (the unadapted model).
    """
    adapt = spec["adapt"]
    if spec["loss_label"] == adapt["source_label"]:
        return {"n_adapt": 0}
    rows = np.asarray(spec["test"] if adapt["rows"] == "test" else spec["hidden"])
    if len(rows) < 2:
        raise ValueError(
            f"adapt rows={adapt['rows']!r}: this fold has {len(rows)} target-domain rows to "
            "adapt on; use more rows or fewer folds."
        )
    start = time.perf_counter()
    est.adapt(
        prep.transform(X.iloc[rows]),
        spec["loss"],
        loss_params=spec["params"],
        max_iter=int(adapt["max_iter"]),
        lr=float(adapt["lr"]),
        batch_size=int(adapt["batch_size"]),
        parameters=adapt["parameters"],
        random_state=spec["model_seed"],
    )
    elapsed = time.perf_counter() - start
    history = [float(v) for v in est.adapt_history_]
    return {"n_adapt": len(rows), "adapt_time": elapsed, "adapt_loss": history}
