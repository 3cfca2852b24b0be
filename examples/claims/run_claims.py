"""Rerun the claim experiments and write their verdicts to ``docs/claims.md``.

Each ``C*.toml`` file here is a ``lossreg compare`` configuration (its ``[compare]`` table; run
one alone with ``lossreg compare --config examples/claims/C03.toml``) plus the claim it tests:
its text, the paper's evidence grade, and one or more ``[[check]]`` tables, each a paired
comparison of a loss against the baseline on one metric in one scenario. ``not_run.toml``
lists the claims without an experiment and why.

Usage::

    python examples/claims/run_claims.py                 # every claim (resumes finished fits)
    python examples/claims/run_claims.py --only C03,C43  # some claims
    python examples/claims/run_claims.py --smoke --out /tmp/claims --docs /tmp/claims.md

``--smoke`` shrinks every experiment (2 folds, 1 repeat, 2 epochs) to check that the whole
pipeline runs; its verdicts mean nothing and the page it writes says so.

Several experiments
-------------------
A claim about a sweep (learning rates, batch sizes, data sets) holds one ``[[experiment]]``
table per setting: a ``name`` and the ``[compare]`` keys it changes (its ``estimator`` table
updates the shared one key by key); ``[compare]`` holds what they share. A check names its
``experiment``, and may pair the loss with a baseline fitted in another one
(``baseline_experiment``: the same loss at another learning rate, say), which is a paired
comparison as long as both experiments share the data, ``cv``, ``repeats`` and ``seed``
(the same splits). An aggregate check names ``experiments`` and ``aggregate``: per
(repeat, fold) pair, the ``mean`` of the metric over them, or its ``range`` (max - min,
lower is better: the sensitivity to the setting), for the loss and for the baseline.

Properties and simulations
--------------------------
A claim that is not a comparison of losses (``[property]`` instead of ``[compare]``) is
checked by a numerical experiment of ``properties.py`` on many random draws: a mathematical
property holds when no draw violates it; a simulation (model selection by a scorer) when its
paired effect over the draws is significant.

Verdicts
--------
For each check, the differences between the loss and the baseline on the same
(repeat, fold) pairs (signed so that positive means the loss did better) are tested with the
corrected resampled t-test of Nadeau and Bengio (2003): cross-validation folds share training
rows, so the plain paired t-test's variance is inflated by ``1/n + n_test/n_train``. A check
``expect = "better"`` holds when the 95% interval of the mean difference lies above 0;
``"not_worse"`` when it lies above ``-margin``; ``"worse"`` when it lies below 0;
``"no_better"`` when it lies below ``margin``. A claim holds when all its checks hold, does
not hold when none does, and is mixed otherwise.

Two variants serve descriptive claims and claims about training data: ``baseline_scenario``
takes the baseline's values from another scenario of the same folds (the same loss with less
data: ``subsample:0.1``; cross-entropy on majority labels against a loss trained on crowd
votes), pairs still sharing (repeat, fold); ``threshold`` replaces the baseline by a fixed
value decided beforehand (the mean of a correlation lies above 0.5), with the same corrected
interval; ``baseline_metric`` reads the baseline's values from another metric of its own
fits (the campaign profit of a classifier's tuned threshold, ``campaign_profit_tuned``,
against a decision-focused loss's own decisions, ``campaign_profit``), which must point the
same way. A claim that an effect grows with a setting ("more so for large bags") takes
``contrast_scenario``: per (repeat, fold) pair, the loss-minus-baseline difference in the
check's scenario minus the same difference in the contrast scenario (a difference in
differences; the loss and baseline columns then show each one's change between the two).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomllib

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

#: what each ``expect`` asks of the 95% interval (lo, hi) of the signed mean difference
EXPECTATIONS = {
    "better": "the loss is better: the interval lies above 0",
    "not_worse": "the loss is not worse by more than the margin: the interval lies above -margin",
    "worse": "the loss is worse: the interval lies below 0",
    "no_better": "the loss is not better by more than the margin: the interval lies below margin",
}

SMOKE = {"cv": 2, "repeats": 1, "max_iter": 2}


@dataclass
class Check:
    """One paired comparison a claim rests on."""

    loss: str
    metric: str
    scenario: str = "clean"
    expect: str = "better"
    baseline: str | None = None
    margin: float = 0.0
    #: the baseline's values come from this scenario (default: the check's own)
    baseline_scenario: str | None = None
    #: compare with this fixed value instead of a baseline loss
    threshold: float | None = None
    #: the baseline's values come from this metric (default: the check's own), for a
    #: baseline whose own decision rule is another metric (a tuned threshold's profit)
    baseline_metric: str | None = None
    experiment: str = ""
    baseline_experiment: str | None = None
    experiments: list[str] | None = None
    aggregate: str | None = None
    #: judge the change of the loss-baseline difference from this scenario to the check's
    contrast_scenario: str | None = None


#: how an aggregate check combines a metric over its experiments, per (repeat, fold)
AGGREGATES = ("mean", "range")

#: the keys of the compare tables that fix the splits: experiments paired with each other
#: must agree on them
SPLIT_KEYS = ("data", "target", "cv", "repeats", "seed", "group", "split", "test_groups")


@dataclass
class Claim:
    """A claim, its experiments (``[compare]`` / ``[[experiment]]`` tables) and its checks.

    ``experiments`` maps each experiment's name to its full compare table; a claim with one
    experiment has the single name ``""``. A property claim has ``property`` instead.
    """

    id: str
    title: str
    evidence: str
    source: str
    compare: dict[str, Any]
    checks: list[Check]
    notes: str = ""
    path: Path = field(default=Path())
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    property: dict[str, Any] | None = None


def load_claim(path: Path) -> Claim:
    """Read and check one claim file; errors name the file and the fix."""
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    kind = "property" if "property" in document else "compare"
    required = ("id", "title", "evidence", "property") if kind == "property" else ("id", "title")
    missing = [k for k in required if k not in document]
    if kind == "compare":
        missing += [k for k in ("evidence", "compare", "check") if k not in document]
    if missing:
        raise ValueError(f"{path.name}: missing {', '.join(missing)}.")
    common = {
        "id": document["id"],
        "title": document["title"],
        "evidence": document["evidence"],
        "source": document.get("source", ""),
        "notes": document.get("notes", "").strip(),
        "path": path,
    }
    if kind == "property":
        return Claim(**common, compare={}, checks=[], property=dict(document["property"]))
    experiments = _experiments(path, document["compare"], document.get("experiment", []))
    checks = [_check(path, raw, experiments) for raw in document["check"]]
    return Claim(**common, compare=document["compare"], checks=checks, experiments=experiments)


def _experiments(
    path: Path, base: dict[str, Any], tables: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each experiment's compare table: ``base`` updated by its ``[[experiment]]`` table."""
    if not tables:
        return {"": dict(base)}
    out: dict[str, dict[str, Any]] = {}
    for table in tables:
        table = dict(table)
        name = table.pop("name", None)
        if not isinstance(name, str) or not name or name in out:
            raise ValueError(
                f"{path.name}: every [[experiment]] needs a distinct, non-empty name. Got {name!r}."
            )
        merged = {**base, **table}
        merged["estimator"] = {**base.get("estimator", {}), **table.get("estimator", {})}
        out[name] = merged
    return out


