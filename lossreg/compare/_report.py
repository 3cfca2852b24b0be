"""Reports: summary.csv, a self-contained report.html (figures as base64 PNG), report.md."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["figures", "write_reports"]


def write_reports(results: pd.DataFrame, out: Path) -> dict[str, Path]:
    """Write ``summary.csv``, ``report.html``, ``report.md`` and ``figures/*.png`` into ``out``."""
    from lossreg.compare._summary import summarize

    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(results)
    paths = {"summary": out / "summary.csv", "html": out / "report.html", "md": out / "report.md"}
    summary.to_csv(paths["summary"], index=False)
    images = figures(results)
    figure_dir = out / "figures"
    figure_dir.mkdir(exist_ok=True)
    for name, (_title, png) in images.items():
        (figure_dir / f"{name}.png").write_bytes(png)
    paths["html"].write_text(_html(results, summary, images), encoding="utf-8")
    paths["md"].write_text(_markdown(results, summary, images), encoding="utf-8")
    return paths


def figures(results: pd.DataFrame) -> dict[str, tuple[str, bytes]]:
    """name -> (title, PNG bytes): score distributions, training curves, reliability diagram."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    out = {}
    ok = results[results["status"] == "ok"]
    if ok.empty:
        return out
    out["scores"] = (
        f"{results.attrs['primary']} per loss across folds × repeats",
        _png(_score_figure(ok, results.attrs["primary"])),
    )
    if "train_loss" in ok:
        out["training"] = ("Training loss per epoch (mean over fits)", _png(_training_figure(ok)))
    if "reliability" in ok and ok["reliability"].notna().any():
        out["reliability"] = (
            "Reliability diagram (top-class confidence, test folds pooled)",
            _png(_reliability_figure(ok)),
        )
    return out


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _panels(n: int, width: float = 4.8, height: float = 3.4) -> tuple[Any, list[Any]]:
    import matplotlib.pyplot as plt

    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _score_figure(ok: pd.DataFrame, primary: str) -> Any:
    scenarios = list(dict.fromkeys(ok["scenario"]))
    losses = list(dict.fromkeys(ok["loss_label"]))
    fig, axes = _panels(len(scenarios), width=max(4.8, 0.9 * len(losses) + 1.5), height=3.8)
    for ax, scenario in zip(axes, scenarios):
        part = ok[ok["scenario"] == scenario]
        data = [
            part.loc[part["loss_label"] == label, primary].dropna().to_numpy() for label in losses
        ]
        ax.boxplot(data, showmeans=True)
        rng = np.random.default_rng(0)
        for i, values in enumerate(data, start=1):
            ax.plot(i + rng.uniform(-0.12, 0.12, len(values)), values, ".", alpha=0.5, color="C0")
        ax.set_xticks(range(1, len(losses) + 1), losses, rotation=35, ha="right", fontsize=8)
        ax.set_title(scenario, fontsize=10)
        ax.set_ylabel(primary)
    fig.tight_layout()
    return fig


def _training_figure(ok: pd.DataFrame) -> Any:
    losses = list(dict.fromkeys(ok["loss_label"]))
    scenarios = list(dict.fromkeys(ok["scenario"]))
    fig, axes = _panels(len(losses), width=4.0, height=2.9)
    for ax, label in zip(axes, losses):
        for j, scenario in enumerate(scenarios):
            curves = ok.loc[
                (ok["loss_label"] == label) & (ok["scenario"] == scenario), "train_loss"
            ]
            curves = [np.asarray(c, dtype=float) for c in curves if isinstance(c, list) and c]
            if not curves:
                continue
            for c in curves:
                ax.plot(np.arange(1, len(c) + 1), c, color=f"C{j}", alpha=0.15, linewidth=0.8)
            length = max(len(c) for c in curves)
            padded = np.full((len(curves), length), np.nan)
            for i, c in enumerate(curves):
                padded[i, : len(c)] = c
            ax.plot(
                np.arange(1, length + 1), np.nanmean(padded, axis=0), color=f"C{j}", label=scenario
            )
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("train loss")
        if len(scenarios) > 1 and ax.get_legend_handles_labels()[1]:  # a panel without curves
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _reliability_figure(ok: pd.DataFrame) -> Any:
    scenarios = list(dict.fromkeys(ok["scenario"]))
    losses = list(dict.fromkeys(ok["loss_label"]))
    fig, axes = _panels(len(scenarios), width=4.6, height=4.2)
    for ax, scenario in zip(axes, scenarios):
        ax.plot([0, 1], [0, 1], "k--", linewidth=0.8, label="perfect")
        for i, label in enumerate(losses):
            bins = ok.loc[(ok["scenario"] == scenario) & (ok["loss_label"] == label), "reliability"]
            bins = [b for b in bins if isinstance(b, dict)]
            if not bins:
                continue
            count = np.sum([b["count"] for b in bins], axis=0).astype(float)
            conf = np.sum([b["confidence"] for b in bins], axis=0)
            correct = np.sum([b["correct"] for b in bins], axis=0)
            used = count > 0
            ax.plot(
                conf[used] / count[used],
                correct[used] / count[used],
                "o-",
                color=f"C{i % 10}",
                markersize=3,
                label=label,
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("mean confidence")
        ax.set_ylabel("accuracy")
        ax.set_title(scenario, fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# -- tables ---------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else ""
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{value:.{digits}f}"
    return str(value)


def _count(value: Any) -> str:
    return "—" if value is None or value != value else str(int(value))


def summary_rows(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Display columns and formatted rows, shared by the terminal table and the reports."""
    header = ["scenario", "rank", "loss", "mean ± std", "n", "W/T/L", "Δ mean", "p (Wilcoxon)"]
    header += ["p (t-test)", "errors", "fit s"]
    rows = []
    for r in summary.to_dict("records"):
        baseline = bool(r.get("baseline"))
        wtl = (
            "baseline"
            if baseline
            else "/".join(_count(r.get(k)) for k in ("wins", "ties", "losses"))
        )
        rows.append(
            [
                str(r["scenario"]),
                _fmt(r["rank"]),
                str(r["loss"]),
                f"{_fmt(r['mean'])} ± {_fmt(r['std'])}",
                str(r["n"]),
                wtl,
                "" if baseline else _fmt(r.get("mean_diff")),
                "" if baseline else _fmt(r.get("p_wilcoxon"), 3),
                "" if baseline else _fmt(r.get("p_ttest"), 3),
                str(r["errors"]),
                _fmt(r.get("fit_time"), 2),
            ]
        )
    return header, rows


def _metric_means(results: pd.DataFrame) -> pd.DataFrame:
    from lossreg.compare._metrics import GREATER_IS_BETTER

    metrics = [m for m in GREATER_IS_BETTER if m in results and results[m].notna().any()]
    ok = results[results["status"] == "ok"]
    table = ok.groupby(["scenario", "loss_label"], sort=False)[metrics].mean()
    return table.reset_index().rename(columns={"loss_label": "loss"})


def _settings(results: pd.DataFrame) -> list[tuple[str, str]]:
    a = results.attrs
    return [
        (
            "data",
            f"{a['data']} ({a['n_rows']} rows, {a['n_features']} features, "
            f"fingerprint {a['fingerprint']})",
        ),
        ("task", a["task"]),
        (
            "primary metric",
            f"{a['primary']} ({'higher' if a['greater_is_better'] else 'lower'} is better)",
        ),
        ("baseline", a["baseline"]),
        ("losses", ", ".join(a["losses"])),
        ("scenarios", ", ".join(a["scenarios"]) + " (training folds only; test folds untouched)"),
        (
            "cross-validation",
            f"{a['cv']} folds × {a['repeats']} repeats, random_state={a['random_state']}"
            + (
                f", split {a['split']} (test rows from groups not trained on)"
                if "split" in a
                else ""
            ),
        ),
        ("estimator", ", ".join(f"{k}={v!r}" for k, v in a["estimator"].items())),
        (
            "fits",
            f"{len(results)} ({a['n_computed']} computed in this run, {a['n_skipped']} reused)",
        ),
    ]


def _errors(results: pd.DataFrame) -> pd.DataFrame:
    failed = results[results["status"] != "ok"]
    return failed[["scenario", "loss_label", "repeat", "fold", "error"]].rename(
        columns={"loss_label": "loss"}
    )


def _html(
    results: pd.DataFrame, summary: pd.DataFrame, images: dict[str, tuple[str, bytes]]
) -> str:
    e = html.escape
    a = results.attrs
    header, rows = summary_rows(summary)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>lossreg compare: {e(str(a['data']))}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th{background:#f2f2f2}td:nth-child(-n+3){text-align:left}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>lossreg compare: {e(str(a['data']))}</h1>",
        '<section id="settings"><h2>Settings</h2><table class="settings">',
    ]
    parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _settings(results)]
    parts.append("</table></section>")
    parts.append(
        f'<section id="summary"><h2>Ranking by {e(a["primary"])}</h2>'
        f"<p>Mean ± std over folds × repeats. W/T/L and Δ mean (positive = better) pair each "
        f"loss with the baseline <b>{e(a['baseline'])}</b> on the same fold and repeat.</p>"
        '<table class="summary"><thead><tr>'
    )
    parts += [f"<th>{e(h)}</th>" for h in header]
    parts.append("</tr></thead><tbody>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    parts.append("</tbody></table></section>")
    means = _metric_means(results)
    parts.append('<section id="metrics"><h2>All metrics (means)</h2>')
    parts.append(means.to_html(index=False, float_format=lambda v: f"{v:.4f}", classes="metrics"))
    parts.append("</section>")
    parts.append('<section id="figures"><h2>Figures</h2>')
    for name, (title, png) in images.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f'<figure id="fig-{name}"><img alt="{e(title)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{e(title)}</figcaption></figure>"
        )
    parts.append("</section>")
    errors = _errors(results)
    if len(errors):
        parts.append(f'<section id="errors"><h2>Failed fits ({len(errors)})</h2>')
        parts.append(errors.to_html(index=False, classes="errors"))
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _markdown(
    results: pd.DataFrame, summary: pd.DataFrame, images: dict[str, tuple[str, bytes]]
) -> str:
    a = results.attrs
    header, rows = summary_rows(summary)
    lines = [f"# lossreg compare: {a['data']}", ""]
    lines += [f"- **{k}**: {v}" for k, v in _settings(results)]
    lines += ["", f"## Ranking by {a['primary']}", "", _md_table(header, rows), ""]
    means = _metric_means(results)
    lines += ["## All metrics (means)", ""]
    lines.append(
        _md_table(
            list(means.columns),
            [[_fmt(v) if isinstance(v, float) else str(v) for v in r] for r in means.to_numpy()],
        )
    )
    lines += ["", "## Figures", ""]
    lines += [f"![{title}](figures/{name}.png)\n" for name, (title, _png) in images.items()]
    errors = _errors(results)
    if len(errors):
        lines += [f"## Failed fits ({len(errors)})", ""]
        lines.append(
            _md_table(list(errors.columns), [[str(v) for v in r] for r in errors.to_numpy()])
        )
    return "\n".join(lines) + "\n"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(cell(h) for h in header) + " |"]
    out.append("|" + "---|" * len(header))
    out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)
