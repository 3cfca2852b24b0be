"""Group-aware splits for ``lossreg compare``: test on domains or environments never trained on.

``split="rows"`` (the default, in :mod:`lossreg.compare._run`) cross-validates rows, so every
group of the data set is seen in training. Two other settings test out-of-domain:

- ``split="group"``: scikit-learn's ``GroupKFold`` on the ``group`` column; each test fold
  holds whole groups whose rows are absent from its training fold (leave-one-group-out when
  ``cv`` equals the number of groups). Repeats shuffle which groups share a fold.
- ``test_groups=[...]``: rows of these groups are test rows only (a shifted test environment);
  the other rows are cross-validated as usual (stratified for classes), and fold ``k`` is
  scored on the ``k``-th of ``cv`` parts of the held-out rows, so test sets do not overlap.

In both, the training fold's own group ids still reach the losses that declare ``group``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SPLITS", "check_split", "fold_test_share", "group_splits", "split_label"]

#: the values of compare's ``split`` option
SPLITS = ("rows", "group")


def check_split(
    split: str, test_groups: Any, groups: pd.Series | None, cv: int
) -> list[str] | None:
    """Validate ``split`` and ``test_groups``; return the test groups as strings (or None).

    Group ids are matched as text, so ``test_groups=[2]`` (TOML, Python) and
    ``--test-group 2`` (the command line) name the same group.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}; use one of: {', '.join(SPLITS)}.")
    if isinstance(test_groups, (str, int)):
        test_groups = [test_groups]
    wanted = None if not test_groups else [str(g) for g in test_groups]
    if split == "rows" and wanted is None:
        return None
    what = "split='group'" if split == "group" else "test_groups"
    if groups is None:
        raise ValueError(
            f"{what} needs group ids: name the column of domain / environment ids with "
            "group=... (--group)."
        )
    present = sorted(pd.unique(groups.astype(str)))
    if split == "group":
        if wanted is not None:
            raise ValueError(
                "split='group' already tests on held-out groups; drop test_groups, or use "
                "test_groups with split='rows' to hold out fixed groups."
            )
        if len(present) < 2 or cv > len(present):
            raise ValueError(
                f"split='group' puts whole groups in each of the cv={cv} test folds, but the "
                f"group column has {len(present)} group(s); use cv <= {len(present)} "
                f"(cv={len(present)} is leave-one-group-out)."
            )
        return None
    unknown = [g for g in wanted if g not in present]
    if unknown:
        raise ValueError(
            f"test_groups {', '.join(map(repr, unknown))} not in the group column; its groups: "
            f"{', '.join(present[:20])}."
        )
    if set(wanted) >= set(present):
        raise ValueError(
            f"test_groups {wanted!r} hold out every group, leaving no training rows; keep at "
            "least one group for training."
        )
    return sorted(set(wanted))


def split_label(split: str, test_groups: list[str] | None) -> str | None:
    """How the rows were split, for fit keys and reports; None for plain row splits."""
    if split == "group":
        return "group"
    if test_groups:
        return f"rows|test_groups={','.join(test_groups)}"
    return None


def group_splits(
    task: str,
    y: pd.Series | pd.DataFrame,
    groups: pd.Series,
    cv: int,
    seed: int,
    split: str,
    test_groups: list[str] | None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``cv`` (train, test) row-index pairs of one repeat, for a group-aware split."""
    from sklearn.model_selection import GroupKFold

    if split == "group":
        # shuffle=True: each repeat assigns groups to folds differently (when cv < groups)
        folds = GroupKFold(cv, shuffle=True, random_state=seed)
        codes = pd.factorize(groups.astype(str))[0]
        return [(tr, te) for tr, te in folds.split(np.zeros(len(codes)), groups=codes)]
    held = groups.astype(str).isin(test_groups or []).to_numpy()
    kept_rows, held_rows = np.flatnonzero(~held), np.flatnonzero(held)
    kept = list(_row_folds(task, y.iloc[kept_rows], cv, seed))
    parts = list(_row_folds(task, y.iloc[held_rows], cv, seed + 1))
    return [
        (kept_rows[train], held_rows[part])
        for (train, _), (_, part) in zip(kept, parts, strict=True)
    ]


def fold_test_share(fits: list[dict[str, Any]]) -> float:
    """Mean ``n_test / n_train`` over the planned fits: the variance correction of the
    corrected resampled t-test when folds are not equal shares of one set of rows."""
    ratios = [len(f["test"]) / max(1, len(f["train"])) for f in fits]
    return float(np.mean(ratios)) if ratios else float("nan")


def _row_folds(task: str, y: pd.Series | pd.DataFrame, cv: int, seed: int) -> Any:
    from sklearn.model_selection import KFold, StratifiedKFold

    n = np.zeros(len(y))
    if len(y) < cv:
        raise ValueError(
            f"{len(y)} rows cannot be cut into cv={cv} folds; use a smaller cv or more rows."
        )
    stratify = task in ("binary", "multiclass", "embedding") and isinstance(y, pd.Series)
    if stratify and y.value_counts().min() >= cv:
        return StratifiedKFold(cv, shuffle=True, random_state=seed).split(n, y.astype(str))
    return KFold(cv, shuffle=True, random_state=seed).split(n)