def _check(path: Path, raw: dict[str, Any], experiments: dict[str, dict[str, Any]]) -> Check:
    """One ``[[check]]`` table, with its experiment names resolved and validated."""
    check = Check(**raw)
    if check.expect not in EXPECTATIONS:
        raise ValueError(
            f"{path.name}: expect must be one of {', '.join(EXPECTATIONS)}. Got {check.expect!r}."
        )
    if not check.experiment and check.experiments is None:
        check.experiment = next(iter(experiments))  # the only (or first) experiment
    if (check.experiments is None) != (check.aggregate is None):
        raise ValueError(
            f"{path.name}: an aggregate check gives both experiments = [...] and aggregate "
            f"(one of {', '.join(AGGREGATES)}). Got experiments={check.experiments!r}, "
            f"aggregate={check.aggregate!r}."
        )
    if check.aggregate is not None and check.aggregate not in AGGREGATES:
        raise ValueError(
            f"{path.name}: aggregate must be one of {', '.join(AGGREGATES)}. "
            f"Got {check.aggregate!r}."
        )
    if check.contrast_scenario is not None and (
        check.threshold is not None or check.baseline_scenario or check.aggregate
    ):
        raise ValueError(
            f"{path.name}: contrast_scenario compares the loss-baseline difference of two "
            "scenarios; it cannot be combined with threshold, baseline_scenario or aggregate. "
            f"Got a check of {check.loss!r} with contrast_scenario={check.contrast_scenario!r}."
        )
    if check.baseline_metric is not None:
        from lossreg.compare._metrics import GREATER_IS_BETTER

        directions = {GREATER_IS_BETTER.get(m) for m in (check.metric, check.baseline_metric)}
        if check.baseline_metric not in GREATER_IS_BETTER or len(directions) != 1:
            raise ValueError(
                f"{path.name}: baseline_metric must be a known metric pointing the same way "
                f"as metric {check.metric!r}. Got {check.baseline_metric!r}."
            )
    named = [*(check.experiments or [check.experiment])]
    if check.baseline_experiment is not None:
        named.append(check.baseline_experiment)
    unknown = [n for n in named if n not in experiments]
    if unknown:
        raise ValueError(
            f"{path.name}: check of {check.loss!r} names unknown experiment(s) {unknown}; "
            f"experiments: {list(experiments)}."
        )
    split = {tuple(repr(experiments[n].get(k)) for k in SPLIT_KEYS) for n in named}
    if len(split) > 1:
        raise ValueError(
            f"{path.name}: check of {check.loss!r} pairs fits of experiments {named} that "
            f"differ in {', '.join(SPLIT_KEYS)}: their (repeat, fold) pairs are different "
            "splits. Give them the same data, cv, repeats and seed."
        )
    return check


