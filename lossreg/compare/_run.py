"""``compare()``: plan the fits, skip finished ones, run the rest here or on dask, stream them."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lossreg.compare._bag_models import check_bag_models
from lossreg.compare._bags import check_bag_losses
from lossreg.compare._blocking import check_blocking_k
from lossreg.compare._campaign import check_value
from lossreg.compare._curves import check_curves, curve_metrics
from lossreg.compare._data import Dataset, load_data
from lossreg.compare._extras import check_data_extras, declared_extras
from lossreg.compare._few_labels import check_probe_labels
from lossreg.compare._fit import run_fit
from lossreg.compare._losses import BASELINES, LossChoice, parse_losses, task_default_losses
from lossreg.compare._metrics import (
    CLASSIFICATION_METRICS,
    EMBEDDING_METRICS,
    GREATER_IS_BETTER,
    MULTILABEL_METRICS,
    REGRESSION_METRICS,
)
from lossreg.compare._mixed import MIXED_METRICS
from lossreg.compare._models import check_models
from lossreg.compare._multioutput import HEAD_METRICS, MULTIOUTPUT_METRICS
from lossreg.compare._novel import NOVEL_METRICS, check_novel
from lossreg.compare._ordinal import ORDINAL_METRICS
from lossreg.compare._outlier import OUTLIER_METRICS
from lossreg.compare._pretrain import check_pretrain, pretrain_metrics
from lossreg.compare._pretrain_data import check_pretrain_data
from lossreg.compare._probe_target import check_probe_target, probe_fold
from lossreg.compare._ranksurv_metrics import RANKING_METRICS, SURVIVAL_METRICS
from lossreg.compare._recommend import RECOMMENDATION_METRICS, supports_recommendation
from lossreg.compare._regression_embedding import (
    REGRESSION_EMBEDDING_METRICS,
    check_regression_embedding,
)
from lossreg.compare._samplers import check_samplers, split_sampler
from lossreg.compare._scenarios import Scenario, parse_scenario
from lossreg.compare._splits import check_split, fold_test_share, group_splits, split_label
from lossreg.compare._store import ResultStore
from lossreg.compare._supervised import check_supervised
from lossreg.compare._unlabeled import domain_fold, labelled_splits
from lossreg.compare._votes import VOTE_METRICS, check_votes
from lossreg.compare._welfare import WELFARE_METRICS, check_welfare_split

__all__ = ["KILL_AFTER_ENV", "TASK_METRICS", "compare", "plan_fits"]

#: the metrics a task reports, and the first one is its default primary metric
TASK_METRICS = {
    "binary": (*CLASSIFICATION_METRICS, *WELFARE_METRICS),
    "multiclass": (*CLASSIFICATION_METRICS, *NOVEL_METRICS),
    "regression": (*REGRESSION_METRICS, *HEAD_METRICS),
    "multilabel": MULTILABEL_METRICS,
    "multioutput": MULTIOUTPUT_METRICS,
    "embedding": EMBEDDING_METRICS,
    "outlier": OUTLIER_METRICS,
    "ordinal": (*ORDINAL_METRICS, *CLASSIFICATION_METRICS, *VOTE_METRICS),
    "ranking": RANKING_METRICS,
    "survival": SURVIVAL_METRICS,
    "mixed": MIXED_METRICS,
    "embedding_regression": REGRESSION_EMBEDDING_METRICS,
    "recommendation": RECOMMENDATION_METRICS,
}

#: the registry task whose losses a compare task trains: a regression loss takes (n, K)
#: targets (one that cannot fails its fits with the reason); outlier detection reconstructs X
LOSS_TASK = {
    "multioutput": "regression",
    "outlier": "regression",
    "embedding_regression": "embedding",
}

#: bump when a change makes old records incomparable with new ones
KEY_VERSION = 1

#: testing hook: ``LOSSREG_COMPARE_KILL_AFTER=N`` makes the process SIGKILL itself right after
#: writing its N-th record, a deterministic stand-in for a run killed mid-way
KILL_AFTER_ENV = "LOSSREG_COMPARE_KILL_AFTER"

DEFAULT_ESTIMATOR = {"max_iter": 100}


def compare(
    data: Any = None,
    *,
    target: str | None = None,
    group: str | None = None,
    target_domain: str | None = None,
    votes: str | list[str] | None = None,
    event: str | None = None,
    bid: str | None = None,
    teacher: str | None = None,
    calibrate: str | None = None,
    pretrain: str | None = None,
    pretrain_data: str | None = None,
    curves: bool = False,
    models: Any = None,
    adapt: str | None = None,
    adapt_params: dict[str, Any] | None = None,
    probe_labels: float | None = None,
    blocking_k: int | None = None,
    aggregate: Any = None,
    probe_target: str | None = None,
    value: str | None = None,
    losses: Any = None,
    task: str | None = None,
    baseline: str | None = None,
    cv: int = 5,
    repeats: int = 1,
    split: str = "rows",
    test_groups: Any = None,
    scenarios: Any = ("clean",),
    scoring: str | None = None,
    estimator_params: dict[str, Any] | None = None,
    random_state: int = 0,
    n_jobs: int = 1,
    scheduler: Any = None,
    torch_threads: int | None = None,
    out: str | Path | None = None,
    resume: bool = True,
    retry_errors: bool = False,
    report: bool = True,
    progress: bool | Callable[[dict[str, Any], int, int], None] = False,
) -> pd.DataFrame:
    """Cross-validate a model per loss (and scenario) on one data set; return one row per fit.

    Parameters
    ----------
    data : str, path or DataFrame, default=None
        A scikit-learn data set name (``breast_cancer`` when None, ``iris``, ``wine``,
        ``digits``, ``diabetes``), a CSV or Parquet file, or a DataFrame.
    target : str, optional
        Target column (``"target"`` for the scikit-learn data sets).
    group : str, optional
        Column of group / environment ids: not a feature; passed to the losses that declare
        the ``group`` fit extra (group_dro, irm, vrex ...) and scored as
        ``worst_group_accuracy`` (classes). For ``task="ranking"``: the query ids (folds
        keep queries whole).
    target_domain : str, optional
        Classes: ``"COLUMN=VALUE"`` marks the rows of a shifted target domain (COLUMN is not
        a feature). Their labels are hidden in every training fold (semi-supervised losses
        get them as unlabeled rows, the others are fitted without them); each test fold is
        scored on its target-domain rows, and its source rows give ``source_accuracy``.
    votes : str or list of str, optional
        Class targets: columns of annotator vote counts, one per class in sorted class order
        (generated ``votes_0 ..`` columns are found without it). Not features; test folds are
        scored against them (``vote_emd``, ``vote_ece``) and the ``votes`` scenario trains on
        them.
    event : str, optional
        Survival: the column of event indicators (1 observed, 0 censored) beside the time
        ``target``; makes the task ``survival`` (folds are stratified by it).
    bid : str, optional
        Binary clicks of ads in auctions (``group``: the auction ids): the column of bids,
        not a feature; passed to losses that take ``bid`` (``welfare_rank``) and scored as
        ``welfare`` (top-eCPM selection per test auction; see ``_welfare``). Use
        ``split="group"`` to keep auctions whole. ``synthetic:auctions`` names it unasked.
    teacher : str or list of str, optional
        Classes and regression: for the losses that take ``teacher_logits`` (distillation),
        fit this teacher (``hist_gradient_boosting``, ``random_forest``,
        ``logistic_regression`` / ``ridge``, or ``mlp(hidden_units=..., max_iter=...)``, a
        neural teacher whose penultimate features also reach ``teacher_features``) on each
        (stressed) training fold and pass its out-of-fold logits (predictions for
        regression); several teachers (a list, or names separated by commas) serve losses
        that take two models' outputs (``kd_assistive_regression``). The record keeps the
        teachers' own ``teacher_accuracy`` / ``teacher_mae`` on the test fold (see
        :mod:`lossreg.compare._teachers`). Ranking
        (``hist_gradient_boosting`` or ``random_forest`` regressors on the relevance): its
        out-of-fold scores go to ``margin_mse`` and are the target of pointwise (regression)
        losses; the record keeps ``teacher_ndcg_at_10``. Embeddings:
        ``old_embedder(classes=..., rows=..., loss=...)``, an earlier embedder trained on part
        of each training fold, whose gallery scores ``cross_model_knn_accuracy`` (see
        :mod:`lossreg.compare._old_embedder`).
    calibrate : str, optional
        Classes: compare post-hoc calibration losses (``temperature_scaling``,
        ``correctness_aware``, ``h_calibration`` ...) on one base model trained with this
        loss on 80% of each training fold; each calibrator is fitted on the other 20%. The
        baseline defaults to ``temperature_scaling``.
    pretrain : str, optional
        Classes: every loss continues a network first trained with this loss (e.g.
        ``cross_entropy``) on the same training fold, for ``max_iter`` more epochs; records
        ``pretrained_accuracy`` and ``accuracy_change``. The teacher name ``pretrained``
        gives that network's own logits (see :mod:`lossreg.compare._pretrain`). An embedding
        loss (``supcon``) pretrains a LossEmbedder whose hidden layers every loss starts from.
    pretrain_data : str, optional
        With ``pretrain``: pretrain on this set (named like ``data``, with its feature and
        target columns; e.g. generated with a shift) instead of the training fold, transformed
        by each fold's preprocessing (see :mod:`lossreg.compare._pretrain_data`).
    curves : bool, default=False
        Classes and regression: score every epoch's weights on the training rows and the
        test fold (``train_accuracy_curve`` / ``test_accuracy_curve``, or ``..._rmse_...``)
        and report the training-dynamics metrics ``epochs_to_fit``, ``test_accuracy_auc``,
        ``train_accuracy`` (classes), ``test_rmse_auc``, ``train_rmse`` (regression) and
        ``loss_rises`` (see ``lossreg.compare._curves``). Every fit records ``diverged``.
    models : str or list of str, optional
        Reference scikit-learn models fitted beside the losses on the same stressed folds
        and scored the same way, labelled ``model:NAME``: ``gaussian_nb``,
        ``logistic_regression`` (classes), ``ridge`` (regression), ``hist_gradient_boosting``,
        ``random_forest``; ``raw_features`` (embeddings: the preprocessed features as the
        embedding, so its probes are linear models on the raw features; multiclass
        ``novel_classes`` scenarios: k-means on the preprocessed features) and ``supervised``
        (embeddings: a cross-entropy network with the comparison's estimator settings trained
        on every training label, scored as ``few_label_probe_*``; see
        :mod:`lossreg.compare._supervised`).
    probe_labels : float, optional
        Embeddings: also fit a logistic-regression probe on this stratified share of each
        training fold's labels (the same rows for every loss), scored as
        ``few_label_probe_accuracy`` and ``few_label_probe_f1`` (see
        :mod:`lossreg.compare._few_labels`).
    blocking_k : int, optional
        Embeddings whose target is an entity id: also score each fit as a blocker keeping
        the ``blocking_k`` nearest other test rows of each test row as its candidates:
        ``blocking_recall`` (the share of the test fold's matching pairs among the candidate
        pairs) and ``blocking_reduction_ratio`` (see :mod:`lossreg.compare._blocking`); the
        reference model ``minhash_lsh`` (a Jaccard-LSH blocker) needs it.
    aggregate : str or list of str, optional
        Regression: the compared losses (quantile losses at the same levels) become the
        members of a :class:`~lossreg.estimators.QuantileAggregator` fitted on 75% of each
        training fold; each combine rule listed (``weighted``: per-level weights learned on
        the held-out 25%, ``best_single``: the member best there, ``mean``) is a fit labelled
        ``aggregate:RULE``, scored on the test fold (``pinball``, ``wis`` ...). The baseline
        defaults to ``aggregate:best_single`` (see :mod:`lossreg.compare._aggregate`).
    value : str, optional
        Binary: a numeric feature column of per-row monetary values (a customer's lifetime
        value), ``"clv"`` or ``"clv(gamma=0.3, delta=10.0, contact_cost=1.0)"``. Its raw
        values reach the losses that declare the ``value`` fit extra, and every fit is scored
        by the profit of a retention campaign run on its decisions (``campaign_profit``, with
        a training-fold profit threshold ``campaign_profit_tuned`` ...; see
        :mod:`lossreg.compare._campaign`). The column stays a feature.
    probe_target : str, optional
        Embeddings: a second label column (not a feature) that every embedding probe reads
        instead of the target the loss trains on, e.g. activities beside the device ids a
        multi-device loss learns from (see :mod:`lossreg.compare._probe_target`); the
        reference model ``supervised`` trains on it.
    adapt : str, optional
        Multiclass, with ``target_domain``: train this source loss on each training fold's
        source rows, then adapt the network on unlabeled target rows with each other
        compared loss (``entropy_min``, ``eata_entropy`` ...; see
        :mod:`lossreg.compare._adapt`). The source loss is the unadapted baseline.
    adapt_params : dict, optional
        The adaptation: ``rows`` (``"test"``: the scored target rows, test-time adaptation;
        ``"train"``: the training fold's target rows), ``max_iter`` (10), ``lr`` (1e-3),
        ``batch_size`` (64), ``parameters`` (``"norm"`` or ``"all"``).
    losses : str or list, optional
        ``"cross_entropy,focal(gamma=2.0)"``, a list of such names, or None for a sensible
        set registered for the task (the CLI's ``--task-default``). The baseline is added
        when missing.
    task : {"binary", "multiclass", "ordinal", "regression", "multilabel", "multioutput", \
"embedding", "outlier", "ranking", "survival", "recommendation"}, optional
        Overrides the task detected from the target (``ordinal``: ordered integer classes,
        scored with ``class_mae``, ``class_rmse`` and ``qwk`` as well). ``ranking`` needs
        ``group`` (query ids) and takes ranking losses (LossRanker) and regression losses
        (pointwise); ``survival`` needs ``event``; ``recommendation`` reads user ids (the one
        feature) and item ids (the target) (see :mod:`lossreg.compare._recommend`).
    baseline : str, optional
        The loss label every other loss is paired with; ``cross_entropy`` / ``mse``.
    cv, repeats : int
        ``repeats`` times a shuffled (stratified for classes) ``cv``-fold split.
    split : {"rows", "group"}, default="rows"
        ``"group"``: each test fold holds whole groups of the ``group`` column that its
        training fold never saw (GroupKFold; leave-one-group-out when ``cv`` equals the
        number of groups).
    test_groups : list, optional
        Groups whose rows are only ever tested on (a shifted test environment); the other
        rows are cross-validated and fold ``k`` is scored on the ``k``-th part of these.
    scenarios : sequence of str
        Stress scenarios applied to training folds only: ``clean``, ``symmetric_noise:0.3``,
        ``class_noise:0.2``, ``imbalance:10``, ``target_noise:0.5``, ``outliers:0.1``,
        ``unlabeled:0.9`` (hidden labels, see :mod:`lossreg.compare._unlabeled`),
        ``novel_classes:5`` (novel-class discovery, see :mod:`lossreg.compare._novel`);
        ``bags:32`` / ``sorted_bags:32`` give the losses that declare ``bag`` / ``bag_target``
        (``dllp``, ``bag_mse`` ...) bag ids and bag label proportions (mean responses) in
        place of the labels, the other losses the true labels.
    scoring : str, optional
        The primary metric: ``accuracy`` (classes) / ``rmse`` (regression) by default.
    estimator_params : dict, optional
        Passed to LossClassifier / LossRegressor (``max_iter`` defaults to 100 here), except
        ``target_scaling`` (regression): ``"standard"`` (default), ``"scale"`` or ``"none"``,
        how training targets are scaled before the fit (predictions are mapped back); or a
        dict by loss name, ``{"phi_s_mse": "none", "default": "standard"}``.
    random_state : int
        Seeds the splits, the corruption and each model; a fit's seeds do not depend on
        where or in which order it runs.
    n_jobs : int
        Parallel fits on this machine (joblib; -1 for all cores).
    scheduler : str or distributed.Client, optional
        Run the fits on a dask.distributed cluster instead.
    torch_threads : int, optional
        Torch threads per fit: ``max(1, cores // n_jobs)`` locally, 1 on dask.
    out : path, optional
        Folder for ``results.jsonl`` (streamed, one line per fit), ``summary.csv``,
        ``report.html`` and ``report.md``. Finished fits found there are not rerun.
    resume : bool
        False discards the results already in ``out``.
    retry_errors : bool
        Rerun fits recorded as failed instead of keeping their error.
    report : bool
        Write the reports into ``out``.
    progress : bool or callable
        True shows a progress bar; a callable gets ``(record, done, total)`` per fit.

    Returns
    -------
    DataFrame
        One row per loss × parameters × scenario × repeat × fold: identifiers, ``status`` /
        ``error``, every metric, ``fit_time``, ``train_loss`` (per epoch) and
        ``reliability`` bins. ``df.attrs`` holds task, primary metric, baseline and counts.
    """
    dataset = load_data(
        data,
        target=target,
        task=task,
        group=group,
        target_domain=target_domain,
        votes=votes,
        event=event,
        probe_target=probe_target,
        bid=bid,
    )
    plan = plan_fits(
        dataset,
        losses=losses,
        baseline=baseline,
        cv=cv,
        repeats=repeats,
        scenarios=scenarios,
        estimator_params=estimator_params,
        random_state=random_state,
        teacher=teacher,
        calibrate=calibrate,
        pretrain=pretrain,
        pretrain_data=pretrain_data,
        curves=curves,
        models=models,
        split=split,
        test_groups=test_groups,
        adapt=adapt,
        adapt_params=adapt_params,
        probe_labels=probe_labels,
        blocking_k=blocking_k,
        aggregate=aggregate,
        value=value,
    )
    known = (
        TASK_METRICS[dataset.task]
        + curve_metrics(dataset.task, curves)
        + pretrain_metrics(pretrain)
    )
    primary = scoring or known[0]
    if primary not in (*known, "fit_time"):
        raise ValueError(
            f"Unknown scoring {primary!r} for {dataset.task} targets; use one of: "
            f"{', '.join(known)}."
        )
    threads = torch_threads or (
        1 if scheduler is not None else max(1, _cores() // _n_workers(n_jobs))
    )
    store = ResultStore(Path(out) / "results.jsonl") if out is not None else None
    if store is not None and not resume and store.path.exists():
        store.path.unlink()
    done = store.load() if store is not None else {}
    wanted = {fit["key"] for fit in plan["fits"]}
    kept = {
        k: r
        for k, r in done.items()
        if k in wanted and (r.get("status") == "ok" or not retry_errors)
    }
    todo = [dict(fit, threads=threads) for fit in plan["fits"] if fit["key"] not in kept]
    run_id = uuid.uuid4().hex[:12]
    new: dict[str, dict[str, Any]] = {}
    kill_after = int(os.environ.get(KILL_AFTER_ENV, "0") or 0)
    report_progress = _progress(progress, len(plan["fits"]), len(kept))
    try:
        for record in _execute(todo, dataset, n_jobs, scheduler):
            record["run_id"] = run_id
            new[record["key"]] = record
            if store is not None:
                store.append(record)
            report_progress(record)
            if kill_after and len(new) >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
    finally:
        report_progress(None)
        if store is not None:
            store.close()
    records = {**kept, **new}
    frame = _frame([records[fit["key"]] for fit in plan["fits"]], plan)
    frame.attrs.update(
        data=dataset.name,
        fingerprint=dataset.fingerprint,
        n_rows=dataset.n_rows,
        n_features=int(dataset.X.shape[1]),
        task=dataset.task,
        primary=primary,
        greater_is_better=GREATER_IS_BETTER[primary],
        baseline=plan["baseline"],
        losses=[c.label for c in plan["losses"]],
        scenarios=[s.label for s in plan["scenarios"]],
        cv=cv,
        repeats=repeats,
        random_state=random_state,
        estimator=plan["estimator"],
        n_computed=len(new),
        n_skipped=len(kept),
        run_id=run_id,
        **plan["split_attrs"],
    )
    if out is not None and report:
        from lossreg.compare._report import write_reports

        write_reports(frame, Path(out))
    return frame


def plan_fits(
    dataset: Dataset,
    *,
    losses: Any = None,
    baseline: str | None = None,
    cv: int = 5,
    repeats: int = 1,
    scenarios: Any = ("clean",),
    estimator_params: dict[str, Any] | None = None,
    random_state: int = 0,
    teacher: str | None = None,
    calibrate: str | None = None,
    pretrain: str | None = None,
    pretrain_data: str | None = None,
    curves: bool = False,
    models: Any = None,
    split: str = "rows",
    test_groups: Any = None,
    adapt: str | None = None,
    adapt_params: dict[str, Any] | None = None,
    probe_labels: float | None = None,
    aggregate: Any = None,
    blocking_k: int | None = None,
    value: str | None = None,
) -> dict[str, Any]:
    """Every fit of a comparison, with its stable key, seeds and row indices."""
    from lossreg.registry import default_registry

    registry = default_registry()
    task = dataset.task
    if losses is None:
        choices = task_default_losses(task, registry.list_losses(task=LOSS_TASK.get(task, task)))
    else:
        choices = parse_losses(losses)
    # aliases (ce) become canonical names, so a loss is not compared with itself
    choices = [LossChoice(registry.get_spec(c.name).name, c.params) for c in choices]
    aggregating = None
    if aggregate is not None:  # the losses are an aggregator's members (see _aggregate)
        from lossreg.compare._aggregate import check_aggregate

        others = {"teacher": teacher, "pretrain": pretrain, "curves": curves, "adapt": adapt}
        # members are plain LossRegressors fitted inside the aggregator, batched at random
        others["whole_group_batches"] = (estimator_params or {}).get("whole_group_batches")
        aggregating = check_aggregate(aggregate, choices, baseline, task, registry, others)
        baseline = choices[0].label  # in the list already: the block below adds no loss
    default_baseline = "temperature_scaling" if calibrate is not None else BASELINES[task]
    if adapt is not None:  # the unadapted source model
        default_baseline = adapt
    base = parse_losses(baseline or default_baseline)[0]
    base = LossChoice(registry.get_spec(base.name).name, base.params)
    baseline = base.label
    if baseline not in [c.label for c in choices]:
        choices = [base, *choices]
    if len({c.label for c in choices}) != len(choices):
        raise ValueError("A loss is listed twice (under an alias?).")
    if calibrate is not None:  # before the task check: its message names the real problem
        from lossreg.compare._calibrate import check_calibrate

        labels = [c.label for c in choices]
        calibrate = check_calibrate(calibrate, labels, [c.name for c in choices], task, registry)
    _check_losses(choices, task, registry)
    check_samplers([(c.label, c.params) for c in choices], task, estimator_params)
    _check_teacher(choices, task, teacher, registry)
    if pretrain is not None and calibrate is not None:
        raise ValueError("pretrain and calibrate cannot be combined: calibrators fit no network.")
    pretrain = check_pretrain(pretrain, task, teacher)
    pretraining = check_pretrain_data(pretrain_data, pretrain, dataset)
    check_curves(task, curves)
    references = [LossChoice(label) for label in check_models(models, task)]
    # the losses' extras, an aggregator's members included (they are not fitted alone)
    extras = {c.label: declared_extras(c.name, c.params) for c in choices}
    if aggregating is not None:  # members are fitted inside the aggregator fits only
        choices, baseline = [], aggregating["baseline"]
        references = [*(LossChoice(label) for label in aggregating["labels"]), *references]
    adapting = None
    if adapt is not None:
        from lossreg.compare._adapt import check_adapt

        has_domain = dataset.target_rows is not None
        adapting = check_adapt(adapt, adapt_params, choices, task, has_domain, registry)
    probe_labels = check_probe_labels(probe_labels, task)
    blocking_k = check_blocking_k(blocking_k, task, [r.label for r in references])
    campaign = check_value(value, dataset.X, task, extras)
    supplied = {"group": dataset.groups, "bid": dataset.bids}
    available = {name for name, column in supplied.items() if column is not None}
    if task == "recommendation":  # LossRecommender makes each row's scores a group itself
        available.add("group")
    check_data_extras(extras, available)
    check_probe_target(dataset.probe is not None, task)
    if isinstance(scenarios, (str, Scenario)):
        scenarios = [scenarios]
    parsed = [parse_scenario(s) for s in scenarios]
    for scenario in parsed:
        scenario.check(task)
    if len({s.label for s in parsed}) != len(parsed):
        raise ValueError("A scenario is listed twice.")
    check_bag_losses(extras, parsed)
    check_bag_models([r.label for r in references], parsed)
    check_votes(dataset.votes is not None, parsed)
    check_novel(parsed, [r.label for r in references], dataset.y, task)
    check_supervised([r.label for r in references], probe_labels, parsed)
    if cv < 2 or repeats < 1:
        raise ValueError(f"cv must be >= 2 and repeats >= 1. Got cv={cv}, repeats={repeats}.")
    estimator = {**DEFAULT_ESTIMATOR, **(estimator_params or {})}
    check_regression_embedding(choices, task, estimator.get("bin_targets"))
    held_out = check_split(split, test_groups, dataset.groups, cv)
    check_welfare_split(dataset.bids is not None, split)
    by_group = split_label(split, held_out)
    minority = None
    tail: list[int] = []
    if task == "multilabel":
        # the rarest third of the labels (at least one), by their frequency in the data set
        rates = dataset.y.to_numpy().mean(axis=0)
        tail = sorted(np.argsort(rates, kind="stable")[: max(1, len(rates) // 3)].tolist())
    elif task in ("binary", "multiclass", "ordinal"):
        # The rarest class; among equals the one the imbalance scenario makes rarest.
        classes, counts = np.unique(dataset.y.dropna().to_numpy(), return_counts=True)
        minority = classes[np.argsort(-counts, kind="stable")[-1]]
        minority = minority.item() if hasattr(minority, "item") else minority
    fits = []
    for repeat in range(repeats):
        seed = _seed(random_state, "cv", repeat)
        if by_group is None:
            splits = list(_splitter(dataset, cv, seed))
        else:
            splits = group_splits(task, dataset.y, dataset.groups, cv, seed, split, held_out)
        for fold, (train, test) in enumerate(splits):
            for scenario in parsed:
                for choice in (*choices, *references):
                    identity = {
                        "data": dataset.fingerprint,
                        "task": task,
                        "loss": choice.name,
                        "params": choice.params_json(),
                        "scenario": scenario.label,
                        "cv": cv,
                        "fold": fold,
                        "repeat": repeat,
                        "random_state": random_state,
                        "estimator": json.dumps(estimator, sort_keys=True, default=repr),
                        "version": KEY_VERSION,
                    }
                    if teacher is not None:
                        identity["teacher"] = teacher  # absent otherwise: older keys still match
                    if calibrate is not None:
                        identity["calibrate"] = calibrate
                    if pretrain is not None:
                        identity["pretrain"] = pretrain  # likewise
                    if pretraining is not None:
                        identity["pretrain_data"] = pretraining  # likewise
                    if curves:
                        identity["curves"] = True  # likewise
                    if by_group is not None:
                        identity["split"] = by_group  # likewise
                    if adapting is not None:
                        identity["adapt"] = json.dumps(adapting, sort_keys=True, default=repr)
                    if probe_labels is not None:
                        identity["probe_labels"] = probe_labels  # likewise
                    if blocking_k is not None:
                        identity["blocking_k"] = blocking_k  # likewise
                    if campaign is not None:
                        identity["value"] = json.dumps(campaign, sort_keys=True)  # likewise
                    if aggregating is not None:  # the members (the rule is the "loss")
                        members = {k: aggregating[k] for k in ("members", "levels")}
                        identity["aggregate"] = json.dumps(members, sort_keys=True)
                    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode())
                    fits.append(
                        {
                            "key": key.hexdigest()[:24],
                            "data": dataset.name,
                            "fingerprint": dataset.fingerprint,
                            "task": task,
                            "loss": choice.name,
                            "params": choice.params,
                            "loss_label": choice.label,
                            "scenario": scenario.label,
                            "scenario_kind": scenario.kind,
                            "scenario_value": scenario.value,
                            "cv": cv,
                            "fold": fold,
                            "repeat": repeat,
                            "random_state": random_state,
                            "model_seed": _seed(random_state, "model", repeat, fold),
                            "noise_seed": _seed(
                                random_state, "noise", scenario.label, repeat, fold
                            ),
                            "estimator": estimator,
                            "minority": minority,
                            "tail_labels": tail,
                            "teacher": teacher,
                            "calibrate": calibrate,
                            "pretrain": pretrain,
                            "pretrain_data": pretraining,
                            "curves": curves,
                            "adapt": adapting,
                            "probe_labels": probe_labels,
                            "blocking_k": blocking_k,
                            "aggregate": aggregating,
                            "value": campaign,
                            "train": train.tolist(),
                            "test": test.tolist(),
                        }
                    )
                    if dataset.target_rows is not None:
                        fits[-1].update(domain_fold(train, test, dataset.target_rows))
                    if dataset.probe is not None:  # the labels the embedding probes read
                        fits[-1].update(probe_fold(train, test, dataset.probe))
                    if dataset.true_sigma is not None:  # generated data: the noise sd per row
                        fits[-1]["true_sigma"] = dataset.true_sigma.to_numpy()[test].tolist()
    return {
        "fits": fits,
        "losses": [*choices, *references],
        "scenarios": parsed,
        "baseline": baseline,
        "estimator": estimator,
        # group-aware splits: folds are not equal shares of one set of rows
        "split_attrs": (
            {} if by_group is None else {"split": by_group, "test_share": fold_test_share(fits)}
        ),
    }


def _check_losses(choices: list[LossChoice], task: str, registry: Any) -> None:
    from lossreg.errors import UnsupportedTaskError
    from lossreg.params import check_params

    trained_for = LOSS_TASK.get(task, task)
    why = f" (it trains {trained_for} losses)" if trained_for != task else ""
    for choice in choices:
        spec = registry.get_spec(choice.name)  # UnknownLossError with a suggestion
        # binary and ordinal targets are class targets: multiclass losses fit them too
        supported = trained_for in spec.tasks or (
            trained_for in ("binary", "ordinal") and "multiclass" in spec.tasks
        )
        # a regression loss ranks pointwise (scores = predicted relevance)
        supported = supported or (trained_for == "ranking" and "regression" in spec.tasks)
        # scores of a positive and its sampled negatives, in a layout the loss takes
        supported = supported or (trained_for == "recommendation" and supports_recommendation(spec))
        if not supported:
            options = registry.list_losses(task=trained_for) or [  # no spec names the task
                n for n in registry.list_losses() if supports_recommendation(registry.get_spec(n))
            ]
            raise UnsupportedTaskError(
                f"Loss {choice.name!r} does not support task {task!r}{why} (supports: "
                f"{', '.join(sorted(spec.tasks))}). Use one of: {', '.join(options[:15])} ..."
            )
        # sampler= chooses the estimator's batches, not a loss parameter (see _samplers)
        check_params(
            spec.name, spec.params, split_sampler(choice.params)[0], data_params=(), prefix=""
        )


def _check_teacher(choices: list[LossChoice], task: str, teacher: Any, registry: Any) -> None:
    from lossreg.compare._extras import declared_extras
    from lossreg.compare._old_embedder import check_old_embedder
    from lossreg.compare._ranksurv import RANKING_TEACHERS
    from lossreg.compare._teachers import check_teachers

    if task == "embedding":  # an earlier embedder (``_old_embedder``)
        return check_old_embedder(choices, teacher)
    if task != "ranking":
        return check_teachers(choices, task, teacher)
    takes = [c.label for c in choices if "teacher_logits" in declared_extras(c.name, c.params)]
    known = RANKING_TEACHERS
    if teacher is None:
        if takes:
            raise ValueError(
                f"{', '.join(takes)} distil(s) a teacher's logits: name the teacher with "
                f"teacher=... (--teacher), one of {', '.join(known)}."
            )
        return
    if teacher not in known:
        raise ValueError(f"Unknown teacher {teacher!r}; teachers: {', '.join(known)}.")


def _splitter(dataset: Dataset, cv: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import KFold, StratifiedKFold

    from lossreg.compare._ranksurv import RANKSURV_TASKS, ranksurv_splits

    if dataset.task in RANKSURV_TASKS:
        return ranksurv_splits(dataset.task, dataset.y, dataset.groups, cv, seed)
    if dataset.task == "recommendation":  # part of every user's interactions held out
        from lossreg.compare._recommend import recommendation_splits

        return recommendation_splits(dataset.X["user"], cv, seed)
    if isinstance(dataset.y, pd.Series) and dataset.y.isna().any():
        # the unlabeled pool (no target) is never tested: split the labelled rows only
        return labelled_splits(
            dataset.y,
            lambda rows: _splitter(_rows(dataset, rows), cv, seed),
        )
    n = np.zeros(dataset.n_rows)
    stratify = dataset.task in ("binary", "multiclass", "ordinal", "embedding", "outlier")
    strata = dataset.y.astype(str)
    if dataset.target_rows is not None:  # every fold gets both domains
        strata = strata + np.where(dataset.target_rows, "|target", "|source")
    if stratify and strata.value_counts().min() >= cv:
        return StratifiedKFold(cv, shuffle=True, random_state=seed).split(n, strata)
    return KFold(cv, shuffle=True, random_state=seed).split(n)


def _rows(dataset: Dataset, rows: np.ndarray) -> Dataset:
    target_rows = None if dataset.target_rows is None else dataset.target_rows[rows]
    X, y = dataset.X.iloc[rows], dataset.y.iloc[rows]
    return replace(dataset, X=X, y=y, target_rows=target_rows)


def _seed(*parts: Any) -> int:
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _n_workers(n_jobs: int) -> int:
    return _cores() if n_jobs < 0 else max(1, n_jobs)


def _execute(
    todo: list[dict[str, Any]], dataset: Dataset, n_jobs: int, scheduler: Any
) -> Iterator[dict[str, Any]]:
    """Yield each fit's record as soon as it finishes, wherever it ran."""
    if not todo:
        return
    X, y, groups, votes, bids = dataset.X, dataset.y, dataset.groups, dataset.votes, dataset.bids
    if scheduler is not None:
        yield from _execute_dask(todo, X, y, groups, scheduler, votes, bids)
    elif _n_workers(n_jobs) == 1:
        for spec in todo:
            yield run_fit(spec, X, y, groups, votes, bids)
    else:
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        yield from parallel(delayed(run_fit)(spec, X, y, groups, votes, bids) for spec in todo)


def _execute_dask(
    todo: list[dict[str, Any]],
    X: pd.DataFrame,
    y: pd.Series,
    groups: pd.Series | None,
    scheduler: Any,
    votes: pd.DataFrame | None = None,
    bids: pd.Series | None = None,
) -> Iterator[dict[str, Any]]:
    from distributed import Client, as_completed

    own = not isinstance(scheduler, Client)
    client = Client(scheduler) if own else scheduler
    try:
        X_f, y_f = client.scatter([X, y], broadcast=True)
        futures = [
            client.submit(run_fit, spec, X_f, y_f, groups, votes, bids, pure=False) for spec in todo
        ]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            client.cancel(futures)
    finally:
        if own:
            client.close()


def _progress(
    progress: bool | Callable[[dict[str, Any], int, int], None], total: int, done: int
) -> Callable[[dict[str, Any] | None], None]:
    """Return a callback taking each record (None at the end)."""
    count = [done]
    if callable(progress):

        def call(record: dict[str, Any] | None) -> None:
            if record is not None:
                count[0] += 1
                progress(record, count[0], total)

        return call
    if not progress:
        return lambda record: None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]fits"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=False,
    )
    bar_task = bar.add_task(f"({done} already done)" if done else "", total=total, completed=done)
    bar.start()

    def update(record: dict[str, Any] | None) -> None:
        if record is None:
            bar.stop()
            return
        status = "" if record.get("status") == "ok" else " [red]failed"
        label = f"{record['loss_label']} · {record['scenario']}{status}"
        bar.update(bar_task, advance=1, description=label)

    return update


def _frame(records: list[dict[str, Any]], plan: dict[str, Any]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records)
    for column in ("status", "error", "fit_time"):
        if column not in frame:
            frame[column] = None
    loss_order = {c.label: i for i, c in enumerate(plan["losses"])}
    scenario_order = {s.label: i for i, s in enumerate(plan["scenarios"])}
    frame = frame.assign(
        _s=frame["scenario"].map(scenario_order), _l=frame["loss_label"].map(loss_order)
    )
    frame = frame.sort_values(["_s", "_l", "repeat", "fold"]).drop(columns=["_s", "_l"])
    return frame.reset_index(drop=True)
