"""Per-loss summary: mean ± std of the primary metric, rank, paired test against the baseline."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["TIE_TOLERANCE", "failed_fits", "summarize"]

#: paired differences at most this large count as ties
TIE_TOLERANCE = 1e-9


def summarize(
    results: pd.DataFrame, primary: str | None = None, baseline: str | None = None
) -> pd.DataFrame:
    """One row per scenario × loss, ranked within each scenario by the primary metric.

    Columns: ``scenario``, ``rank``, ``loss``, ``n`` (successful fits), ``errors`` (fits that
    failed, or diverged and so have no metrics),
    ``mean``, ``std``, ``fit_time``, and against the baseline on the same (repeat, fold)
    pairs: ``wins``, ``ties``, ``losses``, ``mean_diff`` (positive = better than the
    baseline), ``p_wilcoxon`` (Wilcoxon signed-rank) and ``p_ttest`` (paired t-test).
    """
    from lossreg.compare._metrics import GREATER_IS_BETTER

    primary = primary or results.attrs["primary"]
    baseline = baseline or results.attrs["baseline"]
    sign = 1.0 if GREATER_IS_BETTER.get(primary, True) else -1.0
    ok = results[results["status"] == "ok"]
    rows = []
    for scenario, in_scenario in results.groupby("scenario", sort=False):
        good = ok[ok["scenario"] == scenario]
        base = _by_pair(good, baseline, primary)
        for label, group in in_scenario.groupby("loss_label", sort=False):
            values = good.loc[good["loss_label"] == label, primary].astype(float).dropna()
            row: dict[str, Any] = {
                "scenario": scenario,
                "loss": label,
                "n": len(values),
                "errors": int(failed_fits(group, primary).sum()),
                "mean": values.mean() if len(values) else np.nan,
                "std": values.std(ddof=1) if len(values) > 1 else np.nan,
                "fit_time": good.loc[good["loss_label"] == label, "fit_time"].mean(),
                "baseline": label == baseline,
            }
            if label != baseline:
                row.update(_paired(_by_pair(good, label, primary), base, sign))
            rows.append(row)
    summary = pd.DataFrame(rows)
    if summary.empty:
        return summary
    order = summary["mean"] * sign
    summary["rank"] = (
        order.groupby(summary["scenario"], sort=False)
        .rank(ascending=False, method="min")
        .astype("Int64")
    )
    summary = summary.assign(_key=-order.fillna(-np.inf))
    scenario_order = {s: i for i, s in enumerate(dict.fromkeys(summary["scenario"]))}
    summary = summary.assign(_s=summary["scenario"].map(scenario_order))
    summary = summary.sort_values(["_s", "_key"], kind="stable").drop(columns=["_s", "_key"])
    columns = ["scenario", "rank", "loss", "n", "errors", "mean", "std"]
    rest = [c for c in summary.columns if c not in columns]
    return summary[columns + rest].reset_index(drop=True)


def failed_fits(frame: pd.DataFrame, metric: str) -> pd.Series:
    """Which fits of ``frame`` have no ``metric`` because they failed or diverged.

    A diverged fit is recorded with status ok (its divergence is a result, the ``diverged``
    metric) but has no test metrics, so for every other metric it counts as failed.
    """
    failed = frame["status"] != "ok"
    if "divergence" in frame and metric != "diverged":
        failed = failed | frame["divergence"].notna()
    return failed


def _by_pair(frame: pd.DataFrame, label: str, metric: str) -> pd.Series:
    rows = frame[frame["loss_label"] == label]
    return rows.set_index(["repeat", "fold"])[metric].astype(float).dropna()


def _paired(values: pd.Series, base: pd.Series, sign: float) -> dict[str, Any]:
    from scipy import stats

    both = pd.concat([values.rename("x"), base.rename("b")], axis=1, join="inner")
    diff = sign * (both["x"] - both["b"]).to_numpy()
    out: dict[str, Any] = {
        "pairs": len(diff),
        "wins": int((diff > TIE_TOLERANCE).sum()),
        "ties": int((np.abs(diff) <= TIE_TOLERANCE).sum()),
        "losses": int((diff < -TIE_TOLERANCE).sum()),
        "mean_diff": float(diff.mean()) if len(diff) else np.nan,
        "p_wilcoxon": np.nan,
        "p_ttest": np.nan,
    }
    nonzero = diff[np.abs(diff) > TIE_TOLERANCE]
    if len(nonzero) == 0 and len(diff):
        out["p_wilcoxon"] = out["p_ttest"] = 1.0  # identical on every pair
    elif len(diff) >= 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.suppress(ValueError):
                out["p_wilcoxon"] = float(stats.wilcoxon(diff, zero_method="wilcox").pvalue)
            out["p_ttest"] = float(stats.ttest_rel(both["x"], both["b"]).pvalue)
    return out