def load_claims(folder: Path = HERE) -> list[Claim]:
    """Every ``C*.toml`` claim of ``folder``, in claim-number order."""
    claims = [load_claim(p) for p in folder.glob("C*.toml")]
    return sorted(claims, key=lambda c: int(c.id[1:]))


def load_not_run(folder: Path = HERE) -> dict[str, dict[str, str]]:
    """Claims without an experiment: id -> {title, reason}."""
    return tomllib.loads((folder / "not_run.toml").read_text(encoding="utf-8"))


def compare_kwargs(claim: Claim, smoke: bool, experiment: str | None = None) -> dict[str, Any]:
    """``lossreg.compare.compare`` arguments of one experiment of a claim (default: the first)."""
    from lossreg.compare._config import CONFIG_KEYS

    name = next(iter(claim.experiments)) if experiment is None else experiment
    table = dict(claim.experiments[name])
    unknown = sorted(set(table) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"{claim.path.name}: unknown [compare] keys {unknown}.")
    estimator = dict(table.pop("estimator", {}))
    kwargs: dict[str, Any] = {
        "random_state": table.pop("seed", 0),
        "estimator_params": estimator,
        **table,
    }
    if smoke:
        kwargs.update(cv=SMOKE["cv"], repeats=SMOKE["repeats"])
        estimator["max_iter"] = SMOKE["max_iter"]
    return kwargs


