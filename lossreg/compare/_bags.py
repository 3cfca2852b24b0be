"""Bag scenarios of ``lossreg compare``: training labels replaced by bag ids and bag targets.

``bags:SIZE`` cuts a training fold into random bags of ``SIZE`` rows, ``sorted_bags:SIZE`` into
bags of rows that lie next to each other along a random direction of the (standardised)
numeric features, whose label proportions vary more from bag to bag. A loss that declares the
``bag`` / ``bag_target`` fit extras (``dllp``, ``proportion_kl``, ``bag_mse`` ...) then sees
only each bag's label proportions (classes) or mean response (regression); every other loss
keeps the true labels of the rows and is the fully supervised reference. Test folds keep
their labels: predictions are scored per row with the usual metrics.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["BAG_EXTRAS", "BAG_SCENARIOS", "bag_extras_of", "check_bag_losses", "make_bags"]

#: the fit extras a bag scenario fills
BAG_EXTRAS = ("bag", "bag_target")

#: scenario kinds that replace labels by bags (their value is the bag size)
BAG_SCENARIOS = ("bags", "sorted_bags")


def bag_extras_of(fit_extras: Iterable[str]) -> tuple[str, ...]:
    """The bag extras among a loss's declared ``fit_extras`` (empty: a supervised loss)."""
    declared = set(fit_extras)
    return tuple(e for e in BAG_EXTRAS if e in declared)


def check_bag_losses(labels_extras: dict[str, Iterable[str]], scenarios: Iterable[Any]) -> None:
    """Fail before any fit when bag losses meet scenarios without bags.

    Parameters
    ----------
    labels_extras : dict
        Loss label -> the fit extras its loss declares.
    scenarios : iterable of Scenario
        The comparison's scenarios.
    """
    bag_losses = [label for label, extras in labels_extras.items() if bag_extras_of(extras)]
    plain = [s.label for s in scenarios if s.kind not in BAG_SCENARIOS]
    if bag_losses and plain:
        raise ValueError(
            f"{', '.join(bag_losses)} learn(s) from bag label proportions, which only a bag "
            f"scenario provides; scenario(s) {', '.join(plain)} have no bags. Use only "
            "bags:SIZE or sorted_bags:SIZE scenarios (e.g. scenarios=['bags:32']), or drop "
            "the bag losses."
        )


def make_bags(
    X: Any,
    y: Any,
    size: int,
    *,
    sort: bool,
    regression: bool,
    random_state: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut training rows into bags; return ``(bag, bag_target, y_seen)``, one entry per row.

    Parameters
    ----------
    X : DataFrame or array
        Training features (only ``sort=True`` reads them: their numeric columns).
    y : array
        True training labels (classes) or responses (regression).
    size : int
        Rows per bag; the last bag takes the remainder (``len(y) % size`` rows) when it is
        not 0.
    sort : bool
        False: random bags. True: rows sorted along a random unit direction of the
        standardised numeric features (missing values at the column median), then cut.
    regression : bool
        True: ``bag_target`` is the bag's mean response; else its label proportions.
    random_state : int
        Seeds the bag assignment (and the direction).

    Returns
    -------
    bag : ndarray of int64, shape (n,)
        Bag id per row.
    bag_target : ndarray of float
        Regression: the bag's mean response per row (n,). Two classes: the bag's share of the
        larger label (sorted order, the estimator's positive class) per row (n,). More
        classes: the bag's class proportions (n, C), columns in sorted label order.
    y_seen : ndarray, shape (n,)
        What a bag loss's estimator gets as ``y``, holding nothing beyond the bag targets:
        the bag mean per row (regression), or each bag's own labels shuffled among its rows
        (classes; bag losses ignore ``y``, but the estimator reads the class set from it).
    """
    y = np.asarray(y)
    n = len(y)
    if size < 2 or size != int(size):
        raise ValueError(f"A bag size must be an integer >= 2. Got {size!r}.")
    rng = np.random.default_rng(random_state)
    order = _sorted_order(X, rng) if sort else rng.permutation(n)
    bag = np.empty(n, dtype=np.int64)
    bag[order] = np.arange(n) // int(size)
    n_bags = int(bag.max()) + 1 if n else 0
    if regression:
        values = y.astype(np.float64)
        means = np.bincount(bag, weights=values, minlength=n_bags) / np.bincount(bag)
        return bag, means[bag], means[bag]
    classes, codes = np.unique(y, return_inverse=True)
    counts = np.zeros((n_bags, len(classes)))
    np.add.at(counts, (bag, codes), 1.0)
    proportions = counts / counts.sum(axis=1, keepdims=True)
    target = proportions[bag, 1] if len(classes) == 2 else proportions[bag]
    y_seen = y.copy()
    for rows in _bag_rows(bag, n_bags):
        y_seen[rows] = y[rng.permutation(rows)]
    return bag, target, y_seen


def _bag_rows(bag: np.ndarray, n_bags: int) -> list[np.ndarray]:
    order = np.argsort(bag, kind="stable")
    return np.split(order, np.cumsum(np.bincount(bag, minlength=n_bags))[:-1])


def _sorted_order(X: Any, rng: np.random.Generator) -> np.ndarray:
    """Rows ordered by their projection on a random direction of the numeric features."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X))
    numeric = frame.select_dtypes(include=np.number).to_numpy(dtype=np.float64)
    if numeric.shape[1] == 0:
        raise ValueError(
            "sorted_bags needs numeric feature columns to sort rows by; this data has none. "
            "Use bags:SIZE (random bags)."
        )
    numeric = np.where(np.isnan(numeric), np.nanmedian(numeric, axis=0), numeric)
    spread = numeric.std(axis=0)
    scaled = (numeric - numeric.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    direction = rng.standard_normal(scaled.shape[1])
    return np.argsort(scaled @ (direction / np.linalg.norm(direction)), kind="stable")
