"""The ``lossreg`` command line: list, inspect, check and compare registered losses."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["cli", "main"]

USAGE_ERROR = 2  # exit status for names that do not exist, as click uses for bad usage


def _out() -> Console:
    # Piped output (files, CI logs) gets wide lines instead of rich's 80-column default.
    console = Console()
    return console if console.is_terminal else Console(width=200)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lossreg")
def cli() -> None:
    """lossreg: a registry of PyTorch losses for scikit-learn estimators."""


@cli.command("list")
@click.option("--task", help="Only losses that support this task (binary, multiclass, ...).")
@click.option("--plugin", help="Only losses from this plugin or distribution.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(task: str | None, plugin: str | None, as_json: bool) -> None:
    """List the registered losses with the plugin that provides each."""
    from lossreg.registry import default_registry
    from lossreg.spec import TASKS

    if task is not None and task not in TASKS:
        _fail(f"Unknown task {task!r}. Valid tasks: {', '.join(sorted(TASKS))}.")
    registry = default_registry()
    entries = [registry.get_entry(n) for n in registry.list_losses(task=task, plugin=plugin)]
    if as_json:
        _echo_json(
            [
                {
                    "name": e.spec.name,
                    "aliases": list(e.spec.aliases),
                    "tasks": sorted(e.spec.tasks),
                    "plugin": e.plugin.name,
                    "distribution": e.plugin.distribution,
                    "summary": e.spec.summary,
                    "reference": e.spec.reference,
                }
                for e in entries
            ]
        )
        return
    table = Table(title=f"{len(entries)} losses", title_justify="left")
    for column in ("name", "aliases", "tasks", "plugin"):
        table.add_column(column, no_wrap=True)
    table.add_column("summary", overflow="fold")
    for e in entries:
        table.add_row(
            *map(
                escape,  # plugin text is not rich markup: "[0, 1]" must stay visible
                (
                    e.spec.name,
                    ", ".join(e.spec.aliases),
                    ", ".join(sorted(e.spec.tasks)),
                    e.plugin.name,
                    e.spec.summary,
                ),
            )
        )
    _out().print(table)


@cli.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info_command(name: str, as_json: bool) -> None:
    """Show one loss: formula, tasks, link, parameters, data needs, paper and plugin."""
    from lossreg._describe import FLAGS, describe_loss
    from lossreg.errors import UnknownLossError
    from lossreg.registry import default_registry

    try:
        data = describe_loss(default_registry().get_entry(name))
    except UnknownLossError as exc:
        _fail(str(exc))
    if as_json:
        _echo_json(data)
        return
    console = _out()
    aliases = f" (aliases: {', '.join(data['aliases'])})" if data["aliases"] else ""
    console.print(
        f"[bold]{escape(data['name'])}[/bold]{escape(aliases)} — {escape(data['summary'])}",
        highlight=False,
    )
    console.print()
    console.print(data["formula"], markup=False, highlight=False)
    console.print()
    link = data["link"]
    rows = [
        ("tasks", ", ".join(data["tasks"])),
        ("link", f"{link['name']} ({link['kind']}): {link['summary']}"),
        ("output size", data["output_size"] or "by the link and the task"),
        ("outputs", data["outputs"]),
        ("data params", ", ".join(data["data_params"]) or "—"),
        ("member data", data["data_params_of"] or "—"),
        ("fit extras", ", ".join(data["fit_extras"]) or "—"),
        (
            "extra widths",
            "; ".join(f"{k}: {v}" for k, v in data["extra_widths"].items()) or "—",
        ),
        (
            "flags",
            ", ".join(f"{k}={data[k]}" for k in FLAGS),
        ),
        ("reference", data["reference"]),
        ("plugin", f"{data['plugin']} ({data['distribution']} {data['version']})"),
        ("factory", data["factory"]),
    ]
    for key, value in rows:
        console.print(f"[bold]{key:>12}[/bold]  {escape(str(value))}", highlight=False)
    if data["parameters"]:
        table = Table(title="parameters", title_justify="left")
        for column in ("name", "default", "valid values", "search grid", "meaning"):
            table.add_column(column, overflow="fold")
        for p in data["parameters"]:
            grid = ", ".join(repr(g) for g in p["grid"]) or "—"
            cells = (p["name"], repr(p["default"]), p["valid"], grid, p["doc"])
            table.add_row(*map(escape, cells))
        console.print(table)
    else:
        console.print(f"[bold]{'parameters':>12}[/bold]  none", highlight=False)


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """List the plugins found, failed and blocked ones with the reason."""
    from lossreg._describe import describe_plugin
    from lossreg.registry import default_registry

    rows = [describe_plugin(p) for p in default_registry().list_plugins()]
    if as_json:
        _echo_json(rows)
        return
    table = Table(title=f"{len(rows)} plugins", title_justify="left")
    for column in ("plugin", "source", "distribution", "status", "losses"):
        table.add_column(column, no_wrap=True)
    table.add_column("error", overflow="fold")
    for r in rows:
        dist = f"{r['distribution']} {r['version']}" if r["distribution"] else "—"
        cells = (r["name"], r["source"], dist, r["status"], str(len(r["losses"])), r["error"] or "")
        table.add_row(*map(escape, cells))
    _out().print(table)


def _parse_param(text: str) -> tuple[str, Any]:
    import ast

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        _fail(f"--param takes KEY=VALUE, got {text!r}.")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw  # a bare word: a string option
    return key.strip(), value


def _losses_to_check(target: str) -> list[str]:
    """The loss ``target`` names, or every loss of the plugin or distribution it names."""
    from lossreg._suggest import did_you_mean
    from lossreg.registry import default_registry

    registry = default_registry()
    if target in registry:
        return [registry.get_spec(target).name]
    loaded = [p for p in registry.list_plugins() if p.status == "loaded"]
    for plugin in loaded:
        if target in (plugin.name, plugin.distribution):
            return registry.list_losses(plugin=target)
    known = [*registry.list_losses(), *(n for p in loaded for n in (p.name, p.distribution) if n)]
    for name in registry.list_losses():
        known.extend(registry.get_spec(name).aliases)
    _fail(
        f"Unknown loss or plugin {target!r}.{did_you_mean(target, known)} "
        "See `lossreg list` and `lossreg plugins`."
    )
    return []  # not reached


@cli.command("check")
@click.argument("target", metavar="NAME|PLUGIN")
@click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A hyperparameter to check the loss with (Python literal), e.g. -p gamma=0.5.",
)
@click.option("--check", "only", multiple=True, help="Run only this check (repeatable).")
@click.option("--skip", multiple=True, help="Do not run this check (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def check_command(
    target: str,
    params: tuple[str, ...],
    only: tuple[str, ...],
    skip: tuple[str, ...],
    as_json: bool,
) -> None:
    """Run the conformance kit on a loss, or on every loss of a plugin.

    Exits 1 when a check fails, 2 for an unknown loss, plugin or check name.
    """
    from lossreg._suggest import did_you_mean
    from lossreg.testing import LOSS_CHECKS, check_loss

    for name in (*only, *skip):
        if name not in LOSS_CHECKS:
            hint = did_you_mean(name, LOSS_CHECKS)
            _fail(f"Unknown check {name!r}.{hint} Valid checks: {', '.join(LOSS_CHECKS)}.")
    names = _losses_to_check(target)
    values = dict(_parse_param(p) for p in params)
    if values and len(names) != 1:
        _fail(f"--param needs a single loss; {target!r} names {len(names)}.")
    selected = [c for c in (only or LOSS_CHECKS) if c not in skip]
    results = []
    for name in names:
        results.extend(check_loss(name, values, checks=selected, raise_on_failure=False))
    failed = [r for r in results if r.status == "failed"]
    if as_json:
        _echo_json(
            [
                {
                    "loss": r.loss,
                    "check": r.check,
                    "status": r.status,
                    "message": r.message,
                    "seconds": round(r.seconds, 4),
                }
                for r in results
            ]
        )
    else:
        table = Table(title=f"conformance of {target}", title_justify="left")
        for column in ("loss", "check", "result"):
            table.add_column(column, no_wrap=True)
        table.add_column("seconds", justify="right")
        table.add_column("details", overflow="fold")
        style = {"passed": "green", "failed": "bold red", "skipped": "yellow"}
        for r in results:
            table.add_row(
                r.loss,
                r.check,
                f"[{style[r.status]}]{r.status}[/]",
                f"{r.seconds:.2f}",
                r.message,
            )
        console = _out()
        console.print(table)
        counts = {s: sum(r.status == s for r in results) for s in ("passed", "failed", "skipped")}
        console.print(", ".join(f"{n} {s}" for s, n in counts.items()), highlight=False)
    if failed:
        sys.exit(1)


@cli.command("new-plugin")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where to create the folder lossreg-NAME.",
)
@click.option("--loss", help="Name of the template's loss (default: NAME_brier).")
@click.option("--force", is_flag=True, help="Overwrite the template's files in an existing folder.")
def new_plugin_command(name: str, directory: str, loss: str | None, force: bool) -> None:
    """Create a plugin distribution lossreg-NAME: pyproject with the entry point, a loss, tests."""
    from lossreg._scaffold import plugin_files, plugin_names, write_plugin

    try:
        root = write_plugin(name, directory, loss=loss, force=force)
    except (ValueError, FileExistsError) as exc:
        _fail(str(exc))
    names = plugin_names(name, loss)
    click.echo(f"Created {root}:")
    for path in sorted(plugin_files(names)):
        click.echo(f"  {path}")
    click.echo(
        f"Next: pip install -e '{root}[test]' && lossreg check {names.entry_point} && "
        f"python -m pytest {root}"
    )


@cli.command("docs")
@click.option("--out", type=click.Path(dir_okay=False), help="Write to this file (docs/losses.md).")
def docs_command(out: str | None) -> None:
    """Write the loss catalogue of the built-in plugins as Markdown (stdout without --out)."""
    from pathlib import Path

    from lossreg._docs import render_losses_md

    text = render_losses_md()
    if out is None:
        click.echo(text, nl=False)
        return
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")
    click.echo(f"Wrote {out}")


@cli.command("compare")
@click.argument("data", required=False)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    help="TOML file whose [compare] table sets data, losses, scenarios, cv, repeats, ... and "
    "[compare.estimator] the estimator; options given here override it.",
)
@click.option(
    "--target",
    help="Target column (default 'target' for the scikit-learn data sets); several columns "
    "(separated by commas, or a pattern: 'target_*') make a multilabel target (0/1 values) "
    "or a multioutput regression target (other numbers).",
)
@click.option(
    "--teacher",
    help="For distillation losses (classes, regression): fit this teacher per training fold "
    "and pass its out-of-fold logits (predictions): hist_gradient_boosting, random_forest, "
    "logistic_regression (classes), ridge (regression), mlp(hidden_units=(256, 64)) (a "
    "neural teacher, also gives its features); several, separated by commas, for losses "
    "that take two teachers. Embeddings: old_embedder(classes=0.5), an earlier embedder "
    "whose gallery scores cross_model_knn_accuracy.",
)
@click.option(
    "--calibrate",
    metavar="BASE_LOSS",
    help="Classes: the losses are post-hoc calibrators (temperature_scaling, h_calibration "
    "...), each fitted on 20% of every training fold to a base model trained with BASE_LOSS "
    "on the rest.",
)
@click.option(
    "--pretrain",
    metavar="BASE_LOSS",
    help="Classes: every loss continues a network first trained with BASE_LOSS on the same "
    "training fold (teacher 'pretrained' = that network's own logits); an embedding loss "
    "(supcon) gives its hidden layers and a new output layer.",
)
@click.option(
    "--pretrain-data",
    metavar="DATA",
    help="With --pretrain: pretrain on this set (same columns; e.g. synthetic:NAME(...) "
    "generated with a shift) instead of the training fold, preprocessed like each fold.",
)
@click.option(
    "--curves",
    is_flag=True,
    help="Score every epoch on the training rows and the test fold: learning curves and "
    "epochs_to_fit, test_accuracy_auc / test_rmse_auc, loss_rises (classes, regression).",
)
@click.option(
    "--model",
    "models",
    multiple=True,
    help="Reference scikit-learn model fitted beside the losses on the same folds, repeatable: "
    "gaussian_nb, logistic_regression, ridge, hist_gradient_boosting, random_forest; "
    "raw_features (embeddings: the features themselves), supervised (embeddings: a "
    "cross-entropy network on every label), minhash_lsh (embeddings: a Jaccard-LSH blocker "
    "on the raw records' tokens, with --blocking-k), llp_bp (bag scenarios: belief-propagation "
    "pseudo-labels, see README).",
)
@click.option(
    "--blocking-k",
    type=int,
    metavar="K",
    help="Embeddings of entity ids: also score each fit as a blocker keeping each test row's K "
    "nearest other rows as candidates (blocking_recall, blocking_reduction_ratio); needed by "
    "--model minhash_lsh.",
)
@click.option(
    "--probe-labels",
    type=float,
    metavar="FRACTION",
    help="Embeddings: also probe with a logistic regression fitted on this share of each "
    "training fold's labels (few_label_probe_accuracy, few_label_probe_f1).",
)
@click.option(
    "--probe-target",
    metavar="COLUMN",
    help="Embeddings: a second label column (not a feature) that the embedding probes read "
    "instead of the target the loss trains on; --model supervised trains on it.",
)
@click.option(
    "--value",
    metavar="COLUMN",
    help="Binary: a feature column of per-row monetary values (customer lifetime value), "
    "'clv' or 'clv(gamma=0.3, delta=10.0, contact_cost=1.0)': fed to losses that take it "
    "and scored as campaign_profit, campaign_profit_tuned ... (the column stays a feature).",
)
@click.option(
    "--aggregate",
    metavar="RULES",
    help="Regression: the losses (quantile losses at the same levels) are the members of a "
    "QuantileAggregator fitted per fold; each comma-separated rule (weighted, best_single, "
    "mean) is a fit aggregate:RULE; the baseline defaults to aggregate:best_single.",
)
@click.option(
    "--group",
    help="Column of group / environment ids: passed to losses that take groups (group_dro, "
    "irm, vrex ...) and scored as worst_group_accuracy; the query ids of --task ranking.",
)
@click.option(
    "--event",
    help="Survival: column of event indicators (1 observed, 0 censored); the target is the "
    "time and the task survival.",
)
@click.option(
    "--bid",
    help="Binary clicks of ads in auctions (--group: auction ids): column of bids, passed to "
    "losses that take bids (welfare_rank) and scored as welfare of the top-eCPM ad per auction.",
)
@click.option(
    "--target-domain",
    help="COLUMN=VALUE: rows of a shifted target domain, unlabeled in training and scored in "
    "testing (their source rows give source_accuracy); semi-supervised losses learn from them.",
)
@click.option(
    "--votes",
    help="Comma-separated vote-count columns, one per class in sorted class order: scored as "
    "vote_emd / vote_ece, trained on by the votes scenario.",
)
@click.option("--losses", help="Comma-separated losses, each NAME or NAME(param=value,...).")
@click.option(
    "--task-default", is_flag=True, help="Compare a sensible set of losses for the detected task."
)
@click.option(
    "--task",
    # lossreg.compare._data.TASKS, written out: importing compare here would cost every
    # lossreg command seconds (tests/test_cli.py checks that the two lists agree)
    type=click.Choice(
        [
            "binary",
            "multiclass",
            "ordinal",
            "regression",
            "multilabel",
            "multioutput",
            "embedding",
            "outlier",
            "ranking",
            "survival",
            "mixed",
            "embedding_regression",
            "recommendation",
        ]
    ),
    help="Override the task detected from the target; embedding (never detected) fits "
    "LossEmbedder and scores its embeddings by kNN and linear-probe accuracy; outlier (never "
    "detected) trains each loss to reconstruct X and scores its outlier ranking of the rows "
    "whose target is 1; ordinal treats integer classes as ordered (class_mae, qwk); ranking "
    "(never detected) ranks the rows of each --group query by the target's relevance; mixed "
    "(two --target columns, numeric then class) fits LossMixedEstimator and scores both; "
    "embedding_regression (never detected) fits LossEmbedder on a continuous target and "
    "scores its embeddings by ridge-probe and kNN R2 (label losses need --param "
    "bin_targets=K); recommendation (never detected) reads user ids (the one feature) and "
    "item ids (the target) and fits LossRecommender on sampled negatives (Recall@20, NDCG@20).",
)
@click.option("--baseline", help="Loss to pair every other loss with (cross_entropy / mse).")
@click.option("--cv", default=5, show_default=True, help="Cross-validation folds.")
@click.option("--repeats", default=1, show_default=True, help="Repeats of the shuffled split.")
@click.option(
    "--split",
    type=click.Choice(["rows", "group"]),
    default="rows",
    show_default=True,
    help="group: test folds hold whole --group groups never trained on (GroupKFold; "
    "--cv equal to the number of groups is leave-one-group-out).",
)
@click.option(
    "--test-group",
    "test_groups",
    multiple=True,
    help="Repeatable: a --group value whose rows are only tested on (a shifted test "
    "environment); the other rows are cross-validated.",
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    help="Stress scenario on training folds, repeatable: clean, symmetric_noise:0.3, "
    "class_noise:0.2, imbalance:10, target_noise:0.5, outliers:0.1, bags:32 (bag losses see "
    "bag label proportions only). Default: clean.",
)
@click.option("--scoring", help="Primary metric (default accuracy / rmse).")
@click.option("--max-iter", default=100, show_default=True, help="Epochs per fit at most.")
@click.option("--lr", type=float, help="Learning rate of the estimators.")
@click.option("--batch-size", type=int, help="Rows per batch.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any other estimator parameter, repeatable: --param module__hidden_units=[64].",
)
@click.option(
    "--target-scaling",
    type=click.Choice(["standard", "scale", "none"]),
    help="Regression: centre and scale training targets (standard, the default), only "
    "scale them (for losses needing positive targets), or leave them.",
)
@click.option("--seed", default=0, show_default=True, help="Seeds splits, corruption and models.")
@click.option("--n-jobs", default=1, show_default=True, help="Parallel fits here (joblib).")
@click.option("--scheduler", metavar="ADDRESS", help="Run the fits on a dask.distributed cluster.")
@click.option("--torch-threads", type=int, help="Torch threads per fit (cores // n-jobs).")
@click.option(
    "--out",
    default="compare-out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for results.jsonl and the reports; finished fits found there are skipped.",
)
@click.option("--fresh", is_flag=True, help="Discard the results already in --out.")
@click.option("--retry-errors", is_flag=True, help="Rerun fits recorded as failed.")
@click.option(
    "--adapt",
    metavar="SOURCE_LOSS",
    help="Multiclass, with --target-domain: train SOURCE_LOSS on the source rows, then adapt "
    "the network on unlabeled target rows with each other loss (entropy_min, eata_entropy "
    "...); SOURCE_LOSS is the unadapted baseline.",
)
@click.option(
    "--adapt-param",
    "adapt_param",
    multiple=True,
    metavar="KEY=VALUE",
    help="An adaptation setting: rows=test|train, max_iter, lr, batch_size, parameters=norm|all "
    "(repeatable).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_context
def compare_command(
    ctx: click.Context,
    data: str | None,
    config: str | None,
    target: str | None,
    teacher: str | None,
    calibrate: str | None,
    pretrain: str | None,
    pretrain_data: str | None,
    curves: bool,
    models: tuple[str, ...],
    probe_labels: float | None,
    blocking_k: int | None,
    aggregate: str | None,
    probe_target: str | None,
    value: str | None,
    group: str | None,
    target_domain: str | None,
    votes: str | None,
    event: str | None,
    bid: str | None,
    losses: str | None,
    task_default: bool,
    task: str | None,
    baseline: str | None,
    cv: int,
    repeats: int,
    split: str,
    test_groups: tuple[str, ...],
    scenarios: tuple[str, ...],
    scoring: str | None,
    max_iter: int,
    lr: float | None,
    batch_size: int | None,
    params: tuple[str, ...],
    target_scaling: str | None,
    seed: int,
    n_jobs: int,
    scheduler: str | None,
    torch_threads: int | None,
    out: str,
    fresh: bool,
    retry_errors: bool,
    adapt: str | None,
    adapt_param: tuple[str, ...],
    no_progress: bool,
) -> None:
    """Cross-validate one model per loss on DATA and rank the losses.

    DATA is a scikit-learn data set (breast_cancer [default], iris, wine, digits, diabetes),
    generated data (synthetic:NAME(param=value, ...), e.g. synthetic:classification(n_classes=10);
    generators: classification, regression, friedman1, heteroscedastic, heavy_tailed, skewed,
    multimodal, parity, spurious, multilabel, multi_horizon, correlated_outputs,
    count_histogram, colour_field, ordinal, separable, domains, environments, sparse_targets,
    ranking, survival ...) or a CSV / Parquet file with a --target column. --split group /
    --test-group score groups never trained on.
    Results stream to OUT/results.jsonl (rerunning skips finished fits); OUT/report.html and
    OUT/report.md hold the report.
    """
    from pathlib import Path

    from lossreg.compare import compare
    from lossreg.compare._config import load_config
    from lossreg.compare._report import summary_rows
    from lossreg.compare._summary import summarize
    from lossreg.errors import LossregError

    from_file: dict[str, Any] = {}
    if config is not None:
        try:
            from_file = load_config(config)
        except ValueError as exc:
            _fail(str(exc))

    def given(name: str) -> bool:
        # an option typed on the command line wins over the file
        return ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT

    def setting(name: str, value: Any) -> Any:
        # the command line's value when typed there, else the file's, else the option default
        return value if given(name) else from_file.get(name, value)

    data = data if data is not None else from_file.get("data")
    target = setting("target", target)
    group = setting("group", group)
    target_domain = setting("target_domain", target_domain)
    votes = setting("votes", votes)
    event = setting("event", event)
    bid = setting("bid", bid)
    teacher = setting("teacher", teacher)
    calibrate = setting("calibrate", calibrate)
    pretrain = setting("pretrain", pretrain)
    pretrain_data = setting("pretrain_data", pretrain_data)
    curves = setting("curves", curves)
    model_list = list(models) if given("models") else from_file.get("models")
    adapt = setting("adapt", adapt)
    adapt_params = {
        **from_file.get("adapt_params", {}),
        **_key_values(adapt_param, "--adapt-param"),
    }
    probe_labels = setting("probe_labels", probe_labels)
    blocking_k = setting("blocking_k", blocking_k)
    aggregate = setting("aggregate", aggregate)
    probe_target = setting("probe_target", probe_target)
    value = setting("value", value)
    task = setting("task", task)
    baseline = setting("baseline", baseline)
    scoring = setting("scoring", scoring)
    cv = setting("cv", cv)
    repeats = setting("repeats", repeats)
    seed = setting("seed", seed)
    split = setting("split", split)
    held_out: Any = list(test_groups) if test_groups else from_file.get("test_groups")
    if not given("scenarios") and "scenarios" in from_file:
        scenarios = tuple(from_file["scenarios"])
    loss_list: Any = losses
    if not losses and not task_default and "losses" in from_file:
        loss_list = from_file["losses"]
    if bool(loss_list) == task_default:
        _fail("Pass either --losses a,b,c or --task-default (or losses in the --config file).")
    estimator: dict[str, Any] = dict(from_file.get("estimator", {}))
    if given("max_iter") or "max_iter" not in estimator:
        estimator["max_iter"] = max_iter
    if lr is not None:
        estimator["lr"] = lr
    if batch_size is not None:
        estimator["batch_size"] = batch_size
    if target_scaling is not None:
        estimator["target_scaling"] = target_scaling
    estimator.update(_key_values(params, "--param"))
    try:
        results = compare(
            data,
            target=target,
            group=group,
            target_domain=target_domain,
            votes=votes,
            event=event,
            bid=bid,
            teacher=teacher,
            calibrate=calibrate,
            pretrain=pretrain,
            pretrain_data=pretrain_data,
            curves=curves,
            models=model_list,
            adapt=adapt,
            adapt_params=adapt_params or None,
            probe_labels=probe_labels,
            blocking_k=blocking_k,
            aggregate=aggregate,
            probe_target=probe_target,
            value=value,
            losses=loss_list,
            task=task,
            baseline=baseline,
            cv=cv,
            repeats=repeats,
            split=split,
            test_groups=held_out,
            scenarios=scenarios or ("clean",),
            scoring=scoring,
            estimator_params=estimator,
            random_state=seed,
            n_jobs=n_jobs,
            scheduler=scheduler,
            torch_threads=torch_threads,
            out=out,
            resume=not fresh,
            retry_errors=retry_errors,
            progress=not no_progress,
        )
    except (LossregError, ValueError, KeyError) as exc:
        _fail(str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc))
    except KeyboardInterrupt:
        click.echo(
            f"Interrupted. Finished fits are kept in {Path(out) / 'results.jsonl'}; "
            "rerun the same command to continue.",
            err=True,
        )
        sys.exit(130)
    summary = summarize(results)
    a = results.attrs
    header, rows = summary_rows(summary)
    table = Table(
        title=f"{a['data']} ({a['task']}): {a['primary']}, {a['cv']}-fold × {a['repeats']}, "
        f"baseline {a['baseline']}",
        title_justify="left",
    )
    for column in header:
        table.add_column(column, justify="left" if column in ("scenario", "loss") else "right")
    for row in rows:
        table.add_row(*row, style="bold" if row[1] == "1" else None)
    console = _out()
    console.print(table)
    console.print(
        f"{a['n_computed']} fits computed, {a['n_skipped']} reused from "
        f"{Path(out) / 'results.jsonl'}",
        highlight=False,
    )
    console.print(f"Report: {Path(out) / 'report.html'} (and report.md)", highlight=False)


def _key_values(items: tuple[str, ...], option: str) -> dict[str, Any]:
    """``KEY=VALUE`` options as a dict; values are Python literals where they parse as one."""
    import ast

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            _fail(f"{option} takes KEY=VALUE. Got {item!r}.")
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip()] = value
    return out


def _fail(message: str) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(USAGE_ERROR)


def main() -> None:
    """Entry point of the ``lossreg`` console script."""
    cli(prog_name="lossreg")


if __name__ == "__main__":
    main()