def paired_test(
    values: pd.Series, base: pd.Series, greater_is_better: bool, test_share: float
) -> dict[str, float]:
    """Mean signed difference, its 95% interval and p-value (corrected resampled t-test).

    ``values`` and ``base`` are indexed by (repeat, fold); ``test_share`` is
    ``n_test / n_train`` of one fold (``1 / (cv - 1)``).
    """
    from scipy import stats

    both = pd.concat([values.rename("x"), base.rename("b")], axis=1, join="inner").dropna()
    sign = 1.0 if greater_is_better else -1.0
    diff = sign * (both["x"] - both["b"]).to_numpy(dtype=np.float64)
    n = len(diff)
    out = {"pairs": n, "diff": float(diff.mean()) if n else math.nan}
    out.update(lo=math.nan, hi=math.nan, p=math.nan)
    if n < 2:
        return out
    variance = diff.var(ddof=1) * (1.0 / n + test_share)
    if variance == 0.0:
        out.update(lo=out["diff"], hi=out["diff"], p=1.0 if out["diff"] == 0 else 0.0)
        return out
    se = math.sqrt(variance)
    t_crit = float(stats.t.ppf(0.975, n - 1))
    out.update(
        lo=out["diff"] - t_crit * se,
        hi=out["diff"] + t_crit * se,
        p=float(2 * stats.t.sf(abs(out["diff"]) / se, n - 1)),
    )
    return out


def judge(check: Check, test: dict[str, float]) -> bool | None:
    """Whether the interval satisfies the check's expectation (None: not computable)."""
    lo, hi = test["lo"], test["hi"]
    if math.isnan(lo):
        return None
    if check.expect == "better":
        return lo > 0
    if check.expect == "not_worse":
        return lo > -check.margin
    if check.expect == "worse":
        return hi < 0
    return hi < check.margin


def verdict(outcomes: list[bool | None]) -> str:
    """holds / does not hold / mixed / no result, from the checks' outcomes."""
    known = [o for o in outcomes if o is not None]
    if not known:
        return "no result"
    if all(known) and len(known) == len(outcomes):
        return "holds"
    if not any(known):
        return "does not hold"
    return "mixed"


