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


@dataclass
class Claim:
    """A claim, its experiment (the ``[compare]`` table) and its checks."""

    id: str
    title: str
    evidence: str
    source: str
    compare: dict[str, Any]
    checks: list[Check]
    notes: str = ""
    path: Path = field(default=Path())


def load_claim(path: Path) -> Claim:
    """Read and check one claim file; errors name the file and the fix."""
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    missing = [k for k in ("id", "title", "evidence", "compare", "check") if k not in document]
    if missing:
        raise ValueError(f"{path.name}: missing {', '.join(missing)}.")
    checks = []
    for raw in document["check"]:
        check = Check(**raw)
        if check.expect not in EXPECTATIONS:
            raise ValueError(
                f"{path.name}: expect must be one of {', '.join(EXPECTATIONS)}. "
                f"Got {check.expect!r}."
            )
        checks.append(check)
    return Claim(
        id=document["id"],
        title=document["title"],
        evidence=document["evidence"],
        source=document.get("source", ""),
        compare=document["compare"],
        checks=checks,
        notes=document.get("notes", "").strip(),
        path=path,
    )


def load_claims(folder: Path = HERE) -> list[Claim]:
    """Every ``C*.toml`` claim of ``folder``, in claim-number order."""
    claims = [load_claim(p) for p in folder.glob("C*.toml")]
    return sorted(claims, key=lambda c: int(c.id[1:]))


def load_not_run(folder: Path = HERE) -> dict[str, dict[str, str]]:
    """Claims without an experiment: id -> {title, reason}."""
    return tomllib.loads((folder / "not_run.toml").read_text(encoding="utf-8"))


def compare_kwargs(claim: Claim, smoke: bool) -> dict[str, Any]:
    """``lossreg.compare.compare`` arguments of a claim's ``[compare]`` table."""
    from lossreg.compare._config import CONFIG_KEYS

    table = dict(claim.compare)
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


def evaluate(claim: Claim, results: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per check: means, the paired test and the outcome."""
    from lossreg.compare._metrics import GREATER_IS_BETTER

    ok = results[results["status"] == "ok"]
    cv = int(results.attrs["cv"])
    rows = []
    for check in claim.checks:
        baseline = check.baseline or results.attrs["baseline"]
        in_scenario = ok[ok["scenario"] == check.scenario]

        values = _per_pair(in_scenario, check.loss, check.metric)
        base = _per_pair(in_scenario, baseline, check.metric)
        # group-aware splits record their own n_test / n_train; row folds have 1 / (cv - 1)
        share = results.attrs.get("test_share", 1.0 / (cv - 1))
        test = paired_test(values, base, GREATER_IS_BETTER[check.metric], test_share=share)
        outcome = judge(check, test)
        rows.append(
            {
                "check": check,
                "baseline": baseline,
                "mean": values.mean(),
                "std": values.std(ddof=1),
                "base_mean": base.mean(),
                "base_std": base.std(ddof=1),
                "errors": int(
                    (
                        (results["scenario"] == check.scenario)
                        & results["loss_label"].isin([check.loss, baseline])
                        & (results["status"] != "ok")
                    ).sum()
                ),
                **test,
                "outcome": outcome,
            }
        )
    return rows


def _per_pair(frame: pd.DataFrame, label: str, metric: str) -> pd.Series:
    """One loss's metric indexed by (repeat, fold); empty when the metric was not computed."""
    rows = frame[frame["loss_label"] == label]
    if metric not in rows:
        return pd.Series(dtype=np.float64)
    return rows.set_index(["repeat", "fold"])[metric].astype(float)


def plot_claim(claim: Claim, results: pd.DataFrame, path: Path) -> None:
    """Per-fold values of each checked metric, one panel per (metric, scenario)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys((c.metric, c.scenario) for c in claim.checks))
    ok = results[results["status"] == "ok"]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False, layout="constrained"
    )
    for ax, (metric, scenario) in zip(axes[0], panels, strict=True):
        frame = ok[ok["scenario"] == scenario]
        labels = list(dict.fromkeys(frame["loss_label"]))
        for i, label in enumerate(labels):
            values = frame.loc[frame["loss_label"] == label, metric].astype(float).dropna()
            jitter = (
                np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(len(values))
            )
            ax.scatter(i + np.asarray(jitter), values, s=12, alpha=0.7)
            if len(values):
                ax.hlines(values.mean(), i - 0.3, i + 0.3, color="black", linewidth=1.5)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels([_short(label) for label in labels], rotation=35, ha="right")
        ax.set_ylabel(metric)
        ax.set_title(scenario, fontsize=10)
    fig.suptitle(f"{claim.id}: {claim.title}", fontsize=10)
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
        + f"; {len(not_run)} not run (listed at the end, with the reason).",
        "",
    ]
    for claim, results, rows, result in entries:
        a = results.attrs
        estimator = ", ".join(f"{k}={v!r}" for k, v in sorted(a["estimator"].items()))
        lines += [
            f"## {claim.id}",
            "",
            f"**{claim.title}** — evidence {claim.evidence}"
            + (f"; {claim.source}" if claim.source else "")
            + f". Verdict: **{result}**.",
            "",
            f"- Data: `{a['data']}` ({a['n_rows']} rows, {a['n_features']} features, {a['task']}); "
            f"scenarios: {', '.join(f'`{s}`' for s in a['scenarios'])}.",
            f"- {a['cv']}-fold cross-validation × {a['repeats']} repeats, seed "
            f"{a['random_state']}"
            + (
                f", split `{a['split']}` (test rows from groups not trained on)"
                if "split" in a
                else ""
            )
            + f"; estimator: {estimator}.",
            f"- Losses: {', '.join(f'`{x}`' for x in a['losses'])}; baseline `{a['baseline']}`.",
            "",
            "| loss | baseline | scenario | metric | loss mean ± std | baseline mean ± std | "
            "diff [95% CI] | p | expect | held |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            c = row["check"]
            expect = c.expect + (f" (margin {c.margin:g})" if c.margin else "")
            errors = f" ({row['errors']} failed fits)" if row["errors"] else ""
            lines.append(
                f"| `{c.loss}` | `{row['baseline']}` | {c.scenario} | {c.metric} | "
                f"{_fmt(row['mean'])} ± {_fmt(row['std'])} | "
                f"{_fmt(row['base_mean'])} ± {_fmt(row['base_std'])} | "
                f"{_fmt(row['diff'])} [{_fmt(row['lo'])}, {_fmt(row['hi'])}] | "
                f"{_fmt(row['p'], 3)} | {expect} | {_outcome_text(row['outcome'])}{errors} |"
            )
        lines += ["", f"![{claim.id}]({image_dir}/{claim.id}.png)", ""]
        if claim.notes:
            lines += [claim.notes, ""]
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
    parser.add_argument("--fresh", action="store_true", help="Discard finished fits.")
    args = parser.parse_args(argv)

    from lossreg.compare import compare

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
        results = compare(
            **compare_kwargs(claim, args.smoke),
            n_jobs=args.n_jobs,
            out=Path(args.out) / claim.id,
            resume=not args.fresh,
            report=False,
        )
        rows = evaluate(claim, results)
        result = verdict([r["outcome"] for r in rows])
        if write_page:
            plot_claim(claim, results, image_dir / f"{claim.id}.png")
        entries.append((claim, results, rows, result))
        a = results.attrs
        print(
            f"{claim.id}: {result:14s} ({a['n_computed']} fits run, {a['n_skipped']} reused, "
            f"{time.perf_counter() - start:.0f} s) {claim.title}",
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
