"""LossRecommender's seen-item lists: one sorted pass against a mask per user, side by side.

``LossRecommender.fit`` keeps, per user, the items it trained on (``seen_``), so that
``recommend`` never returns them. The baseline builds each user's list with a boolean mask over
all rows (``np.unique(items[users == u])``: O(users x rows)); lossreg sorts once by user and
item and splits at the user boundaries (O(rows log rows)). Both run in this process on the same
interactions, their outputs are checked equal, and the figure is the median of the rounds.

Run: ``python benchmarks/bench_recommender.py [--rounds 3] [--quick] [--no-record]``.
"""

from __future__ import annotations

import argparse
from functools import partial

import numpy as np
from _common import append_results, markdown_table, median, timed

from lossreg.estimators.recommender import _items_per_user

#: (users, rows) of the interaction tables
SIZES = ((1_000, 50_000), (5_000, 200_000), (20_000, 500_000))


def per_user_masks(users: np.ndarray, items: np.ndarray, n_users: int) -> list[np.ndarray]:
    """The baseline: one boolean mask over every row per user."""
    return [np.unique(items[users == u]) for u in range(n_users)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke run: the smallest size once")
    parser.add_argument("--no-record", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    rounds = 1 if args.quick else args.rounds
    rng = np.random.default_rng(0)
    rows = []
    for n_users, n_rows in SIZES[:1] if args.quick else SIZES:
        users = rng.integers(0, n_users, n_rows)
        items = rng.integers(0, 5_000, n_rows)
        ours = _items_per_user(users, items, n_users)
        base = per_user_masks(users, items, n_users)
        assert all(np.array_equal(a, b) for a, b in zip(ours, base, strict=True))
        ours_call = partial(_items_per_user, users, items, n_users)
        base_call = partial(per_user_masks, users, items, n_users)
        fast = median([timed(ours_call) for _ in range(rounds)])
        slow = median([timed(base_call) for _ in range(rounds)])
        rows.append(
            [
                f"{n_users:,}",
                f"{n_rows:,}",
                f"{slow * 1e3:.1f}",
                f"{fast * 1e3:.1f}",
                f"{slow / fast:.0f}×",
            ]
        )
    header = ["users", "rows", "mask per user (ms)", "one sorted pass (ms)", "speed-up"]
    title, table = "LossRecommender seen items (bench_recommender.py)", markdown_table(header, rows)
    if args.no_record:
        print(f"## {title}\n\n{table}")
    else:
        append_results(title, table)


if __name__ == "__main__":
    main()