def evaluate(claim: Claim, results: pd.DataFrame | dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """One row per check: means, the paired test and the outcome.

    ``results`` maps each experiment's name to its compare results (a single frame stands
    for a claim with one experiment).
    """
    from lossreg.compare._metrics import GREATER_IS_BETTER
    from lossreg.compare._summary import failed_fits

    if isinstance(results, pd.DataFrame):
        results = {next(iter(claim.experiments), ""): results}
    rows = []
    for check in claim.checks:
        named = check.experiments or [check.experiment]
        base_named = named if check.experiments else [check.baseline_experiment or named[0]]
        first = results[named[0]]
        baseline = check.baseline or results[base_named[0]].attrs["baseline"]
        cv = int(first.attrs["cv"])
        values = _combined(results, named, check.loss, check)
        base_scenario = check.baseline_scenario or check.scenario
        base_metric = check.baseline_metric or check.metric
        if check.threshold is not None:
            baseline = f"= {check.threshold:g}"
            base = pd.Series(float(check.threshold), index=values.index)
        else:
            base = _combined(results, base_named, baseline, check, base_scenario, base_metric)
        if check.contrast_scenario is not None:
            # each side's change from the contrast scenario; their difference is the
            # difference in differences the check judges
            contrast = check.contrast_scenario
            values = values - _combined(results, named, check.loss, check, contrast)
            base = base - _combined(results, base_named, baseline, check, contrast, base_metric)
        # a range (spread over settings) is better when smaller, whatever the metric
        greater = GREATER_IS_BETTER[check.metric] if check.aggregate != "range" else False
        # group-aware splits record their own n_test / n_train; row folds have 1 / (cv - 1)
        share = first.attrs.get("test_share", 1.0 / (cv - 1))
        test = paired_test(values, base, greater, test_share=share)
        errors = 0
        base_fits = [] if check.threshold is not None else base_named
        for name, label, scenario, metric in [
            *((n, check.loss, check.scenario, check.metric) for n in named),
            *((n, baseline, base_scenario, base_metric) for n in base_fits),
            *(
                (n, label, check.contrast_scenario, metric)
                for names, label, metric in (
                    (named, check.loss, check.metric),
                    (base_fits, baseline, base_metric),
                )
                for n in names
                if check.contrast_scenario is not None
            ),
        ]:
            frame = results[name]
            failed = failed_fits(frame, metric)  # diverged fits have no test metrics
            errors += int(
                ((frame["scenario"] == scenario) & (frame["loss_label"] == label) & failed).sum()
            )
        if check.baseline_scenario and check.threshold is None:
            baseline = f"{baseline} @ {check.baseline_scenario}"
        if check.baseline_metric and check.threshold is None:
            baseline = f"{baseline} [{check.baseline_metric}]"
        if check.contrast_scenario is not None:
            baseline = f"{baseline}; change from {check.contrast_scenario}"
        rows.append(
            {
                "check": check,
                "baseline": baseline,
                "mean": values.mean(),
                "std": values.std(ddof=1),
                "base_mean": base.mean(),
                "base_std": base.std(ddof=1),
                "errors": errors,
                **test,
                "outcome": judge(check, test),
            }
        )
    return rows


def _combined(
    results: dict[str, pd.DataFrame],
    names: list[str],
    label: str,
    check: Check,
    scenario: str | None = None,
    metric: str | None = None,
) -> pd.Series:
    """A loss's metric per (repeat, fold) in one experiment, or aggregated over several.

    ``scenario`` and ``metric`` default to the check's. An aggregate keeps only the pairs
    present (fitted, metric computed) in every experiment.
    """
    scenario = scenario or check.scenario
    metric = metric or check.metric
    series = []
    for name in names:
        frame = results[name]
        ok = frame[(frame["status"] == "ok") & (frame["scenario"] == scenario)]
        series.append(_per_pair(ok, label, metric))
    if check.aggregate is None:
        return series[0]
    table = pd.concat(series, axis=1, join="inner").dropna()
    if check.aggregate == "mean":
        return table.mean(axis=1)
    return table.max(axis=1) - table.min(axis=1)


def _per_pair(frame: pd.DataFrame, label: str, metric: str) -> pd.Series:
    """One loss's metric indexed by (repeat, fold); empty when the metric was not computed."""
    rows = frame[frame["loss_label"] == label]
    if metric not in rows:
        return pd.Series(dtype=np.float64)
    return rows.set_index(["repeat", "fold"])[metric].astype(float)


def plot_claim(claim: Claim, results: dict[str, pd.DataFrame], path: Path) -> None:
    """Per-fold values of each checked metric, one panel per (experiment, metric, scenario)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(
        dict.fromkeys(
            (name, metric, c.scenario)
            for c in claim.checks
            for metric in dict.fromkeys([c.metric, c.baseline_metric or c.metric])
            for name in [
                *(c.experiments or [c.experiment]),
                *([c.baseline_experiment] if c.baseline_experiment else []),
            ]
        )
    )
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False, layout="constrained"
    )
    for ax, (name, metric, scenario) in zip(axes[0], panels, strict=True):
        frame = results[name]
        frame = frame[(frame["status"] == "ok") & (frame["scenario"] == scenario)]
        labels = list(dict.fromkeys(frame["loss_label"]))
        for i, label in enumerate(labels):
            column = frame.loc[frame["loss_label"] == label]
            values = column[metric].astype(float).dropna() if metric in column else pd.Series([])
            jitter = (
                np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(len(values))
            )
            ax.scatter(i + np.asarray(jitter), values, s=12, alpha=0.7)
            if len(values):
                ax.hlines(values.mean(), i - 0.3, i + 0.3, color="black", linewidth=1.5)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels([_short(label) for label in labels], rotation=35, ha="right")
        ax.set_ylabel(metric)
        ax.set_title(f"{name} · {scenario}" if name else scenario, fontsize=10)
    fig.suptitle(f"{claim.id}: {claim.title}", fontsize=10)
    _save(fig, path)


def plot_property(claim: Claim, rows: list[dict[str, Any]], path: Path) -> None:
    """A property: per case, the share of draws crossing and violating; a simulation: the
    per-draw values of each case."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.4), layout="constrained")
    x = np.arange(len(rows))
    if all("per_draw" in r for r in rows):
        for i, row in enumerate(rows):
            values = np.asarray(row["per_draw"], dtype=np.float64)
            ax.scatter(i + np.linspace(-0.15, 0.15, len(values)), values, s=12, alpha=0.7)
            ax.hlines(values.mean(), i - 0.3, i + 0.3, color="black", linewidth=1.5)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_ylabel("per-draw difference")
    else:
        ax.bar(x - 0.2, [r["crossing"] / r["draws"] for r in rows], 0.4, label="draws crossing")
        ax.bar(x + 0.2, [r["violations"] / r["draws"] for r in rows], 0.4, label="violations")
        ax.set_ylabel("share of draws")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels([_short(r["case"], 40) for r in rows], rotation=20, ha="right")
    fig.suptitle(f"{claim.id}: {claim.title}", fontsize=10)
    _save(fig, path)


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _fmt(value: float, digits: int = 3) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}f}")
    )


