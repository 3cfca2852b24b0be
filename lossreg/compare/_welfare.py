"""Ad auctions in ``lossreg compare``: the bid column and the welfare of top-eCPM selection.

A binary click target whose rows are ads shown in auctions (the ``group`` column holds the
auction ids) may name a column of bids (``bid=``, ``--bid``; generated data with a ``bid``
column uses it unasked). The bids are not a feature: they reach the losses that declare the
``bid`` fit extra (``welfare_rank``), and each test fold is scored by the welfare of the
auctions it holds: in every auction the ad with the highest eCPM, bid x predicted
click-through rate, wins, and its bid times its click is the welfare it brings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "WELFARE_DIRECTIONS",
    "WELFARE_METRICS",
    "auction_welfare",
    "check_welfare_split",
    "score_welfare",
    "split_bids",
]

#: direction of each welfare metric (greater is better)
WELFARE_DIRECTIONS = {"welfare": True, "welfare_per_auction": True}
WELFARE_METRICS = tuple(WELFARE_DIRECTIONS)


def split_bids(
    frame: pd.DataFrame, bid: str, reserved: list[Any], name: str, group: str | None
) -> tuple[pd.DataFrame, pd.Series]:
    """Take the ``bid`` column out of ``frame``: the features without it, and the bids.

    ``reserved`` lists the columns that cannot be the bids (the target, the group ids);
    ``group`` is the column of auction ids, without which bids mean nothing.
    """
    if group is None:
        raise ValueError(
            f"Bids ({bid!r}) are per ad in an auction: name the column of auction ids with "
            f"group=... (--group) in {name!r}."
        )
    if bid not in frame.columns or bid in reserved:
        raise ValueError(
            f"Bid column {bid!r} is not a feature column of {name!r}; columns: "
            f"{', '.join(map(str, frame.columns[:20]))}."
        )
    values = pd.to_numeric(frame[bid], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        first = frame[bid].iloc[int(np.flatnonzero(bad)[0])]
        raise ValueError(
            f"Bids in {bid!r} must be finite numbers >= 0 (the value of a click); "
            f"{int(bad.sum())} are not (first: {first!r})."
        )
    return frame.drop(columns=[bid]), pd.Series(values, name=bid)


def auction_welfare(clicks: Any, ctr: Any, bids: Any, auctions: Any) -> dict[str, float]:
    """Welfare of selecting, in each auction, the ad with the highest bid x predicted CTR.

    Returns ``welfare``: the selected ads' summed bid x click over the welfare of the best
    selection in hindsight (the largest bid x click of each auction), so 1 means that
    every auction with a click was won by its most valuable clicked ad; and
    ``welfare_per_auction``: the selected ads' mean bid x click per auction. Realised clicks
    stand in for the true CTRs (unknown in real data); their expectation is the selection's
    expected welfare. Ties in eCPM go to the first row of the auction. ``welfare`` is NaN
    when no test auction has a click.

    Examples
    --------
    >>> out = auction_welfare(
    ...     clicks=[0, 1, 1, 0], ctr=[0.5, 0.2, 0.1, 0.3], bids=[1.0, 3.0, 2.0, 1.0],
    ...     auctions=[0, 0, 1, 1],
    ... )
    >>> round(out["welfare"], 4), round(out["welfare_per_auction"], 4)
    (0.6, 1.5)
    """
    clicks = np.asarray(clicks, dtype=np.float64).reshape(-1)
    ecpm = np.asarray(bids, dtype=np.float64).reshape(-1) * np.asarray(ctr).reshape(-1)
    value = np.asarray(bids, dtype=np.float64).reshape(-1) * clicks
    auctions = np.asarray(auctions).reshape(-1)
    if not len(clicks) == len(ecpm) == len(auctions):
        raise ValueError(
            f"auction_welfare needs one click, CTR, bid and auction id per row; got "
            f"{len(clicks)}, {len(ecpm)} and {len(auctions)} rows."
        )
    _, index = np.unique(auctions, return_inverse=True)
    won = best = 0.0
    n_auctions = int(index.max()) + 1 if len(index) else 0
    for a in range(n_auctions):
        rows = np.flatnonzero(index == a)
        won += value[rows[int(np.argmax(ecpm[rows]))]]
        best += value[rows].max()
    return {
        "welfare": float(won / best) if best > 0 else float("nan"),
        "welfare_per_auction": float(won / n_auctions) if n_auctions else float("nan"),
    }


def score_welfare(
    y_test: Any, proba: Any, classes: Any, bids: Any, groups: Any
) -> dict[str, float]:
    """:func:`auction_welfare` of a binary test fold, or nothing without bids and auctions.

    The click class is the larger of the two classes (1 for 0/1 clicks).
    """
    if bids is None or groups is None or proba is None or len(classes) != 2:
        return {}
    clicks = np.asarray(y_test) == classes[1]
    return auction_welfare(clicks, np.asarray(proba)[:, 1], bids, groups)


def check_welfare_split(has_bids: bool, split: str) -> None:
    """Refuse row folds for auction data: welfare picks one ad per whole test auction."""
    if has_bids and split != "group":
        raise ValueError(
            f"Bids score the welfare of the ad each test auction selects, so every auction "
            f"must lie whole in one fold: pass split='group' (--split group) with the auction "
            f"ids as group. Got split={split!r}."
        )