def _outcome_text(outcome: bool | None) -> str:
    return {True: "yes", False: "no", None: "no result"}[outcome]


def render(
    entries: list[tuple[Claim, pd.DataFrame, list[dict[str, Any]], str]],
    not_run: dict[str, dict[str, str]],
    command: str,
    smoke: bool,
    image_dir: str,
) -> str:
    """The Markdown page: summary table, one section per claim, the claims not run."""
    today = dt.date.today().isoformat()
    lines = [
        "# Do the papers' claims hold on tabular data?",
        "",
        f"Produced by `{command}` on {today} (this page is generated; do not edit it by hand).",
        "",
    ]
    if smoke:
        lines += [
            "> **Smoke run**: 2 folds, 1 repeat, 2 epochs per fit. It checks that the experiments "
            "run; its verdicts mean nothing.",
            "",
        ]
    lines += [
        "Each experiment is a `lossreg compare` configuration in `examples/claims/` (run one "
        "with `lossreg compare --config examples/claims/C03.toml`). Label noise, imbalance and "
        "outliers touch the training folds only; test folds stay clean. Every loss of an "
        "experiment sees the same splits and the same model seeds, so differences are paired "
        "per (repeat, fold).",
        "",
        "**Verdicts.** A check compares one loss with the baseline on one metric in one "
        "scenario: *diff* is the mean paired difference, signed so that a positive value favours "
        "the loss, with its 95% interval from the corrected resampled t-test (Nadeau & Bengio, "
        "2003), which widens the naive paired interval because cross-validation folds share "
        "training rows. `better` holds when the interval lies above 0; `not_worse` when it lies "
        "above −margin; `worse` when it lies below 0. A claim **holds** when every check holds, "
        "**does not hold** when none does, and is **mixed** otherwise. A verdict is about this "
        "setting (small MLPs, modest data, the listed hyperparameters), not about the paper's.",
        "",
        "A claim about a sweep runs one experiment per setting (learning rate, batch size, "
        "data set, training size) on the same splits: a check may pair a loss with a baseline "
        "fitted in another experiment, or compare the *mean* or the *range* (max − min, "
        "smaller is better) of a metric over several experiments, fold by fold. A claim that "
        "is not a comparison of losses (a mathematical property, a model-selection "
        "simulation) is checked by a numerical experiment on random draws: a property holds "
        "when no draw violates it, a simulation when its paired effect is significant.",
        "",
        "Evidence grade of the paper's own support (from the catalogue): T tabular, X another "
        "modality, D derived, P a property, N a negative claim.",
        "",
        "## Summary",
        "",
        "| claim | evidence | verdict | checks held |",
        "|---|---|---|---|",
    ]
    for claim, _, rows, result in entries:
        held = sum(r["outcome"] is True for r in rows)
        lines.append(
            f"| [{claim.id}](#{claim.id.lower()}) {claim.title} | {claim.evidence} | "
            f"**{result}** | {held}/{len(rows)} |"
        )
    counts = pd.Series([e[3] for e in entries]).value_counts()
    lines += [
        "",
        f"{len(entries)} claims run: "
        + ", ".join(f"{counts.get(v, 0)} {v}" for v in ("holds", "mixed", "does not hold"))
        + (f", {counts.get('no result', 0)} without a result" if "no result" in counts else "")
        + (
            f"; {len(not_run)} not run (listed at the end, with the reason)."
            if not_run
            else "; every claim of the catalogue has an experiment."
        ),
        "",
    ]
    for claim, results, rows, result in entries:
        lines += [
            f"## {claim.id}",
            "",
            f"**{claim.title}** — evidence {claim.evidence}"
            + (f"; {claim.source}" if claim.source else "")
            + f". Verdict: **{result}**.",
            "",
        ]
        if claim.property is not None:
            lines += _property_section(claim, rows)
        else:
            lines += _compare_section(results, rows)
        lines += ["", f"![{claim.id}]({image_dir}/{claim.id}.png)", ""]
        if claim.notes:
            lines += [claim.notes, ""]
    if not_run:
        lines += [
            "## Claims not run",
            "",
            "| claim | why not |",
            "|---|---|",
        ]
        for claim_id, entry in sorted(not_run.items(), key=lambda kv: int(kv[0][1:])):
            lines.append(f"| {claim_id} {entry['title']} | {entry['reason']} |")
        lines.append("")
    return "\n".join(lines)


def _compare_section(results: dict[str, pd.DataFrame], rows: list[dict[str, Any]]) -> list[str]:
    """Each experiment's setting, then the checks' table."""
    lines = []
    several = len(results) > 1
    for name, frame in results.items():
        a = frame.attrs
        estimator = ", ".join(f"{k}={v!r}" for k, v in sorted(a["estimator"].items()))
        lines += [
            *([f"Experiment `{name}`:", ""] if several else []),
            f"- Data: `{a['data']}` ({a['n_rows']} rows, {a['n_features']} features, {a['task']}); "
            f"scenarios: {', '.join(f'`{s}`' for s in a['scenarios'])}.",
            f"- {a['cv']}-fold cross-validation × {a['repeats']} repeats, seed "
            f"{a['random_state']}"
            + (
                f", split `{a['split']}` (test rows from groups not trained on)"
                if a.get("split") not in (None, "rows")
                else ""
            )
            + f"; estimator: {estimator}.",
            f"- Losses: {', '.join(f'`{x}`' for x in a['losses'])}; baseline `{a['baseline']}`.",
            "",
        ]
    where = "experiment · scenario" if several else "scenario"
    lines += [
        f"| loss | baseline | {where} | metric | loss mean ± std | baseline mean ± std | "
        "diff [95% CI] | p | expect | held |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        c = row["check"]
        expect = c.expect + (f" (margin {c.margin:g})" if c.margin else "")
        errors = f" ({row['errors']} fits failed or diverged)" if row["errors"] else ""
        baseline = f"`{row['baseline']}`"
        if c.experiments:
            setting = f"{c.aggregate} over {', '.join(c.experiments)} · {c.scenario}"
        elif several:
            setting = f"{c.experiment} · {c.scenario}"
            if c.baseline_experiment and c.baseline_experiment != c.experiment:
                baseline += f" in {c.baseline_experiment}"
        else:
            setting = c.scenario
        if c.contrast_scenario:
            setting += f" minus {c.contrast_scenario}"
        metric = f"{c.metric} ({c.aggregate})" if c.aggregate else c.metric
        lines.append(
            f"| `{c.loss}` | {baseline} | {setting} | {metric} | "
            f"{_fmt(row['mean'])} ± {_fmt(row['std'])} | "
            f"{_fmt(row['base_mean'])} ± {_fmt(row['base_std'])} | "
            f"{_fmt(row['diff'])} [{_fmt(row['lo'])}, {_fmt(row['hi'])}] | "
            f"{_fmt(row['p'], 3)} | {expect} | {_outcome_text(row['outcome'])}{errors} |"
        )
    return lines


def _property_section(claim: Claim, rows: list[dict[str, Any]]) -> list[str]:
    """The experiment's parameters and, per case, the numbers its outcome rests on."""
    params = ", ".join(f"{k}={v!r}" for k, v in sorted(claim.property.items()) if k != "name")
    # every scalar the experiment reports, in its order; per-draw lists go to the plot
    columns = [k for k, v in rows[0].items() if k not in ("case", "outcome") and np.isscalar(v)]
    lines = [
        f"- A numerical experiment on random draws (`properties.{claim.property['name']}`"
        f"{', ' + params if params else ''}); see the notes for what makes it hold.",
        "",
        "| case | " + " | ".join(c.replace("_", " ") for c in columns) + " | held |",
        "|---|" + "---|" * len(columns) + "---|",
    ]
    for row in rows:
        cells = [f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        lines.append(
            f"| `{row['case']}` | " + " | ".join(cells) + f" | {_outcome_text(row['outcome'])} |"
        )
    return lines


def run_claim(claim: Claim, args: argparse.Namespace) -> tuple[Any, list[dict[str, Any]], str]:
    """Run (or resume) a claim's experiments; return their results, the checks' rows, the
    verdict and a one-line account of the fits."""
    from lossreg.compare import compare

    if claim.property is not None:
        sys.path.insert(0, str(HERE))
        try:
            from properties import run_property
        finally:
            sys.path.remove(str(HERE))
        rows = run_property(claim.property)
        return rows, rows, "property experiment"
    results = {}
    for name in claim.experiments:
        out = Path(args.out) / claim.id
        results[name] = compare(
            **compare_kwargs(claim, args.smoke, name),
            n_jobs=args.n_jobs,
            torch_threads=args.torch_threads,
            # one experiment keeps the folder it always had, so its finished fits are reused
            out=out / name if name else out,
            resume=not args.fresh,
            report=False,
        )
    rows = evaluate(claim, results)
    run = sum(r.attrs["n_computed"] for r in results.values())
    reused = sum(r.attrs["n_skipped"] for r in results.values())
    return results, rows, f"{run} fits run, {reused} reused"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="Comma-separated claim ids (default: all).")
    parser.add_argument("--out", default="claims-out", help="Folder for the fits (resumable).")
    parser.add_argument(
        "--docs",
        help="Page to write (default docs/claims.md; with --only, no page unless given).",
    )
    parser.add_argument("--smoke", action="store_true", help="Tiny settings: checks the pipeline.")
    parser.add_argument("--n-jobs", type=int, default=2, help="Parallel fits.")
    parser.add_argument(
        "--torch-threads",
        type=int,
        help="Torch threads per fit (default: cores // n-jobs); 1 on a busy machine.",
    )
    parser.add_argument("--fresh", action="store_true", help="Discard finished fits.")
    args = parser.parse_args(argv)

    claims = load_claims()
    not_run = load_not_run()
    if args.only:
        wanted = {c.strip().upper() for c in args.only.split(",")}
        unknown = wanted - {c.id for c in claims}
        if unknown:
            print(f"No experiment for {', '.join(sorted(unknown))}.", file=sys.stderr)
            return 2
        claims = [c for c in claims if c.id in wanted]
    docs = Path(args.docs or "docs/claims.md")
    write_page = args.docs is not None or not args.only
    image_dir = docs.parent / "claims"
    entries = []
    for claim in claims:
        start = time.perf_counter()
        results, rows, account = run_claim(claim, args)
        result = verdict([r["outcome"] for r in rows])
        if write_page:
            if claim.property is not None:
                plot_property(claim, rows, image_dir / f"{claim.id}.png")
            else:
                plot_claim(claim, results, image_dir / f"{claim.id}.png")
        entries.append((claim, results, rows, result))
        print(
            f"{claim.id}: {result:14s} ({account}, {time.perf_counter() - start:.0f} s) "
            f"{claim.title}",
            flush=True,
        )
    if not write_page:
        return 0
    command = (
        "python examples/claims/run_claims.py"
        + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    )
    docs.parent.mkdir(parents=True, exist_ok=True)
    relative = image_dir.relative_to(docs.parent).as_posix()
    docs.write_text(
        render(entries, not_run, command.strip(), args.smoke, relative), encoding="utf-8"
    )
    print(f"Wrote {docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
